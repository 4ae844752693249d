//! Late entries after a day close are carried into the next close's Z-report, once: on a
//! one-device store, day D is closed, then a sale dated D is recorded (beyond D's cut, as a
//! partitioned till's sale arriving late would be); D's report lists it as late, and the
//! report of the next day closed carries it, labelled with its own date; a third close does
//! not carry it again.

use super::consensus_loopback::post;
use super::staff_loopback::one_device_store;
use super::support;
use serde_json::{json, Value};

fn sale_on(date: &str) -> Value {
    let mut sale = support::valid_sale();
    sale["occurred_at"] = json!(format!("{date}T12:00:00Z"));
    sale
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_entry_is_carried_into_the_next_z_report_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = support::http_client();
    let a = one_device_store(&client, dir.path()).await;
    let today = chrono::Utc::now().date_naive();
    let day = |back: i64| {
        (today - chrono::Duration::days(back))
            .format("%Y-%m-%d")
            .to_string()
    };
    let (d1, d2, d3) = (day(3), day(2), day(1));
    let z = |date: String| {
        let client = client.clone();
        let api = a.api.clone();
        async move { support::get_json(&client, &format!("http://{api}/v1/reports/z/{date}")).await }
    };

    support::post_created(&client, &a.api, "/v1/sales", "s-d1", &sale_on(&d1)).await;
    let (status, closed) = post(
        &client,
        &a,
        &format!("/v1/days/{d1}/close"),
        "close-d1",
        Value::Null,
    )
    .await;
    assert_eq!(status, 201, "{closed}");
    // Recorded after the close, dated the closed day: late for d1.
    let late = support::post_created(&client, &a.api, "/v1/sales", "s-late", &sale_on(&d1)).await;
    let late_id = format!("till-1/{}", late["seq"]);
    support::post_created(&client, &a.api, "/v1/sales", "s-d2", &sale_on(&d2)).await;

    let z1 = z(d1.clone()).await;
    assert_eq!(z1["totals"]["sales"], 1, "{z1}");
    assert_eq!(z1["late_entries"], json!([late_id]), "{z1}");

    let (status, _) = post(
        &client,
        &a,
        &format!("/v1/days/{d2}/close"),
        "close-d2",
        Value::Null,
    )
    .await;
    assert_eq!(status, 201);
    let z2 = z(d2.clone()).await;
    assert_eq!(
        z2["totals"]["sales"], 1,
        "only d2's own sale in its totals: {z2}"
    );
    assert_eq!(z2["carried_late_entries"], json!([late_id]), "{z2}");
    assert_eq!(z2["carried_late_totals"][0]["business_date"], d1, "{z2}");
    assert_eq!(z2["carried_late_totals"][0]["sales"], 1, "{z2}");

    let (status, _) = post(
        &client,
        &a,
        &format!("/v1/days/{d3}/close"),
        "close-d3",
        Value::Null,
    )
    .await;
    assert_eq!(status, 201);
    let z3 = z(d3).await;
    assert_eq!(
        z3["carried_late_entries"],
        json!([]),
        "carried once only: {z3}"
    );
}
