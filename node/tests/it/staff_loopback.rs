//! Operators, PINs, shifts and tax rates through the store's Raft group, on a one-device
//! store founded with `posmesh init` (the founder leads alone): the good paths, and a table
//! of bad requests, each answered with a precise code and changing nothing (the Raft
//! state's lists and the applied index are compared before and after).

use super::consensus_loopback::{post, raft, wait_leader};
use super::support;
use serde_json::{json, Value};
use std::process::Command;

async fn get(client: &reqwest::Client, api: &str, path: &str) -> Value {
    support::get_json(client, &format!("http://{api}{path}")).await
}

/// `POST /v1/operators/{operator}/verify-pin` with `pin` on `node`.
async fn verify_pin(
    client: &reqwest::Client,
    node: &posmesh_node::node_process::NodeProcess,
    operator: &str,
    pin: &str,
) -> (u16, Value) {
    let path = format!("/v1/operators/{operator}/verify-pin");
    post(client, node, &path, "", json!({"pin": pin})).await
}

/// A store `s1` of one device `till-1` founded with `posmesh init` in `d`, led by it.
pub(super) async fn one_device_store(
    client: &reqwest::Client,
    d: &std::path::Path,
) -> posmesh_node::node_process::NodeProcess {
    support::issue_identities(d, &[("s1", "till-1")], |device| {
        d.join(format!("{device}-id"))
    });
    let status = Command::new(support::binary())
        .args([
            "init",
            "--store-id",
            "s1",
            "--device-id",
            "till-1",
            "--data-dir",
        ])
        .arg(d.join("till-1"))
        .status()
        .expect("init runs");
    assert!(status.success());
    let a = support::start_mesh_node_with(d, "s1", "till-1", "127.0.0.1:0", &[], &[]);
    wait_leader(client, &[&a], 1, None).await;
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_shifts_and_tax_rates_are_store_wide_decisions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let client = support::http_client();
    let a = one_device_store(&client, d).await;

    let (code, set) = post(
        &client,
        &a,
        "/v1/operators",
        "",
        json!({"operator_id": "bob", "name": "Bob", "role": "cashier", "pin": "1357"}),
    )
    .await;
    assert_eq!(code, 201, "{set}");
    assert_eq!(set["outcome"]["role"], "cashier");
    let (code, ok) = verify_pin(&client, &a, "bob", "1357").await;
    assert_eq!((code, ok["role"].as_str()), (200, Some("cashier")), "{ok}");
    let (code, _) = post(
        &client,
        &a,
        "/v1/shifts",
        "open-sh-1",
        json!({"shift_id": "sh-1", "operator_id": "bob", "opening_float_minor": 10000, "currency": "GBP"}),
    )
    .await;
    assert_eq!(code, 201);
    let (code, _) = post(
        &client,
        &a,
        "/v1/tax-rates",
        "tax-1",
        json!({"version": 1, "effective_at": "2026-01-01T00:00:00Z", "rates_bps": {"standard": 2000}}),
    )
    .await;
    assert_eq!(code, 201);
    let shifts = get(&client, &a.api, "/v1/shifts").await;
    assert_eq!(shifts["sh-1"]["device_id"], "till-1", "{shifts}");
    assert_eq!(shifts["sh-1"]["opening_float_minor"], 10000);
    let operators = get(&client, &a.api, "/v1/operators").await;
    assert!(
        !operators.to_string().contains("argon2"),
        "no hash listed: {operators}"
    );

    let snapshot = |client: reqwest::Client, api: String| async move {
        (
            get(&client, &api, "/v1/operators").await,
            get(&client, &api, "/v1/shifts").await,
            get(&client, &api, "/v1/tax-rates").await,
        )
    };
    let before = snapshot(client.clone(), a.api.clone()).await;
    let bob =
        |pin: &str| json!({"operator_id": "bob", "name": "Bob", "role": "manager", "pin": pin});
    let shift = |id: &str, operator: &str, float: i64, currency: &str| json!({"shift_id": id, "operator_id": operator, "opening_float_minor": float, "currency": currency});
    let tax = |version: u64, at: &str, rate: u32| json!({"version": version, "effective_at": at, "rates_bps": {"standard": rate}});
    let cases: Vec<(&str, Value, u16, &str, Option<&str>)> = vec![
        ("/v1/operators", bob("12"), 422, "invalid_pin", Some("pin")),
        (
            "/v1/operators",
            bob("12ab"),
            422,
            "invalid_pin",
            Some("pin"),
        ),
        (
            "/v1/operators",
            json!({"operator_id": "bob", "name": "Bob", "role": "boss", "pin": "1234"}),
            400,
            "invalid_field",
            Some("role"),
        ),
        (
            "/v1/operators",
            json!({"operator_id": "", "name": "Bob", "role": "cashier", "pin": "1234"}),
            422,
            "invalid_operator_id",
            Some("operator_id"),
        ),
        (
            "/v1/operators",
            json!({"operator_id": "bob smith", "name": "Bob", "role": "cashier", "pin": "1234"}),
            422,
            "invalid_operator_id",
            Some("operator_id"),
        ),
        (
            "/v1/operators/bob/verify-pin",
            json!({"pin": "9999"}),
            401,
            "pin_mismatch",
            Some("pin"),
        ),
        (
            "/v1/operators/nobody/verify-pin",
            json!({"pin": "1357"}),
            404,
            "operator_not_found",
            None,
        ),
        (
            "/v1/shifts",
            shift("sh-2", "bob", 0, "GBP"),
            409,
            "shift_already_open",
            None,
        ),
        (
            "/v1/shifts",
            shift("sh-1", "bob", 0, "GBP"),
            409,
            "shift_exists",
            Some("shift_id"),
        ),
        (
            "/v1/shifts",
            shift("sh-3", "nobody", 0, "GBP"),
            404,
            "operator_not_found",
            Some("operator_id"),
        ),
        (
            "/v1/shifts",
            shift("sh-3", "bob", -1, "GBP"),
            422,
            "invalid_amount",
            Some("opening_float_minor"),
        ),
        (
            "/v1/shifts",
            shift("sh-3", "bob", 0, "EUR"),
            422,
            "currency_mismatch",
            Some("currency"),
        ),
        (
            "/v1/shifts/nope/close",
            Value::Null,
            404,
            "shift_not_found",
            None,
        ),
        (
            "/v1/tax-rates",
            tax(1, "2026-02-01T00:00:00Z", 2000),
            409,
            "tax_version_not_newer",
            Some("version"),
        ),
        (
            "/v1/tax-rates",
            tax(2, "2025-01-01T00:00:00Z", 2000),
            409,
            "tax_version_not_newer",
            Some("version"),
        ),
        (
            "/v1/tax-rates",
            tax(2, "2026-02-01T00:00:00Z", 10_001),
            422,
            "invalid_tax_rate",
            Some("rates_bps"),
        ),
        (
            "/v1/tax-rates",
            tax(2, "next week", 2000),
            422,
            "invalid_time",
            Some("effective_at"),
        ),
        (
            "/v1/tax-rates",
            json!({"version": 2, "effective_at": "2026-02-01T00:00:00Z", "rates_bps": {}}),
            422,
            "invalid_tax_classes",
            Some("rates_bps"),
        ),
    ];
    for (case, (path, body, status, code, field)) in cases.into_iter().enumerate() {
        let key = format!("bad-{case}");
        let (got, answer) = post(&client, &a, path, &key, body.clone()).await;
        assert_eq!(
            (
                got,
                answer["error"]["code"].as_str(),
                answer["error"]["field"].as_str()
            ),
            (status, Some(code), field),
            "{path} {body}: {answer}"
        );
    }
    let after = snapshot(client.clone(), a.api.clone()).await;
    assert_eq!(before, after, "refused requests changed nothing");
    let (code, closed) = post(&client, &a, "/v1/shifts/sh-1/close", "close-1", Value::Null).await;
    assert_eq!(code, 201, "{closed}");
    let (code, again) = post(&client, &a, "/v1/shifts/sh-1/close", "close-2", Value::Null).await;
    assert_eq!(
        (code, again["error"]["code"].as_str()),
        (409, Some("shift_already_closed"))
    );
    assert!(raft(&client, &a).await["applied_index"].as_u64() > Some(3));
    // One wrong PIN above, four more: bob is locked out, even with his right PIN.
    for _ in 0..4 {
        let (code, _) = verify_pin(&client, &a, "bob", "0000").await;
        assert_eq!(code, 401);
    }
    let (code, locked) = verify_pin(&client, &a, "bob", "1357").await;
    assert_eq!(
        (code, locked["error"]["code"].as_str()),
        (429, Some("pin_locked")),
        "{locked}"
    );
}
