//! Refusals the store's state alone decides take no Raft entry, sent to the leader or to a
//! follower (which forwards what only the leader's state settles, pre-checked there
//! before it is proposed): redemptions of an unknown gift card, a card issued twice, the
//! only admin disabled, an unknown operator disabled, a shift of an unknown operator, an
//! unknown shift closed — each answered with its precise code while every device's last
//! log index stays where it was. A card issued through the leader is redeemed at once
//! through a follower (never "unknown" from a follower's state a moment behind), and an
//! operator created through the leader authorises at once on a follower (never 401 for a
//! right PIN), also on one that missed the creation and resumed while the leader is gone.

use super::consensus_loopback::{post, raft, redeem, start_store, wait_leader};
use super::staff_loopback::set_operator;
use super::support;
use posmesh_node::node_process::NodeProcess;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The store's first operator, admin `ada` (PIN 8642).
const ADA: (&str, &str) = ("ada", "8642");

/// `(last log index, applied index)` of `node` once two reads 300 ms apart agree.
async fn settled_log(client: &reqwest::Client, node: &NodeProcess) -> (Value, Value) {
    let started = Instant::now();
    let read = |view: Value| {
        (
            view["last_log_index"].clone(),
            view["applied_index"].clone(),
        )
    };
    let mut last = read(raft(client, node).await);
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = read(raft(client, node).await);
        if now == last && now.0 == now.1 {
            return now;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "log of {} not settled: {now:?}",
            node.api
        );
        last = now;
    }
}

/// Sends `signal` (`-STOP`, `-CONT`) to `node`'s process.
fn signal(node: &NodeProcess, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &node.pid().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {signal}");
}

fn code(answer: &(u16, Value)) -> (u16, Option<&str>) {
    (answer.0, answer.1["error"]["code"].as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_take_no_raft_entry_on_the_leader_or_a_follower() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = support::http_client();
    let (a, b, c) = start_store(&client, dir.path()).await;
    let leader = wait_leader(&client, &[&a, &b, &c], 3, None).await;
    assert_eq!(leader, "till-1", "the bootstrapping device leads first");
    let (status, set) = set_operator(
        &client,
        &a,
        None,
        json!({"operator_id": "ada", "name": "Ada", "role": "admin", "pin": ADA.1}),
    )
    .await;
    assert_eq!(status, 201, "{set}");
    let ada = support::http_client_as(ADA);

    // Operators created through the leader authorise at once through a follower: it
    // catches up with the leader before it judges an id it does not know yet.
    for i in 0..5 {
        let id = format!("mgr-{i}");
        let (status, set) = set_operator(
            &client,
            &a,
            Some(ADA),
            json!({"operator_id": id, "name": id, "role": "manager", "pin": "2468"}),
        )
        .await;
        assert_eq!(status, 201, "{set}");
        let fresh = support::http_client_as((&id, "2468"));
        let issued = post(
            &fresh,
            &b,
            "/v1/gift-cards",
            &format!("issue-{id}"),
            json!({"card_id": format!("card-{id}"), "amount_minor": 1000, "currency": "GBP"}),
        )
        .await;
        assert_eq!(
            issued.0, 201,
            "{id} just created, on a follower: {issued:?}"
        );
    }
    // A card issued through the leader is redeemed at once through a follower.
    let issued = post(
        &ada,
        &a,
        "/v1/gift-cards",
        "issue-fresh",
        json!({"card_id": "card-fresh", "amount_minor": 500, "currency": "GBP"}),
    )
    .await;
    assert_eq!(issued.0, 201, "{issued:?}");
    let redeemed = redeem(&client, &b, "card-fresh", "r-fresh", 200).await;
    assert_eq!(redeemed.0, 201, "{redeemed:?}");

    let before = [
        settled_log(&client, &a).await,
        settled_log(&client, &b).await,
    ];
    // 20 redemptions of an unknown card through a follower at once (forwarded together),
    // 5 through the leader: 404 each.
    let keys: Vec<String> = (0..20).map(|i| format!("rb-{i}")).collect();
    let through_b = keys
        .iter()
        .map(|key| redeem(&client, &b, "no-such-card", key, 100));
    for answer in futures_util::future::join_all(through_b).await {
        assert_eq!(
            code(&answer),
            (404, Some("gift_card_not_found")),
            "{answer:?}"
        );
    }
    for i in 0..5 {
        let answer = redeem(&client, &a, "no-such-card", &format!("ra-{i}"), 100).await;
        assert_eq!(
            code(&answer),
            (404, Some("gift_card_not_found")),
            "{answer:?}"
        );
    }
    // Beyond the balance, and a card issued twice (through either device).
    let answer = redeem(&client, &b, "card-fresh", "r-over", 400).await;
    assert_eq!(
        code(&answer),
        (409, Some("insufficient_balance")),
        "{answer:?}"
    );
    for (node, key) in [(&a, "issue-again-a"), (&b, "issue-again-b")] {
        let answer = post(
            &ada,
            node,
            "/v1/gift-cards",
            key,
            json!({"card_id": "card-fresh", "amount_minor": 500, "currency": "GBP"}),
        )
        .await;
        assert_eq!(code(&answer), (409, Some("gift_card_exists")), "{answer:?}");
    }
    // The only admin, an unknown operator, a shift of an unknown operator, an unknown
    // shift: settled by the leader's state, through the leader and through a follower.
    for node in [&a, &b] {
        let answer = post(&ada, node, "/v1/operators/ada/disable", "", Value::Null).await;
        assert_eq!(code(&answer), (409, Some("last_admin")), "{answer:?}");
        let answer = post(&ada, node, "/v1/operators/nobody/disable", "", Value::Null).await;
        assert_eq!(
            code(&answer),
            (404, Some("operator_not_found")),
            "{answer:?}"
        );
        let shift = json!({"shift_id": "sh-x", "operator_id": "nobody", "opening_float_minor": 0, "currency": "GBP"});
        let answer = post(
            &ada,
            node,
            "/v1/shifts",
            &format!("open-{}", node.api),
            shift,
        )
        .await;
        assert_eq!(
            code(&answer),
            (404, Some("operator_not_found")),
            "{answer:?}"
        );
        let answer = post(
            &ada,
            node,
            "/v1/shifts/sh-none/close",
            &format!("close-{}", node.api),
            Value::Null,
        )
        .await;
        assert_eq!(code(&answer), (404, Some("shift_not_found")), "{answer:?}");
    }
    let after = [
        settled_log(&client, &a).await,
        settled_log(&client, &b).await,
    ];
    assert_eq!(after, before, "refusals took Raft entries");

    // An id still unknown after the catch-up is answered as a wrong PIN.
    let ghost = support::http_client_as(("ghost", "2468"));
    let answer = post(
        &ghost,
        &b,
        "/v1/gift-cards",
        "issue-ghost",
        json!({"card_id": "card-ghost", "amount_minor": 1000, "currency": "GBP"}),
    )
    .await;
    assert_eq!(code(&answer), (401, Some("pin_mismatch")), "{answer:?}");

    // A follower that missed an operator's creation (stopped meanwhile; the leader and
    // the third device committed it), resumed while the leader is gone (stopped): nobody
    // sends it the entry until the third device is elected. It waits for that leader and
    // catches up before it judges the id: the right PIN is accepted, never 401.
    signal(&b, "-STOP");
    let (status, set) = set_operator(
        &client,
        &a,
        Some(ADA),
        json!({"operator_id": "mgr-late", "name": "Late", "role": "manager", "pin": "1357"}),
    )
    .await;
    signal(&a, "-STOP");
    signal(&b, "-CONT");
    assert_eq!(status, 201, "{set}");
    let late = support::http_client_as(("mgr-late", "1357"));
    let issued = post(
        &late,
        &b,
        "/v1/gift-cards",
        "issue-late",
        json!({"card_id": "card-late", "amount_minor": 1000, "currency": "GBP"}),
    )
    .await;
    assert_eq!(issued.0, 201, "on a follower behind the leader: {issued:?}");
    signal(&a, "-CONT");
}
