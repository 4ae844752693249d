//! Running the system tools the lab drives (`ip`, `tc`, `iptables`, `kill`), each bounded in
//! time, and the privilege check.

use std::ffi::OsStr;
use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::error::{LabError, Result};

/// How long any single system command may take before the lab kills it.
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// How often bounded waits poll.
pub(crate) const POLL: Duration = Duration::from_millis(10);

/// How long to wait for a finished command's pipes to reach end-of-file.
const PIPE_GRACE: Duration = Duration::from_secs(1);

/// What a finished command printed (see [`super::LabHost::run`]).
#[derive(Debug, Clone)]
pub struct CommandOutput {
    /// How it exited.
    pub status: ExitStatus,
    /// Its stdout, lossily decoded.
    pub stdout: String,
    /// Its stderr, lossily decoded.
    pub stderr: String,
}

/// The Debian package that provides `tool`, for [`LabError::MissingTool`].
pub(crate) fn package_of(tool: &str) -> &'static str {
    match tool {
        "ip" | "tc" => "iproute2",
        "nft" => "nftables",
        "kill" | "sysctl" => "procps",
        t if t.starts_with("iptables") => "iptables",
        _ => "its package",
    }
}

/// Renders a command line for messages.
pub(crate) fn render<S: AsRef<OsStr>>(program: &str, args: &[S]) -> String {
    let mut line = program.to_string();
    for arg in args {
        line.push(' ');
        line.push_str(&arg.as_ref().to_string_lossy());
    }
    line
}

/// Runs `program args` to completion, killing it after `timeout`.
///
/// A program that cannot be found is a [`LabError::MissingTool`]; a non-zero exit is *not* an
/// error here (see [`run_ok`]).
pub(crate) fn run<S: AsRef<OsStr>>(
    program: &str,
    args: &[S],
    timeout: Duration,
) -> Result<CommandOutput> {
    let mut command = Command::new(program);
    command.args(args);
    run_command(command, timeout)
}

/// Runs a prepared command to completion (stdin closed, stdout and stderr captured), killing
/// it after `timeout`. A program that cannot be found is a [`LabError::MissingTool`]; a
/// non-zero exit is not an error here.
pub(crate) fn run_command(mut command: Command, timeout: Duration) -> Result<CommandOutput> {
    let program = command.get_program().to_string_lossy().into_owned();
    let args: Vec<_> = command.get_args().map(|a| a.to_os_string()).collect();
    let line = render(&program, &args);
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => LabError::MissingTool {
                package: package_of(&program),
                tool: program.clone(),
                detail: e.to_string(),
            },
            _ => LabError::Io {
                context: format!("starting `{line}`"),
                source: e,
            },
        })?;
    // Readers on their own threads, so a chatty command cannot block on a full pipe; their
    // results come back over channels so that a grandchild holding a pipe open cannot hang us.
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        let (tx, rx) = mpsc::channel();
        if let Some(mut pipe) = pipe {
            thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = pipe.read_to_end(&mut buf);
                let _ = tx.send(buf);
            });
        }
        rx
    };
    let stdout = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child
            .try_wait()
            .map_err(LabError::io(format!("waiting for `{line}`")))?
        {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                // Our own child: SIGKILL it and reap it.
                let _ = child.kill();
                let _ = child.wait();
                return Err(LabError::Timeout {
                    what: line,
                    timeout,
                });
            }
            None => thread::sleep(POLL),
        }
    };
    let collect = |rx: mpsc::Receiver<Vec<u8>>| {
        rx.recv_timeout(PIPE_GRACE)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    Ok(CommandOutput {
        status,
        stdout: collect(stdout),
        stderr: collect(stderr),
    })
}

/// Runs `program args` and fails with [`LabError::CommandFailed`] unless it exits with 0.
pub(crate) fn run_ok<S: AsRef<OsStr>>(program: &str, args: &[S]) -> Result<CommandOutput> {
    let out = run(program, args, COMMAND_TIMEOUT)?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(LabError::CommandFailed {
            command: render(program, args),
            status: out.status,
            stderr: out.stderr.trim().to_string(),
        })
    }
}

/// `ip <args>`, which must succeed.
pub(crate) fn ip(args: &[&str]) -> Result<CommandOutput> {
    run_ok("ip", args)
}

/// Linux capability numbers the lab needs (see capabilities(7)).
const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;

/// Checks that this process may create network namespaces (root, or at least the effective
/// capabilities CAP_NET_ADMIN and CAP_SYS_ADMIN) and that iproute2's `ip` is installed.
pub fn check_privileges() -> Result<()> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|e| LabError::NotRoot {
        detail: format!("cannot read /proc/self/status to check capabilities: {e}"),
    })?;
    let cap_eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .ok_or_else(|| LabError::NotRoot {
            detail: "no CapEff line in /proc/self/status".to_string(),
        })?;
    let missing: Vec<&str> = [
        (CAP_NET_ADMIN, "CAP_NET_ADMIN"),
        (CAP_SYS_ADMIN, "CAP_SYS_ADMIN"),
    ]
    .into_iter()
    .filter(|(bit, _)| cap_eff & (1u64 << bit) == 0)
    .map(|(_, name)| name)
    .collect();
    if !missing.is_empty() {
        return Err(LabError::NotRoot {
            detail: format!(
                "this process lacks {} (effective capabilities {cap_eff:#x})",
                missing.join(" and ")
            ),
        });
    }
    let version = run("ip", &["-V"], COMMAND_TIMEOUT)?;
    if !version.status.success() {
        return Err(LabError::MissingTool {
            tool: "ip".to_string(),
            package: "iproute2",
            detail: format!("`ip -V` failed: {}", version.stderr.trim()),
        });
    }
    Ok(())
}

/// Names of all network namespaces (`ip netns list`, first column).
pub(crate) fn list_namespaces() -> Result<Vec<String>> {
    let out = ip(&["netns", "list"])?;
    Ok(out
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect())
}

/// SIGKILLs every process still inside `namespace` (`ip netns pids`), best effort.
///
/// Only lab namespaces are ever passed here, and only processes the lab started (and their
/// descendants) live in them.
pub(crate) fn kill_namespace_processes(namespace: &str) {
    let Ok(out) = run("ip", &["netns", "pids", namespace], COMMAND_TIMEOUT) else {
        return;
    };
    let pids: Vec<&str> = out
        .stdout
        .split_whitespace()
        .filter(|p| p.chars().all(|c| c.is_ascii_digit()))
        .collect();
    if pids.is_empty() {
        return;
    }
    let mut args = vec!["-KILL"];
    args.extend(pids);
    let _ = run("kill", &args, COMMAND_TIMEOUT);
}

/// Deletes a namespace after killing what is left in it, best effort; true if it is gone.
pub(crate) fn delete_namespace(namespace: &str) -> bool {
    kill_namespace_processes(namespace);
    let _ = run("ip", &["netns", "delete", namespace], COMMAND_TIMEOUT);
    list_namespaces()
        .map(|all| !all.iter().any(|n| n == namespace))
        .unwrap_or(false)
}
