//! Idempotency of store-wide writes decided through the Raft group, with the sales API's
//! convention: an `Idempotency-Key` is required (400 `missing_idempotency_key`); the same
//! key with the same request answers the first outcome again (200, `Idempotent-Replayed:
//! true`, the same body); the same key with another request is refused (409
//! `idempotency_key_reused`) and changes nothing. Gift-card issue and redemption, shift
//! opening and close, tax rates and day close, on a one-device store; the recorded keys
//! survive kill -9.

use super::consensus_loopback::wait_leader;
use super::staff_loopback::one_device_store;
use super::support;
use posmesh_node::node_process::NodeProcess;
use serde_json::{json, Value};

/// `POST path` with `body`, with `key` as Idempotency-Key when given: (status, replay
/// header present, JSON answer).
async fn post(
    client: &reqwest::Client,
    node: &NodeProcess,
    path: &str,
    key: Option<&str>,
    body: &Value,
) -> (u16, bool, Value) {
    support::send_keyed(client, node, reqwest::Method::POST, path, key, body).await
}

/// The same request twice, then the key with `other` at `other_path`, then no key: asserts
/// the convention and returns the first answer.
async fn check_convention(
    client: &reqwest::Client,
    node: &NodeProcess,
    path: &str,
    other_path: &str,
    key: &str,
    body: &Value,
    other: &Value,
) -> Value {
    let (status, replayed, first) = post(client, node, path, Some(key), body).await;
    assert_eq!((status, replayed), (201, false), "{path}: {first}");
    let (status, replayed, mut again) = post(client, node, path, Some(key), body).await;
    assert_eq!((status, replayed), (200, true), "{path} retried: {again}");
    // A redemption's outcome also says so in the body (`replayed: true`); nothing else differs.
    if let Some(flag) = again["outcome"].get_mut("replayed") {
        assert_eq!(*flag, json!(true), "{path}: a redemption's replay says so");
        *flag = first["outcome"]["replayed"].clone();
    }
    assert_eq!(again, first, "{path}: a replay answers the first outcome");
    let (status, _, reused) = post(client, node, other_path, Some(key), other).await;
    assert_eq!(
        (
            status,
            reused["error"]["code"].as_str(),
            reused["error"]["field"].as_str()
        ),
        (409, Some("idempotency_key_reused"), Some("Idempotency-Key")),
        "{other_path} {other}: {reused}"
    );
    let (status, _, missing) = post(client, node, path, None, body).await;
    assert_eq!(
        (status, missing["error"]["code"].as_str()),
        (400, Some("missing_idempotency_key")),
        "{path} without a key: {missing}"
    );
    first
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_wide_writes_replay_a_retry_and_refuse_a_reused_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = support::http_client();
    let a = one_device_store(&client, dir.path()).await;
    // Gift-card issue.
    let card = json!({"card_id": "gc-1", "amount_minor": 5000, "currency": "GBP"});
    let other_card = json!({"card_id": "gc-1", "amount_minor": 9000, "currency": "GBP"});
    let issued = check_convention(
        &client,
        &a,
        "/v1/gift-cards",
        "/v1/gift-cards",
        "issue-gc-1",
        &card,
        &other_card,
    )
    .await;
    assert_eq!(issued["outcome"]["balance_minor"], 5000, "{issued}");
    // A new key for the same card is a second issue: refused as such.
    let (status, _, exists) = post(&client, &a, "/v1/gift-cards", Some("issue-gc-1b"), &card).await;
    assert_eq!(
        (status, exists["error"]["code"].as_str()),
        (409, Some("gift_card_exists"))
    );

    // Redemption: the key is the redemption's id.
    let redeemed = check_convention(
        &client,
        &a,
        "/v1/gift-cards/gc-1/redemptions",
        "/v1/gift-cards/gc-1/redemptions",
        "redeem-1",
        &json!({"amount_minor": 1200}),
        &json!({"amount_minor": 1300}),
    )
    .await;
    assert_eq!(
        redeemed["outcome"]["balance_after_minor"], 3800,
        "{redeemed}"
    );
    // A key shaped like a sale's gift-card tender id is refused: it would meet that
    // tender's redemption in the store's deduplication (one debit for two payments).
    let (status, _, reserved) = post(
        &client,
        &a,
        "/v1/gift-cards/gc-1/redemptions",
        Some("sale:till-1:abc#0"),
        &json!({"amount_minor": 100}),
    )
    .await;
    assert_eq!(
        (status, reserved["error"]["code"].as_str()),
        (400, Some("invalid_idempotency_key")),
        "{reserved}"
    );
    let balance = support::get_json(&client, &format!("http://{}/v1/gift-cards/gc-1", a.api)).await;
    assert_eq!(balance["balance_minor"], 3800, "taken once: {balance}");

    // Shift opening (bob, the store's first operator, is an admin: set without
    // authorisation).
    let (status, _, set) = post(
        &client,
        &a,
        "/v1/operators",
        None,
        &json!({"operator_id": "bob", "name": "Bob", "role": "admin", "pin": "1357"}),
    )
    .await;
    assert_eq!(status, 201, "{set}");
    // From here on the store has an operator: guarded operations are asked by bob.
    let client = support::http_client_as(("bob", "1357"));
    let shift = |id: &str, float: i64| json!({"shift_id": id, "operator_id": "bob", "opening_float_minor": float, "currency": "GBP"});
    let opened = check_convention(
        &client,
        &a,
        "/v1/shifts",
        "/v1/shifts",
        "open-1",
        &shift("sh-1", 10_000),
        &shift("sh-1", 20_000),
    )
    .await;
    assert_eq!(opened["outcome"]["shift_id"], "sh-1", "{opened}");
    let shifts = support::get_json(&client, &format!("http://{}/v1/shifts", a.api)).await;
    assert_eq!(shifts["sh-1"]["opening_float_minor"], 10_000, "{shifts}");
    // Shift close: the key for another shift's close is another request.
    let closed_shift = check_convention(
        &client,
        &a,
        "/v1/shifts/sh-1/close",
        "/v1/shifts/sh-9/close",
        "close-sh-1",
        &Value::Null,
        &Value::Null,
    )
    .await;
    assert_eq!(
        closed_shift["outcome"]["shift_id"], "sh-1",
        "{closed_shift}"
    );

    // Tax rates.
    let rates = |rate: u32| json!({"version": 1, "effective_at": "2026-01-01T00:00:00Z", "rates_bps": {"standard": rate}});
    let set = check_convention(
        &client,
        &a,
        "/v1/tax-rates",
        "/v1/tax-rates",
        "tax-1",
        &rates(2000),
        &rates(500),
    )
    .await;
    assert_eq!(set["outcome"]["version"], 1, "{set}");
    let versions = support::get_json(&client, &format!("http://{}/v1/tax-rates", a.api)).await;
    assert_eq!(versions.as_array().map(Vec::len), Some(1), "{versions}");
    assert_eq!(versions[0]["rates_bps"]["standard"], 2000, "{versions}");

    // Day close: the replay carries the first close's cut, even after another sale.
    let sale =
        support::post_created(&client, &a.api, "/v1/sales", "s-1", &support::valid_sale()).await;
    let today = sale["business_date"].as_str().expect("date").to_owned();
    let close = format!("/v1/days/{today}/close");
    let (status, replayed, closed) = post(&client, &a, &close, Some("close-1"), &Value::Null).await;
    assert_eq!((status, replayed), (201, false), "{closed}");
    assert_eq!(closed["cut"], json!({"till-1": 1}), "{closed}");
    support::post_created(&client, &a.api, "/v1/sales", "s-2", &support::valid_sale()).await;
    let (status, replayed, again) = post(&client, &a, &close, Some("close-1"), &Value::Null).await;
    assert_eq!((status, replayed, &again), (200, true, &closed));
    // The key for another day's close.
    let (status, _, reused) = post(
        &client,
        &a,
        "/v1/days/2020-01-01/close",
        Some("close-1"),
        &Value::Null,
    )
    .await;
    assert_eq!(
        (status, reused["error"]["code"].as_str()),
        (409, Some("idempotency_key_reused")),
        "{reused}"
    );
    let (status, _, missing) = post(&client, &a, &close, None, &Value::Null).await;
    assert_eq!(
        (status, missing["error"]["code"].as_str()),
        (400, Some("missing_idempotency_key"))
    );
    let (status, _, twice) = post(&client, &a, &close, Some("close-2"), &Value::Null).await;
    assert_eq!(
        (status, twice["error"]["code"].as_str()),
        (409, Some("day_already_closed")),
        "{twice}"
    );
    let z = support::get_json(
        &client,
        &format!("http://{}/v1/reports/z/2020-01-01", a.api),
    )
    .await;
    assert_eq!(
        z["error"]["code"], "day_not_closed",
        "the reused key closed nothing: {z}"
    );

    // The keys survive kill -9: after a restart a retry still replays the first answer.
    a.kill().expect("SIGKILL till-1");
    let a = support::start_mesh_node_with(dir.path(), "s1", "till-1", "127.0.0.1:0", &[], &[]);
    wait_leader(&client, &[&a], 1, None).await;
    let (status, replayed, again) = post(&client, &a, &close, Some("close-1"), &Value::Null).await;
    assert_eq!(
        (status, replayed, &again),
        (200, true, &closed),
        "after restart"
    );
    let (status, replayed, again) =
        post(&client, &a, "/v1/gift-cards", Some("issue-gc-1"), &card).await;
    assert_eq!(
        (status, replayed, &again),
        (200, true, &issued),
        "after restart"
    );
}
