//! The demo's acquirer: the `posmesh-acquirer` simulator (ISO 8583 over TCP on loopback)
//! as a child process, started beside the `posmesh` binary, on a fixed address so the
//! devices find it again after the store's internet comes back.

use crate::node_process::Placement;
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

/// The simulator stops by itself after this long (the demo's bound), seconds.
const ACQUIRER_RUN_SECS_MAX: u64 = 1800;
/// How long the simulator may take to write its first stats file.
const START_WAIT: Duration = Duration::from_secs(10);

/// Raw and unique arrivals of one message class at the acquirer (see
/// `posmesh_payments::acquirer::Arrivals`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Arrivals {
    /// Every message of the class, repeats and duplicates included.
    pub raw: u64,
    /// Distinct transactions of the class.
    pub unique: u64,
}

/// A running `posmesh-acquirer`; SIGKILLed when dropped.
pub struct AcquirerProcess {
    child: Child,
    stats: PathBuf,
}

impl AcquirerProcess {
    /// Starts the simulator found beside `posmesh_binary` on `listen` (loopback), writing
    /// its counters to `stats`; waits until the stats file exists (it is listening).
    ///
    /// # Errors
    /// The binary is missing (build the workspace), or it did not start within 10 s.
    pub fn start(posmesh_binary: &Path, listen: &str, stats: &Path) -> anyhow::Result<Self> {
        Self::start_placed(posmesh_binary, listen, stats, &Placement::loopback())
    }

    /// As [`AcquirerProcess::start`], started through `placement`'s launcher (`listen` is
    /// then an address of its network namespace).
    ///
    /// # Errors
    /// As [`AcquirerProcess::start`].
    pub fn start_placed(
        posmesh_binary: &Path,
        listen: &str,
        stats: &Path,
        placement: &Placement,
    ) -> anyhow::Result<Self> {
        let binary = posmesh_binary
            .parent()
            .context("the posmesh binary's directory")?
            .join("posmesh-acquirer");
        let _ = std::fs::remove_file(stats);
        let mut command = placement.command(&binary);
        if !placement.launcher.is_empty() {
            // Its own network namespace, made by the demo: the lab address is not loopback.
            command.arg("--allow-non-loopback");
        }
        let child = command
            .args(["--listen", listen, "--max-seconds"])
            .arg(ACQUIRER_RUN_SECS_MAX.to_string())
            .arg("--stats-file")
            .arg(stats)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| {
                format!(
                    "cannot start the acquirer simulator {} (cargo build --workspace builds it)",
                    binary.display()
                )
            })?;
        let acquirer = Self {
            child,
            stats: stats.to_path_buf(),
        };
        let started = crate::clock::monotonic_now();
        while acquirer.stats_json().is_none() {
            anyhow::ensure!(
                started.elapsed() < START_WAIT,
                "the acquirer simulator did not start on {listen} within {START_WAIT:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(acquirer)
    }

    fn stats_json(&self) -> Option<serde_json::Value> {
        let text = std::fs::read_to_string(&self.stats).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Arrivals of `class` (`authorization`, `financial`, `advice`, `reversal`) so far.
    pub fn arrivals(&self, class: &str) -> Arrivals {
        let stats = self.stats_json().unwrap_or_default();
        let class = &stats["by_class"][class];
        Arrivals {
            raw: class["raw"].as_u64().unwrap_or(0),
            unique: class["unique"].as_u64().unwrap_or(0),
        }
    }

    /// SIGKILLs the simulator (the store loses its connection to it) and reaps it.
    ///
    /// # Errors
    /// The signal or the wait failed.
    pub fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for AcquirerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback address for the acquirer (nothing listens there until it starts).
///
/// # Errors
/// No port could be bound.
pub fn free_loopback_addr() -> anyhow::Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.to_string())
}
