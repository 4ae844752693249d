//! Shared orders between real `posmesh device` processes on 127.0.0.1: an order created on
//! one till is edited on both at once and the edits merge; an acknowledged edit survives
//! SIGKILL; then the tills are partitioned, both close the same order and both refund the
//! same sale in full — after healing, every device settles the double close the same way
//! (the earlier sale stands, the other till refunds its own sale, both raise the alert) and
//! both raise the over-refund alert, with identical ledgers and orders everywhere.

use super::support;
use posmesh_node::node_process::NodeProcess;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// Generous bound for convergence (well under a second here).
const CONVERGE_LIMIT: Duration = Duration::from_secs(60);

fn start(dir: &Path, device: &str, peers: &[String]) -> NodeProcess {
    support::start_mesh_node(dir, "s1", device, "127.0.0.1:0", peers)
}

async fn get(client: &reqwest::Client, node: &NodeProcess, path: &str) -> (u16, Value) {
    get_at(client, &node.api, path).await
}

async fn get_at(client: &reqwest::Client, api: &str, path: &str) -> (u16, Value) {
    let response = client
        .get(format!("http://{api}{path}"))
        .send()
        .await
        .expect("answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn send(
    client: &reqwest::Client,
    node: &NodeProcess,
    method: reqwest::Method,
    path: &str,
    key: Option<&str>,
    body: &Value,
) -> (u16, Value) {
    let mut request = client
        .request(method, format!("http://{}{path}", node.api))
        .json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.expect("answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Polls `check` on every node until it holds for all, or fails naming the last state.
async fn wait_for<F, Fut>(what: &str, nodes: &[&NodeProcess], check: F)
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let started = Instant::now();
    loop {
        let mut failures = Vec::new();
        for node in nodes {
            if let Err(why) = check(node.api.clone()).await {
                failures.push(why);
            }
        }
        if failures.is_empty() {
            return;
        }
        assert!(started.elapsed() < CONVERGE_LIMIT, "{what}: {failures:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until both nodes show equal ledger and order digests.
async fn converged(client: &reqwest::Client, a: &NodeProcess, b: &NodeProcess) {
    let started = Instant::now();
    loop {
        let sa = support::node_status(client, a).await;
        let sb = support::node_status(client, b).await;
        let same = sa["replication"]["digest"] == sb["replication"]["digest"]
            && sa["orders"]["digest"] == sb["orders"]["digest"];
        if same {
            return;
        }
        assert!(
            started.elapsed() < CONVERGE_LIMIT,
            "no convergence: {} / {}",
            sa["orders"],
            sb["orders"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Closes the order at `path` on `node` (cash) and refunds all of `sale_id` there; returns
/// the closing sale.
async fn close_and_refund(
    client: &reqwest::Client,
    node: &NodeProcess,
    path: &str,
    sale_id: &str,
    tag: &str,
) -> Value {
    let close = json!({"currency": "GBP", "tenders": [{"kind": "cash", "amount_minor": 2000}]});
    let (status, closed) = send(
        client,
        node,
        reqwest::Method::POST,
        &format!("{path}/close"),
        Some(&format!("close-{tag}")),
        &close,
    )
    .await;
    assert_eq!(status, 201, "{closed}");
    let refund =
        json!({"lines": [{"line_index": 0, "quantity": 2}, {"line_index": 1, "quantity": 1}]});
    let (status, answer) = send(
        client,
        node,
        reqwest::Method::POST,
        &format!("/v1/sales/{sale_id}/refunds"),
        Some(&format!("refund-{tag}")),
        &refund,
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    closed
}

fn skus(order: &Value) -> Vec<(String, i64)> {
    let mut lines: Vec<(String, i64)> = order["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| {
            (
                l["sku"].as_str().expect("sku").to_owned(),
                l["quantity"].as_i64().expect("quantity"),
            )
        })
        .collect();
    lines.sort();
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_merge_and_a_double_close_and_an_over_refund_are_settled_on_heal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    support::issue_identities_in(d, &[("s1", "till-1"), ("s1", "till-2")]);
    let client = support::http_client();
    let a = start(d, "till-1", &[]);
    let a_mesh = support::mesh_addr(&client, &a).await;
    let b = start(d, "till-2", &[format!("till-1@{a_mesh}")]);
    let b_mesh = support::mesh_addr(&client, &b).await;

    // Created on till-1; a retry with the same key answers the same order.
    let body = json!({"table": "7", "lines": [{"sku": "BREAD", "quantity": 1}]});
    let (status, order) = send(
        &client,
        &a,
        reqwest::Method::POST,
        "/v1/orders",
        Some("tab-7"),
        &body,
    )
    .await;
    assert_eq!(status, 201, "{order}");
    let id = order["order_id"].as_str().expect("id").to_owned();
    let (status, again) = send(
        &client,
        &a,
        reqwest::Method::POST,
        "/v1/orders",
        Some("tab-7"),
        &body,
    )
    .await;
    assert_eq!((status, &again["order_id"]), (200, &order["order_id"]));
    let path = format!("/v1/orders/{id}");
    wait_for("order reaches till-2", &[&b], |api| {
        let (client, path) = (client.clone(), path.clone());
        async move {
            match get_at(&client, &api, &path).await {
                (200, _) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await;

    // Edits on both tills at once.
    let bread_line = order["lines"][0]["line_id"]
        .as_str()
        .expect("line")
        .to_owned();
    let (s1, _) = send(
        &client,
        &a,
        reqwest::Method::PATCH,
        &format!("{path}/lines/{bread_line}"),
        None,
        &json!({"quantity": 3}),
    )
    .await;
    let (s2, _) = send(
        &client,
        &b,
        reqwest::Method::POST,
        &format!("{path}/lines"),
        Some("b-coffee"),
        &json!({"sku": "COFFEE", "quantity": 2}),
    )
    .await;
    let (s3, _) = send(
        &client,
        &b,
        reqwest::Method::PATCH,
        &path,
        None,
        &json!({"customer": "Ann"}),
    )
    .await;
    assert_eq!((s1, s2, s3), (200, 201, 200));
    converged(&client, &a, &b).await;
    for node in [&a, &b] {
        let (_, order) = get(&client, node, &path).await;
        assert_eq!(
            skus(&order),
            vec![("BREAD".into(), 3), ("COFFEE".into(), 2)],
            "{order}"
        );
        assert_eq!(
            (order["table"].as_str(), order["customer"].as_str()),
            (Some("7"), Some("Ann"))
        );
        assert_eq!(order["status"], "open");
    }

    // An acknowledged edit survives SIGKILL of the till that made it.
    let (status, _) = send(
        &client,
        &a,
        reqwest::Method::POST,
        &format!("{path}/lines"),
        Some("a-tea"),
        &json!({"sku": "TEA", "quantity": 1}),
    )
    .await;
    assert_eq!(status, 201);
    a.kill().expect("SIGKILL");
    let a = start(d, "till-1", &[format!("till-2@{b_mesh}")]);
    let (_, order) = get(&client, &a, &path).await;
    assert!(
        skus(&order).contains(&("TEA".into(), 1)),
        "edit lost: {order}"
    );
    converged(&client, &a, &b).await;

    // A sale both tills hold, to refund twice during the partition.
    let sale = support::post_created(
        &client,
        &a.api,
        "/v1/sales",
        "sale-1",
        &support::valid_sale(),
    )
    .await;
    let sale_id = sale["id"].as_str().expect("sale id").to_owned();
    converged(&client, &a, &b).await;

    // Partition: till-2 goes down; till-1 closes the order and refunds the sale.
    b.stop().expect("stop till-2");
    let closed_a = close_and_refund(&client, &a, &path, &sale_id, "a").await;
    // Closed here: no more edits on till-1.
    let (status, error) = send(
        &client,
        &a,
        reqwest::Method::PATCH,
        &path,
        None,
        &json!({"table": "8"}),
    )
    .await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (409, Some("order_closed"))
    );

    // till-2 comes back alone (no peers) and does the same.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let b = start(d, "till-2", &[]);
    let closed_b = close_and_refund(&client, &b, &path, &sale_id, "b").await;

    // Heal: till-2 restarts knowing till-1.
    b.stop().expect("stop till-2");
    let b = start(
        d,
        "till-2",
        &[format!(
            "till-1@{a_mesh_now}",
            a_mesh_now = support::mesh_addr(&client, &a).await
        )],
    );
    let winner = closed_a["id"].as_str().expect("id").to_owned();
    let loser = closed_b["id"].as_str().expect("id").to_owned();
    wait_for("double close settled", &[&a, &b], |api| {
        let (client, loser, winner) = (client.clone(), loser.clone(), winner.clone());
        async move {
            let (_, alerts) = get_at(&client, &api, "/v1/alerts").await;
            let kinds: Vec<&str> = alerts["alerts"]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x["kind"].as_str()).collect())
                .unwrap_or_default();
            if !(kinds.contains(&"order_close_conflict") && kinds.contains(&"over_refund")) {
                return Err(format!("alerts {kinds:?}"));
            }
            let (_, loser_sale) = get_at(&client, &api, &format!("/v1/sales/{loser}")).await;
            let refunds = loser_sale["status"]["refunds"]
                .as_array()
                .map_or(0, Vec::len);
            let (_, winner_sale) = get_at(&client, &api, &format!("/v1/sales/{winner}")).await;
            let winner_refunds = winner_sale["status"]["refunds"]
                .as_array()
                .map_or(0, Vec::len);
            if refunds != 1 || winner_refunds != 0 {
                return Err(format!(
                    "loser refunds {refunds}, winner refunds {winner_refunds}"
                ));
            }
            Ok(())
        }
    })
    .await;
    converged(&client, &a, &b).await;
    for node in [&a, &b] {
        let (_, order) = get(&client, node, &path).await;
        assert_eq!(order["status"], "closed");
        let mut closed_by: Vec<String> = order["closed_by"]
            .as_array()
            .expect("closed_by")
            .iter()
            .map(|v| v.as_str().expect("id").to_owned())
            .collect();
        closed_by.sort();
        let mut want = vec![winner.clone(), loser.clone()];
        want.sort();
        assert_eq!(closed_by, want);
        let (_, alerts) = get(&client, node, "/v1/alerts").await;
        let conflict = alerts["alerts"]
            .as_array()
            .expect("alerts")
            .iter()
            .find(|x| x["kind"] == "order_close_conflict")
            .expect("conflict alert");
        assert!(
            conflict["message"]
                .as_str()
                .expect("message")
                .contains(&format!("sale {winner} stands")),
            "{conflict}"
        );
    }
    // The compensating refund is journaled on till-2 with its reason, and is listed everywhere.
    let (_, loser_sale) = get(&client, &a, &format!("/v1/sales/{loser}")).await;
    let refund_id = loser_sale["status"]["refunds"][0]
        .as_str()
        .expect("refund")
        .to_owned();
    assert!(refund_id.starts_with("till-2/"), "{refund_id}");
    let (_, refund_entry) = get(&client, &a, &format!("/v1/sales/{refund_id}")).await;
    assert!(
        refund_entry["reference"]["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("order_close_conflict")),
        "{refund_entry}"
    );
    for (node, dir) in [(&a, "till-1"), (&b, "till-2")] {
        let (ok, report) = support::verify_journal(&d.join(dir));
        assert!(ok, "{report}");
        let _ = node;
    }
    a.stop().expect("stop");
    b.stop().expect("stop");
}

/// One refused request: name, method, path, Idempotency-Key, body, status, code, field.
type Case = (
    &'static str,
    reqwest::Method,
    String,
    Option<&'static str>,
    Value,
    u16,
    &'static str,
    Option<&'static str>,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_order_requests_are_refused_precisely_and_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = support::start(&support::spec(dir.path()));
    let client = support::http_client();
    let body = json!({"lines": [{"sku": "BREAD", "quantity": 1}]});
    let (status, order) = send(
        &client,
        &node,
        reqwest::Method::POST,
        "/v1/orders",
        Some("o1"),
        &body,
    )
    .await;
    assert_eq!(status, 201);
    let id = order["order_id"].as_str().expect("id").to_owned();
    let line = order["lines"][0]["line_id"]
        .as_str()
        .expect("line")
        .to_owned();
    let (status, empty) = send(
        &client,
        &node,
        reqwest::Method::POST,
        "/v1/orders",
        Some("o2"),
        &json!({}),
    )
    .await;
    assert_eq!(status, 201);
    let empty_id = empty["order_id"].as_str().expect("id").to_owned();
    let before = support::node_status(&client, &node).await;

    use reqwest::Method as M;
    let p = format!("/v1/orders/{id}");
    let cases: Vec<Case> = vec![
        (
            "no key",
            M::POST,
            "/v1/orders".into(),
            None,
            json!({}),
            400,
            "missing_idempotency_key",
            Some("Idempotency-Key"),
        ),
        (
            "unknown sku",
            M::POST,
            "/v1/orders".into(),
            Some("k1"),
            json!({"lines": [{"sku": "NOPE", "quantity": 1}]}),
            422,
            "unknown_sku",
            Some("lines[0].sku"),
        ),
        (
            "zero quantity",
            M::POST,
            "/v1/orders".into(),
            Some("k2"),
            json!({"lines": [{"sku": "BREAD", "quantity": 0}]}),
            422,
            "quantity_out_of_range",
            Some("lines[0].quantity"),
        ),
        (
            "unknown field",
            M::POST,
            "/v1/orders".into(),
            Some("k3"),
            json!({"tabel": "1"}),
            400,
            "invalid_field",
            Some("tabel"),
        ),
        (
            "long table",
            M::POST,
            "/v1/orders".into(),
            Some("k4"),
            json!({"table": "x".repeat(101)}),
            422,
            "invalid_text",
            Some("table"),
        ),
        (
            "unknown order",
            M::GET,
            "/v1/orders/till-1-000000000000".into(),
            None,
            Value::Null,
            404,
            "order_not_found",
            None,
        ),
        (
            "add to unknown order",
            M::POST,
            "/v1/orders/nope/lines".into(),
            Some("k5"),
            json!({"sku": "BREAD", "quantity": 1}),
            404,
            "order_not_found",
            None,
        ),
        (
            "huge quantity",
            M::POST,
            format!("{p}/lines"),
            Some("k6"),
            json!({"sku": "BREAD", "quantity": 100_001}),
            422,
            "quantity_out_of_range",
            Some("quantity"),
        ),
        (
            "unknown line",
            M::PATCH,
            format!("{p}/lines/nope"),
            None,
            json!({"quantity": 2}),
            404,
            "line_not_found",
            None,
        ),
        (
            "bad line id",
            M::DELETE,
            format!("{p}/lines/NO%20PE"),
            None,
            Value::Null,
            404,
            "line_not_found",
            None,
        ),
        (
            "negative quantity",
            M::PATCH,
            format!("{p}/lines/{line}"),
            None,
            json!({"quantity": -1}),
            422,
            "quantity_out_of_range",
            Some("quantity"),
        ),
        (
            "nothing to change",
            M::PATCH,
            p.clone(),
            None,
            json!({}),
            422,
            "nothing_to_change",
            None,
        ),
        (
            "control char",
            M::PATCH,
            p.clone(),
            None,
            json!({"customer": "a\u{7}"}),
            422,
            "invalid_text",
            Some("customer"),
        ),
        (
            "close empty",
            M::POST,
            format!("/v1/orders/{empty_id}/close"),
            Some("k7"),
            json!({"currency": "GBP", "tenders": [{"kind": "cash", "amount_minor": 100}]}),
            422,
            "empty_order",
            None,
        ),
        (
            "close short",
            M::POST,
            format!("{p}/close"),
            Some("k8"),
            json!({"currency": "GBP", "tenders": [{"kind": "cash", "amount_minor": 1}]}),
            422,
            "tenders_short",
            None,
        ),
        (
            "close currency",
            M::POST,
            format!("{p}/close"),
            Some("k9"),
            json!({"currency": "EUR", "tenders": [{"kind": "cash", "amount_minor": 1000}]}),
            422,
            "currency_mismatch",
            None,
        ),
        (
            "list status",
            M::GET,
            "/v1/orders?status=maybe".into(),
            None,
            Value::Null,
            400,
            "invalid_query",
            Some("status"),
        ),
    ];
    for (name, method, path, key, body, status, code, field) in cases {
        let mut request = client.request(method.clone(), format!("http://{}{path}", node.api));
        if !body.is_null() {
            request = request.json(&body);
        }
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.expect("answers");
        let got = response.status().as_u16();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(got, status, "{name}: {answer}");
        assert_eq!(
            answer["error"]["code"].as_str(),
            Some(code),
            "{name}: {answer}"
        );
        if let Some(field) = field {
            assert_eq!(
                answer["error"]["field"].as_str(),
                Some(field),
                "{name}: {answer}"
            );
        }
    }
    let after = support::node_status(&client, &node).await;
    assert_eq!(
        before["orders"], after["orders"],
        "a refused request changed an order"
    );
    assert_eq!(before["journal"]["last_seq"], after["journal"]["last_seq"]);

    // A retried line addition answers the line; the same key for another item is a conflict.
    for (sku, want_status, want_code) in [
        ("TEA", 201, None),
        ("TEA", 200, None),
        ("BREAD", 409, Some("idempotency_key_reused")),
    ] {
        let body = json!({"sku": sku, "quantity": 1});
        let lines = format!("{p}/lines");
        let (status, answer) = send(&client, &node, M::POST, &lines, Some("again"), &body).await;
        assert_eq!(status, want_status, "{sku}: {answer}");
        if want_code.is_some() {
            assert_eq!(answer["error"]["code"].as_str(), want_code);
        }
    }

    // Closed: a second close and any edit are refused; the sale carries the lines.
    let close = json!({"currency": "GBP", "tenders": [{"kind": "cash", "amount_minor": 1000}]});
    let (status, sale) = send(
        &client,
        &node,
        M::POST,
        &format!("{p}/close"),
        Some("c1"),
        &close,
    )
    .await;
    assert_eq!(status, 201, "{sale}");
    assert_eq!(sale["sale"]["lines"][0]["sku"], "BREAD");
    assert_eq!(sale["sale"]["lines"][1]["sku"], "TEA");
    let (status, replay) = send(
        &client,
        &node,
        M::POST,
        &format!("{p}/close"),
        Some("c1"),
        &close,
    )
    .await;
    assert_eq!((status, &replay["id"]), (200, &sale["id"]));
    let (status, error) = send(
        &client,
        &node,
        M::POST,
        &format!("{p}/close"),
        Some("c2"),
        &close,
    )
    .await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (409, Some("order_closed"))
    );
    let (status, error) = send(
        &client,
        &node,
        M::POST,
        &format!("{p}/lines"),
        Some("c3"),
        &json!({"sku": "BREAD", "quantity": 1}),
    )
    .await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (409, Some("order_closed"))
    );
    let (_, open) = get(&client, &node, "/v1/orders").await;
    assert_eq!(
        open["orders"].as_array().map(Vec::len),
        Some(1),
        "only the empty order is open"
    );
    let (_, closed) = get(&client, &node, "/v1/orders?status=closed").await;
    assert_eq!(closed["orders"][0]["order_id"].as_str(), Some(id.as_str()));
    node.stop().expect("stop");
}
