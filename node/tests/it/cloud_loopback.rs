//! The chain's cloud with real `posmesh` processes on 127.0.0.1: a store of three devices,
//! each with `--cloud`, uploads every sale exactly once although all three upload every
//! device's entries at once; a cloud SIGKILLed mid-upload resumes from its version vector
//! after a restart, nothing lost or doubled; a price published at the cloud is committed
//! through the store's Raft group and prices the next sale. (Forged and broken uploads are
//! refused in the cloud's unit tests, `posmesh_node::cloud` — they need crafted entries.)

use super::support;
use posmesh_node::cloud::process::{CloudProcess, CloudSpec};
use posmesh_node::node_process::NodeProcess;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// Generous bound for uploads and Raft commits on a loaded 2-core machine.
const LIMIT: Duration = Duration::from_secs(90);

pub(super) fn issue_cloud(dir: &Path) -> std::path::PathBuf {
    let out = dir.join("cloud-id");
    support::ca(&[
        "issue-cloud",
        "--ca-dir",
        &dir.join("ca").display().to_string(),
        "--name",
        "hq",
        "--out",
        &out.display().to_string(),
    ]);
    out
}

pub(super) fn start_cloud(dir: &Path, listen: &str) -> CloudProcess {
    CloudProcess::start(&CloudSpec {
        binary: support::binary(),
        data_dir: dir.join("cloud"),
        identity_dir: dir.join("cloud-id"),
        listen: listen.to_owned(),
    })
    .expect("cloud starts")
}

/// Three devices of store `s1` in `d` (identities in `d/till-N-id`, already issued), each
/// uploading to the cloud at `cloud_quic`, till-1 bootstrapping the Raft group; returns
/// once they agree on a leader with 3 voters.
pub(super) async fn start_uploading_store(
    client: &reqwest::Client,
    d: &Path,
    cloud_quic: &str,
) -> (NodeProcess, NodeProcess, NodeProcess) {
    let up = ["--cloud", cloud_quic];
    let boot = ["--cloud", cloud_quic, "--raft-bootstrap"];
    let a = support::start_mesh_node_with(d, "s1", "till-1", "127.0.0.1:0", &[], &boot);
    let a_mesh = format!("till-1@{}", support::mesh_addr(client, &a).await);
    let b = support::start_mesh_node_with(
        d,
        "s1",
        "till-2",
        "127.0.0.1:0",
        std::slice::from_ref(&a_mesh),
        &up,
    );
    let b_mesh = format!("till-2@{}", support::mesh_addr(client, &b).await);
    let c = support::start_mesh_node_with(d, "s1", "till-3", "127.0.0.1:0", &[a_mesh, b_mesh], &up);
    super::consensus_loopback::wait_leader(client, &[&a, &b, &c], 3, None).await;
    (a, b, c)
}

/// GETs `path` of the cloud's admin API with its bearer token.
pub(super) async fn admin_get(client: &reqwest::Client, cloud: &CloudProcess, path: &str) -> Value {
    client
        .get(format!("http://{}{path}", cloud.http))
        .bearer_auth(cloud.admin_token.secret())
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: not JSON: {e}"))
}

async fn chain_report(client: &reqwest::Client, cloud: &CloudProcess) -> Value {
    admin_get(client, cloud, "/v1/reports/chain").await
}

/// The cloud's entries and per-day totals of store `s1` (`Value::Null` days when absent).
pub(super) async fn cloud_store(client: &reqwest::Client, cloud: &CloudProcess) -> (u64, Value) {
    let report = chain_report(client, cloud).await;
    let store = report["stores"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["store_id"] == "s1"))
        .cloned()
        .unwrap_or(Value::Null);
    (
        store["entries"].as_u64().unwrap_or(0),
        store["days"].clone(),
    )
}

pub(super) async fn wait_cloud_entries(
    client: &reqwest::Client,
    cloud: &CloudProcess,
    want: u64,
) -> Value {
    let started = Instant::now();
    loop {
        let (entries, days) = cloud_store(client, cloud).await;
        assert!(
            entries <= want,
            "the cloud holds {entries} entries, more than the {want} written"
        );
        if entries == want {
            return days;
        }
        assert!(
            started.elapsed() < LIMIT,
            "the cloud holds {entries} of {want} entries after {LIMIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn post_sales(
    client: &reqwest::Client,
    node: &NodeProcess,
    prefix: &str,
    count: usize,
    parallel: usize,
) {
    let mut next = 0;
    while next < count {
        let mut wave = Vec::new();
        for k in next..(next + parallel).min(count) {
            let key = format!("{prefix}-{k}");
            let body = support::valid_sale();
            let api = node.api.clone();
            let client = client.clone();
            wave.push(tokio::spawn(async move {
                support::post_created(&client, &api, "/v1/sales", &key, &body).await
            }));
        }
        next += wave.len();
        for task in wave {
            task.await.expect("sale task");
        }
    }
}

async fn device_days(client: &reqwest::Client, node: &NodeProcess) -> Value {
    support::get_json(client, &format!("http://{}/v1/reports/days", node.api)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_device_uploads_and_the_cloud_stores_each_sale_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let devices = ["till-1", "till-2", "till-3"];
    support::issue_identities(dir.path(), &devices.map(|d| ("s1", d)), |d| {
        dir.path().join(format!("{d}-id"))
    });
    issue_cloud(dir.path());
    let cloud = start_cloud(dir.path(), "127.0.0.1:0");
    let client = support::http_client();
    let cloud_flag = ["--cloud", cloud.quic.as_str()];
    let till1 =
        support::start_mesh_node_with(dir.path(), "s1", "till-1", "127.0.0.1:0", &[], &cloud_flag);
    let a1 = format!("till-1@{}", support::mesh_addr(&client, &till1).await);
    let till2 = support::start_mesh_node_with(
        dir.path(),
        "s1",
        "till-2",
        "127.0.0.1:0",
        std::slice::from_ref(&a1),
        &cloud_flag,
    );
    let a2 = format!("till-2@{}", support::mesh_addr(&client, &till2).await);
    let till3 = support::start_mesh_node_with(
        dir.path(),
        "s1",
        "till-3",
        "127.0.0.1:0",
        &[a1, a2],
        &cloud_flag,
    );
    let nodes = [&till1, &till2, &till3];
    // Sales on every device at once; every device replicates them to the others and
    // uploads all it holds, so each range reaches the cloud up to three times.
    let per_device = 60;
    tokio::join!(
        post_sales(&client, &till1, "t1", per_device, 4),
        post_sales(&client, &till2, "t2", per_device, 4),
        post_sales(&client, &till3, "t3", per_device, 4),
    );
    let total = (per_device * devices.len()) as u64;
    let cloud_days = wait_cloud_entries(&client, &cloud, total).await;
    let sales: u64 = cloud_days
        .as_array()
        .expect("days")
        .iter()
        .map(|d| d["sales"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(sales, total, "every sale once in the cloud's totals");
    // Every device converges on the same ledger and the same day totals as the cloud.
    let started = Instant::now();
    loop {
        let mut equal = true;
        for node in nodes {
            equal &= device_days(&client, node).await == cloud_days;
        }
        if equal {
            break;
        }
        assert!(
            started.elapsed() < LIMIT,
            "devices' day totals differ from the cloud's"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let every uplink run a round on the full ledger: duplicates, never double entries.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (entries, _) = cloud_store(&client, &cloud).await;
    assert_eq!(entries, total, "duplicated uploads stored nothing twice");
    let mut uploaded = 0;
    for node in nodes {
        let status = support::node_status(&client, node).await;
        let uplink = &status["uplink"];
        assert_eq!(uplink["connected"], true, "{uplink}");
        assert_eq!(uplink["entries_pending"], 0, "{uplink}");
        uploaded += uplink["entries_uploaded_total"].as_u64().expect("uploaded");
    }
    assert_eq!(
        uploaded, total,
        "the stored entries add up across the uploaders"
    );
    let report = chain_report(&client, &cloud).await;
    let store = &report["stores"][0];
    assert!(store["last_contact_ms"].as_i64().unwrap_or(0) > 0);
    assert_eq!(store["unforwarded_offline_card_payments"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cloud_killed_mid_upload_resumes_without_loss_or_doubles() {
    let dir = tempfile::tempdir().expect("tempdir");
    support::issue_identities(dir.path(), &[("s1", "till-1")], |d| {
        dir.path().join(format!("{d}-id"))
    });
    issue_cloud(dir.path());
    let client = support::http_client();
    // Reserve the cloud's address: start it once, note the port, stop it (the device dials
    // this address throughout).
    let cloud = start_cloud(dir.path(), "127.0.0.1:0");
    let quic = cloud.quic.clone();
    cloud.kill().expect("kill");
    // Hold the port while the cloud is down (the device's packets go unanswered, as to a
    // dead cloud): a port merely left free could be given to another test's socket.
    let held = std::net::UdpSocket::bind(&quic).expect("hold the cloud's port");
    // 1,200 sales taken while the cloud is down, in groups of at most 4 per commit.
    let till1 = support::start_mesh_node_with(
        dir.path(),
        "s1",
        "till-1",
        "127.0.0.1:0",
        &[],
        &["--cloud", &quic, "--cloud-batch-entries-max", "8"],
    );
    let total = 1_200u64;
    post_sales(&client, &till1, "t1", total as usize, 4).await;
    // During the outage the status counts what the cloud lacks (here: everything).
    let started = Instant::now();
    loop {
        let status = support::node_status(&client, &till1).await;
        if status["uplink"]["entries_pending"] == total {
            assert_eq!(status["uplink"]["connected"], false, "{status}");
            break;
        }
        assert!(
            started.elapsed() < LIMIT,
            "pending not counted offline: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(held);
    let cloud = start_cloud(dir.path(), &quic);
    // Kill the cloud as soon as part of the ledger is in.
    let started = Instant::now();
    let held_at_kill = loop {
        let status = support::node_status(&client, &till1).await;
        let held = status["uplink"]["cloud_version_vector"]["till-1"]
            .as_u64()
            .unwrap_or(0);
        if held > 0 {
            break held;
        }
        assert!(started.elapsed() < LIMIT, "no upload started");
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    cloud.kill().expect("SIGKILL the cloud");
    assert!(
        held_at_kill < total,
        "the kill landed mid-upload ({held_at_kill} of {total} held)"
    );
    let cloud = start_cloud(dir.path(), &quic);
    let days = wait_cloud_entries(&client, &cloud, total).await;
    assert_eq!(
        days,
        device_days(&client, &till1).await,
        "the cloud's totals are the device's"
    );
    let sales: u64 = days
        .as_array()
        .expect("days")
        .iter()
        .map(|d| d["sales"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(sales, total);
    let status = support::node_status(&client, &till1).await;
    assert_eq!(status["uplink"]["entries_pending"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_price_published_at_the_cloud_prices_the_next_sale() {
    let dir = tempfile::tempdir().expect("tempdir");
    support::issue_identities(dir.path(), &[("s1", "till-1")], |d| {
        dir.path().join(format!("{d}-id"))
    });
    issue_cloud(dir.path());
    let cloud = start_cloud(dir.path(), "127.0.0.1:0");
    let client = support::http_client();
    let till1 = support::start_mesh_node_with(
        dir.path(),
        "s1",
        "till-1",
        "127.0.0.1:0",
        &[],
        &["--cloud", &cloud.quic, "--raft-bootstrap"],
    );
    let before = support::post_created(
        &client,
        &till1.api,
        "/v1/sales",
        "before",
        &support::valid_sale(),
    )
    .await;
    assert_eq!(before["sale"]["lines"][0]["unit_price_minor"], 300);
    assert_eq!(before["catalog_version"], 1);
    // HQ raises bread from 3.00 to 3.40 in catalog version 2.
    let catalog = std::fs::read_to_string(support::bakery_catalog()).expect("catalog");
    let changed = catalog.replacen("version = 1", "version = 2", 1).replacen(
        "sku = \"BREAD\"\nname = \"Bread\"\nprice_minor = 300",
        "sku = \"BREAD\"\nname = \"Bread\"\nprice_minor = 340",
        1,
    );
    assert_ne!(changed, catalog);
    let file = dir.path().join("catalog-v2.toml");
    std::fs::write(&file, &changed).expect("write");
    // A stale or broken catalog is refused at the cloud with a precise code.
    let refused = client
        .put(format!("http://{}/v1/stores/s1/catalog", cloud.http))
        .bearer_auth(cloud.admin_token.secret())
        .json(&serde_json::json!({"version": 2, "catalog_toml": "version = 2\ncurrency = 12"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(refused.status().as_u16(), 422);
    // So is one too large for a store's Raft log (one entry, one mesh frame).
    let padding = "# padding\n".repeat(posmesh_consensus::CATALOG_TOML_BYTES_MAX / 10 + 1);
    let too_large = client
        .put(format!("http://{}/v1/stores/s1/catalog", cloud.http))
        .bearer_auth(cloud.admin_token.secret())
        .json(&serde_json::json!({"version": 2, "catalog_toml": format!("{changed}{padding}")}))
        .send()
        .await
        .expect("answers");
    assert_eq!(too_large.status().as_u16(), 413);
    let answer: serde_json::Value = too_large.json().await.expect("JSON");
    assert_eq!(
        (&answer["error"]["code"], &answer["error"]["field"]),
        (
            &serde_json::json!("catalog_too_large"),
            &serde_json::json!("catalog_toml")
        ),
        "{answer}"
    );
    let publish = || {
        std::process::Command::new(support::binary())
            .args(["cloud", "publish-catalog", "--http", &cloud.http])
            .args(["--store", "s1", "--cloud-data-dir"])
            .arg(dir.path().join("cloud"))
            .arg(&file)
            .output()
            .expect("runs")
    };
    let output = publish();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let again = publish();
    assert!(!again.status.success(), "the same version twice is refused");
    assert!(String::from_utf8_lossy(&again.stderr).contains("stale_version"));
    // A release in another currency than the store's is refused: every device would
    // commit it and go on pricing from its file.
    let in_euros = changed.replacen("version = 2", "version = 3", 1).replacen(
        "currency = \"GBP\"",
        "currency = \"EUR\"",
        1,
    );
    assert!(in_euros.contains("currency = \"EUR\""));
    let refused = client
        .put(format!("http://{}/v1/stores/s1/catalog", cloud.http))
        .bearer_auth(cloud.admin_token.secret())
        .json(&serde_json::json!({"version": 3, "catalog_toml": in_euros}))
        .send()
        .await
        .expect("answers");
    assert_eq!(refused.status().as_u16(), 422);
    let answer: serde_json::Value = refused.json().await.expect("JSON");
    assert_eq!(answer["error"]["code"], "currency_changed", "{answer}");
    // The device brings it into the store's Raft group; the next sale uses it.
    let started = Instant::now();
    loop {
        let status = support::node_status(&client, &till1).await;
        if status["uplink"]["catalog_version_applied"] == 2 {
            break;
        }
        assert!(
            started.elapsed() < LIMIT,
            "catalog 2 not committed: {}",
            status["uplink"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = support::post_created(
        &client,
        &till1.api,
        "/v1/sales",
        "after",
        &support::valid_sale(),
    )
    .await;
    assert_eq!(after["sale"]["lines"][0]["unit_price_minor"], 340);
    assert_eq!(after["catalog_version"], 2);
    // The store's Raft state reaches the cloud too (what a restore would start from).
    let started = Instant::now();
    loop {
        let snapshot = admin_get(&client, &cloud, "/v1/stores/s1/snapshot").await;
        if snapshot["state"]["catalog"]["version"] == 2 {
            assert!(snapshot["state"]["catalog_toml"]
                .as_str()
                .is_some_and(|t| t.contains("340")));
            break;
        }
        assert!(
            started.elapsed() < LIMIT,
            "no snapshot with catalog 2: {snapshot}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let item = support::get_json(&client, &format!("http://{}/v1/catalog/BREAD", till1.api)).await;
    assert_eq!(item["price_minor"], 340);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_needs_the_bearer_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    support::issue_identities(dir.path(), &[], |d| dir.path().join(format!("{d}-id")));
    issue_cloud(dir.path());
    let cloud = start_cloud(dir.path(), "127.0.0.1:0");
    let token_file = dir.path().join("cloud").join("admin-token");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&token_file)
            .expect("token file")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let client = support::http_client();
    let base = format!("http://{}", cloud.http);
    let health = client
        .get(format!("{base}/v1/health"))
        .send()
        .await
        .expect("answers");
    assert_eq!(
        health.status().as_u16(),
        200,
        "the health check needs no token"
    );
    let catalog = std::fs::read_to_string(support::bakery_catalog()).expect("catalog");
    let body = serde_json::json!({"version": 1, "catalog_toml": catalog});
    let wrong = "0".repeat(64);
    for (token, status, code) in [
        (None, 401, Some("missing_token")),
        (Some(wrong.as_str()), 401, Some("invalid_token")),
        (Some(cloud.admin_token.secret()), 200, None),
    ] {
        let mut read = client.get(format!("{base}/v1/reports/chain"));
        let mut write = client
            .put(format!("{base}/v1/stores/s1/catalog"))
            .json(&body);
        if let Some(token) = token {
            read = read.bearer_auth(token);
            write = write.bearer_auth(token);
        }
        for (what, request) in [("read", read), ("write", write)] {
            let response = request.send().await.expect("answers");
            assert_eq!(response.status().as_u16(), status, "{what} with {token:?}");
            if let Some(code) = code {
                assert!(response.headers().contains_key("www-authenticate"));
                let error: Value = response.json().await.expect("JSON error");
                assert_eq!(error["error"]["code"], code, "{what}: {error}");
            } else if what == "write" {
                // No device of s1 has called this cloud: published, with a warning.
                let answer: Value = response.json().await.expect("JSON");
                assert_eq!(answer["store_known"], false, "{answer}");
                assert!(answer["warning"].as_str().is_some(), "{answer}");
            }
        }
        // Prometheus metrics, behind the same token.
        let mut metrics = client.get(format!("{base}/metrics"));
        if let Some(token) = token {
            metrics = metrics.bearer_auth(token);
        }
        let metrics = metrics.send().await.expect("answers");
        assert_eq!(metrics.status().as_u16(), status, "/metrics with {token:?}");
    }
    // The refused write changed nothing: version 1 was published once, by the right token.
    let published = admin_get(&client, &cloud, "/v1/stores/s1/catalog").await;
    assert_eq!(published["version"], 1);
    // The CLI: without a token it says where to find one; with the data directory it works.
    let report = |extra: &[&std::ffi::OsStr]| {
        std::process::Command::new(support::binary())
            .args(["report", "chain", "--json", "--http", &cloud.http])
            .args(extra)
            .env_remove("POSMESH_CLOUD_DATA_DIR")
            .env_remove("POSMESH_CLOUD_ADMIN_TOKEN_FILE")
            .output()
            .expect("runs")
    };
    let refused = report(&[]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--admin-token-file"));
    let ok = report(&["--admin-token-file".as_ref(), token_file.as_os_str()]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let report: Value = serde_json::from_slice(&ok.stdout).expect("JSON");
    assert!(report["stores"].is_array(), "{report}");

    // A second cloud on the running one's data directory is told so, plainly.
    let serve = |data_dir: &Path, extra: &[&std::ffi::OsStr]| {
        std::process::Command::new(support::binary())
            .args(["cloud", "serve", "--data-dir"])
            .arg(data_dir)
            .arg("--identity-dir")
            .arg(dir.path().join("cloud-id"))
            .args(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
            .args(extra)
            .env_remove("POSMESH_CLOUD_ADMIN_TOKEN_FILE")
            .output()
            .expect("runs")
    };
    let second = serve(&dir.path().join("cloud"), &[]);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success());
    assert!(
        stderr.contains(&format!(
            "another cloud is using {}",
            dir.path().join("cloud").display()
        )) && !stderr.contains("LOCK"),
        "{stderr}"
    );
    // A token file refused (readable by others) leaves no data directory behind.
    let loose = dir.path().join("loose-token");
    std::fs::write(&loose, format!("{}\n", "a".repeat(64))).expect("written");
    std::fs::set_permissions(&loose, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("chmod");
    let fresh = dir.path().join("cloud-2");
    let refused = serve(&fresh, &["--admin-token-file".as_ref(), loose.as_os_str()]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(stderr.contains("chmod 600"), "{stderr}");
    assert!(!fresh.exists(), "no empty data directory is left behind");
}
