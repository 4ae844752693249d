//! Guarded writes that take an `Idempotency-Key` optionally — operator set and disable,
//! the offline card budget, certificate revocation, device removal — honour the client's key when it sends
//! one: the same key with the same request answers the first outcome again (200,
//! `Idempotent-Replayed: true`, the same log index and outcome; nothing applies twice),
//! the same key with another request is 409 `idempotency_key_reused` and changes nothing.
//! Without the header they behave as before (the device keys each send itself).

use super::consensus_loopback::{raft, start_store, wait_leader};
use super::guarded_failover_loopback::wait_operator;
use super::staff_loopback::{one_device_store, set_operator};
use super::support::{self, send_keyed as send};
use posmesh_node::node_process::NodeProcess;
use serde_json::{json, Value};

fn code(answer: &Value) -> Option<&str> {
    answer["error"]["code"].as_str()
}

/// Sends a keyed request (see [`send`]) that must be refused with `refusal`: the HTTP
/// status and the error code; returns the answer.
async fn expect_refusal(
    client: &reqwest::Client,
    node: &NodeProcess,
    method: reqwest::Method,
    path: &str,
    key: Option<&str>,
    body: &Value,
    refusal: (u16, &str),
) -> Value {
    let (status, _, answer) = send(client, node, method, path, key, body).await;
    assert_eq!(
        (status, code(&answer)),
        (refusal.0, Some(refusal.1)),
        "{answer}"
    );
    answer
}

/// Sends again, under the same key, a request first answered `first`: it must be replayed
/// (200, `Idempotent-Replayed: true`) with the first log index and outcome.
async fn expect_replay(
    client: &reqwest::Client,
    node: &NodeProcess,
    method: reqwest::Method,
    path: &str,
    key: Option<&str>,
    body: &Value,
    first: &Value,
) {
    let (status, replayed, again) = send(client, node, method, path, key, body).await;
    assert_eq!((status, replayed), (200, true), "{}: {again}", node.api);
    assert_eq!(again["log_index"], first["log_index"], "{again}");
    assert_eq!(
        again["outcome"], first["outcome"],
        "the first outcome: {again}"
    );
    assert_eq!(
        again["already_removed"], first["already_removed"],
        "{again}"
    );
}

/// The operators as listed by admin `ada`.
async fn operators(node: &NodeProcess) -> Value {
    let ada = support::http_client_as(("ada", "8642"));
    let (status, _, list) = send(
        &ada,
        node,
        reqwest::Method::GET,
        "/v1/operators",
        None,
        &Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{list}");
    list
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_key_on_operator_set_and_disable_replays_the_first_outcome() {
    use reqwest::Method;
    let dir = tempfile::tempdir().expect("tempdir");
    let client = support::http_client();
    let a = one_device_store(&client, dir.path()).await;
    let (status, set) = set_operator(
        &client,
        &a,
        None,
        json!({"operator_id": "ada", "name": "Ada", "role": "admin", "pin": "8642"}),
    )
    .await;
    assert_eq!(status, 201, "{set}");
    let ada = support::http_client_as(("ada", "8642"));

    // Operator set, twice under one key: the second answers the first, applied once.
    let cat = json!({"operator_id": "cat", "name": "Cat", "role": "cashier", "pin": "1111"});
    let (status, replayed, first) = send(
        &ada,
        &a,
        Method::POST,
        "/v1/operators",
        Some("set-c7"),
        &cat,
    )
    .await;
    assert_eq!((status, replayed), (201, false), "{first}");
    let index = first["log_index"].as_u64().expect("a log index");
    expect_replay(
        &ada,
        &a,
        Method::POST,
        "/v1/operators",
        Some("set-c7"),
        &cat,
        &first,
    )
    .await;
    // The same key for another request: refused, nothing changes.
    let listed = operators(&a).await;
    let renamed = json!({"operator_id": "cat", "name": "Kat", "role": "cashier", "pin": "1111"});
    expect_refusal(
        &ada,
        &a,
        Method::POST,
        "/v1/operators",
        Some("set-c7"),
        &renamed,
        (409, "idempotency_key_reused"),
    )
    .await;
    assert_eq!(operators(&a).await, listed, "a reused key changes nothing");
    // Without a key the upsert applies again, at a new index (unchanged behaviour).
    let (status, replayed, fresh) = send(&ada, &a, Method::POST, "/v1/operators", None, &cat).await;
    assert_eq!((status, replayed), (201, false), "{fresh}");
    assert!(fresh["log_index"].as_u64() > Some(index), "{fresh}");
    // A malformed key is refused before anything is proposed.
    expect_refusal(
        &ada,
        &a,
        Method::POST,
        "/v1/operators",
        Some("with space"),
        &cat,
        (400, "invalid_idempotency_key"),
    )
    .await;

    // Operator disable, twice under one key: the second is the first's replay, not 409.
    let path = "/v1/operators/cat/disable";
    let (status, replayed, first) =
        send(&ada, &a, Method::POST, path, Some("dis-c6"), &Value::Null).await;
    assert_eq!((status, replayed), (201, false), "{first}");
    expect_replay(
        &ada,
        &a,
        Method::POST,
        path,
        Some("dis-c6"),
        &Value::Null,
        &first,
    )
    .await;
    // Another key (or none): disabled already, as before.
    for key in [Some("dis-c8"), None] {
        let refusal = (409, "operator_disabled");
        expect_refusal(&ada, &a, Method::POST, path, key, &Value::Null, refusal).await;
    }
    // The disable key used for another operator's disable: refused.
    expect_refusal(
        &ada,
        &a,
        Method::POST,
        "/v1/operators/ada/disable",
        Some("dis-c6"),
        &Value::Null,
        (409, "idempotency_key_reused"),
    )
    .await;

    // The offline card budget and a certificate revocation follow the same rule.
    let budget = json!({"amount_minor": 50_000, "currency": "GBP"});
    let path = "/v1/payments/exposure-budget";
    let (status, _, first) = send(&ada, &a, Method::PUT, path, Some("bud-1"), &budget).await;
    assert_eq!(status, 201, "{first}");
    expect_replay(&ada, &a, Method::PUT, path, Some("bud-1"), &budget, &first).await;
    let other = json!({"amount_minor": 60_000, "currency": "GBP"});
    expect_refusal(
        &ada,
        &a,
        Method::PUT,
        path,
        Some("bud-1"),
        &other,
        (409, "idempotency_key_reused"),
    )
    .await;
    let path = "/v1/store/certificates/0c/revoke";
    let (status, _, first) = send(&ada, &a, Method::POST, path, Some("rev-1"), &Value::Null).await;
    assert_eq!(status, 201, "{first}");
    expect_replay(
        &ada,
        &a,
        Method::POST,
        path,
        Some("rev-1"),
        &Value::Null,
        &first,
    )
    .await;
    expect_refusal(
        &ada,
        &a,
        Method::POST,
        path,
        None,
        &Value::Null,
        (409, "already_revoked"),
    )
    .await;
}

/// The members (voters and learners) `node` sees in the store's Raft group.
async fn members(client: &reqwest::Client, node: &NodeProcess) -> Vec<String> {
    let view = raft(client, node).await;
    let mut members: Vec<String> = ["voters", "learners"]
        .iter()
        .flat_map(|k| view[*k].as_array().cloned().unwrap_or_default())
        .filter_map(|m| m.as_str().map(str::to_owned))
        .collect();
    members.sort();
    members
}

/// A device removal under a client's key, through a follower (forwarded to the leader)
/// and through the leader itself: a retry replays the first retirement (its index and
/// outcome, `Idempotent-Replayed: true`), the key for another device's removal is 409 and
/// removes nothing, a malformed key is 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_key_on_a_device_removal_replays_the_first_retirement() {
    use reqwest::Method;
    let dir = tempfile::tempdir().expect("tempdir");
    let client = support::http_client();
    let (a, b, c) = start_store(&client, dir.path()).await;
    assert_eq!(wait_leader(&client, &[&a, &b, &c], 3, None).await, "till-1");
    let ada = json!({"operator_id": "ada", "name": "Ada", "role": "admin", "pin": "8642"});
    let (status, set) = set_operator(&client, &a, None, ada).await;
    assert_eq!(status, 201, "{set}");
    wait_operator(&client, &b, "ada", "8642").await;
    let ada = support::http_client_as(("ada", "8642"));

    // till-3 holds most of the offline card budget: its removal releases it.
    let budget = json!({"amount_minor": 50_000, "currency": "GBP"});
    let (status, _, set) = send(
        &ada,
        &a,
        Method::PUT,
        "/v1/payments/exposure-budget",
        None,
        &budget,
    )
    .await;
    assert_eq!(status, 201, "{set}");
    let allotment = |amount_minor: i64| json!({ "amount_minor": amount_minor });
    let (status, _, set) = send(
        &ada,
        &a,
        Method::PUT,
        "/v1/payments/exposure-allotments/till-3",
        None,
        &allotment(30_000),
    )
    .await;
    assert_eq!(status, 201, "{set}");

    // Through a follower, twice under one key: the second answers the first.
    let path = "/v1/store/devices/till-3/remove";
    let (status, replayed, first) =
        send(&ada, &b, Method::POST, path, Some("rem-1"), &Value::Null).await;
    assert_eq!((status, replayed), (200, false), "{first}");
    assert_eq!(first["removed"], "till-3", "{first}");
    assert_eq!(first["already_removed"], false, "{first}");
    let index = first["log_index"].as_u64().expect("a log index");
    assert_eq!(first["outcome"]["outcome"], "device_retired", "{first}");
    assert_eq!(
        first["outcome"]["retired_at_index"].as_u64(),
        Some(index),
        "{first}"
    );
    for node in [&b, &a] {
        expect_replay(
            &ada,
            node,
            Method::POST,
            path,
            Some("rem-1"),
            &Value::Null,
            &first,
        )
        .await;
    }
    // The same key for another device's removal: refused, till-2 stays.
    expect_refusal(
        &ada,
        &a,
        Method::POST,
        "/v1/store/devices/till-2/remove",
        Some("rem-1"),
        &Value::Null,
        (409, "idempotency_key_reused"),
    )
    .await;
    // A malformed key is refused before anything is proposed.
    expect_refusal(
        &ada,
        &b,
        Method::POST,
        "/v1/store/devices/till-2/remove",
        Some("with space"),
        &Value::Null,
        (400, "invalid_idempotency_key"),
    )
    .await;
    assert!(
        members(&client, &a).await.contains(&"till-2".to_owned()),
        "a refused removal removes nothing"
    );
    // Without a key: removed already, answered with the first retirement, not a replay,
    // and said to be removed already.
    let (status, replayed, none) = send(&ada, &b, Method::POST, path, None, &Value::Null).await;
    assert_eq!((status, replayed), (200, false), "{none}");
    assert_eq!(none["outcome"], first["outcome"], "{none}");
    assert_eq!(none["already_removed"], true, "{none}");
    assert_eq!(none["retired_at_index"].as_u64(), Some(index), "{none}");
    // The retired till's allotment no longer counts: the whole budget goes to till-2.
    let (status, _, set) = send(
        &ada,
        &a,
        Method::PUT,
        "/v1/payments/exposure-allotments/till-2",
        None,
        &allotment(50_000),
    )
    .await;
    assert_eq!(status, 201, "{set}");
    for node in [a, b, c] {
        node.stop().expect("stopped");
    }
}
