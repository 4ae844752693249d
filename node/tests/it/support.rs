//! Shared helpers: starting a node on a temporary directory, paths of the repository's
//! catalog and the bakery data, and a small JSON client.

use posmesh_node::node_process::{NodeProcess, NodeSpec};
use std::path::PathBuf;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("node/ has a parent")
        .to_path_buf()
}

/// The bakery catalog.
pub fn bakery_catalog() -> PathBuf {
    repo_root().join("catalog/bakery.toml")
}

/// The bakery's till export: `POSMESH_BAKERY_CSV`, else `../shared/data/` beside the clone.
pub fn bakery_csv() -> PathBuf {
    match std::env::var_os("POSMESH_BAKERY_CSV") {
        Some(path) => PathBuf::from(path),
        None => repo_root().join("../shared/data/BreadBasket_DMS.csv"),
    }
}

/// The `posmesh` binary under test.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_posmesh"))
}

/// A node spec for device `till-1` of store `test-store` in `dir`.
pub fn spec(dir: &std::path::Path) -> NodeSpec {
    NodeSpec {
        binary: binary(),
        data_dir: dir.join("till-1"),
        catalog: bakery_catalog(),
        store_id: "test-store".into(),
        device_id: "till-1".into(),
    }
}

/// Starts a node (panics with the node's log if it does not come up).
pub fn start(spec: &NodeSpec) -> NodeProcess {
    NodeProcess::start(spec).expect("node starts")
}

/// A valid sale body: 2 × Bread (3.00) + 1 × Coffee (2.50), cash 10.00.
pub fn valid_sale() -> serde_json::Value {
    serde_json::json!({
        "currency": "GBP",
        "lines": [{"sku": "BREAD", "quantity": 2}, {"sku": "COFFEE", "quantity": 1}],
        "tenders": [{"kind": "cash", "amount_minor": 1000}]
    })
}

/// The node's journal head: (last_seq, last_receipt_no).
pub async fn head(client: &reqwest::Client, mgmt: &str) -> (u64, u64) {
    let status: serde_json::Value = client
        .get(format!("http://{mgmt}/v1/status"))
        .send()
        .await
        .expect("status answers")
        .json()
        .await
        .expect("status is JSON");
    (
        status["journal"]["last_seq"].as_u64().expect("last_seq"),
        status["journal"]["last_receipt_no"]
            .as_u64()
            .expect("last_receipt_no"),
    )
}

/// Every entry of the node's journal, in order, via the paged listing.
pub async fn all_entries(client: &reqwest::Client, api: &str) -> Vec<serde_json::Value> {
    let mut entries = Vec::new();
    let mut after = 0u64;
    loop {
        let page: serde_json::Value = client
            .get(format!(
                "http://{api}/v1/journal?after_seq={after}&limit=1000"
            ))
            .send()
            .await
            .expect("journal answers")
            .json()
            .await
            .expect("journal page is JSON");
        let batch = page["entries"].as_array().expect("entries").clone();
        entries.extend(batch);
        match page["next_after_seq"].as_u64() {
            Some(next) => after = next,
            None => break,
        }
    }
    entries
}

/// Runs `posmesh journal verify` on a (stopped) data directory; returns (success, stdout).
pub fn verify_journal(data_dir: &std::path::Path) -> (bool, String) {
    let output = std::process::Command::new(binary())
        .args(["journal", "verify", "--data-dir"])
        .arg(data_dir)
        .output()
        .expect("verify runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// Device ids a `posmesh status --json` (or `/v1/status`) document shows connected.
pub fn connected_peers(status: &serde_json::Value) -> Vec<String> {
    status["mesh"]["peers"]
        .as_array()
        .map(|peers| {
            peers
                .iter()
                .filter(|p| p["state"] == "connected")
                .filter_map(|p| p["device_id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs `posmesh ca …` and asserts it succeeded.
pub fn ca(args: &[&str]) {
    let output = std::process::Command::new(binary())
        .arg("ca")
        .args(args)
        .output()
        .expect("posmesh ca runs");
    assert!(
        output.status.success(),
        "posmesh ca {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Starts device `device` of `store` on 127.0.0.1 with the mesh on `mesh_listen`, its
/// identity in `dir/<device>-id`, its data in `dir/<device>`, and static `peers`.
pub fn start_mesh_node(
    dir: &std::path::Path,
    store: &str,
    device: &str,
    mesh_listen: &str,
    peers: &[String],
) -> NodeProcess {
    start_mesh_node_with(dir, store, device, mesh_listen, peers, &[])
}

/// [`start_mesh_node`] with `extra` flags (e.g. `--raft-bootstrap`).
pub fn start_mesh_node_with(
    dir: &std::path::Path,
    store: &str,
    device: &str,
    mesh_listen: &str,
    peers: &[String],
    extra_flags: &[&str],
) -> NodeProcess {
    let spec = NodeSpec {
        binary: binary(),
        data_dir: dir.join(device),
        catalog: bakery_catalog(),
        store_id: store.into(),
        device_id: device.into(),
    };
    let mut extra = vec![
        "--identity-dir".to_owned(),
        dir.join(format!("{device}-id")).display().to_string(),
        "--mesh-listen".to_owned(),
        mesh_listen.to_owned(),
    ];
    for peer in peers {
        extra.push("--peer".into());
        extra.push(peer.clone());
    }
    extra.extend(extra_flags.iter().map(|f| (*f).to_owned()));
    NodeProcess::start_with(&spec, &extra).expect("node starts")
}

/// `GET /v1/status` of a node's management API.
pub async fn node_status(client: &reqwest::Client, node: &NodeProcess) -> serde_json::Value {
    client
        .get(format!("http://{}/v1/status", node.mgmt))
        .send()
        .await
        .expect("status answers")
        .json()
        .await
        .expect("status is JSON")
}

/// The node's mesh listen address (`host:port`).
pub async fn mesh_addr(client: &reqwest::Client, node: &NodeProcess) -> String {
    node_status(client, node).await["mesh"]["listen"]
        .as_str()
        .expect("mesh listen address")
        .to_owned()
}

/// Creates chain `acme`'s CA in `dir/ca` with `posmesh ca` and issues each `(store, device)`
/// an identity directory at `out(device)`.
pub fn issue_identities(
    dir: &std::path::Path,
    devices: &[(&str, &str)],
    out: impl Fn(&str) -> std::path::PathBuf,
) {
    let ca_dir = dir.join("ca").display().to_string();
    ca(&["init", "--ca-dir", &ca_dir, "--chain", "acme"]);
    for (store, device) in devices {
        let out = out(device).display().to_string();
        ca(&[
            "issue", "--ca-dir", &ca_dir, "--store", store, "--device", device, "--out", &out,
        ]);
    }
}

/// [`issue_identities`] with each identity directory at `dir/<device>-id`, where the tests
/// keep them.
pub fn issue_identities_in(dir: &std::path::Path, devices: &[(&str, &str)]) {
    issue_identities(dir, devices, |device| dir.join(format!("{device}-id")));
}

/// A client whose requests give up after 10 s, so a hung node fails a test instead of
/// stalling it.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .expect("client")
}

/// An HTTP client that sends operator `by` (id, PIN) in `X-Operator-Id` /
/// `X-Operator-Pin` with every request: the authorising operator of guarded store-wide
/// operations (day close, shifts, tax rates, …).
pub fn http_client_as(by: (&str, &str)) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in [("X-Operator-Id", by.0), ("X-Operator-Pin", by.1)] {
        headers.insert(
            name,
            reqwest::header::HeaderValue::from_str(value).expect("header value"),
        );
    }
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .default_headers(headers)
        .build()
        .expect("client")
}

/// POSTs `body` to `path` with `key` and asserts 201; returns the entry.
pub async fn post_created(
    client: &reqwest::Client,
    api: &str,
    path: &str,
    key: &str,
    body: &serde_json::Value,
) -> serde_json::Value {
    let response = client
        .post(format!("http://{api}{path}"))
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .expect("answers");
    assert_eq!(
        response.status(),
        reqwest::StatusCode::CREATED,
        "{path} with key {key}"
    );
    response.json().await.expect("JSON")
}

/// GETs `url` and returns its JSON answer (whatever the status).
pub async fn get_json(client: &reqwest::Client, url: &str) -> serde_json::Value {
    client
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}"))
}

/// Runs a `posmesh` command to its end: (exit code, -1 if killed by a signal; stdout; stderr).
pub fn cli_output(command: &mut std::process::Command) -> (i32, String, String) {
    let out = command.output().expect("posmesh runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The alerts of `node` of `kind` about `subject` (`GET /v1/alerts`).
pub async fn alerts_of(
    client: &reqwest::Client,
    node: &NodeProcess,
    kind: &str,
    subject: &str,
) -> Vec<serde_json::Value> {
    let list = get_json(client, &format!("http://{}/v1/alerts", node.api)).await;
    list["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter(|a| a["kind"] == kind && a["subject"] == subject)
        .cloned()
        .collect()
}

/// `method path` on `node` with `body` (none for `Value::Null`) and `key` as
/// Idempotency-Key when given: (status, `Idempotent-Replayed: true` present, JSON answer).
pub async fn send_keyed(
    client: &reqwest::Client,
    node: &NodeProcess,
    method: reqwest::Method,
    path: &str,
    key: Option<&str>,
    body: &serde_json::Value,
) -> (u16, bool, serde_json::Value) {
    let mut request = client.request(method, format!("http://{}{path}", node.api));
    if !body.is_null() {
        request = request.json(body);
    }
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.expect("answers");
    let status = response.status().as_u16();
    let replayed = response
        .headers()
        .get("Idempotent-Replayed")
        .is_some_and(|v| v == "true");
    (
        status,
        replayed,
        response.json().await.unwrap_or(serde_json::Value::Null),
    )
}
