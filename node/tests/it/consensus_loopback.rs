//! The store's Raft group between real `posmesh device` processes on 127.0.0.1: the first
//! device bootstraps it, the others join as learners and are promoted (3 voters); a gift
//! card issued through a follower is redeemed in full by two devices at once — exactly one
//! succeeds — and the balance read from a third is 0; the day is closed through a follower
//! and its Z-report (with a late entry) is byte-identical on every device; the leader is
//! SIGKILLed — writes reaching the followers meanwhile wait for the next leader and commit
//! —, a new one is elected and the committed data is intact; a device left alone answers
//! `no_quorum` and still takes sales. A removed device learns it was removed and refuses
//! writes with `device_retired`; the mesh refuses it, so restarted — as it was, or with a
//! wiped data directory under its old certificate — it still takes no sale.

use super::support;
use posmesh_node::node_process::NodeProcess;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// Generous bound: an election takes 1.5–3 s with the store timings.
const LIMIT: Duration = Duration::from_secs(60);

/// A device of store `s1` on loopback, with `peers`; `bootstrap` founds the Raft group.
pub(super) fn start(dir: &Path, device: &str, peers: &[String], bootstrap: bool) -> NodeProcess {
    let flags: &[&str] = if bootstrap {
        &["--raft-bootstrap"]
    } else {
        &[]
    };
    support::start_mesh_node_with(dir, "s1", device, "127.0.0.1:0", peers, flags)
}

pub(super) async fn raft(client: &reqwest::Client, node: &NodeProcess) -> Value {
    support::node_status(client, node).await["raft"].clone()
}

/// `POST path` of `body` on `node` with `key` as Idempotency-Key (`""`: none).
pub(super) async fn post(
    client: &reqwest::Client,
    node: &NodeProcess,
    path: &str,
    key: &str,
    body: Value,
) -> (u16, Value) {
    let mut request = client
        .post(format!("http://{}{path}", node.api))
        .json(&body);
    // "": no header (an empty one is a malformed key, refused where a key is optional too).
    if !key.is_empty() {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.expect("answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `POST /v1/gift-cards/{card}/redemptions` of `amount_minor` on `node` with `key`.
pub(super) async fn redeem(
    client: &reqwest::Client,
    node: &NodeProcess,
    card: &str,
    key: &str,
    amount_minor: i64,
) -> (u16, Value) {
    let path = format!("/v1/gift-cards/{card}/redemptions");
    post(
        client,
        node,
        &path,
        key,
        json!({"amount_minor": amount_minor}),
    )
    .await
}

/// Records `count` good sales on each `(node, key prefix, count)`; the business date of the
/// last.
pub(super) async fn sell_on(
    client: &reqwest::Client,
    sales: &[(&NodeProcess, &str, usize)],
) -> String {
    let mut date = String::new();
    for (node, tag, count) in sales {
        for i in 0..*count {
            let sale = support::post_created(
                client,
                &node.api,
                "/v1/sales",
                &format!("{tag}-{i}"),
                &support::valid_sale(),
            )
            .await;
            date = sale["business_date"].as_str().expect("date").to_owned();
        }
    }
    date
}

pub(super) async fn balance(
    client: &reqwest::Client,
    node: &NodeProcess,
    card: &str,
) -> (u16, Value) {
    let response = client
        .get(format!("http://{}/v1/gift-cards/{card}", node.api))
        .send()
        .await
        .expect("answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Waits until every node holds `entries` ledger entries with equal digests.
pub(super) async fn wait_entries(client: &reqwest::Client, nodes: &[&NodeProcess], entries: u64) {
    let started = Instant::now();
    loop {
        let mut seen = Vec::new();
        for node in nodes {
            let status = support::node_status(client, node).await;
            seen.push((
                status["replication"]["entries_total"].as_u64(),
                status["replication"]["digest"].clone(),
            ));
        }
        if seen
            .iter()
            .all(|s| s.0 == Some(entries) && s.1 == seen[0].1)
        {
            return;
        }
        assert!(
            started.elapsed() < LIMIT,
            "ledger not converged on {entries}: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until every node in `nodes` agrees on one leader (other than `not`) and `voters`
/// voters.
pub(super) async fn wait_leader(
    client: &reqwest::Client,
    nodes: &[&NodeProcess],
    voters: usize,
    not: Option<&str>,
) -> String {
    let started = Instant::now();
    loop {
        let mut views = Vec::new();
        for node in nodes {
            views.push(raft(client, node).await);
        }
        let leader = views[0]["leader"].as_str().map(str::to_owned);
        let agreed = views.iter().all(|v| {
            v["leader"].as_str() == leader.as_deref()
                && v["voters"].as_array().map(Vec::len) == Some(voters)
        });
        if let (true, Some(leader)) = (agreed, leader) {
            if Some(leader.as_str()) != not {
                return leader;
            }
        }
        assert!(
            started.elapsed() < LIMIT,
            "no agreed leader with {voters} voters: {views:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Three devices of store `s1` in `d` on loopback; till-1 bootstraps the Raft group.
pub(super) async fn start_store(
    client: &reqwest::Client,
    d: &Path,
) -> (NodeProcess, NodeProcess, NodeProcess) {
    support::issue_identities_in(d, &[("s1", "till-1"), ("s1", "till-2"), ("s1", "till-3")]);
    let a = start(d, "till-1", &[], true);
    let a_mesh = support::mesh_addr(client, &a).await;
    let b = start(d, "till-2", &[format!("till-1@{a_mesh}")], false);
    let b_mesh = support::mesh_addr(client, &b).await;
    let c = start(
        d,
        "till-3",
        &[format!("till-1@{a_mesh}"), format!("till-2@{b_mesh}")],
        false,
    );
    (a, b, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gift_cards_through_raft_never_double_spend_and_survive_the_leader() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = support::http_client();
    let (a, b, c) = start_store(&client, dir.path()).await;
    let leader = wait_leader(&client, &[&a, &b, &c], 3, None).await;
    assert_eq!(leader, "till-1", "the bootstrapping device leads first");
    // A store founded by --raft-bootstrap follows the newest rules from its first entry,
    // and so does every device that joined it.
    for node in [&a, &b, &c] {
        let raft = raft(&client, node).await;
        assert_eq!(
            raft["rules_version"],
            posmesh_consensus::rules::RULES_VERSION_LATEST,
            "{raft}"
        );
    }

    // Issued through a follower (forwarded to the leader).
    let (status, issued) = post(
        &client,
        &b,
        "/v1/gift-cards",
        "issue-1",
        json!({"card_id": "card-1", "amount_minor": 2500, "currency": "GBP"}),
    )
    .await;
    assert_eq!(status, 201, "{issued}");
    // Two devices redeem the full balance at once: exactly one succeeds.
    let redeem = json!({"amount_minor": 2500});
    let (first, second) = tokio::join!(
        post(
            &client,
            &b,
            "/v1/gift-cards/card-1/redemptions",
            "r-b",
            redeem.clone()
        ),
        post(
            &client,
            &c,
            "/v1/gift-cards/card-1/redemptions",
            "r-c",
            redeem.clone()
        ),
    );
    let mut codes = [first.0, second.0];
    codes.sort_unstable();
    assert_eq!(codes, [201, 409], "{first:?} {second:?}");
    let refused = if first.0 == 409 { &first.1 } else { &second.1 };
    assert_eq!(
        refused["error"]["code"], "insufficient_balance",
        "{refused}"
    );
    // A retry of the winning redemption takes nothing more.
    let winner = if first.0 == 201 {
        (&b, "r-b")
    } else {
        (&c, "r-c")
    };
    let (status, again) = post(
        &client,
        winner.0,
        "/v1/gift-cards/card-1/redemptions",
        winner.1,
        redeem,
    )
    .await;
    assert_eq!(status, 200, "a replay, as for sales: {again}");
    assert_eq!(again["outcome"]["replayed"], true, "{again}");
    let (status, card) = balance(&client, &c, "card-1").await;
    assert_eq!(
        (status, card["balance_minor"].as_i64()),
        (200, Some(0)),
        "{card}"
    );
    let (status, _) = balance(&client, &c, "no-such-card").await;
    assert_eq!(status, 404);

    // The day is closed through a follower once every device holds the day's 5 sales; a
    // sale after the close is a late entry; the Z-report is byte-identical everywhere.
    let today = sell_on(&client, &[(&a, "za", 3), (&b, "zb", 2)]).await;
    wait_entries(&client, &[&a, &b, &c], 5).await;
    let close = format!("/v1/days/{today}/close");
    let (status, closed) = post(&client, &c, &close, "close-1", json!(null)).await;
    assert_eq!(status, 201, "{closed}");
    assert_eq!(closed["cut"], json!({"till-1": 3, "till-2": 2}), "{closed}");
    let (status, again) = post(&client, &a, &close, "close-2", json!(null)).await;
    assert_eq!(
        (status, again["error"]["code"].as_str()),
        (409, Some("day_already_closed"))
    );
    support::post_created(
        &client,
        &c.api,
        "/v1/sales",
        "late-1",
        &support::valid_sale(),
    )
    .await;
    wait_entries(&client, &[&a, &b, &c], 6).await;
    let mut reports = Vec::new();
    for node in [&a, &b, &c] {
        let text = client
            .get(format!("http://{}/v1/reports/z/{today}", node.api))
            .send()
            .await
            .expect("z-report")
            .text()
            .await
            .expect("text");
        reports.push(text);
    }
    assert!(
        reports.iter().all(|r| *r == reports[0]),
        "Z-reports differ: {reports:?}"
    );
    let z: Value = serde_json::from_str(&reports[0]).expect("JSON");
    assert_eq!(z["totals"]["sales"], 5, "{z}");
    assert_eq!(z["late_entries"], json!(["till-3/1"]), "{z}");
    assert_eq!(z["complete"], true);

    // The leader dies with a write on its way to it. Writes that reach the followers once
    // the leader has gone silent (longer than two heartbeats, 500 ms: a follower forwards
    // only to a leader heard lately) wait for the next leader and commit there, instead
    // of failing at once (`no_quorum`) or being sent to the dead leader, whose connection
    // lives on for seconds (`outcome_unknown`).
    // Writes reaching the followers right after the kill (≤ 50 ms; 20 of them, at once) are
    // forwarded to the dead leader, still heard lately; their answers are lost when its connection times
    // out, and, being redemptions (deduplicated by id), they are sent again to the next
    // leader within the same bounded wait: 201, each applied exactly once.
    let (status, issued) = post(
        &client,
        &c,
        "/v1/gift-cards",
        "issue-k",
        json!({"card_id": "card-k", "amount_minor": 1000, "currency": "GBP"}),
    )
    .await;
    assert_eq!(status, 201, "{issued}");
    let in_flight = post(
        &client,
        &b,
        "/v1/gift-cards",
        "issue-in-flight",
        json!({"card_id": "card-f", "amount_minor": 100, "currency": "GBP"}),
    );
    let after_the_kill = async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        a.kill().expect("SIGKILL the leader");
        let killed = Instant::now();
        // 20 redemptions of 10 pence, one every 2.5 ms from the kill to 50 ms after it,
        // alternately on the two followers.
        let right_after = futures_util::future::join_all((0..20u64).map(|i| {
            let client = &client;
            let (node, key) = (if i % 2 == 0 { &b } else { &c }, format!("rk-{i}"));
            async move {
                tokio::time::sleep(Duration::from_micros(2_500 * i)).await;
                post(
                    client,
                    node,
                    "/v1/gift-cards/card-k/redemptions",
                    &key,
                    json!({"amount_minor": 10}),
                )
                .await
            }
        }));
        let later = async {
            tokio::time::sleep(Duration::from_millis(600)).await;
            let sent = Instant::now();
            let answers = tokio::join!(
                post(
                    &client,
                    &b,
                    "/v1/gift-cards",
                    "issue-b",
                    json!({"card_id": "card-b", "amount_minor": 100, "currency": "GBP"}),
                ),
                post(
                    &client,
                    &c,
                    "/v1/gift-cards",
                    "issue-c",
                    json!({"card_id": "card-c", "amount_minor": 100, "currency": "GBP"}),
                ),
            );
            (answers, sent.elapsed())
        };
        let (right_after, later) = tokio::join!(right_after, later);
        (right_after, killed.elapsed(), later)
    };
    let (in_flight, (right_after, all_done, ((on_b, on_c), waited))) =
        tokio::join!(in_flight, after_the_kill);
    assert!(
        right_after.iter().all(|(status, _)| *status == 201),
        "writes forwarded to the dead leader are sent again to the next: {right_after:?}"
    );
    println!("20 writes sent ≤ 50 ms after the leader's kill all answered within {all_done:?}");
    // Sent before the kill: committed (through the old leader or, sent again, the new;
    // a replay if the old one had committed it), or its answer lost with the leader —
    // never a plain refusal.
    assert!(
        in_flight.0 == 201
            || in_flight.0 == 200
            || (in_flight.0 == 503 && in_flight.1["error"]["code"] == "outcome_unknown"),
        "{in_flight:?}"
    );
    assert_eq!(
        (on_b.0, on_c.0),
        (201, 201),
        "writes during the failover wait for the next leader: {on_b:?} {on_c:?}"
    );
    println!("writes sent 0.6 s after the leader's kill committed after {waited:?}");
    // The other two elected a new leader; committed data is intact.
    let leader = wait_leader(&client, &[&b, &c], 3, Some("till-1")).await;
    assert_ne!(leader, "till-1");
    let (status, card) = balance(&client, &b, "card-1").await;
    assert_eq!(
        (status, card["balance_minor"].as_i64()),
        (200, Some(0)),
        "{card}"
    );
    let (status, card) = balance(&client, &c, "card-k").await;
    assert_eq!(
        (status, card["balance_minor"].as_i64()),
        (200, Some(800)),
        "each redemption applied exactly once: {card}"
    );
    let (status, issued) = post(
        &client,
        &c,
        "/v1/gift-cards",
        "issue-2",
        json!({"card_id": "card-2", "amount_minor": 1000, "currency": "GBP"}),
    )
    .await;
    assert_eq!(status, 201, "{issued}");

    // A device alone (the other voter gone too) cannot decide: a clear 503, sales go on.
    let (survivor, other) = if leader == "till-2" { (c, b) } else { (b, c) };
    other.kill().expect("SIGKILL");
    let survivor = &survivor;
    let (status, answer) = post(
        &client,
        survivor,
        "/v1/gift-cards/card-2/redemptions",
        "r-alone",
        json!({"amount_minor": 100}),
    )
    .await;
    // `outcome_unknown` when the survivor still had a link to the dead leader and sent it
    // there (the write may have reached it before it died): retry with the same key.
    let code = answer["error"]["code"].as_str();
    assert!(
        status == 503 && matches!(code, Some("no_quorum" | "outcome_unknown")),
        "{answer}"
    );
    let sale = support::post_created(
        &client,
        &survivor.api,
        "/v1/sales",
        "sale-alone",
        &support::valid_sale(),
    )
    .await;
    assert_eq!(sale["kind"], "sale");
}

/// `posmesh store remove-device <device> --api <api>`, run to its end.
pub(super) async fn remove_with_cli(api: &str, device: &str) -> std::process::Output {
    let (api, device) = (api.to_owned(), device.to_owned());
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(support::binary())
            .args(["store", "remove-device", &device, "--api", &api])
            .env_remove("POSMESH_API")
            .output()
            .expect("run posmesh store remove-device")
    })
    .await
    .expect("joined")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_device_leaves_the_raft_group_for_good() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = support::http_client();
    let (a, b, c) = start_store(&client, dir.path()).await;
    wait_leader(&client, &[&a, &b, &c], 3, None).await;
    let (status, issued) = post(
        &client,
        &a,
        "/v1/gift-cards",
        "issue-r",
        json!({"card_id": "card-r", "amount_minor": 1000, "currency": "GBP"}),
    )
    .await;
    assert_eq!(status, 201, "{issued}");
    let (status, answer) = post(
        &client,
        &c,
        "/v1/store/devices/till-3/remove",
        "",
        json!(null),
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (409, Some("remove_self"))
    );
    // A typo is not banned for good: an id the store never saw is refused (the manager's
    // command, `posmesh store remove-device`, says why and exits non-zero).
    let typo = remove_with_cli(&b.api, "till-33").await;
    assert!(!typo.status.success());
    let said = String::from_utf8_lossy(&typo.stderr);
    assert!(said.contains("unknown_device"), "{said}");
    // Removed through a follower (forwarded to the leader).
    let removed = remove_with_cli(&b.api, "till-3").await;
    assert!(
        removed.status.success(),
        "{}",
        String::from_utf8_lossy(&removed.stderr)
    );
    assert!(String::from_utf8_lossy(&removed.stdout).contains("removed till-3"));
    // The removed device finds out (its own retirement applied, or its calls refused):
    // it says so in its status and alerts, and takes no more writes — no store-wide
    // decision, no sale — with a precise code; the other two go on.
    let started = Instant::now();
    let retired = loop {
        let view = raft(&client, &c).await;
        if let Some(retired) = view["retired"].as_str() {
            break retired.to_owned();
        }
        assert!(
            started.elapsed() < LIMIT,
            "till-3 does not know it was removed: {view}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!("till-3 learned its removal after {:?}", started.elapsed());
    assert!(
        retired.contains("till-3 was removed") && retired.contains("new device"),
        "{retired}"
    );
    let alerts = support::get_json(&client, &format!("http://{}/v1/alerts", c.api)).await;
    assert!(
        alerts["alerts"].as_array().is_some_and(|all| all
            .iter()
            .any(|a| a["kind"] == "device_retired" && a["subject"] == "till-3")),
        "{alerts}"
    );
    let (status, answer) = redeem(&client, &c, "card-r", "r-retired", 100).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (403, Some("device_retired")),
        "{answer}"
    );
    let (status, answer) = post(
        &client,
        &c,
        "/v1/sales",
        "sale-retired",
        support::valid_sale(),
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (403, Some("device_retired")),
        "{answer}"
    );
    let (status, answer) = redeem(&client, &a, "card-r", "r-a", 100).await;
    assert_eq!(status, 201, "{answer}");
    let (status, answer) = redeem(&client, &b, "card-r", "r-b", 100).await;
    assert_eq!(status, 201, "{answer}");
    // A retired device gets no allotment of the offline card budget.
    let answer: Value = client
        .put(format!(
            "http://{}/v1/payments/exposure-allotments/till-3",
            a.api
        ))
        .json(&json!({"amount_minor": 100}))
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        (
            answer["error"]["code"].as_str(),
            answer["error"]["field"].as_str()
        ),
        (Some("device_retired"), Some("device")),
        "{answer}"
    );
    support::post_created(
        &client,
        &b.api,
        "/v1/sales",
        "sale-b",
        &support::valid_sale(),
    )
    .await;
    // 3 voters less till-3 leaves 2: with no learner to promote, the leader demotes the
    // other to learner, keeping the count odd (1 voter, 1 learner, as a 2-device store).
    let started = Instant::now();
    loop {
        let views = [raft(&client, &a).await, raft(&client, &b).await];
        let gone = views.iter().all(|v| {
            let mut members: Vec<&Value> = v["voters"]
                .as_array()
                .into_iter()
                .flatten()
                .chain(v["learners"].as_array().into_iter().flatten())
                .collect();
            members.sort_by_key(|d| d.as_str().map(str::to_owned));
            v["voters"].as_array().map(Vec::len) == Some(1)
                && v["voters"][0] == v["leader"]
                && members == [&json!("till-1"), &json!("till-2")]
        });
        if gone {
            break;
        }
        assert!(
            started.elapsed() < LIMIT,
            "till-3 still a member: {views:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // It is never added back, and the mesh refuses it: the others close its connections
    // (within a ping interval) and do not take new ones.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let view = raft(&client, &a).await;
    assert!(
        !view["voters"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(view["learners"].as_array().into_iter().flatten())
            .any(|d| d == "till-3"),
        "till-3 came back: {view}"
    );
    for node in [&a, &b] {
        let started = Instant::now();
        while support::connected_peers(&support::node_status(&client, node).await)
            .contains(&"till-3".to_owned())
        {
            assert!(started.elapsed() < LIMIT, "till-3 still connected");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Restarted as it was, alone: it knows its retirement from the state it applied
    // before its sales API opens.
    let d = dir.path();
    c.stop().expect("clean stop");
    let c = start(d, "till-3", &[], false);
    let (status, answer) = post(
        &client,
        &c,
        "/v1/sales",
        "sale-restarted",
        support::valid_sale(),
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (403, Some("device_retired")),
        "{answer}"
    );
    // Wiped and restarted under its old certificate: the mesh refuses it, and the refusal
    // tells it it was retired; it takes no sale and never becomes a peer again.
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
    let started = Instant::now();
    let retired = loop {
        if let Some(retired) = raft(&client, &c).await["retired"].as_str() {
            break retired.to_owned();
        }
        assert!(started.elapsed() < LIMIT, "the wiped till-3 is not told");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        retired.contains("refused at the mesh by till-"),
        "{retired}"
    );
    let (status, answer) = post(
        &client,
        &c,
        "/v1/sales",
        "sale-wiped",
        support::valid_sale(),
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (403, Some("device_retired")),
        "{answer}"
    );
    for node in [&a, &b] {
        let peers = support::connected_peers(&support::node_status(&client, node).await);
        assert!(!peers.contains(&"till-3".to_owned()), "{peers:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_only_voter_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let client = support::http_client();
    support::issue_identities_in(d, &[("s1", "till-1"), ("s1", "till-2")]);
    let a = start(d, "till-1", &[], true);
    let a_mesh = support::mesh_addr(&client, &a).await;
    let b = start(d, "till-2", &[format!("till-1@{a_mesh}")], false);
    // Two devices: till-1 votes, till-2 stays a learner (the voter count is kept odd).
    let started = Instant::now();
    loop {
        let view = raft(&client, &b).await;
        if view["voters"] == json!(["till-1"]) && view["learners"] == json!(["till-2"]) {
            break;
        }
        assert!(started.elapsed() < LIMIT, "till-2 not a learner: {view}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = raft(&client, &a).await;
    for attempt in 0..2 {
        let (status, answer) = post(
            &client,
            &b,
            "/v1/store/devices/till-1/remove",
            "",
            json!(null),
        )
        .await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (409, Some("last_voter")),
            "attempt {attempt}: {answer}"
        );
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("only voter") && message.contains("force-membership"),
            "says what to do: {message}"
        );
    }
    // Nothing was committed (no retirement) and till-1 still leads.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = raft(&client, &a).await;
    assert_eq!(
        (&after["applied_index"], &after["voters"], &after["leader"]),
        (
            &before["applied_index"],
            &json!(["till-1"]),
            &json!("till-1")
        ),
        "{before} → {after}"
    );
}
