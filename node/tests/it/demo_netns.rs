//! The main job in network namespaces (`posmesh demo --network netns`, needs root or
//! unprivileged user namespaces; CI runs as root): on a short slice the three devices, the
//! cloud and the acquirer each run in a namespace the demo made, the devices find each
//! other by real mDNS (no static peers), the internet outage and the partition are link
//! cuts, and everything reconciles. Then the clean-up: a demo that fails half-way (an
//! injected failure) or is stopped by SIGTERM leaves no process and no namespace behind.

use super::support;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Processes whose command line mentions `dir` (the demo's work directory: every process
/// it starts has it in its arguments).
fn processes_mentioning(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(raw) = std::fs::read(entry.path().join("cmdline")) {
            let line = String::from_utf8_lossy(&raw).replace('\0', " ");
            if line.contains(&needle) {
                found.push(format!("{name}: {line}"));
            }
        }
    }
    found
}

/// `ip netns list` names.
fn namespaces() -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

fn demo(dir: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(support::binary());
    command
        .arg("demo")
        .arg(support::bakery_csv())
        .arg("--catalog")
        .arg(support::bakery_catalog())
        .args(["--network", "netns", "--work-dir"])
        .arg(dir)
        .args(extra);
    command
}

/// Waits (bounded) until no process mentions `dir`.
fn assert_nothing_left(dir: &Path, before: &[String]) {
    let started = Instant::now();
    loop {
        let left = processes_mentioning(dir);
        if left.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "processes left behind: {left:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The demo is PID 1 of its PID namespace, so its lab's namespaces are `pmlab-1-…`
    // (other lab tests, in this process or another, name theirs after their own pid).
    let new: Vec<String> = namespaces()
        .into_iter()
        .filter(|n| !before.contains(n) && n.starts_with("pmlab-1-"))
        .collect();
    assert!(new.is_empty(), "namespaces left behind: {new:?}");
}

#[test]
fn the_demo_in_namespaces_finds_its_peers_by_mdns_and_reconciles() {
    let dir = tempfile::tempdir().expect("tempdir");
    let before = namespaces();
    let output = demo(
        dir.path(),
        &["--days", "12", "--offline-allotment-minor", "4000"],
    )
    .output()
    .expect("demo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or_else(|e| {
            panic!(
                "no JSON line ({e}):\n{stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    assert!(output.status.success(), "demo failed:\n{stdout}");
    assert!(
        report["network"]
            .as_str()
            .expect("network")
            .starts_with("netns"),
        "{report}"
    );
    assert_eq!(report["discovery"], "mdns", "{report}");
    // Each device connected to the two others, none through a static address, and each
    // pair found by mDNS on at least one side.
    let peers = report["peers_by_source"].as_object().expect("peers");
    assert_eq!(peers.len(), 3, "{report}");
    let mut mdns_pairs = std::collections::BTreeSet::new();
    for (device, sources) in peers {
        let sources = sources.as_object().expect("sources");
        assert_eq!(sources.len(), 2, "{device}: {report}");
        for (peer, source) in sources {
            assert_ne!(source, "static", "{device} → {peer}: {report}");
            if source == "mdns" {
                let mut pair = [device.clone(), peer.clone()];
                pair.sort();
                mdns_pairs.insert(pair);
            }
        }
    }
    assert_eq!(mdns_pairs.len(), 3, "every pair found by mDNS: {report}");
    assert!(stdout.contains("netns"), "{stdout}");
    assert_eq!(report["reconciled"], true, "{report}");
    assert_eq!(report["planned_per_device"], report["recorded_per_device"]);
    assert!(report["resent_after_restart"].as_u64().expect("resent") > 0);
    assert!(report["sold_while_partitioned"].as_u64().expect("alone") > 0);
    assert!(report["card_offline_taken"].as_u64().expect("offline") > 0);
    assert_eq!(report["forwarded"]["unique"], report["card_offline_taken"]);
    assert_nothing_left(dir.path(), &before);
}

#[test]
fn a_demo_failing_half_way_leaves_no_process_or_namespace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let before = namespaces();
    let output = demo(dir.path(), &["--days", "12", "--fail-on-day", "2"])
        .output()
        .expect("demo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stdout}");
    assert!(
        stderr.contains("injected failure on day 2"),
        "{stdout}\n{stderr}"
    );
    // It got as far as the store: the devices were up when it failed.
    assert!(stdout.contains("Raft leader"), "{stdout}\n{stderr}");
    assert_nothing_left(dir.path(), &before);
}

#[test]
fn a_demo_stopped_by_sigterm_leaves_no_process_or_namespace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let before = namespaces();
    let mut child = demo(dir.path(), &["--days", "12"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("demo starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut seen = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        let ready = line.contains("Raft leader");
        seen.push(line);
        if ready {
            break;
        }
    }
    assert!(
        seen.iter().any(|l| l.contains("Raft leader")),
        "the store never formed: {seen:#?}"
    );
    // SIGTERM to our own child, by its pid.
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("the demo did not exit within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success(), "{status}");
    assert_nothing_left(dir.path(), &before);
}
