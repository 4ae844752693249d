//! Tax rates committed through the store's Raft group price sales (`POST /v1/tax-rates`):
//! a sale after a version's effective time is taxed at its rates, one before at the
//! catalog's (or the previous version's), each sale records the version that priced it;
//! bad versions are refused with precise codes and change nothing.

use super::consensus_loopback::post;
use super::staff_loopback::one_device_store;
use super::support;
use serde_json::{json, Value};

/// RFC 3339 of now + `offset_s` seconds.
fn at(offset_s: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(offset_s))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// 2 × Bread (cold food: 0 % take-away, 20 % eat-in) + 1 × Coffee (hot: 20 %), at `when`.
fn sale(consumption: &str, when: Option<String>) -> Value {
    let mut body = support::valid_sale();
    body["consumption"] = json!(consumption);
    if let Some(when) = when {
        body["occurred_at"] = json!(when);
    }
    body
}

/// (tax version, [(line rate bp, line tax minor)], sale tax minor) of a recorded sale.
fn taxed(entry: &Value) -> (u64, Vec<(u64, i64)>, i64) {
    let sale = &entry["sale"];
    let lines = sale["lines"]
        .as_array()
        .unwrap_or_else(|| panic!("a sale: {entry}"))
        .iter()
        .map(|l| {
            (
                l["tax_rate_bp"].as_u64().expect("rate"),
                l["tax_minor"].as_i64().expect("tax"),
            )
        })
        .collect();
    (
        sale["tax_version"].as_u64().expect("tax_version"),
        lines,
        sale["tax_minor"].as_i64().expect("tax"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_tax_rates_price_sales_from_their_effective_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = support::http_client();
    let a = one_device_store(&client, dir.path()).await;
    let record = |key: &'static str, body: Value| {
        let (client, api) = (client.clone(), a.api.clone());
        async move { support::post_created(&client, &api, "/v1/sales", key, &body).await }
    };

    // No version yet: the catalog's rates (coffee 2.50 at 20 % = 0.42; bread zero-rated).
    let catalog_rates = (0, vec![(0, 0), (2000, 42)], 42);
    assert_eq!(
        taxed(&record("s-0", sale("take_away", None)).await),
        catalog_rates
    );

    // Version 1, in force since an hour ago: hot food/drink 5 %, cold food eaten in 12.5 %.
    let (code, set) = post(
        &client,
        &a,
        "/v1/tax-rates",
        "tax-1",
        json!({"version": 1, "effective_at": at(-3600),
               "rates_bps": {"hot_food_drink": 500, "cold_food:eat_in": 1250}}),
    )
    .await;
    assert_eq!(code, 201, "{set}");
    // Version 2 from an hour ahead: hot food/drink 0 %.
    let (code, set) = post(
        &client,
        &a,
        "/v1/tax-rates",
        "tax-2",
        json!({"version": 2, "effective_at": at(3600), "rates_bps": {"hot_food_drink": 0}}),
    )
    .await;
    assert_eq!(code, 201, "{set}");

    // A sale now: version 1 (coffee 2.50 × 5/105 = 0.119 → 0.12; bread still 0 % to take away).
    assert_eq!(
        taxed(&record("s-1", sale("take_away", None)).await),
        (1, vec![(0, 0), (500, 12)], 12)
    );
    // Eaten in: bread 6.00 × 1250/11250 = 0.667 → 0.67.
    assert_eq!(
        taxed(&record("s-2", sale("eat_in", None)).await),
        (1, vec![(1250, 67), (500, 12)], 79)
    );
    // A sale that happened two hours ago (before version 1): the catalog's rates.
    assert_eq!(
        taxed(&record("s-3", sale("take_away", Some(at(-7200)))).await),
        catalog_rates
    );
    // A sale dated after version 2's effective time: version 2 (cold food keeps the
    // catalog's rates: version 2 does not name it).
    assert_eq!(
        taxed(&record("s-4", sale("eat_in", Some(at(7200)))).await),
        (2, vec![(2000, 100), (0, 0)], 100)
    );
    // The journal keeps the version: a read of the stored sale says the same.
    let stored = support::get_json(&client, &format!("http://{}/v1/sales/till-1/2", a.api)).await;
    assert_eq!(taxed(&stored), (1, vec![(0, 0), (500, 12)], 12), "{stored}");
    // GET /v1/catalog stays the catalog as published (clients parse it as a catalog file).
    let catalog = support::get_json(&client, &format!("http://{}/v1/catalog", a.api)).await;
    assert!(catalog.get("tax_version").is_none(), "{catalog}");

    // Bad versions: a precise code each, nothing changes.
    let tax_rates = format!("http://{}/v1/tax-rates", a.api);
    let before = support::get_json(&client, &tax_rates).await;
    assert_eq!(before.as_array().map(Vec::len), Some(2), "{before}");
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (
            json!({"version": 3, "effective_at": at(7200), "rates_bps": {"reduced": 500}}),
            422,
            "unknown_tax_class",
            "rates_bps",
        ),
        (
            json!({"version": 3, "effective_at": at(7200), "rates_bps": {"standard:inside": 500}}),
            422,
            "unknown_tax_class",
            "rates_bps",
        ),
        (
            json!({"version": 3, "effective_at": at(7200), "rates_bps": {"standard": 10_001}}),
            422,
            "invalid_tax_rate",
            "rates_bps",
        ),
        (
            json!({"version": 3, "effective_at": at(7200), "rates_bps": {}}),
            422,
            "invalid_tax_classes",
            "rates_bps",
        ),
        (
            json!({"version": 2, "effective_at": at(7200), "rates_bps": {"standard": 500}}),
            409,
            "tax_version_not_newer",
            "version",
        ),
        (
            json!({"version": 3, "effective_at": at(60), "rates_bps": {"standard": 500}}),
            409,
            "tax_version_not_newer",
            "version",
        ),
        (
            json!({"version": 3, "effective_at": "tomorrow", "rates_bps": {"standard": 500}}),
            422,
            "invalid_time",
            "effective_at",
        ),
        (
            json!({"version": 3, "effective_at": at(7200), "rates_bps": {"standard": -1}}),
            400,
            "invalid_field",
            "rates_bps.standard",
        ),
    ];
    for (case, (body, status, code, field)) in cases.into_iter().enumerate() {
        let key = format!("bad-{case}");
        let (got, answer) = post(&client, &a, "/v1/tax-rates", &key, body.clone()).await;
        assert_eq!(
            (
                got,
                answer["error"]["code"].as_str(),
                answer["error"]["field"].as_str()
            ),
            (status, Some(code), Some(field)),
            "{body}: {answer}"
        );
    }
    assert_eq!(support::get_json(&client, &tax_rates).await, before);
}
