//! A `posmesh device` running as a child process, for benchmarks, integration tests and
//! (later) the lab: start it on a data directory, wait until it listens, SIGKILL or stop it.
//! The child is killed when the handle is dropped, so a failing test leaves no process,
//! and is registered in [`crate::child_processes`] until reaped, so a benchmark ended by
//! SIGINT or SIGTERM kills it too.

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long a node may take to start listening.
pub const NODE_START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long [`NodeProcess::stop`] waits for a node to exit after SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a child process runs: the launcher it is started through (empty: directly; the
/// demo's network namespaces: `ip netns exec <namespace>`) and the host its APIs listen on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Program and arguments put before the binary, e.g. `["ip", "netns", "exec", "h1"]`.
    pub launcher: Vec<String>,
    /// IPv4 address the process's HTTP APIs listen on (`127.0.0.1` on loopback).
    pub api_host: String,
}

impl Placement {
    /// Started directly, APIs on 127.0.0.1.
    pub fn loopback() -> Self {
        Self {
            launcher: Vec::new(),
            api_host: "127.0.0.1".to_owned(),
        }
    }

    /// A command running `binary` through the launcher.
    pub fn command(&self, binary: &Path) -> Command {
        match self.launcher.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(binary);
                command
            }
            None => Command::new(binary),
        }
    }
}

/// A running device node.
pub struct NodeProcess {
    child: Child,
    /// Sales API address, `host:port`.
    pub api: String,
    /// Management API address, `host:port`.
    pub mgmt: String,
}

/// How to start a node.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    /// The `posmesh` binary.
    pub binary: PathBuf,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Catalog file.
    pub catalog: PathBuf,
    /// Store id.
    pub store_id: String,
    /// Device id.
    pub device_id: String,
}

impl NodeProcess {
    /// Starts a node on loopback with OS-chosen ports and waits until it listens.
    pub fn start(spec: &NodeSpec) -> anyhow::Result<Self> {
        Self::start_with(spec, &[])
    }

    /// As [`NodeProcess::start`], with more `posmesh device` flags (e.g. the mesh's).
    pub fn start_with(spec: &NodeSpec, extra_args: &[String]) -> anyhow::Result<Self> {
        Self::start_placed(spec, &Placement::loopback(), extra_args)
    }

    /// As [`NodeProcess::start_with`], started through `placement`'s launcher with its
    /// sales and management APIs on `placement`'s host (OS-chosen ports).
    pub fn start_placed(
        spec: &NodeSpec,
        placement: &Placement,
        extra_args: &[String],
    ) -> anyhow::Result<Self> {
        let mut command = placement.command(&spec.binary);
        let any_port = format!("{}:0", placement.api_host);
        command
            .arg("device")
            .arg("--data-dir")
            .arg(&spec.data_dir)
            .arg("--catalog")
            .arg(&spec.catalog)
            .args(["--store-id", &spec.store_id, "--device-id", &spec.device_id])
            .args(["--api-listen", &any_port, "--mgmt-listen", &any_port])
            .args(extra_args);
        let (child, (api, mgmt)) = spawn_until_ready(
            &mut command,
            &spec.data_dir,
            "node",
            NODE_START_TIMEOUT,
            |ready| {
                Some((
                    ready["api"].as_str()?.to_owned(),
                    ready["mgmt"].as_str()?.to_owned(),
                ))
            },
        )?;
        Ok(Self { child, api, mgmt })
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL now, keeping the handle (reap it later with [`NodeProcess::kill`]): for a
    /// kill that must land while requests are in flight, with no process spawned.
    pub fn kill_now(&mut self) -> std::io::Result<()> {
        self.child.kill()
    }

    /// SIGKILL: the process dies at once, like a power cut for everything not yet synced.
    pub fn kill(mut self) -> anyhow::Result<()> {
        crate::child_processes::kill_and_reap(&mut self.child)?;
        Ok(())
    }

    /// SIGTERM and wait for a clean exit: an error when the node exits with a failure or
    /// has not exited [`STOP_TIMEOUT`] after the signal (it is then SIGKILLed).
    pub fn stop(mut self) -> anyhow::Result<()> {
        let pid = i32::try_from(self.child.id())?;
        if send_sigterm(pid) {
            // Ending on its own now: forgotten before it is reaped below.
            crate::child_processes::reaping(self.child.id());
            let deadline = std::time::Instant::now() + STOP_TIMEOUT;
            let status = loop {
                if let Some(status) = self.child.try_wait()? {
                    break status;
                }
                if std::time::Instant::now() >= deadline {
                    crate::child_processes::kill_and_reap(&mut self.child)?;
                    bail!("node did not exit within {STOP_TIMEOUT:?} of SIGTERM (killed)");
                }
                std::thread::sleep(Duration::from_millis(10));
            };
            if !status.success() {
                bail!("node exited with {status} after SIGTERM");
            }
        } else {
            crate::child_processes::kill_and_reap(&mut self.child)?;
        }
        Ok(())
    }

    /// Resident set size of the child, bytes (Linux `/proc/<pid>/status` VmRSS).
    pub fn rss_bytes(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let line = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .context("no VmRSS line")?;
        let kib: u64 = line
            .split_whitespace()
            .nth(1)
            .context("malformed VmRSS line")?
            .parse()?;
        Ok(kib * 1024)
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = crate::child_processes::kill_and_reap(&mut self.child);
    }
}

/// Spawns `command` (a `posmesh` subcommand taking `--ready-file`) with its stderr appended
/// to `<state_dir>.log`, and waits until it writes `<state_dir>.ready.json`; `parse` takes
/// the addresses out of that JSON. `what` names the process in errors. The child is
/// registered in [`crate::child_processes`]: its handle must reap it through
/// [`crate::child_processes::kill_and_reap`] (or call
/// [`crate::child_processes::reaping`] before waiting).
///
/// # Errors
/// The log cannot be opened, the process cannot start, exits before it is ready (the error
/// carries its log), or is not ready within `timeout` (it is then killed and reaped).
pub(crate) fn spawn_until_ready<T>(
    command: &mut Command,
    state_dir: &Path,
    what: &str,
    timeout: Duration,
    parse: impl Fn(&serde_json::Value) -> Option<T>,
) -> anyhow::Result<(Child, T)> {
    let program = command.get_program().to_string_lossy().into_owned();
    let ready_file = state_dir.with_extension("ready.json");
    let _ = std::fs::remove_file(&ready_file);
    let log_path = state_dir.with_extension("log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let mut child = command
        .arg("--ready-file")
        .arg(&ready_file)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {what} ({program})"))?;
    crate::child_processes::started(child.id());
    let started = crate::clock::monotonic_now();
    loop {
        if let Some(status) = crate::child_processes::try_reap(&mut child)? {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            bail!("{what} exited with {status} before listening:\n{log}");
        }
        let ready = std::fs::read_to_string(&ready_file)
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok());
        if let Some(found) = ready.as_ref().and_then(&parse) {
            return Ok((child, found));
        }
        if started.elapsed() > timeout {
            let _ = crate::child_processes::kill_and_reap(&mut child);
            bail!("{what} did not listen within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(unix)]
fn send_sigterm(pid: i32) -> bool {
    // Signal our own child by its id (never another process).
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[cfg(not(unix))]
fn send_sigterm(_pid: i32) -> bool {
    false
}
