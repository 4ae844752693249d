//! A certificate revoked through the store's Raft (`POST
//! /v1/store/certificates/{serial}/revoke`) is enforced at the mesh without a restart or a
//! CRL file: the other devices close the revoked till's connections within a bounded time
//! and refuse its new ones; its sales recorded before stay in their ledgers (never
//! retroactive); the rest of the store goes on. The revoked till itself finds out: its
//! status and alerts say so, and it takes no more sales.

use super::consensus_loopback::{post, sell_on, start_store, wait_entries, wait_leader};
use super::support;
use serde_json::json;
use std::time::{Duration, Instant};

/// Live connections are checked at each mesh ping (2 s); generous for a loaded machine.
const CLOSE_BOUND: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_revoked_through_raft_is_refused_at_the_mesh() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = support::http_client();
    let (a, b, c) = start_store(&client, dir.path()).await;
    wait_leader(&client, &[&a, &b, &c], 3, None).await;
    sell_on(&client, &[(&c, "c-before", 2)]).await;
    wait_entries(&client, &[&a, &b, &c], 2).await;

    let pem = std::fs::read(dir.path().join("till-3-id").join("node.pem")).expect("node.pem");
    let serial = posmesh_mesh::tls::serial_hex_of_pem(&pem).expect("serial");
    // Bad input: a precise refusal, nothing revoked.
    let (status, bad) = post(
        &client,
        &a,
        "/v1/store/certificates/0C/revoke",
        "x",
        json!(null),
    )
    .await;
    assert_eq!(
        (status, bad["error"]["code"].as_str()),
        (422, Some("invalid_serial"))
    );
    assert!(
        support::connected_peers(&support::node_status(&client, &a).await)
            .contains(&"till-3".to_owned())
    );

    let path = format!("/v1/store/certificates/{serial}/revoke");
    let (status, revoked) = post(&client, &b, &path, "r-1", json!(null)).await;
    assert_eq!(status, 201, "{revoked}");
    let index = revoked["log_index"].as_u64().expect("index");
    let (status, again) = post(&client, &a, &path, "r-2", json!(null)).await;
    assert_eq!(
        (status, again["error"]["code"].as_str()),
        (409, Some("already_revoked"))
    );

    // The others close till-3's connections within the bound, and keep refusing it.
    let started = Instant::now();
    loop {
        let on_a = support::connected_peers(&support::node_status(&client, &a).await);
        let on_b = support::connected_peers(&support::node_status(&client, &b).await);
        if !on_a.contains(&"till-3".to_owned()) && !on_b.contains(&"till-3".to_owned()) {
            break;
        }
        assert!(
            started.elapsed() < CLOSE_BOUND,
            "till-3 still connected {:?} after its revocation at {index}: {on_a:?} {on_b:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "till-3's connections closed {:?} after its revocation",
        started.elapsed()
    );
    // till-3 itself knows (the revocation of its own serial applied, or a peer's close
    // code 4): `posmesh status` starts with it, an alert is raised, every write refused.
    let started = Instant::now();
    let said = loop {
        let status = support::node_status(&client, &c).await;
        if let Some(said) = status["raft"]["certificate_revoked"].as_str() {
            break said.to_owned();
        }
        assert!(
            started.elapsed() < CLOSE_BOUND,
            "till-3 does not know its certificate was revoked: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        said.contains(&format!("serial {serial}")) && said.contains("posmesh ca issue"),
        "{said}"
    );
    let mgmt = c.mgmt.clone();
    let printed = tokio::task::spawn_blocking(move || {
        std::process::Command::new(support::binary())
            .args(["status", "--mgmt", &mgmt])
            .output()
            .expect("run posmesh status")
    })
    .await
    .expect("joined");
    let printed = String::from_utf8_lossy(&printed.stdout).into_owned();
    assert!(
        printed.starts_with("CERTIFICATE REVOKED"),
        "posmesh status on till-3:\n{printed}"
    );
    let alerts = support::get_json(&client, &format!("http://{}/v1/alerts", c.api)).await;
    assert!(
        alerts["alerts"].as_array().is_some_and(|all| all
            .iter()
            .any(|a| a["kind"] == "certificate_revoked" && a["subject"] == "till-3")),
        "{alerts}"
    );
    let (status, refused) = post(&client, &c, "/v1/sales", "c-after", support::valid_sale()).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (403, Some("certificate_revoked")),
        "{refused}"
    );
    // till-3 keeps dialing (backoff); every new connection is refused.
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        for node in [&a, &b] {
            let peers = support::connected_peers(&support::node_status(&client, node).await);
            assert!(
                !peers.contains(&"till-3".to_owned()),
                "re-admitted: {peers:?}"
            );
        }
    }
    // Never retroactive: till-3's 2 earlier sales stay in the ledgers (2 + 1 entries);
    // the rest of the store goes on.
    sell_on(&client, &[(&a, "a-after", 1)]).await;
    wait_entries(&client, &[&a, &b], 3).await;
}
