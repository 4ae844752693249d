//! A store founded with `posmesh init` from a provisioning file, and recovered after a
//! permanent quorum loss: 3 devices form the Raft group around the founder (no bootstrap
//! flag), 2 are destroyed (SIGKILL, never restarted), the survivor is forced to a
//! membership of itself (refused without the confirmation, which names what may be lost),
//! restarted, redeems a gift card and closes the day, and a new device joins it.

use super::consensus_loopback::{balance, post, raft, redeem, wait_leader};
use super::support;
use posmesh_node::node_process::NodeProcess;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const PROVISIONING: &str = r#"
store_id = "s1"
founding_device = "till-1"
currency = "GBP"
[exposure]
budget_minor = 50000
allotments = { till-1 = 20000 }
[tax]
version = 1
effective_at = "2026-01-01T00:00:00Z"
rates_bps = { standard = 2000, zero = 0 }
[[operators]]
id = "alice"
name = "Alice"
role = "manager"
pin = "2468"
"#;

fn posmesh(args: &[&str]) -> (i32, String, String) {
    support::cli_output(Command::new(support::binary()).args(args))
}

fn start(dir: &Path, device: &str, peers: &[String]) -> NodeProcess {
    support::start_mesh_node_with(dir, "s1", device, "127.0.0.1:0", peers, &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_founded_by_init_is_recovered_from_losing_two_of_three_tills() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    // The store is provisioned with operators: guarded operations (gift-card issue, day
    // close) are asked by alice, its manager.
    let client = support::http_client_as(("alice", "2468"));
    support::issue_identities_in(
        d,
        &[
            ("s1", "till-1"),
            ("s1", "till-2"),
            ("s1", "till-3"),
            ("s1", "till-4"),
        ],
    );
    let file = d.join("provisioning.toml");
    std::fs::write(&file, PROVISIONING).expect("write provisioning");
    let founder_dir = d.join("till-1").display().to_string();
    let file_arg = file.display().to_string();

    // A bad file changes nothing: no data directory appears.
    std::fs::write(d.join("bad.toml"), PROVISIONING.replace("2468", "24")).expect("write");
    let bad = d.join("bad.toml").display().to_string();
    let (code, _, err) = posmesh(&["init", "--data-dir", &founder_dir, "--provisioning", &bad]);
    assert_ne!(code, 0);
    assert!(err.contains("operators[0].pin"), "{err}");
    assert!(!d.join("till-1").exists(), "a refused init wrote nothing");

    let (code, out, err) = posmesh(&[
        "init",
        "--data-dir",
        &founder_dir,
        "--provisioning",
        &file_arg,
        "--json",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        !err.contains("WARN"),
        "a good founding warns of nothing: {err}"
    );
    let founded: Value = serde_json::from_str(out.trim()).expect("JSON");
    assert_eq!(founded["device_id"], "till-1");
    assert_eq!(founded["provisioned"].as_array().map(Vec::len), Some(4));
    // The newest rules are the new store's first entry, before the provisioning.
    assert_eq!(
        founded["rules_version"],
        posmesh_consensus::rules::RULES_VERSION_LATEST
    );
    assert!(
        founded["rules_adopted_at"].as_u64() < founded["provisioned"][0][0].as_u64(),
        "{founded}"
    );
    // PINs are hashed before they enter the log: no clear PIN in the Raft database.
    let raft_files = walk(&d.join("till-1").join("raft"));
    assert!(!raft_files.is_empty());
    for path in &raft_files {
        let bytes = std::fs::read(path).expect("read");
        assert!(
            !bytes.windows(6).any(|w| w == b"\"2468\""),
            "clear PIN in {}",
            path.display()
        );
    }
    let (code, _, err) = posmesh(&[
        "init",
        "--data-dir",
        &founder_dir,
        "--provisioning",
        &file_arg,
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("already initialised"), "{err}");

    // The founder starts as the store's only voter; the others join without any flag.
    let a = start(d, "till-1", &[]);
    let a_mesh = support::mesh_addr(&client, &a).await;
    let b = start(d, "till-2", &[format!("till-1@{a_mesh}")]);
    let b_mesh = support::mesh_addr(&client, &b).await;
    let c = start(
        d,
        "till-3",
        &[format!("till-1@{a_mesh}"), format!("till-2@{b_mesh}")],
    );
    wait_leader(&client, &[&a, &b, &c], 3, None).await;
    // `posmesh status` shows the rules the store follows, on the founder and on a device
    // that joined it.
    let latest = posmesh_consensus::rules::RULES_VERSION_LATEST;
    assert_eq!(raft(&client, &c).await["rules_version"], latest);
    let (code, printed, err) = posmesh(&["status", "--mgmt", &a.mgmt]);
    assert_eq!(code, 0, "{printed}{err}");
    assert!(
        printed.contains(&format!("rules version {latest}\n")),
        "posmesh status:\n{printed}"
    );
    let (status, issued) = post(
        &client,
        &b,
        "/v1/gift-cards",
        "issue-1",
        json!({"card_id": "card-1", "amount_minor": 3000, "currency": "GBP"}),
    )
    .await;
    assert_eq!(status, 201, "{issued}");
    let applied = raft(&client, &b).await["applied_index"]
        .as_u64()
        .expect("applied");
    // till-1 holds the card too before the others are destroyed.
    let started = Instant::now();
    while raft(&client, &a).await["applied_index"].as_u64() < Some(applied) {
        assert!(started.elapsed() < Duration::from_secs(30), "till-1 behind");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Two tills destroyed; the survivor alone has no quorum.
    b.kill().expect("SIGKILL till-2");
    c.kill().expect("SIGKILL till-3");
    a.kill().expect("SIGKILL till-1 (it will be restarted)");

    // Refused without the confirmation, with what may be lost; nothing changes.
    let (code, out, err) = posmesh(&[
        "store",
        "force-membership",
        "--data-dir",
        &founder_dir,
        "--keep",
        "till-1",
    ]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("MAY BE LOST"), "{out}");
    assert!(err.contains("--confirm-data-loss"), "{err}");
    let (code, _, err) = posmesh(&[
        "store",
        "force-membership",
        "--data-dir",
        &founder_dir,
        "--keep",
        "till-1,till-9",
        "--confirm-data-loss",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("till-9 is not a member"), "{err}");
    let (code, out, err) = posmesh(&[
        "store",
        "force-membership",
        "--data-dir",
        &founder_dir,
        "--keep",
        "till-1",
        "--confirm-data-loss",
        "--json",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let forced: Value = serde_json::from_str(out.trim()).expect("JSON");
    assert_eq!(forced["forced"], true);
    assert_eq!(forced["plan"]["voters_after"], json!(["till-1"]));
    assert_eq!(
        forced["plan"]["voters_before"].as_array().map(Vec::len),
        Some(3)
    );

    // The survivor leads alone: gift cards and the day close work again.
    let a = start(d, "till-1", &[]);
    let leader = wait_leader(&client, &[&a], 1, None).await;
    assert_eq!(leader, "till-1");
    let (status, redeemed) = redeem(&client, &a, "card-1", "r-1", 1000).await;
    assert_eq!(status, 201, "{redeemed}");
    assert_eq!(redeemed["outcome"]["balance_after_minor"], 2000);
    let sale =
        support::post_created(&client, &a.api, "/v1/sales", "s-1", &support::valid_sale()).await;
    let today = sale["business_date"].as_str().expect("date").to_owned();
    let (status, closed) = post(
        &client,
        &a,
        &format!("/v1/days/{today}/close"),
        "close-1",
        json!(null),
    )
    .await;
    assert_eq!(status, 201, "{closed}");

    // A new device joins the recovered store and holds its decisions.
    let e = start(
        d,
        "till-4",
        &[format!("till-1@{}", support::mesh_addr(&client, &a).await)],
    );
    let started = Instant::now();
    loop {
        let view = raft(&client, &a).await;
        let joined = view["learners"]
            .as_array()
            .is_some_and(|l| l.iter().any(|x| x == "till-4"));
        let mine = raft(&client, &e).await;
        if joined && mine["applied_index"] == view["applied_index"] {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "till-4 did not join: {view} {mine}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, card) = balance(&client, &e, "card-1").await;
    assert_eq!(
        (status, card["balance_minor"].as_i64()),
        (200, Some(2000)),
        "{card}"
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
