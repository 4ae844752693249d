//! Lab namespace names, and removing namespaces left behind by lab processes that died
//! without cleaning up (SIGKILL, a timed-out test binary, a power cut).

use std::path::Path;

use super::error::Result;
use super::exec;

/// Every namespace the lab creates is named `pmlab-<pid>-<lab>-<role>`, where `<pid>` is the
/// process that created it, `<lab>` that process's lab counter and `<role>` `sw` (the switch)
/// or `h<N>` (host N).
pub const NAMESPACE_PREFIX: &str = "pmlab-";

/// The pid of the process that created a lab namespace, parsed from its name; `None` for
/// names that are not lab namespaces.
pub fn owner_pid(namespace: &str) -> Option<u32> {
    let rest = namespace.strip_prefix(NAMESPACE_PREFIX)?;
    let (pid, tail) = rest.split_once('-')?;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) || tail.is_empty() {
        return None;
    }
    pid.parse().ok()
}

/// Whether a process with this pid exists (in this pid namespace).
fn pid_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// Removes every lab namespace whose creating process is no longer alive, after SIGKILLing
/// any process still running inside it, and returns the names removed.
///
/// Namespaces of living lab processes (including this one) are left alone, as is every
/// namespace whose name does not start with [`NAMESPACE_PREFIX`]. [`super::Lab::new`] calls
/// this first, so stale labs never accumulate.
pub fn cleanup_stale() -> Result<Vec<String>> {
    exec::check_privileges()?;
    let me = std::process::id();
    let mut removed = Vec::new();
    for namespace in exec::list_namespaces()? {
        let Some(pid) = owner_pid(&namespace) else {
            continue;
        };
        if pid == me || pid_alive(pid) {
            continue;
        }
        if exec::delete_namespace(&namespace) {
            removed.push(namespace);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_parses_lab_names_only() {
        assert_eq!(owner_pid("pmlab-1234-7-h3"), Some(1234));
        assert_eq!(owner_pid("pmlab-1234-7-sw"), Some(1234));
        assert_eq!(owner_pid("pmlab-1234"), None);
        assert_eq!(owner_pid("pmlab--7-h1"), None);
        assert_eq!(owner_pid("pmlab-12a4-7-h1"), None);
        assert_eq!(owner_pid("netns-1234-7-h1"), None);
        assert_eq!(owner_pid("pmlab-99999999999-1-h1"), None);
    }

    #[test]
    fn this_process_is_alive_and_an_impossible_pid_is_not() {
        assert!(pid_alive(std::process::id()));
        // Above PID_MAX_LIMIT (4_194_304) on every Linux.
        assert!(!pid_alive(4_194_305));
    }
}
