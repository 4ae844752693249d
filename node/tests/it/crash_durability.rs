//! Guarantee 1 (durable on ack) and 5 (gap-free receipt numbers, never reused after a
//! crash): drive concurrent sales into the real binary, SIGKILL it at random points, restart,
//! repeat; then every acknowledged sale must be there, unchanged, with gap-free sequence
//! and receipt numbers and a chain that verifies.
//!
//! Cycles: `POSMESH_CRASH_CYCLES` (default 50; `make test CRASH_CYCLES=1000` for a long
//! run). Seed: `POSMESH_CRASH_SEED` (printed, so a failure can be replayed).

use super::support;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Concurrent clients during each cycle.
const CLIENTS: usize = 8;
/// Longest load phase before the SIGKILL, ms.
const LOAD_MS_MAX: u64 = 250;

#[derive(Clone, Debug)]
struct Ack {
    key: String,
    quantity: i64,
    seq: u64,
    receipt_no: u64,
    chain_hash: String,
}

fn sale_body(quantity: i64) -> serde_json::Value {
    serde_json::json!({
        "currency": "GBP",
        "lines": [{"sku": "BREAD", "quantity": quantity}, {"sku": "TEA", "quantity": 1}],
        "tenders": [{"kind": "cash", "amount_minor": 100_000}]
    })
}

async fn client_loop(api: String, cycle: usize, client_no: usize, acked: Arc<Mutex<Vec<Ack>>>) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    // Bounded: at most 10,000 sales per client per cycle (the kill comes much sooner).
    for i in 0..10_000i64 {
        let key = format!("c{cycle}-w{client_no}-{i}");
        let quantity = 1 + i % 5;
        let Ok(response) = client
            .post(format!("http://{api}/v1/sales"))
            .header("Idempotency-Key", &key)
            .json(&sale_body(quantity))
            .send()
            .await
        else {
            return; // the node was killed
        };
        if response.status() != reqwest::StatusCode::CREATED {
            return;
        }
        let Ok(entry) = response.json::<serde_json::Value>().await else {
            return; // killed after the ack was sent but before we read it: not counted
        };
        acked.lock().expect("lock").push(Ack {
            key,
            quantity,
            seq: entry["seq"].as_u64().expect("seq"),
            receipt_no: entry["receipt_no"].as_u64().expect("receipt_no"),
            chain_hash: entry["chain_hash"].as_str().expect("chain_hash").to_owned(),
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_sale_survives_sigkill() {
    let cycles: usize = std::env::var("POSMESH_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let seed: u64 = std::env::var("POSMESH_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random);
    println!("crash durability: {cycles} cycles, POSMESH_CRASH_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = support::spec(dir.path());
    let acked = Arc::new(Mutex::new(Vec::<Ack>::new()));
    let mut kills_under_load = 0;
    for cycle in 0..cycles {
        let node = support::start(&spec);
        let before = acked.lock().expect("lock").len();
        let mut clients = tokio::task::JoinSet::new();
        for client_no in 0..CLIENTS {
            clients.spawn(client_loop(
                node.api.clone(),
                cycle,
                client_no,
                acked.clone(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(5..=LOAD_MS_MAX))).await;
        node.kill().expect("SIGKILL");
        while clients.join_next().await.is_some() {}
        if acked.lock().expect("lock").len() > before {
            kills_under_load += 1;
        }
    }
    let acked = acked.lock().expect("lock").clone();
    assert!(
        kills_under_load * 2 >= cycles,
        "only {kills_under_load} of {cycles} kills happened under load: the test is not testing"
    );

    let node = support::start(&spec);
    let client = reqwest::Client::new();
    let entries = support::all_entries(&client, &node.api).await;
    for (i, entry) in entries.iter().enumerate() {
        let expected = i as u64 + 1;
        assert_eq!(entry["seq"].as_u64(), Some(expected), "sequence gap at {i}");
        assert_eq!(
            entry["receipt_no"].as_u64(),
            Some(expected),
            "receipt gap at {i}"
        );
    }
    for ack in &acked {
        let stored = entries
            .get(ack.seq as usize - 1)
            .unwrap_or_else(|| panic!("acknowledged sale {} (seq {}) is lost", ack.key, ack.seq));
        assert_eq!(
            stored["receipt_no"].as_u64(),
            Some(ack.receipt_no),
            "{}",
            ack.key
        );
        assert_eq!(
            stored["chain_hash"].as_str(),
            Some(ack.chain_hash.as_str()),
            "{}",
            ack.key
        );
    }
    // The Idempotency-Key of an acknowledged sale answers the original after the crashes.
    for ack in acked.iter().step_by((acked.len() / 200).max(1)) {
        let response = client
            .post(format!("http://{}/v1/sales", node.api))
            .header("Idempotency-Key", &ack.key)
            .json(&sale_body(ack.quantity))
            .send()
            .await
            .expect("replay answers");
        assert_eq!(
            response.status(),
            reqwest::StatusCode::OK,
            "{} not replayed",
            ack.key
        );
        let entry: serde_json::Value = response.json().await.expect("JSON");
        assert_eq!(entry["seq"].as_u64(), Some(ack.seq), "{}", ack.key);
    }
    let (last_seq, last_receipt) = support::head(&client, &node.mgmt).await;
    assert_eq!(last_seq as usize, entries.len());
    assert_eq!(last_receipt as usize, entries.len());
    node.stop().expect("clean stop");
    let (ok, report) = support::verify_journal(&spec.data_dir);
    assert!(ok, "journal verify failed:\n{report}");
    println!(
        "crash durability: {cycles} SIGKILLs ({kills_under_load} under load), {} acknowledged, {} stored, all present",
        acked.len(),
        entries.len()
    );
}
