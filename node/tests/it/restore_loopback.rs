//! A store that loses every device, restored from the cloud (`posmesh store restore`): a
//! store of three devices with sales, gift cards and a closed day uploads to the cloud; all
//! three are SIGKILLed and their data directories deleted; bad restores (wrong token, no
//! such store, unreachable cloud, a reused device id, a non-empty directory) are refused
//! and write nothing; the restore onto a new device gives the same Z-report byte for byte
//! and the same gift-card balances, takes new sales and a redemption, and a second new
//! device joins the restored store.

use super::cloud_loopback::{admin_get, start_uploading_store};
use super::consensus_loopback::{balance, post, raft, redeem, sell_on, wait_entries, wait_leader};
use super::support;
use posmesh_node::cloud::process::{CloudProcess, CloudSpec};
use posmesh_node::node_process::NodeProcess;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(90);

fn restore(
    d: &Path,
    data_dir: &str,
    identity: &str,
    http: &str,
    token: &Path,
) -> (bool, String, String) {
    let (code, stdout, stderr) = support::cli_output(
        Command::new(support::binary())
            .args(["store", "restore", "--json", "--data-dir"])
            .arg(d.join(data_dir))
            .arg("--identity-dir")
            .arg(d.join(identity))
            .args(["--http", http, "--admin-token-file"])
            .arg(token)
            .env_remove("POSMESH_CLOUD_DATA_DIR"),
    );
    (code == 0, stdout, stderr)
}

fn leftovers(d: &Path) -> Vec<String> {
    std::fs::read_dir(d)
        .expect("read dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("restoring"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_that_lost_every_device_is_restored_from_the_cloud() {
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
            ("s1", "till-5"),
            ("s9", "till-9"),
        ],
    );
    support::ca(&[
        "issue-cloud",
        "--ca-dir",
        &d.join("ca").display().to_string(),
        "--name",
        "hq",
        "--out",
        &d.join("cloud-id").display().to_string(),
    ]);
    let cloud = CloudProcess::start(&CloudSpec {
        binary: support::binary(),
        data_dir: d.join("cloud"),
        identity_dir: d.join("cloud-id"),
        listen: "127.0.0.1:0".into(),
    })
    .expect("cloud starts");
    let token = d.join("cloud").join("admin-token");

    // A store of three devices, each uploading to the cloud.
    let (a, b, c) = start_uploading_store(&client, d, &cloud.quic).await;
    for (card, amount) in [("card-1", 3000), ("card-2", 1000)] {
        let (status, body) = post(
            &client,
            &b,
            "/v1/gift-cards",
            &format!("issue-{card}"),
            json!({"card_id": card, "amount_minor": amount, "currency": "GBP"}),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, body) = redeem(&client, &c, "card-1", "redeem-1", 500).await;
    assert_eq!(status, 201, "{body}");
    let today = sell_on(&client, &[(&a, "sa", 3), (&b, "sb", 2)]).await;
    wait_entries(&client, &[&a, &b, &c], 5).await;
    let (status, closed) = post(
        &client,
        &c,
        &format!("/v1/days/{today}/close"),
        "close",
        json!(null),
    )
    .await;
    assert_eq!(status, 201, "{closed}");
    let z_url = |node: &NodeProcess| format!("http://{}/v1/reports/z/{today}", node.api);
    let z_before = client
        .get(z_url(&a))
        .send()
        .await
        .expect("z")
        .text()
        .await
        .expect("text");
    let z: Value = serde_json::from_str(&z_before).expect("JSON");
    assert_eq!(z["totals"]["sales"], 5, "{z}");

    // Everything reaches the cloud: the entries and the state with the day closed.
    let started = Instant::now();
    loop {
        let snapshot = admin_get(&client, &cloud, "/v1/stores/s1/snapshot").await;
        let journal = admin_get(&client, &cloud, "/v1/stores/s1/journal").await;
        let held: u64 = journal["devices"].as_array().map_or(0, |ds| {
            ds.iter().filter_map(|d| d["held_seq"].as_u64()).sum()
        });
        if snapshot["state"]["day_closes"].get(&today).is_some() && held == 5 {
            break;
        }
        assert!(
            started.elapsed() < LIMIT,
            "not uploaded: {snapshot} {journal}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Every device is lost.
    for node in [a, b, c] {
        node.kill().expect("SIGKILL");
    }
    for device in ["till-1", "till-2", "till-3"] {
        std::fs::remove_dir_all(d.join(device)).expect("delete the data directory");
    }

    // Bad restores are refused and write nothing.
    let wrong = d.join("wrong-token");
    std::fs::write(&wrong, "f".repeat(64)).expect("write");
    std::fs::set_permissions(&wrong, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    let cases: Vec<(&str, &str, String, &Path, &str)> = vec![
        (
            "till-4",
            "till-4-id",
            cloud.http.clone(),
            &wrong,
            "invalid_token",
        ),
        (
            "till-9",
            "till-9-id",
            cloud.http.clone(),
            &token,
            "knows no store s9",
        ),
        (
            "till-4",
            "till-4-id",
            "127.0.0.1:1".into(),
            &token,
            "cannot be reached",
        ),
        (
            "till-1",
            "till-1-id",
            cloud.http.clone(),
            &token,
            "NEW device id",
        ),
    ];
    for (data_dir, identity, http, token, expected) in cases {
        let (ok, out, err) = restore(d, data_dir, identity, &http, token);
        assert!(!ok, "{out}");
        assert!(err.contains(expected), "{expected:?} not in {err}");
        assert!(
            !d.join(data_dir).exists(),
            "a refused restore wrote {data_dir}"
        );
        assert_eq!(leftovers(d), Vec::<String>::new());
    }
    std::fs::create_dir(d.join("full")).expect("mkdir");
    std::fs::write(d.join("full").join("x"), b"x").expect("write");
    let (ok, _, err) = restore(d, "full", "till-4-id", &cloud.http, &token);
    assert!(!ok && err.contains("not empty"), "{err}");

    // The restore onto a new device.
    let (ok, out, err) = restore(d, "till-4", "till-4-id", &cloud.http, &token);
    assert!(ok, "{err}");
    assert!(err.contains("verified"), "progress printed: {err}");
    let summary: Value = serde_json::from_str(out.trim()).expect("JSON summary");
    assert_eq!(summary["device_id"], "till-4");
    assert_eq!(
        summary["devices"],
        json!([{"device_id": "till-1", "entries": 3}, {"device_id": "till-2", "entries": 2}])
    );
    assert_eq!(summary["gift_cards"], 2);
    assert_eq!(summary["closed_days"], json!([today]));
    assert!(summary["may_be_missing"]
        .as_array()
        .is_some_and(|m| !m.is_empty()));
    assert_eq!(leftovers(d), Vec::<String>::new());

    let e = support::start_mesh_node_with(d, "s1", "till-4", "127.0.0.1:0", &[], &[]);
    wait_leader(&client, &[&e], 1, None).await;
    let z_after = client
        .get(z_url(&e))
        .send()
        .await
        .expect("z")
        .text()
        .await
        .expect("text");
    assert_eq!(z_after, z_before, "the restored Z-report differs");
    for (card, expected) in [("card-1", 2500), ("card-2", 1000)] {
        let (status, body) = balance(&client, &e, card).await;
        assert_eq!(
            (status, body["balance_minor"].as_i64()),
            (200, Some(expected)),
            "{body}"
        );
    }
    support::post_created(
        &client,
        &e.api,
        "/v1/sales",
        "after-1",
        &support::valid_sale(),
    )
    .await;
    let (status, body) = redeem(&client, &e, "card-1", "redeem-after", 700).await;
    assert_eq!(status, 201, "{body}");
    let (_, body) = balance(&client, &e, "card-1").await;
    assert_eq!(body["balance_minor"], 1800);

    // A second new device joins the restored store and gets everything.
    let e_mesh = format!("till-4@{}", support::mesh_addr(&client, &e).await);
    let f = support::start_mesh_node_with(d, "s1", "till-5", "127.0.0.1:0", &[e_mesh], &[]);
    wait_entries(&client, &[&e, &f], 6).await;
    let started = Instant::now();
    loop {
        let (view_e, view_f) = (raft(&client, &e).await, raft(&client, &f).await);
        if view_f["leader"] == "till-4"
            && view_f["group"] == view_e["group"]
            && view_f["applied_index"] == view_e["applied_index"]
        {
            break;
        }
        assert!(
            started.elapsed() < LIMIT,
            "till-5 did not join: {view_e} {view_f}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The sale after the restore is a late entry of the closed day, the same on both.
    let mut reports = Vec::new();
    for node in [&e, &f] {
        let text = client
            .get(z_url(node))
            .send()
            .await
            .expect("z")
            .text()
            .await
            .expect("text");
        reports.push(text);
    }
    assert_eq!(reports[0], reports[1], "Z-reports differ");
    let z: Value = serde_json::from_str(&reports[0]).expect("JSON");
    assert_eq!(z["totals"]["sales"], 5, "{z}");
    assert_eq!(z["late_entries"], json!(["till-4/1"]), "{z}");
}
