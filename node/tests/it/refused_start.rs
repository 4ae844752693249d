//! A refused command leaves no trace: a `posmesh device` start refused before the node is
//! ready (the wrong certificate, a port in use) leaves no data directory bound to the refused
//! ids, a refused `posmesh ca issue` spends no serial, and a bad date is refused as a bad
//! date with or without the store mesh.

use super::support;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs `posmesh device` for `device` of store `s1` on `data_dir` with `identity_dir` and
/// `extra` flags, expecting it to exit (killed after 30 s): (exit code, stderr).
fn refused_device(
    data_dir: &Path,
    device: &str,
    identity_dir: &Path,
    extra: &[&str],
) -> (i32, String) {
    let mut child = Command::new(support::binary())
        .arg("device")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--catalog")
        .arg(support::bakery_catalog())
        .args(["--store-id", "s1", "--device-id", device])
        .arg("--identity-dir")
        .arg(identity_dir)
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("posmesh device runs");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("posmesh device {device} started although it should have been refused");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_start_leaves_no_data_directory_and_the_corrected_start_works() {
    let dir = tempfile::tempdir().expect("tempdir");
    support::issue_identities(dir.path(), &[("s1", "till-1")], |d| {
        dir.path().join(format!("{d}-id"))
    });
    let data = dir.path().join("till-1");
    let id = dir.path().join("till-1-id");
    let any = [
        "--api-listen",
        "127.0.0.1:0",
        "--mgmt-listen",
        "127.0.0.1:0",
    ];

    // till-1's certificate offered as till-5's.
    let mut flags = any.to_vec();
    flags.extend(["--mesh-listen", "127.0.0.1:0"]);
    let (code, stderr) = refused_device(&data, "till-5", &id, &flags);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("is for"), "{stderr}");
    assert!(!data.exists(), "a refused start left {}", data.display());

    // The sales API's port is taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_addr = taken.local_addr().expect("addr").to_string();
    let flags = [
        "--api-listen",
        &taken_addr,
        "--mgmt-listen",
        "127.0.0.1:0",
        "--mesh-listen",
        "127.0.0.1:0",
    ];
    let (code, stderr) = refused_device(&data, "till-1", &id, &flags);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("cannot listen on"), "{stderr}");
    assert!(!data.exists(), "a refused start left {}", data.display());

    // The mesh port is taken.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let udp_addr = udp.local_addr().expect("addr").to_string();
    let mut flags = any.to_vec();
    flags.extend(["--mesh-listen", &udp_addr]);
    let (code, stderr) = refused_device(&data, "till-1", &id, &flags);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("cannot bind the mesh endpoint"), "{stderr}");
    assert!(!data.exists(), "a refused start left {}", data.display());
    drop((taken, udp));

    // The corrected start works, and keeps its directory.
    let node = support::start_mesh_node(dir.path(), "s1", "till-1", "127.0.0.1:0", &[]);
    let status = support::node_status(&support::http_client(), &node).await;
    assert_eq!(status["device_id"], "till-1", "{status}");
    node.stop().expect("stops");
    assert!(data.exists());
}

#[test]
fn a_refused_issue_spends_no_serial() {
    let dir = tempfile::tempdir().expect("tempdir");
    support::issue_identities(dir.path(), &[("s1", "till-1")], |d| {
        dir.path().join(format!("{d}-id"))
    });
    let ca_dir = dir.path().join("ca");
    let serial = || std::fs::read_to_string(ca_dir.join("serial")).expect("serial file");
    let before = serial();
    let (code, _, stderr) = support::cli_output(
        Command::new(support::binary())
            .args(["ca", "issue", "--ca-dir"])
            .arg(&ca_dir)
            .args(["--store", "s1", "--device", "till-2", "--out"])
            .arg(dir.path().join("till-1-id")),
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("refusing to overwrite"), "{stderr}");
    assert_eq!(serial(), before, "a refused issue spent a serial");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_date_is_refused_as_one_without_the_mesh_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = support::start(&support::spec(dir.path()));
    let response = support::http_client()
        .post(format!("http://{}/v1/days/2026-13-01/close", node.api))
        .header("Idempotency-Key", "close-1")
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "invalid_date", "{body}");

    let (code, stdout, stderr) = support::cli_output(Command::new(support::binary()).args([
        "report",
        "z",
        "--day",
        "29/11/2026",
        "--api",
        &node.api,
    ]));
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stderr.contains("is not a date YYYY-MM-DD"), "{stderr}");
    node.stop().expect("stops");
}
