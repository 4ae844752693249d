//! CLI output into a closed pipe (`posmesh status | true`): the command stops quietly —
//! exit 141 as for `SIGPIPE`, nothing on stderr — instead of panicking (exit 101).

use super::support;

#[test]
fn output_into_a_closed_pipe_ends_the_command_quietly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (reader, writer) = std::io::pipe().expect("pipe");
    // The reader is gone before the command prints anything.
    drop(reader);
    let output = std::process::Command::new(support::binary())
        .args(["ca", "init", "--chain", "acme", "--ca-dir"])
        .arg(dir.path().join("ca"))
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.trim().is_empty(), "quiet: {stderr}");
    // The command did its work before printing.
    assert!(dir.path().join("ca").join("ca.pem").is_file());
}

#[test]
fn output_onto_a_full_device_is_one_error_line_not_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let output = std::process::Command::new(support::binary())
        .args(["ca", "init", "--chain", "acme", "--ca-dir"])
        .arg(dir.path().join("ca"))
        .stdout(full)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("error: cannot write the output: No space left on device"),
        "{stderr}"
    );
}
