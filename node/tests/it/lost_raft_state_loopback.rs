//! A device that lost its Raft state (issue #6): its data directory wiped, restarted under
//! its old id and certificate. On loopback stores of `posmesh device` processes: the
//! wiped device refuses its old seat (status, alert `raft_state_lost`) and never gets the
//! log again; the leader finds it lost (alert `raft_member_lost`, never "0 entries
//! behind"), takes it out of the Raft group and keeps the odd voter count, so store-wide
//! writes go on with the remaining devices; a wiped learner is never promoted. And the
//! leader removed through a follower: the removal succeeds and the next leader drops it.

use super::consensus_loopback::{post, raft, remove_with_cli, start, start_store, wait_leader};
use super::support;
use posmesh_node::node_process::NodeProcess;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Generous bound: an election takes 1.5–3 s with the store timings.
const LIMIT: Duration = Duration::from_secs(60);

/// Waits until `done` holds for the Raft status of `node`; returns it.
async fn wait_raft(
    client: &reqwest::Client,
    node: &NodeProcess,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let started = Instant::now();
    loop {
        let view = raft(client, node).await;
        if done(&view) {
            return view;
        }
        assert!(started.elapsed() < LIMIT, "{what}: {view}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `node` holds an alert of `kind` about `subject`.
async fn wait_alert(client: &reqwest::Client, node: &NodeProcess, kind: &str, subject: &str) {
    let started = Instant::now();
    while support::alerts_of(client, node, kind, subject)
        .await
        .is_empty()
    {
        assert!(started.elapsed() < LIMIT, "no {kind} alert about {subject}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn members(view: &Value) -> Vec<String> {
    let mut all: Vec<String> = ["voters", "learners"]
        .iter()
        .flat_map(|k| view[*k].as_array().cloned().unwrap_or_default())
        .filter_map(|d| d.as_str().map(str::to_owned))
        .collect();
    all.sort();
    all
}

fn issue(card: &str) -> Value {
    json!({"card_id": card, "amount_minor": 500, "currency": "GBP"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_voter_never_votes_again_and_the_leader_takes_it_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let client = support::http_client();
    let (a, b, c) = start_store(&client, d).await;
    assert_eq!(wait_leader(&client, &[&a, &b, &c], 3, None).await, "till-1");
    let (status, issued) = post(&client, &a, "/v1/gift-cards", "w-1", issue("card-w1")).await;
    assert_eq!(status, 201, "{issued}");

    // till-3, a voter, is wiped and restarted under its old id and certificate.
    c.stop().expect("clean stop");
    std::fs::remove_dir_all(d.join("till-3")).expect("wipe till-3");
    let a_mesh = support::mesh_addr(&client, &a).await;
    let b_mesh = support::mesh_addr(&client, &b).await;
    let c = start(
        d,
        "till-3",
        &[format!("till-1@{a_mesh}"), format!("till-2@{b_mesh}")],
        false,
    );

    // It learns that its Raft state was lost, refuses its old seat and says what to do.
    let view = wait_raft(&client, &c, "the wiped till-3 learns its loss", |v| {
        v["seat_lost"].is_string()
    })
    .await;
    let said = view["seat_lost"].as_str().unwrap_or_default();
    assert!(
        said.contains("till-3 lost its Raft state") && said.contains("remove-device till-3"),
        "{said}"
    );
    wait_alert(&client, &c, "raft_state_lost", "till-3").await;

    // The leader finds it lost, raises an alert naming it, never shows it caught up, and
    // takes it out: 2 voters left, then 1 (the odd count), till-2 a learner.
    wait_alert(&client, &a, "raft_member_lost", "till-3").await;
    let view = wait_raft(&client, &a, "till-3 taken out of the group", |v| {
        members(v) == ["till-1", "till-2"] && v["voters"] == json!(["till-1"])
    })
    .await;
    assert!(view["lost_members"]["till-3"].is_string(), "{view}");
    assert!(
        view["lag"].get("till-3").is_none(),
        "lag of a lost member: {view}"
    );

    // Store-wide writes go on; with till-2 stopped too, till-1 still decides alone.
    let (status, issued) = post(&client, &b, "/v1/gift-cards", "w-2", issue("card-w2")).await;
    assert_eq!(status, 201, "{issued}");
    b.stop().expect("clean stop");
    let (status, issued) = post(&client, &a, "/v1/gift-cards", "w-3", issue("card-w3")).await;
    assert_eq!(status, 201, "{issued}");

    // The wiped device never got the log back, and is never added back.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let wiped = raft(&client, &c).await;
    assert!(wiped["last_log_index"].is_null(), "{wiped}");
    assert!(
        wiped["voters"].as_array().is_none_or(Vec::is_empty),
        "{wiped}"
    );
    let view = raft(&client, &a).await;
    assert!(!members(&view).contains(&"till-3".to_owned()), "{view}");
    for node in [a, c] {
        node.stop().expect("clean stop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_till_in_identity_conflict_refuses_its_raft_seat_even_with_its_raft_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let client = support::http_client();
    let (a, b, c) = start_store(&client, d).await;
    assert_eq!(wait_leader(&client, &[&a, &b, &c], 3, None).await, "till-1");
    for i in 0..3 {
        support::post_created(
            &client,
            &c.api,
            "/v1/sales",
            &format!("c-{i}"),
            &support::valid_sale(),
        )
        .await;
    }
    super::consensus_loopback::wait_entries(&client, &[&a, &b, &c], 3).await;

    // till-3's journal is wiped but its Raft database and group are kept: its Raft
    // incarnation is the seat's, but its id now has history its journal does not hold.
    c.stop().expect("clean stop");
    for entry in std::fs::read_dir(d.join("till-3")).expect("till-3's data directory") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name == "raft" || name == "raft-group.json" {
            continue;
        }
        if path.is_dir() {
            std::fs::remove_dir_all(&path).expect("remove");
        } else {
            std::fs::remove_file(&path).expect("remove");
        }
    }
    let a_mesh = support::mesh_addr(&client, &a).await;
    let b_mesh = support::mesh_addr(&client, &b).await;
    let c = start(
        d,
        "till-3",
        &[format!("till-1@{a_mesh}"), format!("till-2@{b_mesh}")],
        false,
    );
    let started = Instant::now();
    while !support::node_status(&client, &c).await["replication"]["identity_conflict"].is_string() {
        assert!(started.elapsed() < LIMIT, "no identity conflict on till-3");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // It refuses its seat: the leader finds it and takes it out; writes go on.
    wait_alert(&client, &a, "raft_member_lost", "till-3").await;
    wait_raft(&client, &a, "till-3 taken out of the group", |v| {
        members(v) == ["till-1", "till-2"] && v["voters"] == json!(["till-1"])
    })
    .await;
    let (status, issued) = post(&client, &b, "/v1/gift-cards", "i-1", issue("card-i1")).await;
    assert_eq!(status, 201, "{issued}");
    for node in [a, b, c] {
        node.stop().expect("clean stop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_learner_is_never_promoted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let client = support::http_client();
    support::issue_identities_in(d, &[("s1", "till-1"), ("s1", "till-2"), ("s1", "till-3")]);
    let a = start(d, "till-1", &[], true);
    let a_mesh = support::mesh_addr(&client, &a).await;
    let b = start(d, "till-2", &[format!("till-1@{a_mesh}")], false);
    // Two devices: till-1 votes, till-2 is a caught-up learner.
    wait_raft(&client, &a, "till-2 a caught-up learner", |v| {
        v["voters"] == json!(["till-1"])
            && v["learners"] == json!(["till-2"])
            && v["lag"]["till-2"].as_u64().is_some_and(|lag| lag == 0)
    })
    .await;
    let (status, issued) = post(&client, &a, "/v1/gift-cards", "l-1", issue("card-l1")).await;
    assert_eq!(status, 201, "{issued}");

    // till-2 is wiped and restarted; then till-3 arrives. Two learners would make three
    // voters — but the wiped one lost its Raft state: it is taken out, never promoted.
    b.stop().expect("clean stop");
    std::fs::remove_dir_all(d.join("till-2")).expect("wipe till-2");
    let b = start(d, "till-2", &[format!("till-1@{a_mesh}")], false);
    wait_alert(&client, &a, "raft_member_lost", "till-2").await;
    let c = start(d, "till-3", &[format!("till-1@{a_mesh}")], false);
    let started = Instant::now();
    loop {
        let view = raft(&client, &a).await;
        assert_eq!(
            view["voters"],
            json!(["till-1"]),
            "a voter promoted: {view}"
        );
        if members(&view) == ["till-1", "till-3"] {
            break;
        }
        assert!(started.elapsed() < LIMIT, "till-2 still a member: {view}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // It stays out; till-3 stays a learner (1 + 1 voters would be even).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let view = raft(&client, &a).await;
    assert_eq!(
        (&view["voters"], &view["learners"]),
        (&json!(["till-1"]), &json!(["till-3"])),
        "{view}"
    );
    assert!(raft(&client, &b).await["seat_lost"].is_string());
    for node in [a, b, c] {
        node.stop().expect("clean stop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_removed_through_a_follower_is_dropped_by_the_next_leader() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = support::http_client();
    let (a, b, c) = start_store(&client, dir.path()).await;
    assert_eq!(wait_leader(&client, &[&a, &b, &c], 3, None).await, "till-1");
    let removed = remove_with_cli(&b.api, "till-1").await;
    assert!(
        removed.status.success(),
        "{}",
        String::from_utf8_lossy(&removed.stderr)
    );
    // The next leader takes till-1 out by itself (no second command), keeping 1 voter.
    let started = Instant::now();
    loop {
        let views = [raft(&client, &b).await, raft(&client, &c).await];
        let done = views.iter().all(|v| {
            members(v) == ["till-2", "till-3"]
                && v["voters"].as_array().map(Vec::len) == Some(1)
                && v["voters"][0] == v["leader"]
        });
        if done {
            break;
        }
        assert!(
            started.elapsed() < LIMIT,
            "till-1 still a member: {views:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, issued) = post(&client, &c, "/v1/gift-cards", "r-1", issue("card-r1")).await;
    assert_eq!(status, 201, "{issued}");
    for node in [a, b, c] {
        node.stop().expect("clean stop");
    }
}
