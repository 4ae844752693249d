//! The lab leaves nothing behind: not on drop, not when a test panics, not after its process
//! died (cleanup_stale).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use posmesh_simulations::lab::{cleanup_stale, LabError};

use crate::support::{bounded, exclusive, namespaces_now, new_lab, shared};

/// Starts a long `sleep` in `host` and returns its pid.
fn sleeper(host: &posmesh_simulations::lab::LabHost) -> u32 {
    let mut cmd = host.command("sleep");
    cmd.arg("60");
    host.spawn(cmd).expect("spawn sleep").pid()
}

fn assert_all_gone(namespaces: &[String], pids: &[u32]) {
    let now = namespaces_now();
    for namespace in namespaces {
        assert!(
            !now.contains(namespace),
            "{namespace} is still there: {now:?}"
        );
    }
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} still exists"
        );
    }
}

#[test]
fn dropping_the_lab_removes_every_namespace_and_process() {
    bounded(
        "dropping_the_lab_removes_every_namespace_and_process",
        || {
            let _guard = shared();
            let lab = new_lab(3);
            let namespaces = lab.namespaces();
            let log_dir = lab.log_dir().to_path_buf();
            assert_eq!(namespaces.len(), 4);
            let pids: Vec<u32> = lab.hosts().iter().map(sleeper).collect();
            let now = namespaces_now();
            assert!(namespaces.iter().all(|n| now.contains(n)));
            assert!(log_dir.is_dir());
            drop(lab);
            assert_all_gone(&namespaces, &pids);
            assert!(!log_dir.exists(), "the temporary directory is removed");
        },
    );
}

#[test]
fn a_panicking_test_still_removes_its_lab() {
    bounded("a_panicking_test_still_removes_its_lab", || {
        let _guard = shared();
        let seen: Arc<Mutex<(Vec<String>, Vec<u32>)>> = Arc::default();
        let inside = Arc::clone(&seen);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let lab = new_lab(2);
            let pids = lab.hosts().iter().map(sleeper).collect();
            *inside.lock().expect("lock") = (lab.namespaces(), pids);
            panic!("deliberate panic with a live lab");
        }));
        assert!(outcome.is_err(), "the closure panicked");
        let (namespaces, pids) = seen.lock().expect("lock").clone();
        assert_eq!(namespaces.len(), 3);
        assert_all_gone(&namespaces, &pids);
    });
}

#[test]
fn cleanup_stale_removes_namespaces_of_dead_processes() {
    bounded("cleanup_stale_removes_namespaces_of_dead_processes", || {
        // Alone: building a lab also removes stale namespaces.
        let _guard = exclusive();
        // A live lab of this process, which must survive (built first: Lab::new itself
        // removes stale namespaces).
        let lab = new_lab(1);
        // Above PID_MAX_LIMIT, so never a live process.
        let fake = "pmlab-4194305-1-h1";
        let status = Command::new("ip")
            .args(["netns", "add", fake])
            .status()
            .expect("ip netns add");
        assert!(status.success());
        // A process left running inside it, as after a SIGKILLed test binary.
        let mut orphan = Command::new("ip")
            .args(["netns", "exec", fake, "sleep", "60"])
            .stdin(Stdio::null())
            .spawn()
            .expect("sleep inside the stale namespace");
        assert!(namespaces_now().contains(&fake.to_string()));

        let removed = cleanup_stale().expect("cleanup_stale");
        assert!(removed.contains(&fake.to_string()), "removed {removed:?}");
        assert!(!namespaces_now().contains(&fake.to_string()));
        let deadline = Instant::now() + Duration::from_secs(5);
        let status = loop {
            if let Some(status) = orphan.try_wait().expect("try_wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "the orphan was not killed");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(!status.success(), "the orphan was killed");
        let now = namespaces_now();
        assert!(
            lab.namespaces().iter().all(|n| now.contains(n)),
            "live lab kept"
        );
        lab.close().expect("teardown");
    });
}

#[test]
fn without_root_the_lab_says_it_needs_root() {
    bounded("without_root_the_lab_says_it_needs_root", || {
        let _guard = shared();
        let message = LabError::NotRoot {
            detail: "test".into(),
        }
        .to_string();
        assert!(message.contains("needs root") && message.contains("CAP_NET_ADMIN"));
        assert!(message.contains("iproute2"));
        // For real: run `posmesh-lab cleanup` as user nobody (setpriv drops every capability).
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = dir.path().join("posmesh-lab");
        std::fs::copy(env!("CARGO_BIN_EXE_posmesh-lab"), &bin).expect("copy binary");
        let mut perms = std::fs::metadata(dir.path()).expect("meta").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(dir.path(), perms).expect("chmod");
        let out = match Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
            ])
            .arg(&bin)
            .arg("cleanup")
            .output()
        {
            Ok(out) => out,
            Err(e) => panic!("setpriv (util-linux) is needed for this test: {e}"),
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "cleanup as nobody succeeded: {stderr}"
        );
        assert!(
            stderr.contains("the lab needs root (CAP_NET_ADMIN"),
            "unclear error: {stderr}"
        );
    });
}
