//! A `posmesh cloud serve` running as a child process (the demo, integration tests): start
//! it on a data directory, wait until it listens, SIGKILL or stop it. Killed when dropped.

use crate::node_process::{spawn_until_ready, Placement};
use std::path::PathBuf;
use std::process::Child;
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
    /// The admin API's bearer token (from the cloud's data directory).
    pub admin_token: super::admin_token::AdminToken,
}

impl Drop for CloudProcess {
    fn drop(&mut self) {
        let _ = crate::child_processes::kill_and_reap(&mut self.child);
    }
}

impl CloudProcess {
    /// Starts the cloud on loopback and waits until it listens.
    ///
    /// # Errors
    /// The process cannot start, exits early, or does not listen in time.
    pub fn start(spec: &CloudSpec) -> anyhow::Result<Self> {
        Self::start_placed(spec, &Placement::loopback())
    }

    /// As [`CloudProcess::start`], started through `placement`'s launcher with its admin
    /// API on `placement`'s host (an OS-chosen port).
    ///
    /// # Errors
    /// As [`CloudProcess::start`].
    pub fn start_placed(spec: &CloudSpec, placement: &Placement) -> anyhow::Result<Self> {
        let mut command = placement.command(&spec.binary);
        command
            .args(["cloud", "serve", "--data-dir"])
            .arg(&spec.data_dir)
            .arg("--identity-dir")
            .arg(&spec.identity_dir)
            .args(["--listen", &spec.listen, "--http-listen"])
            .arg(format!("{}:0", placement.api_host));
        let (child, (quic, http)) = spawn_until_ready(
            &mut command,
            &spec.data_dir,
            "cloud",
            CLOUD_START_TIMEOUT,
            |ready| {
                Some((
                    ready["quic"].as_str()?.to_owned(),
                    ready["http"].as_str()?.to_owned(),
                ))
            },
        )?;
        let admin_token =
            super::admin_token::read(&super::admin_token::default_path(&spec.data_dir))?;
        Ok(Self {
            child,
            quic,
            http,
            admin_token,
        })
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
        crate::child_processes::kill_and_reap(&mut self.child)?;
        Ok(())
    }
}
