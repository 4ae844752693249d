//! A device that joins after the store's Raft log was compacted gets the state as a
//! snapshot over QUIC (binary chunks, `posmesh_node::consensus::snapshot_transfer`): the
//! first device holds hundreds of gift cards and an operator under a small snapshot policy
//! with no log kept behind the snapshot; a second device joins, installs a snapshot and
//! serves the operator from its own state (it never received those entries, only the
//! snapshot). Snapshots larger than a mesh frame are cut and reassembled in the unit tests
//! of `snapshot_transfer` and `wire`: building a > 4 MiB state through the API here takes
//! minutes.

use super::consensus_loopback::{balance, post, raft, wait_leader};
use super::support;
use serde_json::json;
use std::time::{Duration, Instant};

/// Gift cards issued before the second device joins (64-character ids).
const CARDS: usize = 400;
/// Cards redeemed (1 minor each, cards 1..=REDEEMED) after the operator is set.
const REDEEMED: usize = 120;
/// Concurrent issuers (openraft batches their entries into one fsync).
const CLIENTS: usize = 8;
/// Bound on issuing and on the transfer.
const LIMIT: Duration = Duration::from_secs(150);

fn card_id(i: usize) -> String {
    format!("card-{i:059}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_joining_after_compaction_installs_a_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let client = support::http_client();
    support::issue_identities_in(d, &[("s1", "till-1"), ("s1", "till-2")]);
    let a = support::start_mesh_node_with(
        d,
        "s1",
        "till-1",
        "127.0.0.1:0",
        &[],
        &[
            "--raft-bootstrap",
            "--raft-snapshot-every-entries",
            "100",
            "--raft-snapshot-keep-entries",
            "0",
        ],
    );
    wait_leader(&client, &[&a], 1, None).await;
    let started = Instant::now();
    let issuers = (0..CLIENTS).map(|worker| {
        let client = client.clone();
        let api = a.api.clone();
        tokio::spawn(async move {
            for i in (worker..CARDS).step_by(CLIENTS) {
                assert!(started.elapsed() < LIMIT, "issuing took over {LIMIT:?}");
                let response = client
                    .post(format!("http://{api}/v1/gift-cards"))
                    .header("Idempotency-Key", format!("issue-{i}"))
                    .json(&json!({"card_id": card_id(i), "amount_minor": i + 1, "currency": "GBP"}))
                    .send()
                    .await
                    .expect("answers");
                assert_eq!(response.status().as_u16(), 201, "card {i}");
            }
        })
    });
    for issuer in issuers.collect::<Vec<_>>() {
        issuer.await.expect("issuer");
    }
    let issued_in = started.elapsed();
    // The store's first operator: an admin, set without authorisation, once the cards are
    // issued (a store in setup issues them without an operator; with one, each issue would
    // cost an Argon2id PIN check). Redemptions (not guarded by a role) then push the
    // compaction past the operator's entry.
    let (code, set) = post(
        &client,
        &a,
        "/v1/operators",
        "",
        json!({"operator_id": "bob", "name": "Bob", "role": "admin", "pin": "1357"}),
    )
    .await;
    assert_eq!(code, 201, "{set}");
    let bob_index = set["log_index"].as_u64().expect("log index");
    for i in 1..=REDEEMED {
        let response = client
            .post(format!(
                "http://{}/v1/gift-cards/{}/redemptions",
                a.api,
                card_id(i)
            ))
            .header("Idempotency-Key", format!("redeem-{i}"))
            .json(&json!({"amount_minor": 1}))
            .send()
            .await
            .expect("answers");
        assert_eq!(response.status().as_u16(), 201, "redeem card {i}");
    }
    let leader = raft(&client, &a).await;
    let compacted_to = leader["snapshot_index"]
        .as_u64()
        .expect("a snapshot was built");
    assert!(compacted_to > bob_index, "{leader}");

    let a_mesh = support::mesh_addr(&client, &a).await;
    let b = support::start_mesh_node_with(
        d,
        "s1",
        "till-2",
        "127.0.0.1:0",
        &[format!("till-1@{a_mesh}")],
        &[],
    );
    let transfer_started = Instant::now();
    let joined = loop {
        let view = raft(&client, &b).await;
        if view["snapshots_installed"].as_u64() >= Some(1)
            && view["applied_index"].as_u64() >= Some(compacted_to)
        {
            break view;
        }
        assert!(
            transfer_started.elapsed() < LIMIT,
            "no snapshot installed on till-2: {view}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let size = joined["last_snapshot_installed_bytes"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        size > (CARDS * 64) as u64,
        "a snapshot of {size} bytes cannot hold {CARDS} cards"
    );
    assert!(
        joined["snapshot_index"].as_u64() >= Some(compacted_to),
        "{joined}"
    );
    eprintln!(
        "{CARDS} cards issued in {issued_in:?}; snapshot of {size} bytes installed in {:?}",
        transfer_started.elapsed()
    );

    // The operator was committed before the compaction: till-2 has it only from the
    // snapshot, and serves it from its own state.
    let operators = support::get_json(
        &support::http_client_as(("bob", "1357")),
        &format!("http://{}/v1/operators", b.api),
    )
    .await;
    assert!(operators.to_string().contains("bob"), "{operators}");
    // The cards are there (first, last) with their balances.
    for i in [0, CARDS - 1] {
        let (code, card) = balance(&client, &b, &card_id(i)).await;
        assert_eq!(code, 200, "{card}");
        assert_eq!(card["balance_minor"].as_u64(), Some(i as u64 + 1), "{card}");
    }
}
