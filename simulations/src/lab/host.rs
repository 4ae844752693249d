//! One host of the lab: a network namespace with one interface on the lab's bridge.

use std::ffi::OsStr;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use super::error::{LabError, Result};
use super::exec::{self, CommandOutput};
use super::process::{LabProcess, ProcessTable};

/// How long [`LabHost::spawn_relay`] waits for the relay to report that it listens.
const RELAY_READY_TIMEOUT: Duration = Duration::from_secs(10);

/// The line `posmesh-lab relay` prints once its socket is bound.
pub const RELAY_READY_LINE: &str = "posmesh-lab relay: listening";

/// A host of a [`super::Lab`]: its own network namespace, joined to the lab's switch by one
/// veth interface with one IPv4 address.
///
/// Obtained from [`super::Lab::host`]; lives as long as the lab.
#[derive(Debug)]
pub struct LabHost {
    /// Its number in the lab, from 1; also the last octet of its address.
    pub index: usize,
    /// Its short name, `h<index>`.
    pub name: String,
    /// The network namespace it is (`pmlab-<pid>-<lab>-h<index>`); enter it with
    /// `ip netns exec <namespace> <program>`.
    pub namespace: String,
    /// Its address on the lab network, `10.213.<lab>.<index>`.
    pub ip: Ipv4Addr,
    /// Its interface on the lab network, inside its namespace (`lab0`).
    pub interface: String,
    /// The other end of its veth pair, a port of the bridge in the switch namespace.
    pub(crate) switch_port: String,
    pub(crate) log_dir: PathBuf,
    pub(crate) processes: Arc<ProcessTable>,
}

impl LabHost {
    /// `ip:port` on this host.
    pub fn addr(&self, port: u16) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self.ip, port))
    }

    /// A command that runs `program` inside this host: `ip netns exec <namespace> <program>`.
    /// Add arguments, environment and a working directory as usual, then pass it to
    /// [`LabHost::spawn`] (long-running) or [`LabHost::run`] (short).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new("ip");
        command
            .arg("netns")
            .arg("exec")
            .arg(&self.namespace)
            .arg(program);
        command
    }

    /// Checks that `command` came from [`LabHost::command`] of this host, so that nothing the
    /// lab starts runs in the machine's own network namespace.
    fn check_prefix(&self, command: &Command) -> Result<()> {
        let args: Vec<&OsStr> = command.get_args().take(4).collect();
        let ok = command.get_program() == "ip"
            && args.len() == 4
            && args[0] == "netns"
            && args[1] == "exec"
            && args[2] == OsStr::new(&self.namespace);
        if ok {
            Ok(())
        } else {
            Err(LabError::InvalidArgument(format!(
                "the command {:?} does not run inside {} (build it with LabHost::command)",
                command, self.namespace
            )))
        }
    }

    /// Starts `command` (from [`LabHost::command`]) in the background, its stdout and stderr
    /// appended to a log file in the lab's temporary directory, stdin closed. The lab tracks
    /// it and SIGKILLs it when dropped.
    pub fn spawn(&self, mut command: Command) -> Result<LabProcess> {
        self.check_prefix(&command)?;
        let program = command
            .get_args()
            .nth(3)
            .map(|p| {
                Path::new(p)
                    .file_name()
                    .unwrap_or(p)
                    .to_string_lossy()
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '-' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect::<String>()
            })
            .unwrap_or_default();
        let seq = self.processes.peek_next();
        let log_path = self
            .log_dir
            .join(format!("{}-{seq:03}-{program}.log", self.name));
        let log = File::create(&log_path)
            .map_err(LabError::io(format!("creating {}", log_path.display())))?;
        let log_err = log
            .try_clone()
            .map_err(LabError::io(format!("duplicating {}", log_path.display())))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => LabError::MissingTool {
                    tool: "ip".to_string(),
                    package: "iproute2",
                    detail: e.to_string(),
                },
                _ => LabError::Io {
                    context: format!("starting {command:?}"),
                    source: e,
                },
            })?;
        let pid = child.id();
        let id = self.processes.insert(child);
        Ok(LabProcess::new(
            id,
            pid,
            self.name.clone(),
            log_path,
            Arc::clone(&self.processes),
        ))
    }

    /// Runs a short `command` (from [`LabHost::command`]) to completion and returns what it
    /// printed; it is SIGKILLed after `timeout` ([`LabError::Timeout`]). A non-zero exit is
    /// returned, not an error.
    pub fn run(&self, command: Command, timeout: Duration) -> Result<CommandOutput> {
        self.check_prefix(&command)?;
        exec::run_command(command, timeout)
    }

    /// Starts a delay relay inside this host: `posmesh-lab relay` (at `lab_binary`, see
    /// [`super::lab_binary`]) listening on `listen` (an address of this host), forwarding
    /// what arrives to `forward` and the answers back, each datagram held for `delay`.
    /// Returns once the relay's socket is bound.
    ///
    /// Point peers at `listen` instead of at `forward` to put a fixed delay on the path.
    pub fn spawn_relay(
        &self,
        lab_binary: &Path,
        listen: SocketAddr,
        forward: SocketAddr,
        delay: Duration,
    ) -> Result<LabProcess> {
        let mut command = self.command(lab_binary);
        command
            .arg("relay")
            .arg("--listen")
            .arg(listen.to_string())
            .arg("--forward")
            .arg(forward.to_string())
            .arg("--delay-ms")
            .arg(delay.as_millis().to_string());
        let process = self.spawn(command)?;
        process.wait_for_log(RELAY_READY_LINE, RELAY_READY_TIMEOUT)?;
        Ok(process)
    }
}
