//! A certificate revoked through the store's Raft (`POST
//! /v1/store/certificates/{serial}/revoke`) is enforced at the mesh without a restart or a
//! CRL file: the other devices close the revoked till's connections within a bounded time
//! and refuse its new ones; its sales recorded before stay in their ledgers (never
//! retroactive); the rest of the store goes on. The revoked till itself finds out: its
//! status and alerts say so, and it takes no more sales.

use super::cloud_loopback::{
    cloud_store, issue_cloud, start_cloud, start_uploading_store, wait_cloud_entries,
};
use super::consensus_loopback::{post, sell_on, start, start_store, wait_entries, wait_leader};
use super::support;
use posmesh_node::node_process::NodeProcess;
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
    for (bad, says) in [
        ("00", "zero"),
        ("0x0c", "not a hex digit"),
        ("000c", "leading zero"),
    ] {
        let (status, refused) = post(
            &client,
            &a,
            &format!("/v1/store/certificates/{bad}/revoke"),
            &format!("x-{bad}"),
            json!(null),
        )
        .await;
        assert_eq!(
            (status, refused["error"]["code"].as_str()),
            (422, Some("invalid_serial")),
            "{refused}"
        );
        assert!(
            refused["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(says)),
            "{refused}"
        );
    }
    assert!(
        support::connected_peers(&support::node_status(&client, &a).await)
            .contains(&"till-3".to_owned())
    );

    // Upper case, as `openssl x509 -serial` prints it: recorded in lower case.
    let upper = format!("/v1/store/certificates/{}/revoke", serial.to_uppercase());
    let (status, revoked) = post(&client, &b, &upper, "r-1", json!(null)).await;
    assert_eq!(status, 201, "{revoked}");
    assert_eq!(
        revoked["outcome"]["serial"].as_str(),
        Some(serial.as_str()),
        "{revoked}"
    );
    let index = revoked["log_index"].as_u64().expect("index");
    let path = format!("/v1/store/certificates/{serial}/revoke");
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
    let exit = printed.status.code();
    let printed = String::from_utf8_lossy(&printed.stdout).into_owned();
    assert!(
        printed.starts_with("CERTIFICATE REVOKED"),
        "posmesh status on till-3:\n{printed}"
    );
    assert_eq!(exit, Some(3), "up but refusing sales: exit 3");
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

/// Revokes the certificate in `identity_dir` store-wide through `node`'s API under
/// Idempotency-Key `key` (201 expected); returns its serial and the answer.
async fn revoke_certificate_of(
    client: &reqwest::Client,
    node: &NodeProcess,
    identity_dir: &std::path::Path,
    key: &str,
) -> (String, serde_json::Value) {
    let pem = std::fs::read(identity_dir.join("node.pem")).expect("node.pem");
    let serial = posmesh_mesh::tls::serial_hex_of_pem(&pem).expect("serial");
    let (status, revoked) = post(
        client,
        node,
        &format!("/v1/store/certificates/{serial}/revoke"),
        key,
        json!(null),
    )
    .await;
    assert_eq!(status, 201, "{revoked}");
    (serial, revoked)
}

/// Waits until `node`'s status says its certificate is revoked; returns what it says.
async fn certificate_revoked(client: &reqwest::Client, node: &NodeProcess) -> String {
    let started = Instant::now();
    loop {
        let status = support::node_status(client, node).await;
        if let Some(said) = status["raft"]["certificate_revoked"].as_str() {
            return said.to_owned();
        }
        assert!(
            started.elapsed() < CLOSE_BOUND,
            "the device does not know its certificate was revoked: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A till cut off while its certificate is revoked learns it only from a peer's close
/// (code 4, naming its serial): it keeps that across a restart — alone, no peer to refuse
/// it again, it still refuses sales and says why — even under a new certificate for the
/// same id (the store cut that id's journal: a till is enrolled again under a new id).
/// `posmesh status` as a health check on the way: 0 on a serving device, 1 once it is
/// stopped, 3 on the revoked one (text and `--json`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_learned_from_a_peer_survives_a_restart_and_a_new_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let client = support::http_client();
    let (a, b, c) = start_store(&client, d).await;
    wait_leader(&client, &[&a, &b, &c], 3, None).await;
    let peers = vec![
        format!("till-1@{}", support::mesh_addr(&client, &a).await),
        format!("till-2@{}", support::mesh_addr(&client, &b).await),
    ];
    // Revoked while till-3 is down: it never applies the entry (the others close its
    // connections right after the handshake), it only hears their close.
    c.stop().expect("till-3 stops");
    let (serial, _) = revoke_certificate_of(&client, &a, &d.join("till-3-id"), "r-till-3").await;
    let c = start(d, "till-3", &peers, false);
    let said = certificate_revoked(&client, &c).await;
    assert!(
        said.contains(&format!("serial {serial}")) && said.contains("refused at the mesh by till-"),
        "{said}"
    );

    // `posmesh status` as a health check: till-1 serves (0); stopped, nothing answers (1).
    let status_of = |mgmt: &str| {
        support::cli_output(
            std::process::Command::new(support::binary()).args(["status", "--mgmt", mgmt]),
        )
    };
    let serving = status_of(&a.mgmt);
    assert_eq!(serving.0, 0, "till-1 serves:\n{}{}", serving.1, serving.2);
    let help = support::cli_output(
        std::process::Command::new(support::binary()).args(["status", "--help"]),
    );
    assert!(
        help.1.contains("Exit codes") && help.1.contains("3  up but refuses every sale"),
        "posmesh status --help:\n{}",
        help.1
    );
    let a_mgmt = a.mgmt.clone();
    // Restarted with no peer running: nobody tells it again, yet it still refuses.
    a.stop().expect("till-1 stops");
    let gone = status_of(&a_mgmt);
    assert_eq!(
        (gone.0, gone.2.contains("cannot reach the management API")),
        (1, true),
        "{gone:?}"
    );
    b.stop().expect("till-2 stops");
    c.stop().expect("till-3 stops");
    let c = start(d, "till-3", &peers, false);
    let status = support::node_status(&client, &c).await;
    let said = status["raft"]["certificate_revoked"]
        .as_str()
        .unwrap_or_default();
    assert!(
        said.contains(&format!("serial {serial}")) && said.contains("refused at the mesh by till-"),
        "after a restart: {status}"
    );
    let (code, refused) = post(&client, &c, "/v1/sales", "c-after", support::valid_sale()).await;
    assert_eq!(
        (code, refused["error"]["code"].as_str()),
        (403, Some("certificate_revoked")),
        "{refused}"
    );
    let printed = status_of(&c.mgmt);
    assert!(
        printed.1.starts_with("CERTIFICATE REVOKED"),
        "posmesh status:\n{}",
        printed.1
    );
    assert_eq!(printed.0, 3, "up but refusing sales: exit 3");
    let json = support::cli_output(
        std::process::Command::new(support::binary()).args(["status", "--json", "--mgmt", &c.mgmt]),
    );
    let reported: serde_json::Value = serde_json::from_str(&json.1).expect("JSON status");
    assert_eq!(
        (json.0, &reported["sales_refused"]["code"]),
        (3, &json!("certificate_revoked")),
        "{}",
        json.1
    );
    assert_eq!(
        support::alerts_of(&client, &c, "certificate_revoked", "till-3")
            .await
            .len(),
        1
    );

    // A new certificate for the same id, then a restart: the store cut till-3's journal at
    // the revocation, so the id stays revoked (re-enrolment is a new id and an empty data
    // directory).
    c.stop().expect("till-3 stops");
    let identity = d.join("till-3-id");
    std::fs::remove_dir_all(&identity).expect("old identity removed");
    let (ca_dir, out) = (
        d.join("ca").display().to_string(),
        identity.display().to_string(),
    );
    support::ca(&[
        "issue", "--ca-dir", &ca_dir, "--store", "s1", "--device", "till-3", "--out", &out,
    ]);
    let c = start(d, "till-3", &peers, false);
    let status = support::node_status(&client, &c).await;
    assert!(
        status["raft"]["certificate_revoked"]
            .as_str()
            .is_some_and(|said| said.contains(&format!("serial {serial}"))),
        "under a new certificate: {status}"
    );
    assert_eq!(
        support::alerts_of(&client, &c, "certificate_revoked", "till-3")
            .await
            .len(),
        1,
        "the alert stays"
    );
    let (code, refused) = post(&client, &c, "/v1/sales", "c-new", support::valid_sale()).await;
    assert_eq!(
        (code, refused["error"]["code"].as_str()),
        (403, Some("certificate_revoked")),
        "{refused}"
    );
}

/// What the cloud answers a `Hello` from a client presenting the certificate in
/// `identity_dir`: `Ok(code)` of a refusal (`""` for an answer), or `Err` when the cloud
/// closed the connection (the text of the close).
async fn hello_from(identity_dir: &std::path::Path, cloud: &str) -> Result<String, String> {
    use posmesh_mesh::tls::{AcceptPolicy, MeshTls};
    use posmesh_mesh::transport::{MeshEndpoint, StreamPurpose, TransportSettings};
    use posmesh_proto::cloud::v1::{cloud_request, cloud_response, CloudRequest, CloudResponse};
    use prost::Message;
    let credentials = posmesh_mesh::pki::load_identity(identity_dir).expect("identity");
    let policy = AcceptPolicy::for_identity(&credentials.identity);
    let tls = MeshTls::new(credentials, policy).expect("tls");
    let endpoint = MeshEndpoint::bind(
        "127.0.0.1:0".parse().expect("addr"),
        tls,
        TransportSettings::default(),
    )
    .expect("bind");
    let answer = async {
        let connection = endpoint
            .connect(cloud.parse().expect("cloud addr"))
            .await
            .map_err(|e| format!("{e:#}"))?;
        let request = CloudRequest {
            kind: Some(cloud_request::Kind::Hello(Default::default())),
        };
        let bytes = connection
            .call(
                StreamPurpose::Cloud,
                &request.encode_to_vec(),
                Duration::from_secs(5),
            )
            .await
            .map_err(|e| {
                let closed = connection.close_reason().map(|r| r.to_string());
                format!("{e:#} (closed: {closed:?})")
            })?;
        let response = CloudResponse::decode(bytes.as_slice()).expect("response decodes");
        Ok(match response.kind {
            Some(cloud_response::Kind::Error(error)) => error.code,
            _ => String::new(),
        })
    }
    .await;
    endpoint.close();
    answer
}

/// Waits until `node`'s uplink status says it refuses to upload; returns why.
async fn uplink_refused(client: &reqwest::Client, node: &NodeProcess) -> String {
    let started = Instant::now();
    loop {
        let status = support::node_status(client, node).await;
        if let Some(refused) = status["uplink"]["refused"].as_str() {
            assert_eq!(status["uplink"]["connected"], false, "{status}");
            return refused.to_owned();
        }
        assert!(
            started.elapsed() < CLOUD_BOUND,
            "the uplink does not refuse: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Uplink rounds run every second and reconnects back off to 15 s: generous for a loaded
/// machine.
const CLOUD_BOUND: Duration = Duration::from_secs(45);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cloud_and_the_uplinks_honour_store_wide_revocations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let client = support::http_client();
    support::issue_identities_in(d, &[("s1", "till-1"), ("s1", "till-2"), ("s1", "till-3")]);
    let cloud_id = issue_cloud(d);
    let cloud = start_cloud(d, "127.0.0.1:0");
    let (a, b, c) = start_uploading_store(&client, d, &cloud.quic).await;
    sell_on(&client, &[(&c, "c-before", 2)]).await;
    wait_cloud_entries(&client, &cloud, 2).await;
    assert_eq!(
        hello_from(&d.join("till-3-id"), &cloud.quic).await,
        Ok(String::new())
    );

    // 1. till-3's certificate revoked store-wide.
    let (serial, _) = revoke_certificate_of(&client, &a, &d.join("till-3-id"), "r-till-3").await;
    // till-3 knows and stops its own uplink.
    let refused = uplink_refused(&client, &c).await;
    assert!(
        refused.contains("uplink to the cloud stopped") && refused.contains(&serial),
        "{refused}"
    );
    // The others tell the cloud, which from then refuses till-3's certificate (the
    // connection closed at once, or the call refused).
    let started = Instant::now();
    let answer = loop {
        match hello_from(&d.join("till-3-id"), &cloud.quic).await {
            Ok(code) if code.is_empty() => {}
            answer => break answer,
        }
        assert!(
            started.elapsed() < CLOUD_BOUND,
            "the cloud still serves till-3's revoked certificate"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    match &answer {
        Ok(code) => assert_eq!(code, "certificate_revoked"),
        Err(closed) => assert!(closed.contains("certificate_revoked at"), "{closed}"),
    }
    // Never retroactive: what it uploaded before stays; the others still upload.
    sell_on(&client, &[(&a, "a-before", 1)]).await;
    wait_cloud_entries(&client, &cloud, 3).await;

    // 2. The cloud's certificate revoked store-wide: no device uploads to it any more.
    let (cloud_serial, _) = revoke_certificate_of(&client, &b, &cloud_id, "r-cloud").await;
    for node in [&a, &b] {
        let refused = uplink_refused(&client, node).await;
        assert!(
            refused.contains(&cloud_serial) && refused.contains("refuses it"),
            "{refused}"
        );
    }
    let listed = support::get_json(&client, &format!("http://{}/v1/alerts", a.api)).await;
    let raised: Vec<_> = listed["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter(|alert| alert["kind"] == "cloud_certificate_revoked")
        .collect();
    assert_eq!(raised.len(), 1, "{listed}");
    // A sale taken now stays in the store, not at the cloud, across reconnect attempts.
    sell_on(&client, &[(&a, "a-after", 1)]).await;
    wait_entries(&client, &[&a, &b], 4).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        cloud_store(&client, &cloud).await.0,
        3,
        "uploaded to a revoked cloud"
    );
    let printed = support::cli_output(
        std::process::Command::new(support::binary()).args(["status", "--mgmt", &a.mgmt]),
    );
    assert!(
        printed.1.contains("REFUSED: the cloud at") && printed.1.contains(&cloud_serial),
        "posmesh status:\n{}",
        printed.1
    );
    // Said once in the log, not at every reconnect.
    let log = std::fs::read_to_string(d.join("till-1.log")).expect("till-1's log");
    assert_eq!(
        log.matches("the uplink refuses it").count(),
        1,
        "logged once:\n{log}"
    );
}

/// The ledger of `node`: entries in all (`/v1/status`).
async fn entries_total(client: &reqwest::Client, node: &NodeProcess) -> u64 {
    support::node_status(client, node).await["replication"]["entries_total"]
        .as_u64()
        .expect("entries_total")
}

/// A revoked till's journal is cut where the leader's ledger held it: its entries beyond
/// the cut, taken while it did not know (it was down when the revocation committed) and
/// relayed by a new device that did not know either, reach neither the other devices'
/// ledgers nor the cloud; those before the cut stay; the relay's own sales go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_tills_later_entries_relayed_by_another_device_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let client = support::http_client();
    support::issue_identities_in(
        d,
        &[
            ("s1", "till-1"),
            ("s1", "till-2"),
            ("s1", "till-3"),
            ("s1", "till-4"),
        ],
    );
    issue_cloud(d);
    let cloud = start_cloud(d, "127.0.0.1:0");
    let (a, b, c) = start_uploading_store(&client, d, &cloud.quic).await;
    sell_on(&client, &[(&c, "c-before", 2)]).await;
    wait_entries(&client, &[&a, &b, &c], 2).await;
    wait_cloud_entries(&client, &cloud, 2).await;
    let a_mesh = format!("till-1@{}", support::mesh_addr(&client, &a).await);
    let a_mesh_again = a_mesh.clone();
    let b_mesh = format!("till-2@{}", support::mesh_addr(&client, &b).await);

    // till-3 is down when its certificate is revoked (cut after its 2 entries).
    c.stop().expect("till-3 stops");
    let (_, revoked) = revoke_certificate_of(&client, &a, &d.join("till-3-id"), "r-till-3").await;
    // The cloud learns it (and the cut, in the same Hello) from till-1 or till-2.
    let started = Instant::now();
    while hello_from(&d.join("till-3-id"), &cloud.quic).await == Ok(String::new()) {
        assert!(
            started.elapsed() < CLOUD_BOUND,
            "the cloud does not learn the revocation"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Restarted where no peer finds it, till-3 does not know and takes 2 more sales; a
    // newly enrolled till-4 (no Raft state: no revocation known) meets only till-3 and
    // takes all 4.
    let c = support::start_mesh_node(d, "s1", "till-3", "127.0.0.1:0", &[]);
    sell_on(&client, &[(&c, "c-after", 2)]).await;
    let c_mesh = format!("till-3@{}", support::mesh_addr(&client, &c).await);
    let relay = support::start_mesh_node(d, "s1", "till-4", "127.0.0.1:0", &[c_mesh]);
    wait_entries(&client, &[&c, &relay], 4).await;
    c.stop().expect("till-3 stops");
    relay.stop().expect("till-4 stops");

    // till-4 joins the store and the cloud: it relays till-3's journal to both and sells.
    let relay = support::start_mesh_node_with(
        d,
        "s1",
        "till-4",
        "127.0.0.1:0",
        &[a_mesh, b_mesh],
        &["--cloud", &cloud.quic],
    );
    sell_on(&client, &[(&relay, "d-after", 1)]).await;
    // till-4's sale arrives everywhere; till-3's 2 entries before the cut stay, the 2
    // beyond it arrive nowhere (5 entries here and 5 at the cloud without the cut).
    wait_entries(&client, &[&a, &b], 3).await;
    wait_cloud_entries(&client, &cloud, 3).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    for node in [&a, &b] {
        assert_eq!(entries_total(&client, node).await, 3, "beyond the cut");
    }
    assert_eq!(cloud_store(&client, &cloud).await.0, 3, "beyond the cut");
    let till3_sales =
        support::get_json(&client, &format!("http://{}/v1/sales?device=till-3", a.api)).await;
    let seqs: Vec<u64> = till3_sales["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|entry| entry["seq"].as_u64())
        .collect();
    assert_eq!(
        seqs,
        [1, 2],
        "till-3's entries up to the cut: {till3_sales}"
    );
    // Where the relayed entries were refused (if till-4 sent them before it applied the
    // cut itself: then it sends none), counted, not stored.
    for node in [&a, &b] {
        let metrics = client
            .get(format!("http://{}/metrics", node.api))
            .send()
            .await
            .expect("metrics answer")
            .text()
            .await
            .expect("metrics text");
        let refused: Vec<&str> = metrics
            .lines()
            .filter(|line| line.contains("beyond_cut"))
            .collect();
        println!("refused beyond the cut: {refused:?}");
    }

    // Given a new certificate under its old id (same data directory), till-3 is let in
    // again, but every entry it would make lies beyond its journal's cut: once it applied
    // the cut it takes no sale, saying why (a new id is the way back).
    relay.stop().expect("till-4 stops");
    std::fs::remove_dir_all(d.join("till-3-id")).expect("old identity removed");
    support::ca(&[
        "issue",
        "--ca-dir",
        &d.join("ca").display().to_string(),
        "--store",
        "s1",
        "--device",
        "till-3",
        "--out",
        &d.join("till-3-id").display().to_string(),
    ]);
    let c = support::start_mesh_node(d, "s1", "till-3", "127.0.0.1:0", &[a_mesh_again]);
    let revoked_at = revoked["log_index"].as_u64().expect("index");
    let started = Instant::now();
    while support::node_status(&client, &c).await["raft"]["applied_index"]
        .as_u64()
        .is_none_or(|applied| applied < revoked_at)
    {
        assert!(
            started.elapsed() < CLOSE_BOUND,
            "till-3 does not apply the revocation"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, refused) = post(
        &client,
        &c,
        "/v1/sales",
        "c-new-cert",
        support::valid_sale(),
    )
    .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (403, Some("certificate_revoked")),
        "{refused}"
    );
    let said = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(
        said.contains("cut the journal of till-3 after seq 2") && said.contains("new id"),
        "{said}"
    );
}
