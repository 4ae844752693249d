//! The child processes this process started and has not reaped yet — the nodes of
//! [`crate::node_process`] (benchmarks' stores, the demo's cloud) and the etcd members of
//! [`crate::bench::etcd`] — so that a benchmark stopped by SIGINT (Ctrl-C) or SIGTERM
//! kills them instead of leaving them running: their handles kill them when dropped, but
//! a signal's default action ends the process without running any destructor.
//!
//! A pid is registered right after the spawn ([`started`]) and forgotten before the child
//! is reaped ([`kill_and_reap`], [`reaping`]): a registered pid is always an unreaped
//! child of this process (at worst a zombie), so the kernel cannot have given it to
//! another process, and [`kill_all`] never signals a process this one did not start.

use std::collections::BTreeSet;
use std::future::Future;
use std::process::{Child, ExitStatus};
use std::sync::{Mutex, MutexGuard};

static LIVE: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

fn live() -> MutexGuard<'static, BTreeSet<u32>> {
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Registers `pid`, a child just spawned by this process.
pub fn started(pid: u32) {
    live().insert(pid);
}

/// Forgets `pid`: call once the child has been signalled to end (or before waiting for
/// it), always before it is reaped.
pub fn reaping(pid: u32) {
    live().remove(&pid);
}

/// Whether `pid` is registered (a child started and not yet reaped).
pub fn is_registered(pid: u32) -> bool {
    live().contains(&pid)
}

/// [`Child::try_wait`], forgetting `child` if that reaped it (under the registry's lock,
/// so [`kill_all`] never sees a reaped pid).
///
/// # Errors
/// Those of [`Child::try_wait`] (the child is then forgotten).
pub fn try_reap(child: &mut Child) -> std::io::Result<Option<ExitStatus>> {
    let mut live = live();
    let exited = child.try_wait();
    if !matches!(exited, Ok(None)) {
        live.remove(&child.id());
    }
    exited
}

/// SIGKILLs `child`, forgets it, then reaps it.
///
/// # Errors
/// Those of [`Child::kill`] and [`Child::wait`].
pub fn kill_and_reap(child: &mut Child) -> std::io::Result<ExitStatus> {
    let killed = child.kill();
    reaping(child.id());
    let status = child.wait()?;
    killed.map(|()| status)
}

/// SIGKILLs every registered child and forgets them (they are reaped by their handles,
/// or by init once this process exits); returns their pids. The registry stays locked
/// meanwhile, so no handle reaps one of them in between.
pub fn kill_all() -> Vec<u32> {
    let mut live = live();
    let pids: Vec<u32> = live.iter().copied().collect();
    if !pids.is_empty() {
        // Our own unreaped children, by pid (see the module's doc).
        let sent = std::process::Command::new("kill")
            .arg("-KILL")
            .args(pids.iter().map(u32::to_string))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .status();
        if let Err(error) = sent {
            tracing::error!(%error, ?pids, "cannot kill the child processes");
        }
    }
    live.clear();
    pids
}

/// Listens for SIGINT and SIGTERM from now on (the signals' default action — ending this
/// process at once — is replaced as this returns); the future resolves on the first one,
/// after [`kill_all`], to the exit status a shell gives a process ended by it (130 for
/// SIGINT, 143 for SIGTERM). A benchmark spawns it and exits with that status.
///
/// # Errors
/// The signal handlers cannot be installed.
#[cfg(unix)]
pub fn on_interrupt() -> std::io::Result<impl Future<Output = i32>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        let code = tokio::select! {
            _ = interrupt.recv() => 130,
            _ = terminate.recv() => 143,
        };
        let pids = kill_all();
        tracing::warn!(
            ?pids,
            "interrupted: killed the child processes this run started"
        );
        code
    })
}

/// Without Unix signals: only Ctrl-C, status 130.
///
/// # Errors
/// None here.
#[cfg(not(unix))]
pub fn on_interrupt() -> std::io::Result<impl Future<Output = i32>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        kill_all();
        130
    })
}
