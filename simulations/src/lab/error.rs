//! The lab's one error type.

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// Everything that can go wrong while building, driving or tearing down a lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The process lacks the privileges to create network namespaces.
    #[error(
        "the lab needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and iproute2's `ip` to create \
         network namespaces, veth pairs and a bridge: {detail}. Run the lab (and its tests) as \
         root, as CI does, e.g. `sudo -E cargo test -p posmesh-simulations`"
    )]
    NotRoot {
        /// What the privilege check found.
        detail: String,
    },
    /// A program the lab drives is not installed.
    #[error(
        "the lab needs root (CAP_NET_ADMIN) and `{tool}` from the Debian package `{package}`, \
         which is missing: {detail}. Install it with `apt-get install {package}`"
    )]
    MissingTool {
        /// The program that could not be started, e.g. `ip`.
        tool: String,
        /// The Debian package that provides it, e.g. `iproute2`.
        package: &'static str,
        /// Why starting it failed.
        detail: String,
    },
    /// A command ran but exited unsuccessfully.
    #[error("`{command}` failed ({status}): {stderr}")]
    CommandFailed {
        /// The command line, for the message.
        command: String,
        /// How it exited.
        status: ExitStatus,
        /// What it wrote to stderr (trimmed).
        stderr: String,
    },
    /// A command or a wait did not finish in time (the command, if any, was killed).
    #[error("`{what}` did not finish within {timeout:?}")]
    Timeout {
        /// The command line or the awaited condition.
        what: String,
        /// How long the lab waited.
        timeout: Duration,
    },
    /// A host index outside `1..=hosts`.
    #[error("no host {index} in this lab of {hosts} hosts (hosts are numbered from 1)")]
    NoSuchHost {
        /// The index asked for.
        index: usize,
        /// How many hosts the lab has.
        hosts: usize,
    },
    /// A lab process exited while the lab was waiting for it to log something.
    #[error(
        "pid {pid} on {host} exited ({status}) before logging {waiting_for:?}; its log:\n{log}"
    )]
    ProcessExited {
        /// Its pid.
        pid: u32,
        /// The host it ran in.
        host: String,
        /// How it exited.
        status: ExitStatus,
        /// The text the lab was waiting for.
        waiting_for: String,
        /// Its whole log.
        log: String,
    },
    /// An argument outside its documented range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// No packet-filter program could install the loss rules.
    #[error("no packet filter could add a loss rule in namespace {namespace}: {attempts}")]
    NoPacketFilter {
        /// The namespace the rule was for.
        namespace: String,
        /// Each program tried and why it failed.
        attempts: String,
    },
    /// The `posmesh-lab` binary (needed for the delay relay) was not found.
    #[error(
        "the posmesh-lab binary was not found (looked at {looked_at:?}); build it with \
         `cargo build -p posmesh-simulations --bin posmesh-lab` or set POSMESH_LAB_BIN"
    )]
    LabBinaryNotFound {
        /// The paths that were checked.
        looked_at: Vec<PathBuf>,
    },
    /// Tearing a lab down left namespaces behind (`posmesh-lab cleanup` removes them once
    /// the process has exited).
    #[error("lab teardown left namespaces behind: {}", namespaces.join(", "))]
    TeardownIncomplete {
        /// The namespaces still present.
        namespaces: Vec<String>,
    },
    /// An I/O error, with what the lab was doing.
    #[error("I/O error while {context}: {source}")]
    Io {
        /// What the lab was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl LabError {
    /// Wraps an I/O error with what the lab was doing when it happened.
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> LabError {
        let context = context.into();
        move |source| LabError::Io { context, source }
    }
}

/// The lab's result type.
pub type Result<T, E = LabError> = std::result::Result<T, E>;
