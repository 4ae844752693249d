//! Processes the lab started inside its hosts, and the table that lets the lab kill them all.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use super::error::{LabError, Result};
use super::exec::POLL;

/// How long [`LabProcess::kill`] and the lab's teardown wait for a SIGKILLed process to be
/// reaped.
const REAP_TIMEOUT: Duration = Duration::from_secs(10);

/// Every child process a lab has started, so that dropping the lab kills them all.
#[derive(Debug, Default)]
pub(crate) struct ProcessTable {
    children: Mutex<HashMap<u64, Child>>,
    next_id: Mutex<u64>,
}

impl ProcessTable {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Child>> {
        // A panic while holding the lock leaves the map consistent: keep using it.
        self.children.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tracks a child and returns its id in the table.
    pub(crate) fn insert(&self, child: Child) -> u64 {
        let id = {
            let mut next = self.next_id.lock().unwrap_or_else(|p| p.into_inner());
            *next += 1;
            *next
        };
        self.lock().insert(id, child);
        id
    }

    /// The next sequence number, for log file names.
    pub(crate) fn peek_next(&self) -> u64 {
        *self.next_id.lock().unwrap_or_else(|p| p.into_inner()) + 1
    }

    fn try_wait(&self, id: u64) -> Result<Option<ExitStatus>> {
        let mut children = self.lock();
        let child = children
            .get_mut(&id)
            .ok_or_else(|| LabError::InvalidArgument(format!("no lab process #{id}")))?;
        child
            .try_wait()
            .map_err(LabError::io(format!("waiting for lab process #{id}")))
    }

    fn kill(&self, id: u64) -> Result<()> {
        let mut children = self.lock();
        let child = children
            .get_mut(&id)
            .ok_or_else(|| LabError::InvalidArgument(format!("no lab process #{id}")))?;
        if child
            .try_wait()
            .map_err(LabError::io("checking a lab process"))?
            .is_none()
        {
            // SIGKILL, our own child, by its pid (std::process::Child::kill).
            child
                .kill()
                .map_err(LabError::io(format!("killing pid {}", child.id())))?;
        }
        Ok(())
    }

    /// SIGKILLs every tracked process that is still running, then reaps them all (bounded).
    pub(crate) fn kill_all(&self) {
        let mut children = self.lock();
        for child in children.values_mut() {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
            }
        }
        let deadline = Instant::now() + REAP_TIMEOUT;
        for child in children.values_mut() {
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                thread::sleep(POLL);
            }
        }
    }
}

/// A process running inside a lab host, started by [`super::LabHost::spawn`].
///
/// Its stdout and stderr go to [`LabProcess::log_path`]. Dropping the handle does not stop the
/// process; dropping the [`super::Lab`] SIGKILLs every process it started. To restart a
/// process, kill it and spawn it again.
#[derive(Debug)]
pub struct LabProcess {
    id: u64,
    pid: u32,
    host: String,
    log_path: PathBuf,
    table: Arc<ProcessTable>,
}

impl LabProcess {
    pub(crate) fn new(
        id: u64,
        pid: u32,
        host: String,
        log_path: PathBuf,
        table: Arc<ProcessTable>,
    ) -> Self {
        LabProcess {
            id,
            pid,
            host,
            log_path,
            table,
        }
    }

    /// The process id (in the machine's pid namespace; the lab only isolates the network).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The name of the host it runs in, e.g. `h1`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The file that receives its stdout and stderr (inside the lab's temporary directory,
    /// which is removed with the lab).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Everything the process has written so far (stdout and stderr interleaved).
    pub fn log(&self) -> Result<String> {
        std::fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(LabError::io(format!("reading {}", self.log_path.display())))
    }

    /// Whether it has exited, without blocking.
    pub fn try_wait(&self) -> Result<Option<ExitStatus>> {
        self.table.try_wait(self.id)
    }

    /// Waits up to `timeout` for it to exit; [`LabError::Timeout`] if it is still running.
    pub fn wait(&self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(LabError::Timeout {
                    what: format!("wait for pid {} on {}", self.pid, self.host),
                    timeout,
                });
            }
            thread::sleep(POLL);
        }
    }

    /// SIGKILLs it (a crash, not a shutdown) and reaps it; returns how it ended. Killing a
    /// process that already exited just returns its status.
    pub fn kill(&self) -> Result<ExitStatus> {
        self.table.kill(self.id)?;
        self.wait(REAP_TIMEOUT)
    }

    /// Waits up to `timeout` until its log contains `needle` (e.g. a readiness line).
    ///
    /// Fails early if the process exits without having written it.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log()?;
            if log.contains(needle) {
                return Ok(log);
            }
            if let Some(status) = self.try_wait()? {
                // One more read: the line may have landed just before the exit.
                let log = self.log()?;
                if log.contains(needle) {
                    return Ok(log);
                }
                return Err(LabError::ProcessExited {
                    pid: self.pid,
                    host: self.host.clone(),
                    status,
                    waiting_for: needle.to_string(),
                    log,
                });
            }
            if Instant::now() >= deadline {
                return Err(LabError::Timeout {
                    what: format!(
                        "log line {needle:?} from pid {} on {}; log so far:\n{log}",
                        self.pid, self.host
                    ),
                    timeout,
                });
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}
