//! A `posmesh cloud serve` running as a child process (the demo, integration tests): start
//! it on a data directory, wait until it listens, SIGKILL or stop it. Killed when dropped.

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long the cloud may take to start listening.
pub const CLOUD_START_TIMEOUT: Duration = Duration::from_secs(30);

/// How to start a cloud.
#[derive(Clone, Debug)]
pub struct CloudSpec {
    /// The `posmesh` binary.
    pub binary: PathBuf,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Identity directory (`posmesh ca issue-cloud`).
    pub identity_dir: PathBuf,
    /// QUIC listen address (`127.0.0.1:0` picks a port; pass the same one to restart
    /// where the stores look for it).
    pub listen: String,
}

/// A running cloud.
pub struct CloudProcess {
    child: Child,
    /// QUIC address the stores dial, `host:port`.
    pub quic: String,
    /// HTTP admin API, `host:port`.
    pub http: String,
}

impl Drop for CloudProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl CloudProcess {
    /// Starts the cloud on loopback and waits until it listens.
    ///
    /// # Errors
    /// The process cannot start, exits early, or does not listen in time.
    pub fn start(spec: &CloudSpec) -> anyhow::Result<Self> {
        let ready_file = spec.data_dir.with_extension("ready.json");
        let _ = std::fs::remove_file(&ready_file);
        let log_path = spec.data_dir.with_extension("log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        let mut child = Command::new(&spec.binary)
            .args(["cloud", "serve", "--data-dir"])
            .arg(&spec.data_dir)
            .arg("--identity-dir")
            .arg(&spec.identity_dir)
            .args(["--listen", &spec.listen, "--http-listen", "127.0.0.1:0"])
            .arg("--ready-file")
            .arg(&ready_file)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", spec.binary.display()))?;
        let started = crate::clock::monotonic_now();
        loop {
            if let Some(status) = child.try_wait()? {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                bail!("cloud exited with {status} before listening:\n{log}");
            }
            if let Some((quic, http)) = read_ready(&ready_file) {
                return Ok(Self { child, quic, http });
            }
            if started.elapsed() > CLOUD_START_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                bail!("cloud did not listen within {CLOUD_START_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL and reap.
    ///
    /// # Errors
    /// The signal or the wait failed.
    pub fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

fn read_ready(path: &Path) -> Option<(String, String)> {
    let text = std::fs::read_to_string(path).ok()?;
    let ready: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some((
        ready["quic"].as_str()?.to_owned(),
        ready["http"].as_str()?.to_owned(),
    ))
}
