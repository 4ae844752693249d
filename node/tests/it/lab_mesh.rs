//! The store mesh across a real network: three `posmesh device` processes in three network
//! namespaces of the lab find each other over real mDNS (no static peers) and connect over
//! QUIC with mutual TLS; a cut link is noticed and, once healed, reconnected; a SIGKILLed
//! node restarted on its host is reconnected. Then the ledger across a partition: sales on
//! both sides of {till-1} | {till-2, till-3}, and concurrent edits of one shared order on
//! both sides; after the heal every device holds every sale and the same order with both
//! sides' edits (identical ledger and order digests). Then Raft: a day closed with all
//! three, the leader SIGKILLed, a new leader elected by the two survivors with the committed
//! gift-card balance and day close intact (Z-reports byte-identical); a fourth device that
//! joins after the log was compacted receives a snapshot over QUIC and reports the same
//! Z-report from its own state. Needs root (CI runs as root).

use super::support;
use posmesh_node::bench::lab_mesh::start_node_with as start_lab_node;
use posmesh_simulations::lab::{Lab, LabHost, LabProcess};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// Generous bound on every wait (discovery takes about a second).
const WAIT_LIMIT: Duration = Duration::from_secs(45);

fn start_node(host: &LabHost, dir: &Path, device: &str) -> LabProcess {
    let binary = support::binary();
    let certs = dir.join("ids");
    // till-1 starts the store's Raft group; the others join it over the mesh. A snapshot
    // every few entries with no log kept behind it: a device that joins late gets one.
    let snapshots = [
        "--raft-snapshot-every-entries",
        "5",
        "--raft-snapshot-keep-entries",
        "0",
    ];
    let mut extra: Vec<&str> = snapshots.to_vec();
    if device == "till-1" {
        extra.push("--raft-bootstrap");
    }
    let process = start_lab_node(
        host,
        &binary,
        &support::bakery_catalog(),
        &certs,
        dir,
        device,
        &extra,
    )
    .expect("node starts");
    process
        .wait_for_log("device node ready", Duration::from_secs(20))
        .expect("node ready");
    process
}

/// `posmesh status --json` of the node in `host`'s namespace (Null if it does not answer).
fn status(host: &LabHost) -> Value {
    let mut command = host.command(support::binary());
    command.args(["status", "--json", "--mgmt", "127.0.0.1:7071"]);
    host.run(command, Duration::from_secs(5))
        .ok()
        .and_then(|output| serde_json::from_str(&output.stdout).ok())
        .unwrap_or(Value::Null)
}

/// Device ids `host`'s node sees connected.
fn connected(host: &LabHost) -> Vec<String> {
    support::connected_peers(&status(host))
}

/// Imports the first `sales` transactions of the bakery file into `host`'s node.
fn import(host: &LabHost, sales: usize) {
    let mut command = host.command(support::binary());
    command.arg("import").arg(support::bakery_csv()).args([
        "--api",
        "127.0.0.1:7070",
        "--json",
        "--limit",
        &sales.to_string(),
    ]);
    let output = host
        .run(command, Duration::from_secs(60))
        .expect("import runs");
    assert!(
        output.stdout.contains("\"sales_recorded\":"),
        "import: {}",
        output.stderr
    );
}

/// A request to the sales API of `host`'s node, sent from inside its namespace (Python's
/// urllib, which CI installs): the status and the JSON answer (Null if none).
fn api(host: &LabHost, method: &str, path: &str, key: &str, body: &Value) -> (u16, Value) {
    const CLIENT: &str = "import sys, urllib.request, urllib.error
method, url, key, body = sys.argv[1:5]
headers = {'Content-Type': 'application/json'}
if key:
    headers['Idempotency-Key'] = key
request = urllib.request.Request(url, data=body.encode() if body != 'null' else None,
                                 method=method, headers=headers)
try:
    answer = urllib.request.urlopen(request, timeout=5)
    print(answer.status); print(answer.read().decode())
except urllib.error.HTTPError as error:
    print(error.code); print(error.read().decode())
";
    let mut command = host.command("python3");
    command.args([
        "-c",
        CLIENT,
        method,
        &format!("http://127.0.0.1:7070{path}"),
        key,
        &body.to_string(),
    ]);
    let output = host
        .run(command, Duration::from_secs(10))
        .expect("python3 runs");
    let mut lines = output.stdout.lines();
    let status = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    let answer = serde_json::from_str(lines.next().unwrap_or("")).unwrap_or(Value::Null);
    (status, answer)
}

/// Waits until every host's node holds the same orders (equal order digests, `count` each).
fn wait_orders_converged(lab: &Lab, count: u64) -> Duration {
    let started = Instant::now();
    loop {
        let orders: Vec<Value> = (1..=3)
            .map(|i| status(lab.host(i))["orders"].clone())
            .collect();
        if orders
            .iter()
            .all(|o| o["count"].as_u64() == Some(count) && o["digest"] == orders[0]["digest"])
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < WAIT_LIMIT,
            "orders did not converge: {orders:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until every host's replication digest is the same and holds `entries` entries.
fn wait_converged(lab: &Lab, entries: u64) -> Duration {
    let started = Instant::now();
    loop {
        let statuses: Vec<Value> = (1..=3).map(|i| status(lab.host(i))).collect();
        let digests: Vec<&Value> = statuses
            .iter()
            .map(|s| &s["replication"]["digest"])
            .collect();
        let totals: Vec<u64> = statuses
            .iter()
            .map(|s| s["replication"]["entries_total"].as_u64().unwrap_or(0))
            .collect();
        if digests.iter().all(|d| d.is_string() && *d == digests[0])
            && totals.iter().all(|t| *t == entries)
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < WAIT_LIMIT,
            "no convergence: totals {totals:?}, digests {digests:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn wait_until(what: &str, lab: &Lab, expected: &[(usize, &[&str])]) -> Duration {
    let started = Instant::now();
    loop {
        let seen: Vec<Vec<String>> = expected
            .iter()
            .map(|(i, _)| connected(lab.host(*i)))
            .collect();
        let done = expected
            .iter()
            .zip(&seen)
            .all(|((_, want), got)| *got == want.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        if done {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < WAIT_LIMIT,
            "{what}: not reached, seen {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn three_hosts_discover_each_other_and_survive_cuts_and_kills() {
    // Host 4 stays empty until a device joins the store late.
    let lab = Lab::new(4).expect("lab (needs root and iproute2)");
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let ids = d.join("ids");
    let store = [
        ("s1", "till-1"),
        ("s1", "till-2"),
        ("s1", "till-3"),
        ("s1", "till-4"),
    ];
    support::issue_identities(d, &store, |device| ids.join(device));
    let mut nodes: Vec<LabProcess> = (1..=3)
        .map(|i| start_node(lab.host(i), d, &format!("till-{i}")))
        .collect();
    let all = [
        (1, &["till-2", "till-3"][..]),
        (2, &["till-1", "till-3"][..]),
        (3, &["till-1", "till-2"][..]),
    ];
    let took = wait_until("discovery over mDNS", &lab, &all);
    println!("lab: 3 hosts discovered each other over mDNS and connected (mTLS) in {took:?}");

    lab.cut_link(2).expect("cut");
    let took = wait_until("cut noticed", &lab, &[(1, &["till-3"]), (3, &["till-1"])]);
    println!("lab: cut of host 2 noticed in {took:?}");
    lab.heal_link(2).expect("heal");
    let took = wait_until("reconnect after heal", &lab, &all);
    println!("lab: host 2 reconnected {took:?} after the heal");

    nodes[2].kill().expect("SIGKILL");
    wait_until("kill noticed", &lab, &[(1, &["till-2"]), (2, &["till-1"])]);
    nodes[2] = start_node(lab.host(3), d, "till-3");
    let took = wait_until("reconnect after restart", &lab, &all);
    println!("lab: restarted host 3 reconnected in {took:?}");

    // The store's Raft group formed by itself: 3 voters, one leader; a gift card is issued.
    let started = Instant::now();
    loop {
        let views: Vec<Value> = (1..=3)
            .map(|i| status(lab.host(i))["raft"].clone())
            .collect();
        let leader = &views[0]["leader"];
        if leader.is_string()
            && views
                .iter()
                .all(|v| &v["leader"] == leader && v["voters"].as_array().map(Vec::len) == Some(3))
        {
            break;
        }
        assert!(
            started.elapsed() < WAIT_LIMIT,
            "no 3-voter Raft group: {views:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (code, issued) = api(
        lab.host(3),
        "POST",
        "/v1/gift-cards",
        "lab-card-issue",
        &serde_json::json!({"card_id": "lab-card", "amount_minor": 5000, "currency": "GBP"}),
    );
    assert_eq!(code, 201, "{issued}");

    // A shared order, opened on till-1, reaches every device.
    let (code, order) = api(
        lab.host(1),
        "POST",
        "/v1/orders",
        "lab-tab",
        &serde_json::json!({"lines": [{"sku": "BREAD", "quantity": 1}]}),
    );
    assert_eq!(code, 201, "{order}");
    let order_path = format!("/v1/orders/{}", order["order_id"].as_str().expect("id"));
    wait_orders_converged(&lab, 1);

    // The ledger across a partition: {till-1} | {till-2, till-3}, sales on both sides and
    // concurrent edits of the same order on both sides.
    lab.cut_link(1).expect("cut");
    wait_until("partition", &lab, &[(2, &["till-3"]), (3, &["till-2"])]);
    import(lab.host(1), 40);
    import(lab.host(2), 60);
    // The store's Raft group across the partition: the minority cannot redeem a gift card
    // or close the day (a clear 503), the majority can (after electing a leader if it had
    // to), and after the heal the minority holds the same decisions.
    let (code, answer) = api(
        lab.host(1),
        "POST",
        "/v1/gift-cards/lab-card/redemptions",
        "lab-r1",
        &serde_json::json!({"amount_minor": 500}),
    );
    assert_eq!(
        (code, answer["error"]["code"].as_str()),
        (503, Some("no_quorum")),
        "minority redeem: {answer}"
    );
    let (code, answer) = api(
        lab.host(1),
        "POST",
        "/v1/days/2017-01-01/close",
        "minority-close",
        &Value::Null,
    );
    assert_eq!(
        (code, answer["error"]["code"].as_str()),
        (503, Some("no_quorum")),
        "minority close: {answer}"
    );
    let started = Instant::now();
    loop {
        let (code, answer) = api(
            lab.host(2),
            "POST",
            "/v1/gift-cards/lab-card/redemptions",
            "lab-r2",
            &serde_json::json!({"amount_minor": 2000}),
        );
        if code == 201 {
            break;
        }
        assert!(
            started.elapsed() < WAIT_LIMIT,
            "the majority could not redeem: {code} {answer}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let edits = [
        (
            1,
            "POST",
            format!("{order_path}/lines"),
            "lab-a",
            serde_json::json!({"sku": "COFFEE", "quantity": 2}),
        ),
        (
            1,
            "PATCH",
            order_path.clone(),
            "",
            serde_json::json!({"customer": "Ann"}),
        ),
        (
            2,
            "POST",
            format!("{order_path}/lines"),
            "lab-b",
            serde_json::json!({"sku": "TEA", "quantity": 3}),
        ),
        (
            3,
            "PATCH",
            order_path.clone(),
            "",
            serde_json::json!({"table": "9"}),
        ),
    ];
    for (host, method, path, key, body) in &edits {
        let (code, answer) = api(lab.host(*host), method, path, key, body);
        assert!(
            code == 200 || code == 201,
            "edit on host {host}: {code} {answer}"
        );
    }
    let minority = status(lab.host(1))["replication"]["entries_total"].as_u64();
    assert_eq!(minority, Some(40), "the partitioned device sold alone");
    lab.heal_link(1).expect("heal");
    let took = wait_converged(&lab, 100);
    println!("lab: after the partition healed, all devices hold all 100 sales in {took:?}");
    let took = wait_orders_converged(&lab, 1);
    println!("lab: the order edited on both sides converged {took:?} after the ledger");
    // The healed minority holds the majority's decision: the redemption is in its balance.
    let started = Instant::now();
    loop {
        let (code, card) = api(
            lab.host(1),
            "GET",
            "/v1/gift-cards/lab-card",
            "",
            &Value::Null,
        );
        if code == 200 && card["balance_minor"].as_i64() == Some(3000) {
            break;
        }
        assert!(
            started.elapsed() < WAIT_LIMIT,
            "the healed device reads {code} {card}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    for i in 1..=3 {
        let (code, merged) = api(lab.host(i), "GET", &order_path, "", &Value::Null);
        assert_eq!(code, 200);
        let mut lines: Vec<(String, i64)> = merged["lines"]
            .as_array()
            .expect("lines")
            .iter()
            .map(|l| {
                (
                    l["sku"].as_str().unwrap_or("").to_owned(),
                    l["quantity"].as_i64().unwrap_or(0),
                )
            })
            .collect();
        lines.sort();
        assert_eq!(
            lines,
            vec![("BREAD".into(), 1), ("COFFEE".into(), 2), ("TEA".into(), 3)],
            "host {i}: {merged}"
        );
        assert_eq!(
            (merged["customer"].as_str(), merged["table"].as_str()),
            (Some("Ann"), Some("9")),
            "host {i}"
        );
    }
    leader_killed_then_a_late_device_gets_a_snapshot(&lab, d, &mut nodes);
    drop(nodes);
    lab.close().expect("lab cleaned up");
}

/// The Z-report of `date` as `host`'s node serves it from its own state (status, body).
fn z_report(host: &LabHost, date: &str) -> (u16, String) {
    let (code, report) = api(
        host,
        "GET",
        &format!("/v1/reports/z/{date}"),
        "",
        &Value::Null,
    );
    (code, report.to_string())
}

/// The Raft view (`posmesh status`) of the nodes on `hosts`, once they agree on a leader that
/// is not `not`: the leader's device id.
fn wait_raft_leader(lab: &Lab, hosts: &[usize], not: Option<&str>) -> String {
    let started = Instant::now();
    loop {
        let views: Vec<Value> = hosts
            .iter()
            .map(|i| status(lab.host(*i))["raft"].clone())
            .collect();
        if let Some(leader) = views[0]["leader"].as_str() {
            if views.iter().all(|v| v["leader"].as_str() == Some(leader)) && Some(leader) != not {
                return leader.to_owned();
            }
        }
        assert!(
            started.elapsed() < WAIT_LIMIT,
            "no agreed leader on hosts {hosts:?}: {views:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Day close with all three, SIGKILL of the leader, then a fourth device joins late.
fn leader_killed_then_a_late_device_gets_a_snapshot(
    lab: &Lab,
    dir: &Path,
    nodes: &mut [LabProcess],
) {
    const DAY: &str = "2016-10-30";
    let (code, closed) = api(
        lab.host(2),
        "POST",
        &format!("/v1/days/{DAY}/close"),
        "close-day",
        &Value::Null,
    );
    assert_eq!(code, 201, "day close: {closed}");
    let started = Instant::now();
    let report = loop {
        let reports: Vec<(u16, String)> = (1..=3).map(|i| z_report(lab.host(i), DAY)).collect();
        if reports.iter().all(|r| r.0 == 200 && *r == reports[0]) {
            break reports[0].1.clone();
        }
        assert!(
            started.elapsed() < WAIT_LIMIT,
            "Z-reports differ: {reports:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };

    // The leader is SIGKILLed: the survivors elect a new one; committed data is intact.
    let leader = wait_raft_leader(lab, &[1, 2, 3], None);
    let dead: usize = leader
        .strip_prefix("till-")
        .and_then(|n| n.parse().ok())
        .expect("leader is a till");
    let killed_at = Instant::now();
    nodes[dead - 1].kill().expect("SIGKILL the leader");
    let survivors: Vec<usize> = (1..=3).filter(|i| *i != dead).collect();
    let new_leader = wait_raft_leader(lab, &survivors, Some(&leader));
    println!(
        "lab: leader {leader} SIGKILLed, {new_leader} elected in {:?}",
        killed_at.elapsed()
    );
    for &i in &survivors {
        let (code, card) = api(
            lab.host(i),
            "GET",
            "/v1/gift-cards/lab-card",
            "",
            &Value::Null,
        );
        assert_eq!(
            (code, card["balance_minor"].as_i64()),
            (200, Some(3000)),
            "host {i} after the failover: {card}"
        );
        assert_eq!(
            z_report(lab.host(i), DAY),
            (200, report.clone()),
            "host {i}"
        );
    }
    let (code, redeemed) = api(
        lab.host(survivors[0]),
        "POST",
        "/v1/gift-cards/lab-card/redemptions",
        "lab-r3",
        &serde_json::json!({"amount_minor": 100}),
    );
    assert_eq!(code, 201, "the new leader commits: {redeemed}");

    // A fourth device joins now: the log behind the snapshots is gone, so it gets a
    // snapshot over QUIC, and serves the closed day from its own state.
    let late = start_node(lab.host(4), dir, "till-4");
    let started = Instant::now();
    let view = loop {
        let view = status(lab.host(4))["raft"].clone();
        if view["snapshots_installed"].as_u64() >= Some(1)
            && z_report(lab.host(4), DAY) == (200, report.clone())
        {
            break view;
        }
        assert!(
            started.elapsed() < WAIT_LIMIT,
            "till-4 got no snapshot or another Z-report: {view} {:?}",
            z_report(lab.host(4), DAY)
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    println!(
        "lab: till-4 installed a snapshot of {} bytes and serves the same Z-report {:?} after it started",
        view["last_snapshot_installed_bytes"],
        started.elapsed()
    );
    let (code, card) = api(
        lab.host(4),
        "GET",
        "/v1/gift-cards/lab-card",
        "",
        &Value::Null,
    );
    assert_eq!(
        (code, card["balance_minor"].as_i64()),
        (200, Some(2900)),
        "till-4: {card}"
    );
    drop(late);
}
