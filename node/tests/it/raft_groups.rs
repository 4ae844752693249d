//! A store initialised twice: `posmesh init` on two devices of store `s1` founds two Raft
//! groups. Connected over the mesh they must not fight: each keeps its own group and its
//! term stays put, each refuses the other's group and says so in `posmesh status` and in
//! an alert naming the peer; a fresh device still joins the group it is pointed at.

use super::consensus_loopback::raft;
use super::support;
use posmesh_node::node_process::NodeProcess;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn init(d: &Path, device: &str) -> Value {
    let out = Command::new(support::binary())
        .args(["init", "--data-dir"])
        .arg(d.join(device))
        .args(["--store-id", "s1", "--device-id", device, "--json"])
        .output()
        .expect("posmesh init runs");
    assert!(
        out.status.success(),
        "init {device}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn start(d: &Path, device: &str, peers: &[String]) -> NodeProcess {
    support::start_mesh_node_with(d, "s1", device, "127.0.0.1:0", peers, &[])
}

async fn alerts(client: &reqwest::Client, node: &NodeProcess) -> Vec<Value> {
    support::get_json(client, &format!("http://{}/v1/alerts", node.api)).await["alerts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_raft_groups_in_one_store_refuse_each_other_without_a_fight() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let client = support::http_client();
    support::issue_identities_in(d, &[("s1", "till-1"), ("s1", "till-2"), ("s1", "till-3")]);
    let group_1 = init(d, "till-1")["group"].clone();
    let group_2 = init(d, "till-2")["group"].clone();
    assert_ne!(group_1["group_id"], group_2["group_id"]);
    assert_eq!(group_2["founded_by"], "till-2");

    let a = start(d, "till-1", &[]);
    let a_mesh = support::mesh_addr(&client, &a).await;
    let b = start(d, "till-2", &[format!("till-1@{a_mesh}")]);

    // Each finds the other in another group.
    let started = Instant::now();
    let (view_a, view_b) = loop {
        let (view_a, view_b) = (raft(&client, &a).await, raft(&client, &b).await);
        let conflicts = |v: &Value| v["group_conflicts"].as_array().map_or(0, Vec::len);
        if conflicts(&view_a) == 1 && conflicts(&view_b) == 1 {
            break (view_a, view_b);
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no conflict reported: {view_a} {view_b}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let text_a = view_a["group_conflicts"][0].as_str().expect("text");
    assert!(
        text_a.starts_with("till-2 belongs to another Raft group")
            && text_a.contains("founded on till-2 at")
            && text_a.contains("`posmesh init` on one device only"),
        "{text_a}"
    );
    let text_b = view_b["group_conflicts"][0].as_str().expect("text");
    assert!(
        text_b.starts_with("till-1 belongs to another Raft group"),
        "{text_b}"
    );

    // No fight: over a few seconds each stays the leader of its own one-member group and
    // its term does not move.
    let terms = (view_a["term"].as_u64(), view_b["term"].as_u64());
    tokio::time::sleep(Duration::from_secs(4)).await;
    for (node, me, term) in [(&a, "till-1", terms.0), (&b, "till-2", terms.1)] {
        let view = raft(&client, node).await;
        assert_eq!(view["role"], "leader", "{me}: {view}");
        assert_eq!(view["voters"], serde_json::json!([me]), "{me}: {view}");
        assert_eq!(view["learners"], serde_json::json!([]), "{me}: {view}");
        assert_eq!(view["term"].as_u64(), term, "{me}'s term moved: {view}");
        assert!(term.is_some_and(|t| t <= 5), "{me}: {view}");
    }
    for (node, peer) in [(&a, "till-2"), (&b, "till-1")] {
        let alerts = alerts(&client, node).await;
        assert!(
            alerts
                .iter()
                .any(|x| x["kind"] == "raft_group_mismatch" && x["subject"] == peer),
            "{alerts:?}"
        );
    }

    // A fresh device pointed at till-1 joins till-1's group.
    let c = start(d, "till-3", &[format!("till-1@{a_mesh}")]);
    let started = Instant::now();
    loop {
        let view = raft(&client, &c).await;
        if view["leader"] == "till-1" && view["group"] == raft(&client, &a).await["group"] {
            assert_eq!(view["group_conflicts"], serde_json::json!([]), "{view}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "till-3 did not join till-1: {view}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recorded: Value = serde_json::from_slice(
        &std::fs::read(d.join("till-3").join("raft-group.json")).expect("group recorded"),
    )
    .expect("JSON");
    assert_eq!(recorded, group_1);
    drop((a, b, c));
}
