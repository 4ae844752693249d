//! Ledger replication between real `posmesh device` processes on 127.0.0.1 with static
//! peers: three devices of a store take sales concurrently and converge to the same ledger
//! (equal digests, every entry on every node); a fourth device that starts late, after
//! hundreds more sales, catches up in full — learning the keys of devices it never met from
//! relayed attestations — and its own sales reach the others; every data directory then
//! passes `posmesh journal verify`, and a restarted node still knows the keys it learnt.

use super::support;
use posmesh_node::node_process::NodeProcess;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Generous bound for replication to converge (it takes about a second here).
const CONVERGE_LIMIT: Duration = Duration::from_secs(60);
/// Sales posted to each of the first three devices.
const SALES_EACH: u64 = 50;
/// Sales posted to till-1 before till-4 starts.
const SALES_LATE: u64 = 300;
/// Sales posted to till-4 once it is up.
const SALES_TILL_4: u64 = 10;

/// Posts `count` sales to `node`, keys prefixed with `tag`.
async fn post_sales(client: &reqwest::Client, node: &NodeProcess, tag: &str, count: u64) {
    let sale = support::valid_sale();
    for i in 0..count {
        support::post_created(client, &node.api, "/v1/sales", &format!("{tag}-{i}"), &sale).await;
    }
}

/// The replication section's version vector.
fn vector(status: &Value) -> BTreeMap<String, u64> {
    status["replication"]["version_vector"]
        .as_object()
        .map(|v| {
            v.iter()
                .map(|(device, seq)| (device.clone(), seq.as_u64().expect("seq")))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until every node holds exactly `want` (device → seq) and all digests are equal;
/// returns the time it took.
async fn converge(
    client: &reqwest::Client,
    nodes: &[&NodeProcess],
    want: &BTreeMap<String, u64>,
) -> Duration {
    let started = Instant::now();
    loop {
        let mut statuses = Vec::new();
        for node in nodes {
            statuses.push(status(client, node).await);
        }
        let digests: Vec<&Value> = statuses
            .iter()
            .map(|s| &s["replication"]["digest"])
            .collect();
        let all_hold = statuses.iter().all(|s| vector(s) == *want);
        if all_hold && digests.iter().all(|d| *d == digests[0]) {
            let total: u64 = want.values().sum();
            for s in &statuses {
                assert_eq!(s["replication"]["entries_total"], total);
                assert_eq!(s["replication"]["refused_total"], 0, "nothing refused: {s}");
            }
            return started.elapsed();
        }
        assert!(
            started.elapsed() < CONVERGE_LIMIT,
            "no convergence to {want:?}: {:?}",
            statuses
                .iter()
                .map(|s| (&s["device_id"], &s["replication"]))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_of_a_store_converge_and_a_late_device_catches_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    support::issue_identities_in(
        d,
        &[
            ("s1", "till-1"),
            ("s1", "till-2"),
            ("s1", "till-3"),
            ("s1", "till-4"),
        ],
    );
    let client = support::http_client();
    let a = start(d, "till-1", &[]);
    let a_mesh = mesh_addr(&client, &a).await;
    let b = start(d, "till-2", &[format!("till-1@{a_mesh}")]);
    let b_mesh = mesh_addr(&client, &b).await;
    let c = start(
        d,
        "till-3",
        &[format!("till-1@{a_mesh}"), format!("till-2@{b_mesh}")],
    );

    // Sales on all three at once, while the mesh forms.
    tokio::join!(
        post_sales(&client, &a, "a", SALES_EACH),
        post_sales(&client, &b, "b", SALES_EACH),
        post_sales(&client, &c, "c", SALES_EACH),
    );
    let mut want: BTreeMap<String, u64> = ["till-1", "till-2", "till-3"]
        .into_iter()
        .map(|device| (device.to_owned(), SALES_EACH))
        .collect();
    let took = converge(&client, &[&a, &b, &c], &want).await;
    println!("replication: 3 × {SALES_EACH} sales on 3 devices converged in {took:?}");

    // The whole store's sales are listed from any device, filtered by device and day.
    let devices: Value = support::get_json(&client, &format!("http://{}/v1/devices", b.api)).await;
    assert_eq!(devices["devices"]["till-1"].as_u64(), Some(SALES_EACH));
    let page: Value = support::get_json(
        &client,
        &format!("http://{}/v1/sales?device=till-3&limit=1000", a.api),
    )
    .await;
    let listed = page["entries"].as_array().expect("entries");
    assert_eq!(listed.len() as u64, SALES_EACH);
    assert!(listed.iter().all(|e| e["device_id"] == "till-3"));
    let date = listed[0]["business_date"]
        .as_str()
        .expect("date")
        .to_owned();
    let same_day: Value = support::get_json(
        &client,
        &format!(
            "http://{}/v1/sales?device=till-3&business_date={date}&limit=1000",
            a.api
        ),
    )
    .await;
    let same_day = same_day["entries"].as_array().expect("entries");
    assert!(!same_day.is_empty() && same_day.iter().all(|e| e["business_date"] == date.as_str()));
    let none: Value = support::get_json(
        &client,
        &format!(
            "http://{}/v1/sales?device=till-3&business_date=2001-01-01",
            a.api
        ),
    )
    .await;
    assert_eq!(none["entries"].as_array().map(Vec::len), Some(0));

    // till-4 starts after 300 more sales on till-1 and knows only till-1: it catches up,
    // with the keys of till-2 and till-3 relayed by till-1.
    post_sales(&client, &a, "a-late", SALES_LATE).await;
    let late = start(d, "till-4", &[format!("till-1@{a_mesh}")]);
    *want.get_mut("till-1").expect("till-1") += SALES_LATE;
    let took = converge(&client, &[&a, &b, &c, &late], &want).await;
    println!(
        "replication: late till-4 caught up on {} entries in {took:?}",
        want.values().sum::<u64>()
    );
    let keys = status(&client, &late).await["replication"]["known_keys"].clone();
    assert_eq!(
        keys,
        serde_json::json!(["till-1", "till-2", "till-3", "till-4"]),
        "relayed keys"
    );

    // till-4's own sales reach the others (till-2 and till-3 only through till-1).
    post_sales(&client, &late, "d", SALES_TILL_4).await;
    want.insert("till-4".into(), SALES_TILL_4);
    converge(&client, &[&a, &b, &c, &late], &want).await;

    // Verified keys are stored: restarted alone, till-4 still knows every device's key.
    late.stop().expect("clean stop");
    let late = start(d, "till-4", &[]);
    let keys = status(&client, &late).await["replication"]["known_keys"].clone();
    assert_eq!(
        keys,
        serde_json::json!(["till-1", "till-2", "till-3", "till-4"]),
        "stored keys"
    );

    for node in [a, b, c, late] {
        node.stop().expect("clean stop");
    }
    for device in ["till-1", "till-2", "till-3", "till-4"] {
        let (ok, report) = support::verify_journal(&d.join(device));
        assert!(ok, "journal verify of {device}:\n{report}");
        for other in want.keys() {
            assert!(
                report.contains(other.as_str()),
                "{device} verifies {other}:\n{report}"
            );
            // Every device's chain heads are checked, with keys learnt by attestation.
            let line = report
                .lines()
                .find(|l| l.contains(&format!("device {other}:")))
                .unwrap_or_default();
            assert!(
                !line.contains(", 0 signed heads verified"),
                "{device} checked no signature of {other}:\n{report}"
            );
        }
    }
}

/// A device of the store that misbehaves: it connects with a valid certificate and sends a
/// tampered chain, a head signed by another key, and entries claiming to be the receiver's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_and_forged_batches_are_refused_and_nothing_is_stored() {
    use posmesh_mesh::tls::{AcceptPolicy, KeyAttestation, MeshTls};
    use posmesh_mesh::transport::{MeshEndpoint, StreamPurpose, TransportSettings};
    use posmesh_proto::journal::v1::{ChainHeadSignature, JournalEntry};
    use posmesh_proto::mesh::v1::{sync_frame, SyncFrame};
    use posmesh_proto::sync::v1::{sync_message, EntryBatch, EntryBytes, SyncMessage};
    use posmesh_sync::chain::{link_entry, GENESIS_PREV_HASH};
    use posmesh_sync::chain_head::{public_key, signing_key, ChainHead};
    use prost::Message;

    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    support::issue_identities_in(d, &[("s1", "till-1"), ("s1", "till-9")]);
    let client = support::http_client();
    let a = start(d, "till-1", &[]);
    post_sales(&client, &a, "honest", 3).await;
    let a_mesh: std::net::SocketAddr = mesh_addr(&client, &a).await.parse().expect("addr");

    let credentials = posmesh_mesh::pki::load_identity(&d.join("till-9-id")).expect("identity");
    let policy = AcceptPolicy::for_identity(&credentials.identity);
    let rogue_key = signing_key(&[5; 32]);
    let attestation = KeyAttestation::sign(&credentials, 1, public_key(&rogue_key)).expect("sign");
    let tls = MeshTls::new(credentials, policy).expect("tls");
    let endpoint = MeshEndpoint::bind(
        "127.0.0.1:0".parse().expect("addr"),
        tls,
        TransportSettings::default(),
    )
    .expect("bind");
    let connection = endpoint
        .connect(a_mesh)
        .await
        .expect("a store device may connect");
    let mut stream = connection
        .open_stream(StreamPurpose::Sync)
        .await
        .expect("stream");
    let frame = |kind: sync_frame::Kind| SyncFrame { kind: Some(kind) }.encode_to_vec();
    let attestation = posmesh_proto::mesh::v1::KeyAttestation {
        cert_der: attestation.cert_der,
        device_incarnation: attestation.device_incarnation,
        signing_public_key: attestation.signing_public_key.to_vec(),
        signature: attestation.signature,
    };
    stream
        .send_frame(&frame(sync_frame::Kind::Attestation(attestation)))
        .await
        .expect("send attestation");

    // Builds a one-entry batch (entry `seq`) of `device` linked to `prev`, its head signed
    // by `key`.
    let batch = |device: &str, seq: u64, prev: [u8; 32], key: &ed25519_dalek::SigningKey| {
        let mut entry = JournalEntry {
            store_id: "s1".into(),
            device_id: device.into(),
            device_incarnation: 1,
            seq,
            receipt_no: seq,
            ..Default::default()
        };
        let (bytes, hash) = link_entry(&mut entry, &prev);
        let head = ChainHead {
            store_id: "s1".into(),
            device_id: device.into(),
            device_incarnation: 1,
            seq,
            chain_hash: hash,
        };
        let signature = head.sign(key).to_vec();
        let message = SyncMessage {
            kind: Some(sync_message::Kind::EntryBatch(EntryBatch {
                device_id: device.into(),
                entries: vec![EntryBytes { seq, bytes }],
                head: Some(ChainHeadSignature {
                    device_id: device.into(),
                    device_incarnation: 1,
                    seq,
                    chain_hash: hash.to_vec(),
                    signature,
                }),
            })),
        };
        frame(sync_frame::Kind::Sync(message))
    };
    // 1. A tampered chain: the first entry does not start from the genesis hash.
    stream
        .send_frame(&batch("till-9", 1, [7; 32], &rogue_key))
        .await
        .expect("send");
    // 2. A head signed by another key than the attested one.
    stream
        .send_frame(&batch(
            "till-9",
            1,
            GENESIS_PREV_HASH,
            &signing_key(&[6; 32]),
        ))
        .await
        .expect("send");
    // 3. Entries claiming to be the receiver's own, beyond what it holds (one it already
    // holds is answered as a duplicate; nothing is stored either way).
    stream
        .send_frame(&batch("till-1", 4, GENESIS_PREV_HASH, &rogue_key))
        .await
        .expect("send");

    let started = std::time::Instant::now();
    let replication = loop {
        let replication = status(&client, &a).await["replication"].clone();
        if replication["refused_total"].as_u64().unwrap_or(0) >= 3 {
            break replication;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let metrics = client
                .get(format!("http://{}/metrics", a.api))
                .send()
                .await
                .expect("metrics")
                .text()
                .await
                .expect("text");
            let refusals: Vec<&str> = metrics.lines().filter(|l| l.contains("refused")).collect();
            panic!("not refused: {replication}\n{refusals:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        replication["entries_total"].as_u64(),
        Some(3),
        "{replication}"
    );
    assert!(
        replication["version_vector"].get("till-9").is_none(),
        "{replication}"
    );
    assert_eq!(replication["version_vector"]["till-1"].as_u64(), Some(3));
    endpoint.close();
    a.stop().expect("clean stop");
    let (ok, report) = support::verify_journal(&d.join("till-1"));
    assert!(ok, "{report}");
}

fn start(dir: &Path, device: &str, peers: &[String]) -> NodeProcess {
    support::start_mesh_node(dir, "s1", device, "127.0.0.1:0", peers)
}

async fn status(client: &reqwest::Client, node: &NodeProcess) -> Value {
    support::node_status(client, node).await
}

async fn mesh_addr(client: &reqwest::Client, node: &NodeProcess) -> String {
    support::mesh_addr(client, node).await
}
