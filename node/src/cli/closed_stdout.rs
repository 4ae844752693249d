//! Output into a closed pipe (`posmesh status | head -1`, `posmesh status | true`): the
//! reader is gone, so the command stops quietly, as a Unix tool killed by `SIGPIPE` does —
//! exit status [`BROKEN_PIPE_EXIT`] (128 + 13, what a shell reports for it), nothing on
//! stderr — instead of Rust's panic "failed printing to stdout: Broken pipe" (exit 101).
//!
//! Rust ignores `SIGPIPE`, so a write into a closed pipe fails with `EPIPE` and `println!`
//! panics; restoring the signal's default action needs `unsafe` (denied in this
//! workspace) and would also apply to the node's own sockets. A panic hook recognises
//! that one panic instead and exits; every other panic is reported as before.

/// Exit status after output into a closed pipe: 128 + `SIGPIPE` (13).
pub const BROKEN_PIPE_EXIT: i32 = 141;

/// Whether a panic's message is the standard library's for printing into a closed pipe
/// (`failed printing to stdout: Broken pipe (os error 32)`, or to stderr).
pub fn is_broken_pipe_panic(message: &str) -> bool {
    let printing = message.starts_with("failed printing to stdout")
        || message.starts_with("failed printing to stderr");
    printing && (message.contains("Broken pipe") || message.contains("os error 32"))
}

/// Exit status after any other failure to write the output (`posmesh status >/dev/full`).
pub const OUTPUT_FAILED_EXIT: i32 = 1;

/// The reason, when a panic's message is the standard library's for failing to print to
/// stdout for another reason than a closed pipe (a full disk: `No space left on device`).
pub fn output_failure(message: &str) -> Option<&str> {
    let reason = message.strip_prefix("failed printing to stdout: ")?;
    (!is_broken_pipe_panic(message)).then_some(reason)
}

/// Installs the hook (see the module doc): call once, first thing in `main`. Any other
/// failure to print to stdout is one line on stderr and exit status
/// [`OUTPUT_FAILED_EXIT`], not a panic with a backtrace.
pub fn exit_quietly_on_closed_stdout() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if is_broken_pipe_panic(message) {
            std::process::exit(BROKEN_PIPE_EXIT);
        }
        if let Some(reason) = output_failure(message) {
            eprintln!("error: cannot write the output: {reason}");
            std::process::exit(OUTPUT_FAILED_EXIT);
        }
        report(info);
    }));
}

#[cfg(test)]
mod tests {
    use super::{is_broken_pipe_panic, output_failure};

    #[test]
    fn only_printing_into_a_closed_pipe_is_recognised() {
        assert!(is_broken_pipe_panic(
            "failed printing to stdout: Broken pipe (os error 32)"
        ));
        assert!(is_broken_pipe_panic(
            "failed printing to stderr: Broken pipe (os error 32)"
        ));
        for other in [
            "failed printing to stdout: No space left on device (os error 28)",
            "called `Option::unwrap()` on a `None` value",
            "Broken pipe",
            "",
        ] {
            assert!(!is_broken_pipe_panic(other), "{other}");
        }
    }

    #[test]
    fn other_output_failures_are_told_in_one_line() {
        assert_eq!(
            output_failure("failed printing to stdout: No space left on device (os error 28)"),
            Some("No space left on device (os error 28)")
        );
        assert_eq!(
            output_failure("failed printing to stdout: Broken pipe (os error 32)"),
            None
        );
        assert_eq!(
            output_failure("called `Option::unwrap()` on a `None` value"),
            None
        );
    }
}
