//! Card payments between real `posmesh device` processes and the `posmesh-acquirer`
//! simulator on 127.0.0.1:
//! - online: approved (masked PAN journaled), a retry charges once, a decline and a timeout
//!   (reversed) are refused with 402, bad card input is 422 and changes nothing;
//! - acquirer down: offline approvals under the limits, refusals over them with the
//!   cashier's reason (floor limit, device cap, allotment, no allotment);
//! - acquirer back: the Raft leader forwards every offline payment of the store exactly
//!   once (counted at the simulator), also when the forwarding leader is SIGKILLed
//!   mid-batch; every queue empties and the card data is deleted everywhere;
//! - a device holding unforwarded payments is destroyed (data directory deleted): another
//!   device forwards them from its escrow;
//! - a device SIGKILLed with a 0200 in flight reverses it when restarted, and refuses the
//!   retry of that sale (reversed earlier, or unresolved while the acquirer is away);
//! - afterwards no data directory holds a clear PAN (raw bytes of every file).

use super::support;
use posmesh_node::node_process::NodeProcess;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Generous bound for elections, replication and forwarding on a loaded CI machine.
const LIMIT: Duration = Duration::from_secs(60);

/// A Luhn-valid 16-digit test PAN `411111` + 9 digits of `n` + check digit.
fn test_pan(n: u64) -> String {
    let body = format!("411111{:09}", n % 1_000_000_000);
    let mut sum = 0;
    for (i, c) in body.chars().rev().enumerate() {
        let mut d = c.to_digit(10).expect("digit");
        if i % 2 == 0 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    format!("{body}{}", (10 - sum % 10) % 10)
}

/// 2 × Bread (3.00) + 1 × Coffee (2.50) paid by `pan`: 8.50.
fn card_sale(pan: &str, breads: u32) -> Value {
    let amount = 300 * i64::from(breads) + 250;
    json!({
        "currency": "GBP",
        "lines": [{"sku": "BREAD", "quantity": breads}, {"sku": "COFFEE", "quantity": 1}],
        "tenders": [{"kind": "card", "amount_minor": amount,
                     "card": {"pan": pan, "expiry": "3012"}}]
    })
}

/// The acquirer simulator as a child process on a fixed loopback port.
struct Acquirer {
    child: Child,
    stats: PathBuf,
}

impl Acquirer {
    /// Starts the simulator on `port`, giving up the port's reservation just before.
    fn start(port: &mut AcquirerPort, dir: &Path, extra: &[&str]) -> Acquirer {
        drop(port.held.take());
        let addr = port.addr.as_str();
        let binary = support::binary()
            .parent()
            .expect("target dir")
            .join("posmesh-acquirer");
        let stats = dir.join(format!("acquirer-{}.json", rand_suffix()));
        let child = Command::new(binary)
            .args(["--listen", addr, "--max-seconds", "120", "--stats-file"])
            .arg(&stats)
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start posmesh-acquirer (built by cargo test --workspace)");
        let acquirer = Acquirer { child, stats };
        let started = Instant::now();
        while acquirer.try_stats().is_none() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "acquirer did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        acquirer
    }

    fn try_stats(&self) -> Option<Value> {
        let text = std::fs::read_to_string(&self.stats).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// `(raw, unique)` arrivals of `class`.
    fn arrivals(&self, class: &str) -> (u64, u64) {
        let stats = self.try_stats().unwrap_or(Value::Null);
        let class = &stats["by_class"][class];
        (
            class["raw"].as_u64().unwrap_or(0),
            class["unique"].as_u64().unwrap_or(0),
        )
    }
}

impl Drop for Acquirer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One device (no mesh) with the acquirer at `addr` and a 500 ms acquirer timeout.
fn start_online(dir: &Path, addr: &str) -> NodeProcess {
    let spec = support::spec(dir);
    NodeProcess::start_with(
        &spec,
        &[
            "--acquirer".to_owned(),
            addr.to_owned(),
            "--acquirer-timeout-ms".to_owned(),
            "500".to_owned(),
        ],
    )
    .expect("node starts")
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A loopback port kept for the acquirer simulator until it starts.
///
/// The socket is bound but never listens: a device's connection is refused (the acquirer is
/// offline, as the offline tests need) and no other test's server can be given the port in
/// the meantime. A port that was merely free once could be handed to another test's HTTP
/// server running in parallel; a device would then "reach the acquirer" and read HTTP.
struct AcquirerPort {
    addr: String,
    held: Option<tokio::net::TcpSocket>,
}

impl AcquirerPort {
    fn reserve() -> AcquirerPort {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_reuseaddr(false).expect("no SO_REUSEADDR");
        socket
            .bind("127.0.0.1:0".parse().expect("loopback"))
            .expect("bind a loopback port");
        let addr = socket.local_addr().expect("addr").to_string();
        AcquirerPort {
            addr,
            held: Some(socket),
        }
    }
}

async fn post(
    client: &reqwest::Client,
    node: &NodeProcess,
    key: &str,
    body: &Value,
) -> (u16, Value) {
    let response = client
        .post(format!("http://{}/v1/sales", node.api))
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .expect("answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// PUTs `body`; answers the status, after waiting until every node of `applied_on` has
/// applied the committed command (the offline decision reads the local applied state).
/// `PUT /v1/payments/exposure-budget` of `amount_minor` GBP on `node`; the status.
async fn set_budget(client: &reqwest::Client, node: &NodeProcess, amount_minor: i64) -> u16 {
    let body = json!({"amount_minor": amount_minor, "currency": "GBP"});
    put(client, node, "/v1/payments/exposure-budget", body, &[]).await
}

/// `PUT /v1/payments/exposure-allotments/{device}` on `node`, waiting until `applied_on`
/// applied it; the status.
async fn set_allotment(
    client: &reqwest::Client,
    node: &NodeProcess,
    device: &str,
    amount_minor: i64,
    applied_on: &[&NodeProcess],
) -> u16 {
    let path = format!("/v1/payments/exposure-allotments/{device}");
    put(
        client,
        node,
        &path,
        json!({"amount_minor": amount_minor}),
        applied_on,
    )
    .await
}

/// PUTs `body` to `path` on `node`; the status and the answer (no wait).
async fn put_answer(
    client: &reqwest::Client,
    node: &NodeProcess,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let response = client
        .put(format!("http://{}{path}", node.api))
        .json(&body)
        .send()
        .await
        .expect("answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn put(
    client: &reqwest::Client,
    node: &NodeProcess,
    path: &str,
    body: Value,
    applied_on: &[&NodeProcess],
) -> u16 {
    let response = client
        .put(format!("http://{}{path}", node.api))
        .json(&body)
        .send()
        .await
        .expect("answers");
    let status = response.status().as_u16();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    if let Some(index) = answer["log_index"].as_u64() {
        let started = Instant::now();
        for other in applied_on {
            loop {
                let raft = support::node_status(client, other).await["raft"].clone();
                if raft["applied_index"].as_u64().unwrap_or(0) >= index {
                    break;
                }
                assert!(
                    started.elapsed() < LIMIT,
                    "index {index} not applied: {raft}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    status
}

/// `(queued, card data held)` of a node's store-and-forward queue.
/// `POST /v1/sales/{device}/{seq}/{action}` (`void` or `refunds`) with `key`.
async fn sale_action(
    client: &reqwest::Client,
    node: &NodeProcess,
    target: (&str, u64),
    action: &str,
    key: &str,
    body: &Value,
) -> (u16, Value) {
    let response = client
        .post(format!(
            "http://{}/v1/sales/{}/{}/{action}",
            node.api, target.0, target.1
        ))
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .expect("answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The acquirer's `(charges, charged_minor)`: approved and not reversed.
fn charged(acquirer: &Acquirer) -> (u64, i64) {
    let stats = acquirer.try_stats().unwrap_or(Value::Null);
    (
        stats["charges"].as_u64().unwrap_or(u64::MAX),
        stats["charged_minor"].as_i64().unwrap_or(-1),
    )
}

async fn queue(client: &reqwest::Client, node: &NodeProcess) -> (u64, u64) {
    let view = support::get_json(client, &format!("http://{}/v1/payments/queue", node.api)).await;
    (
        view["queued"].as_u64().expect("queued"),
        view["card_data_held"].as_u64().expect("card_data_held"),
    )
}

async fn leader(client: &reqwest::Client, nodes: &[&NodeProcess], voters: usize) -> String {
    let started = Instant::now();
    loop {
        let mut views = Vec::new();
        for node in nodes {
            views.push(support::node_status(client, node).await["raft"].clone());
        }
        let leader = views[0]["leader"].as_str().map(str::to_owned);
        let agreed = views.iter().all(|v| {
            v["leader"].as_str() == leader.as_deref()
                && v["voters"].as_array().map(Vec::len) == Some(voters)
        });
        if let (true, Some(leader)) = (agreed, leader) {
            return leader;
        }
        assert!(started.elapsed() < LIMIT, "no agreed leader: {views:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn start(dir: &Path, device: &str, peers: &[String], flags: &[String]) -> NodeProcess {
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    support::start_mesh_node_with(dir, "s1", device, "127.0.0.1:0", peers, &flags)
}

fn payment_flags(acquirer: &str, device_cap: i64, bootstrap: bool) -> Vec<String> {
    let mut flags = vec![
        "--acquirer".to_owned(),
        acquirer.to_owned(),
        "--acquirer-timeout-ms".to_owned(),
        "1000".to_owned(),
        "--offline-floor-limit-minor".to_owned(),
        "5000".to_owned(),
        "--offline-device-cap-minor".to_owned(),
        device_cap.to_string(),
        "--saf-interval-ms".to_owned(),
        "200".to_owned(),
    ];
    if bootstrap {
        flags.push("--raft-bootstrap".to_owned());
    }
    flags
}

/// Three devices of store `s1` with the acquirer at `acquirer` (down for now); till-1
/// bootstraps Raft. Device caps: till-1 20000, till-2 8000, till-3 20000.
async fn start_store(
    client: &reqwest::Client,
    d: &Path,
    acquirer: &str,
) -> (NodeProcess, NodeProcess, NodeProcess) {
    support::issue_identities_in(d, &[("s1", "till-1"), ("s1", "till-2"), ("s1", "till-3")]);
    let a = start(d, "till-1", &[], &payment_flags(acquirer, 20_000, true));
    let a_mesh = support::mesh_addr(client, &a).await;
    let b = start(
        d,
        "till-2",
        &[format!("till-1@{a_mesh}")],
        &payment_flags(acquirer, 8_000, false),
    );
    let b_mesh = support::mesh_addr(client, &b).await;
    let c = start(
        d,
        "till-3",
        &[format!("till-1@{a_mesh}"), format!("till-2@{b_mesh}")],
        &payment_flags(acquirer, 20_000, false),
    );
    (a, b, c)
}

/// Every file under `dir`, raw bytes, searched for each of `pans`.
fn files_with_clear_pan(dir: &Path, pans: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&path) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                for pan in pans {
                    if bytes.windows(pan.len()).any(|w| w == pan.as_bytes()) {
                        found.push(format!("{} holds {pan}", path.display()));
                    }
                }
            }
        }
    }
    found
}

/// Every sealed card-data blob was deleted once its payment was acknowledged.
fn assert_no_card_data(data_dirs: &[PathBuf]) {
    for dir in data_dirs {
        let store = posmesh_node::storage::JournalStore::open_read_only(dir).expect("opens");
        let left = store.card_data_digests(10).expect("reads");
        assert!(
            left.is_empty(),
            "{} still holds card data {left:?}",
            dir.display()
        );
    }
}

async fn wait_queues_empty(client: &reqwest::Client, nodes: &[&NodeProcess]) {
    let started = Instant::now();
    loop {
        let mut left = 0;
        for node in nodes {
            left += queue(client, node).await.0;
        }
        if left == 0 {
            return;
        }
        assert!(started.elapsed() < LIMIT, "{left} queued payments left");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `node` queues `count` payments and holds the card data of each.
async fn wait_queued(client: &reqwest::Client, node: &NodeProcess, count: u64) {
    let started = Instant::now();
    loop {
        let (queued, held) = queue(client, node).await;
        if (queued, held) == (count, count) {
            return;
        }
        assert!(
            started.elapsed() < LIMIT,
            "{} queues {queued} payments, holds card data of {held}; expected {count}",
            node.api
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_card_payments_charge_once_and_refuse_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = support::http_client();
    let mut port = AcquirerPort::reserve();
    let addr = port.addr.clone();
    // Declines PANs starting 4000; the first 0200 whose PAN is 4111111111111111 times out.
    let acquirer = Acquirer::start(
        &mut port,
        dir.path(),
        &[
            "--decline-pan-prefix",
            "4000",
            "--fault",
            "timeout",
            "--fault-count",
            "1",
        ],
    );
    let node = start_online(dir.path(), &addr);
    let timed_out = test_pan(1);

    // The first request times out: reversed, 402, nothing journaled.
    let (status, body) = post(&client, &node, "t-1", &card_sale(&timed_out, 2)).await;
    assert_eq!(status, 402, "{body}");
    assert_eq!(body["error"]["code"], "card_not_approved", "{body}");
    assert_eq!(acquirer.arrivals("reversal"), (1, 1));
    assert_eq!(support::head(&client, &node.mgmt).await.0, 0);
    // A retry under the same key is the reversed payment again: said so, not "declined".
    let (status, body) = post(&client, &node, "t-1", &card_sale(&timed_out, 2)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (402, Some("card_payment_reversed_earlier")),
        "{body}"
    );
    assert_eq!(support::head(&client, &node.mgmt).await.0, 0);

    // Approved online; the masked PAN is journaled, a retry is the same payment.
    let pan = test_pan(2);
    let (status, first) = post(&client, &node, "o-1", &card_sale(&pan, 2)).await;
    assert_eq!(status, 201, "{first}");
    let (status, again) = post(&client, &node, "o-1", &card_sale(&pan, 2)).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(first["seq"], again["seq"]);
    assert_eq!(
        acquirer.arrivals("financial"),
        (3, 2),
        "timed out (and its retry) + approved, once each"
    );
    let journal = support::all_entries(&client, &node.api).await;
    let text = serde_json::to_string(&journal).expect("json");
    assert!(!text.contains(&pan), "clear PAN in the journal API");

    // Declined by rule: 402 with the issuer's reason, nothing journaled.
    let declined = "4000000000000002";
    let (status, body) = post(&client, &node, "d-1", &card_sale(declined, 2)).await;
    assert_eq!(status, 402, "{body}");
    assert_eq!(body["error"]["code"], "card_declined", "{body}");

    // Bad card input: 422, nothing sent, nothing journaled.
    let before = support::head(&client, &node.mgmt).await;
    let raw_before = acquirer.arrivals("financial").0;
    let bad = [
        ("4111111111111112", "3012", "invalid_card"), // Luhn
        ("41111", "3012", "invalid_card"),            // too short
        ("4111111111111111", "3013", "invalid_card"), // month 13
        ("4111111111111111", "2001", "card_expired"),
    ];
    for (i, (pan, expiry, code)) in bad.iter().enumerate() {
        let mut body = card_sale(pan, 2);
        body["tenders"][0]["card"]["expiry"] = json!(expiry);
        let (status, answer) = post(&client, &node, &format!("bad-{i}"), &body).await;
        assert_eq!(status, 422, "{pan}/{expiry}: {answer}");
        assert_eq!(answer["error"]["code"], *code, "{answer}");
    }
    let mut cash_with_card = support::valid_sale();
    cash_with_card["tenders"][0]["card"] = json!({"pan": pan, "expiry": "3012"});
    let (status, _) = post(&client, &node, "bad-cash", &cash_with_card).await;
    assert_eq!(status, 422);
    assert_eq!(support::head(&client, &node.mgmt).await, before);
    assert_eq!(acquirer.arrivals("financial").0, raw_before);

    // QR wallet: the payload carries the amount and a CRC; the tender needs the wallet's
    // confirmation of exactly its amount, and pays one sale only.
    let qr = client
        .post(format!("http://{}/v1/payments/qr", node.api))
        .header("Idempotency-Key", "qr-1")
        .json(&json!({"amount_minor": 850, "currency": "GBP"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(qr.status().as_u16(), 201);
    let qr: Value = qr.json().await.expect("json");
    let payload = qr["payload"].as_str().expect("payload");
    assert!(
        payload.contains("5303826") && payload.contains("54048.50"),
        "{payload}"
    );
    let (crc_at, crc) = payload.split_at(payload.len() - 4);
    assert!(crc_at.ends_with("6304") && crc.chars().all(|c| c.is_ascii_hexdigit()));
    let qr_id = qr["qr_id"].as_str().expect("id").to_owned();
    let qr_sale = json!({
        "currency": "GBP",
        "lines": [{"sku": "BREAD", "quantity": 2}, {"sku": "COFFEE", "quantity": 1}],
        "tenders": [{"kind": "qr_wallet", "amount_minor": 850, "reference": qr_id}]
    });
    let (status, body) = post(&client, &node, "qr-sale-1", &qr_sale).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (402, Some("qr_not_confirmed"))
    );
    let confirm = |amount: i64| {
        client
            .post(format!(
                "http://{}/v1/payments/qr/{qr_id}/confirm",
                node.api
            ))
            .json(&json!({"amount_minor": amount, "currency": "GBP"}))
            .send()
    };
    assert_eq!(confirm(800).await.expect("answers").status().as_u16(), 422);
    assert_eq!(confirm(850).await.expect("answers").status().as_u16(), 200);
    let (status, body) = post(&client, &node, "qr-sale-1", &qr_sale).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = post(&client, &node, "qr-sale-2", &qr_sale).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (402, Some("qr_not_confirmed")),
        "{body}"
    );

    node.stop().expect("clean stop");
    let found = files_with_clear_pan(dir.path(), &[pan, timed_out]);
    assert!(found.is_empty(), "clear PAN stored: {found:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_payments_stay_within_limits_and_are_forwarded_exactly_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let client = support::http_client();
    let mut port = AcquirerPort::reserve();
    let addr = port.addr.clone();
    let (mut a, b, c) = start_store(&client, d, &addr).await;
    assert_eq!(leader(&client, &[&a, &b, &c], 3).await, "till-1");
    // Budget 40000: till-1 5000, till-2 30000, till-3 none.
    assert_eq!(set_budget(&client, &b, 40000).await, 201);
    assert_eq!(set_allotment(&client, &b, "till-1", 5000, &[&a]).await, 201);
    assert_eq!(
        set_allotment(&client, &a, "till-2", 30000, &[&b]).await,
        201
    );
    // Over the budget: refused by the state machine, with its own code.
    let (status, over) = put_answer(
        &client,
        &a,
        "/v1/payments/exposure-allotments/till-3",
        json!({"amount_minor": 9000}),
    )
    .await;
    assert_eq!(
        (
            status,
            over["error"]["code"].as_str(),
            over["error"]["field"].as_str()
        ),
        (409, Some("exposure_budget_exceeded"), Some("amount_minor")),
        "{over}"
    );
    // A device the store never saw, and a budget in another currency than the store
    // sells in: refused before anything is proposed.
    let (status, unknown) = put_answer(
        &client,
        &b,
        "/v1/payments/exposure-allotments/till-9",
        json!({"amount_minor": 0}),
    )
    .await;
    assert_eq!(
        (status, unknown["error"]["code"].as_str()),
        (404, Some("unknown_device")),
        "{unknown}"
    );
    let (status, eur) = put_answer(
        &client,
        &a,
        "/v1/payments/exposure-budget",
        json!({"amount_minor": 100_000, "currency": "EUR"}),
    )
    .await;
    assert_eq!(
        (status, eur["error"]["code"].as_str()),
        (422, Some("currency_mismatch")),
        "{eur}"
    );

    let mut pans = Vec::new();
    let mut next_pan = 100;
    let mut pay = |breads: u32| {
        next_pan += 1;
        let pan = test_pan(next_pan);
        pans.push(pan.clone());
        card_sale(&pan, breads)
    };
    // till-1: 5 × 8.50 fit its allotment of 50.00; the 6th does not.
    let mut first_offline_seq = 0;
    for i in 0..5 {
        let (status, body) = post(&client, &a, &format!("a-{i}"), &pay(2)).await;
        assert_eq!(status, 201, "{body}");
        if i == 0 {
            first_offline_seq = body["seq"].as_u64().expect("seq");
        }
        let reference = body["sale"]["tenders"][0]["reference"]
            .as_str()
            .unwrap_or("");
        assert!(reference.starts_with("offline 411111******"), "{body}");
    }
    let (status, body) = post(&client, &a, "a-over", &pay(2)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (402, Some("offline_over_allotment")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("budget"),
        "{body}"
    );
    // Over the floor limit (20 breads = 60.50 > 50.00).
    let (status, body) = post(&client, &a, "a-floor", &pay(20)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (402, Some("offline_over_floor_limit")),
        "{body}"
    );
    // till-2: 9 × 8.50 = 76.50 fit its cap of 80.00; the 10th does not.
    for i in 0..9 {
        let (status, body) = post(&client, &b, &format!("b-{i}"), &pay(2)).await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = post(&client, &b, "b-over", &pay(2)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (402, Some("offline_over_device_cap")),
        "{body}"
    );
    // till-3 has no allotment.
    let (status, body) = post(&client, &c, "c-0", &pay(2)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (402, Some("offline_no_allotment")),
        "{body}"
    );
    let offline: u64 = 14;
    // Not forwarded yet: a void is refused (the forwarder may be sending the advice) and
    // changes nothing.
    let first_offline = ("till-1", first_offline_seq);
    let (status, body) =
        sale_action(&client, &b, first_offline, "void", "v-early", &json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("card_payment_not_forwarded")),
        "{body}"
    );

    // Every device holds every queued payment and its card data (peer escrow).
    for node in [&a, &b, &c] {
        wait_queued(&client, node, offline).await;
    }

    // The acquirer returns, slowly: the leader forwards; it is SIGKILLed mid-batch.
    let acquirer = Acquirer::start(&mut port, d, &["--delay-ms", "150"]);
    let started = Instant::now();
    while acquirer.arrivals("advice").0 == 0 {
        assert!(started.elapsed() < LIMIT, "no advice arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    a.kill_now().expect("SIGKILL the forwarding leader");
    let (_, unique_at_kill) = acquirer.arrivals("advice");
    assert!(
        unique_at_kill < offline,
        "the kill landed mid-batch ({unique_at_kill})"
    );
    wait_queues_empty(&client, &[&b, &c]).await;
    let (raw, unique) = acquirer.arrivals("advice");
    assert_eq!(
        unique, offline,
        "every offline payment accepted exactly once"
    );
    assert!(raw >= unique);

    // The killed device restarts and learns every acknowledgement.
    a.kill().expect("reap");
    let b_mesh = support::mesh_addr(&client, &b).await;
    let a = start(
        d,
        "till-1",
        &[format!("till-2@{b_mesh}")],
        &payment_flags(&addr, 20_000, false),
    );
    wait_queues_empty(&client, &[&a, &b, &c]).await;
    assert_eq!(acquirer.arrivals("advice").1, offline);
    // Forwarded: voiding it on another device reverses the advice at the acquirer.
    let (charges, charged_minor) = charged(&acquirer);
    let (status, body) =
        sale_action(&client, &b, first_offline, "void", "v-late", &json!({})).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(acquirer.arrivals("reversal"), (1, 1));
    assert_eq!(charged(&acquirer), (charges - 1, charged_minor - 850));
    // Card data is deleted everywhere once acknowledged (checked below, stopped).
    for node in [a, b, c] {
        node.stop().expect("clean stop");
    }
    assert_no_card_data(&[d.join("till-1"), d.join("till-2"), d.join("till-3")]);
    let found = files_with_clear_pan(d, &pans);
    assert!(found.is_empty(), "clear PAN stored: {found:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destroyed_device_s_offline_payments_are_forwarded_by_another() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let client = support::http_client();
    let mut port = AcquirerPort::reserve();
    let addr = port.addr.clone();
    let (a, b, c) = start_store(&client, d, &addr).await;
    assert_eq!(leader(&client, &[&a, &b, &c], 3).await, "till-1");
    assert_eq!(set_budget(&client, &a, 10000).await, 201);
    assert_eq!(
        set_allotment(&client, &a, "till-3", 10000, &[&c]).await,
        201
    );
    // A gift card tender is redeemed through Raft exactly once per sale tender.
    let issued = client
        .post(format!("http://{}/v1/gift-cards", a.api))
        .header("Idempotency-Key", "gc-issue")
        .json(&json!({"card_id": "GC-1", "amount_minor": 1000, "currency": "GBP"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(issued.status().as_u16(), 201);
    let gift_sale = json!({
        "currency": "GBP",
        "lines": [{"sku": "BREAD", "quantity": 2}, {"sku": "COFFEE", "quantity": 1}],
        "tenders": [{"kind": "gift_card", "amount_minor": 850, "reference": "GC-1"}]
    });
    let (status, first) = post(&client, &b, "gift-1", &gift_sale).await;
    assert_eq!(status, 201, "{first}");
    let (status, _) = post(&client, &b, "gift-1", &gift_sale).await;
    assert_eq!(status, 200, "a retry is the same sale");
    let (status, body) = post(&client, &b, "gift-2", &gift_sale).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (402, Some("gift_card_refused")),
        "{body}"
    );
    let balance = support::get_json(&client, &format!("http://{}/v1/gift-cards/GC-1", c.api)).await;
    assert_eq!(balance["balance_minor"], 150, "taken once: {balance}");

    let pans: Vec<String> = (0..3).map(|i| test_pan(500 + i)).collect();
    for (i, pan) in pans.iter().enumerate() {
        let (status, body) = post(&client, &c, &format!("c-{i}"), &card_sale(pan, 2)).await;
        assert_eq!(status, 201, "{body}");
    }
    for node in [&a, &b] {
        wait_queued(&client, node, 3).await;
    }
    // till-3 is destroyed: killed, its data directory deleted.
    c.kill().expect("SIGKILL");
    std::fs::remove_dir_all(d.join("till-3")).expect("delete till-3's data");
    // The first advice goes unanswered: it is resent as a 0221 repeat (same STAN/RRN).
    let acquirer = Acquirer::start(
        &mut port,
        d,
        &[
            "--fault",
            "timeout",
            "--fault-mtis",
            "0220",
            "--fault-count",
            "1",
        ],
    );
    wait_queues_empty(&client, &[&a, &b]).await;
    assert_eq!(
        acquirer.arrivals("advice").1,
        3,
        "till-3's payments forwarded once each"
    );
    let stats = acquirer.try_stats().expect("stats");
    assert!(
        stats["raw_by_mti"]["0221"].as_u64().unwrap_or(0) >= 1,
        "the unanswered advice was repeated as 0221: {stats}"
    );
    // The forwarder tried while nothing listened (connection refused): those tries were
    // not sends, so each advice still reached the acquirer first as a 0220.
    assert!(
        stats["raw_by_mti"]["0220"].as_u64().unwrap_or(0) >= 3,
        "each advice's first send is a 0220: {stats}"
    );
    for node in [a, b] {
        node.stop().expect("clean stop");
    }
    assert_no_card_data(&[d.join("till-1"), d.join("till-2")]);
    let found = files_with_clear_pan(d, &pans);
    assert!(found.is_empty(), "clear PAN stored: {found:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voiding_a_card_sale_reverses_its_payment_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = support::http_client();
    let mut port = AcquirerPort::reserve();
    let addr = port.addr.clone();
    // The first reversal is processed but never answered.
    let acquirer = Acquirer::start(
        &mut port,
        dir.path(),
        &[
            "--fault",
            "timeout",
            "--fault-mtis",
            "0400",
            "--fault-count",
            "1",
        ],
    );
    let node = start_online(dir.path(), &addr);
    let (status, first) = post(&client, &node, "s-1", &card_sale(&test_pan(7), 2)).await;
    assert_eq!(status, 201, "{first}");
    let first = ("till-1", first["seq"].as_u64().expect("seq"));
    let (status, second) = post(&client, &node, "s-2", &card_sale(&test_pan(8), 1)).await;
    assert_eq!(status, 201, "{second}");
    let second = ("till-1", second["seq"].as_u64().expect("seq"));
    assert_eq!(charged(&acquirer), (2, 850 + 550));

    // A refund to the card would reach nobody: refused, nothing journaled; in cash it is fine.
    let head = support::head(&client, &node.mgmt).await;
    let refund = json!({"lines": [{"line_index": 0, "quantity": 1}]});
    let (status, body) = sale_action(&client, &node, second, "refunds", "r-card", &refund).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("card_refund_unsupported")),
        "{body}"
    );
    assert_eq!(support::head(&client, &node.mgmt).await, head);
    let cash = json!({"lines": [{"line_index": 0, "quantity": 1}], "tender": "cash"});
    let (status, body) = sale_action(&client, &node, second, "refunds", "r-cash", &cash).await;
    assert_eq!(status, 201, "{body}");

    // The reversal times out: nothing is voided, the card stays charged.
    let (status, body) = sale_action(&client, &node, first, "void", "v-1", &json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("card_reversal_failed")),
        "{body} {:?}",
        acquirer.try_stats()
    );
    let sale = client
        .get(format!("http://{}/v1/sales/till-1/{}", node.api, first.1))
        .send()
        .await
        .expect("answers");
    let sale: Value = sale.json().await.expect("json");
    assert!(sale["status"]["voided_by"].is_null(), "{sale}");

    // Voiding again sends the same reversal: the acquirer un-charges once, the void is
    // journaled, and a replay of the void sends nothing more.
    let (status, body) = sale_action(&client, &node, first, "void", "v-1", &json!({})).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(acquirer.arrivals("reversal"), (2, 1));
    assert_eq!(charged(&acquirer), (1, 550));
    let (status, _) = sale_action(&client, &node, first, "void", "v-1", &json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(acquirer.arrivals("reversal"), (2, 1));
    // Voided twice under another key: refused by the journal, nothing sent.
    let (status, body) = sale_action(&client, &node, first, "void", "v-2", &json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("sale_voided")),
        "{body}"
    );
    assert_eq!(acquirer.arrivals("reversal"), (2, 1));
    node.stop().expect("clean stop");
}

/// Whether `node` holds the `saf_forwarding_stalled` alert about `device`.
async fn has_stall_alert(client: &reqwest::Client, node: &NodeProcess, device: &str) -> bool {
    let alerts = support::get_json(client, &format!("http://{}/v1/alerts", node.api)).await;
    alerts["alerts"].as_array().is_some_and(|all| {
        all.iter()
            .any(|a| a["kind"] == "saf_forwarding_stalled" && a["subject"] == device)
    })
}

/// Waits until `node` holds the stall alert about `device` (`raised`) or not.
async fn wait_stall_alert(
    client: &reqwest::Client,
    node: &NodeProcess,
    device: &str,
    raised: bool,
) {
    let started = Instant::now();
    while has_stall_alert(client, node, device).await != raised {
        assert!(
            started.elapsed() < LIMIT,
            "saf_forwarding_stalled about {device} still {}",
            if raised { "absent" } else { "raised" }
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_without_an_acquirer_alerts_while_payments_wait() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let client = support::http_client();
    support::issue_identities_in(d, &[("s1", "till-1")]);
    // till-1 leads a one-device store without --acquirer: its card payment is taken
    // offline and queued, and nothing can forward it.
    let flags = ["--saf-interval-ms", "200", "--raft-bootstrap"].map(str::to_owned);
    let a = start(d, "till-1", &[], &flags);
    assert_eq!(leader(&client, &[&a], 1).await, "till-1");
    assert!(
        !has_stall_alert(&client, &a, "till-1").await,
        "no payment queued yet"
    );
    assert_eq!(set_budget(&client, &a, 10_000).await, 201);
    assert_eq!(
        set_allotment(&client, &a, "till-1", 10_000, &[&a]).await,
        201
    );
    let (status, body) = post(&client, &a, "stalled-1", &card_sale(&test_pan(900), 2)).await;
    assert_eq!(status, 201, "{body}");
    wait_stall_alert(&client, &a, "till-1", true).await;
    // Restarted with an acquirer: the payment is forwarded and the alert cleared.
    a.stop().expect("clean stop");
    let mut port = AcquirerPort::reserve();
    let addr = port.addr.clone();
    let acquirer = Acquirer::start(&mut port, d, &[]);
    let a = start(d, "till-1", &[], &payment_flags(&addr, 20_000, false));
    wait_queues_empty(&client, &[&a]).await;
    wait_stall_alert(&client, &a, "till-1", false).await;
    assert_eq!(acquirer.arrivals("advice").1, 1, "forwarded once");
    a.stop().expect("clean stop");
}

/// One device (no mesh) with the acquirer at `addr` and a 5 s acquirer timeout (longer
/// than the simulator's `--delay-ms`, so a request is still in flight when the test kills
/// the device).
fn start_patient(dir: &Path, addr: &str) -> NodeProcess {
    let spec = support::spec(dir);
    NodeProcess::start_with(
        &spec,
        &[
            "--acquirer".to_owned(),
            addr.to_owned(),
            "--acquirer-timeout-ms".to_owned(),
            "5000".to_owned(),
        ],
    )
    .expect("node starts")
}

/// A socket bound (not listening) to `addr` again after its acquirer stopped, if the
/// address can be bound.
fn hold_port(addr: &str) -> Option<tokio::net::TcpSocket> {
    let socket = tokio::net::TcpSocket::new_v4().ok()?;
    socket.set_reuseaddr(true).ok()?;
    socket.bind(addr.parse().ok()?).ok()?;
    Some(socket)
}

/// Polls `done` every 20 ms until it holds; panics with `what` after `limit`.
async fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Posts a card sale under `key` and SIGKILLs `node` once the acquirer (answering after
/// 1.5 s) has the request: the device dies with the 0200 in flight, approved at the
/// acquirer.
async fn kill_mid_authorisation(
    client: &reqwest::Client,
    mut node: NodeProcess,
    acquirer: &Acquirer,
    key: &str,
    sale: &Value,
) {
    let request = client
        .post(format!("http://{}/v1/sales", node.api))
        .header("Idempotency-Key", key)
        .json(sale)
        .send();
    let in_flight = tokio::spawn(request);
    wait_until(
        Duration::from_secs(10),
        "the 0200 reaches the acquirer",
        || acquirer.arrivals("financial").0 >= 1,
    )
    .await;
    node.kill_now().expect("SIGKILL");
    node.kill().expect("reaped");
    assert!(
        !matches!(in_flight.await, Ok(Ok(_))),
        "the device answered before it was killed"
    );
    assert_eq!(charged(acquirer).0, 1, "the acquirer approved the request");
    assert_eq!(acquirer.arrivals("reversal").0, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_till_killed_mid_authorisation_reverses_it_when_restarted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = support::http_client();
    let mut port = AcquirerPort::reserve();
    let addr = port.addr.clone();
    let acquirer = Acquirer::start(&mut port, dir.path(), &["--delay-ms", "1500"]);
    let pan = test_pan(31);
    let sale = card_sale(&pan, 2);
    let node = start_patient(dir.path(), &addr);
    kill_mid_authorisation(&client, node, &acquirer, "crash-1", &sale).await;

    // Restarted: the reversal record left by the dead request is sent before anyone asks.
    let node = start_patient(dir.path(), &addr);
    wait_until(LIMIT, "the reversal at restart", || {
        acquirer.arrivals("reversal").0 >= 1 && charged(&acquirer) == (0, 0)
    })
    .await;
    // The client's retry is told the truth: reversed, try again as a new sale.
    let (status, body) = post(&client, &node, "crash-1", &sale).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (402, Some("card_payment_reversed_earlier")),
        "{body}"
    );
    assert_eq!(
        support::head(&client, &node.mgmt).await.0,
        0,
        "nothing journaled"
    );
    assert_eq!(charged(&acquirer), (0, 0), "the card is not charged");
    assert_eq!(acquirer.arrivals("reversal").1, 1, "one reversal");
    node.stop().expect("clean stop");
    let found = files_with_clear_pan(dir.path(), &[pan]);
    assert!(found.is_empty(), "clear PAN stored: {found:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_till_killed_mid_authorisation_refuses_the_retry_until_reversed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = support::http_client();
    let mut port = AcquirerPort::reserve();
    let addr = port.addr.clone();
    let acquirer = Acquirer::start(&mut port, dir.path(), &["--delay-ms", "1500"]);
    let pan = test_pan(32);
    let sale = card_sale(&pan, 2);
    let node = start_patient(dir.path(), &addr);
    kill_mid_authorisation(&client, node, &acquirer, "crash-2", &sale).await;
    drop(acquirer);
    // Hold the port again (best effort) so no other test's server is given it meanwhile.
    let mut port = AcquirerPort {
        held: hold_port(&addr),
        addr: addr.clone(),
    };

    // Restarted with the acquirer unreachable: the retry is neither sent again nor taken
    // offline under the same reference (the first attempt may stand): 402 unresolved.
    let node = start_patient(dir.path(), &addr);
    let (status, body) = post(&client, &node, "crash-2", &sale).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (402, Some("card_payment_unresolved")),
        "{body}"
    );
    assert_eq!(
        support::head(&client, &node.mgmt).await.0,
        0,
        "nothing journaled"
    );

    // The acquirer is back (a new simulator on the same port): the reversal arrives by
    // itself, and no new request was sent.
    let acquirer = Acquirer::start(&mut port, dir.path(), &[]);
    wait_until(LIMIT, "the reversal once the acquirer is back", || {
        acquirer.arrivals("reversal").0 >= 1
    })
    .await;
    assert_eq!(acquirer.arrivals("financial").0, 0);
    assert_eq!(support::head(&client, &node.mgmt).await.0, 0);
    node.stop().expect("clean stop");
    let found = files_with_clear_pan(dir.path(), &[pan]);
    assert!(found.is_empty(), "clear PAN stored: {found:?}");
}
