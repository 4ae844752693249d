//! The bakery's whole till export through `posmesh import`: sales written = transactions
//! with at least one real item (9,465), and the node's per-day item counts equal those
//! computed here directly from the CSV. A second import records nothing twice. A device
//! that joins the store afterwards catches up the whole history from the first one, logging
//! its progress, and then reports the same per-day counts.

use super::support;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;

/// Per-day item counts and the number of transactions with a real item, computed from the
/// CSV with nothing but string splitting (an oracle independent of the importer).
fn expected_from_csv(text: &str) -> (BTreeMap<String, i64>, usize) {
    let mut items_per_day: BTreeMap<String, i64> = BTreeMap::new();
    let mut sales = std::collections::BTreeSet::new();
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), 4, "unexpected line {line:?}");
        if fields[3].trim() == "NONE" {
            continue;
        }
        *items_per_day.entry(fields[0].to_owned()).or_default() += 1;
        sales.insert(fields[2].to_owned());
    }
    (items_per_day, sales.len())
}

/// [`import_outcome`] that must succeed: its summary without the per-day table.
fn import(api: &str, extra: &[&str]) -> Value {
    let (code, summary) = import_outcome(api, extra);
    let mut brief = summary;
    brief.as_object_mut().map(|o| o.remove("days"));
    assert_eq!(code, Some(0), "import failed: {brief}");
    brief
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_bakery_file_imports_and_reconciles_per_day() {
    let csv = support::bakery_csv();
    let text = std::fs::read_to_string(&csv).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}); set POSMESH_BAKERY_CSV",
            csv.display()
        )
    });
    let (items_per_day, sales_expected) = expected_from_csv(&text);
    assert_eq!(sales_expected, 9465, "the data set's documented count");

    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    support::issue_identities_in(d, &[("s1", "till-1"), ("s1", "till-2")]);
    let node = support::start_mesh_node(d, "s1", "till-1", "127.0.0.1:0", &[]);
    let summary = tokio::task::spawn_blocking({
        let api = node.api.clone();
        move || import(&api, &[])
    })
    .await
    .expect("import task");
    assert_eq!(
        summary["sales_recorded"].as_u64(),
        Some(sales_expected as u64),
        "{summary}"
    );
    assert_eq!(summary["transactions_in_file"].as_u64(), Some(9531));
    assert_eq!(
        summary["skipped"]["item NONE (till placeholder, no product)"].as_u64(),
        Some(786)
    );
    assert_eq!(
        summary["skipped"]["transaction with only NONE lines (no sale)"].as_u64(),
        Some(66)
    );

    let client = reqwest::Client::new();
    check_days(&client, &node.api, &items_per_day, sales_expected).await;

    // Re-running a slice records nothing twice: every sale is answered as a replay.
    let again = tokio::task::spawn_blocking({
        let api = node.api.clone();
        move || import(&api, &["--limit", "500"])
    })
    .await
    .expect("import task");
    assert_eq!(again["sales_recorded"].as_u64(), Some(0), "{again}");
    assert_eq!(again["sales_replayed"].as_u64(), Some(500), "{again}");
    // Its counts are of the lines read (up to the 501st sale's first line), not the file.
    let stop = again["stopped_at_line"]
        .as_u64()
        .expect("stopped at a line") as usize;
    assert_eq!(again["lines"].as_u64(), Some(stop as u64 - 2), "{again}");
    let none_read = text
        .lines()
        .take(stop - 1)
        .skip(1)
        .filter(|l| l.trim_end().ends_with(",NONE"))
        .count();
    assert!(none_read > 0 && none_read < 786, "{none_read}");
    assert_eq!(
        again["skipped"]["item NONE (till placeholder, no product)"].as_u64(),
        Some(none_read as u64),
        "{again}"
    );
    let (last_seq, _) = support::head(&client, &node.mgmt).await;
    assert_eq!(last_seq, sales_expected as u64);

    // till-2 joins now and catches up the whole history, showing progress.
    let a_mesh = support::mesh_addr(&client, &node).await;
    let late = support::start_mesh_node(
        d,
        "s1",
        "till-2",
        "127.0.0.1:0",
        &[format!("till-1@{a_mesh}")],
    );
    let started = std::time::Instant::now();
    loop {
        let status = support::node_status(&client, &late).await;
        if status["replication"]["version_vector"]["till-1"].as_u64() == Some(sales_expected as u64)
        {
            break;
        }
        assert!(
            started.elapsed() < CATCH_UP_LIMIT,
            "till-2 did not catch up: {}",
            status["replication"]
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    println!(
        "late device caught up on {sales_expected} sales in {:?}",
        started.elapsed()
    );
    check_days(&client, &late.api, &items_per_day, sales_expected).await;
    // The log shows the catch-up as it goes: a start line and a done line.
    let log_started = std::time::Instant::now();
    loop {
        let log = std::fs::read_to_string(d.join("till-2.log")).unwrap_or_default();
        if log.contains("catching up:") && log.contains("caught up:") {
            break;
        }
        assert!(
            log_started.elapsed() < CATCH_UP_LIMIT,
            "no catch-up progress in the log:\n{log}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let a_digest = support::node_status(&client, &node).await["replication"]["digest"].clone();
    assert_eq!(
        support::node_status(&client, &late).await["replication"]["digest"],
        a_digest
    );
    node.stop().expect("clean stop");
    late.stop().expect("clean stop");
    for device in ["till-1", "till-2"] {
        let (ok, report) = support::verify_journal(&d.join(device));
        assert!(ok, "{device}: {report}");
    }
}

/// Generous bound for a late device to fetch the whole history (about a second here).
const CATCH_UP_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

/// The node's day report has the CSV's items per day, 159 days, and every sale.
async fn check_days(
    client: &reqwest::Client,
    api: &str,
    items_per_day: &BTreeMap<String, i64>,
    sales_expected: usize,
) {
    let days: Vec<Value> = client
        .get(format!("http://{api}/v1/reports/days"))
        .send()
        .await
        .expect("report")
        .json()
        .await
        .expect("JSON");
    let node_items: BTreeMap<String, i64> = days
        .iter()
        .map(|d| {
            (
                d["business_date"].as_str().expect("date").to_owned(),
                d["items"].as_i64().expect("items"),
            )
        })
        .collect();
    assert_eq!(
        &node_items, items_per_day,
        "per-day item counts differ from the CSV on {api}"
    );
    assert_eq!(days.len(), 159);
    let sales: u64 = days
        .iter()
        .map(|d| d["sales"].as_u64().expect("sales"))
        .sum();
    assert_eq!(sales, sales_expected as u64);
}

/// `posmesh import --json` of the bakery file with `extra` flags: (exit code, summary).
fn import_outcome(api: &str, extra: &[&str]) -> (Option<i32>, Value) {
    let (code, summary, _) = import_logged(api, extra);
    (code, summary)
}

/// [`import_outcome`] and the import's stderr (progress lines, notes).
fn import_logged(api: &str, extra: &[&str]) -> (Option<i32>, Value, String) {
    let output = Command::new(support::binary())
        .arg("import")
        .arg(support::bakery_csv())
        .args(["--api", api, "--json"])
        .args(extra)
        .output()
        .expect("import runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary = serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or_else(|e| {
        panic!(
            "import printed no JSON summary ({e}):\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (
        output.status.code(),
        summary,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A node killed with SIGKILL mid-import: the import lists every sale it did not get
/// acknowledged (transaction and file line), ends with a non-zero exit and without asking
/// the dead node for its day report; a re-run after the restart records exactly the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_cut_short_by_a_crash_lists_what_was_not_acknowledged_and_resumes() {
    const SLICE: &str = "3000";
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = support::spec(dir.path());
    let mut node = support::start(&spec);
    let client = reqwest::Client::new();
    let first = std::thread::spawn({
        let api = node.api.clone();
        move || import_logged(&api, &["--limit", SLICE, "--concurrency", "2"])
    });
    let started = std::time::Instant::now();
    while support::head(&client, &node.mgmt).await.0 < 200 {
        assert!(
            started.elapsed() < CATCH_UP_LIMIT,
            "the import does not progress"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    node.kill_now().expect("SIGKILL");
    let (code, summary, log) = first.join().expect("import thread");
    assert_ne!(code, Some(0), "{summary}");
    assert_eq!(summary["node_unreachable"], true, "{summary}");
    assert_eq!(summary["reconciled"], false);
    assert_eq!(
        summary["days_checked"], false,
        "the dead node is not asked for days"
    );
    let sent = summary["sales_sent"].as_u64().expect("sent");
    let acked = summary["sales_recorded"].as_u64().expect("recorded");
    let missing = summary["not_acknowledged"].as_array().expect("list");
    assert!(acked >= 200 && acked < sent, "{acked} of {sent}");
    assert_eq!(
        missing.len() as u64,
        sent - acked,
        "every other sale is listed"
    );
    // The progress in the log counts acknowledged sales only: it never claims the slice
    // was sent, and its last line says how many were not acknowledged.
    let progress: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("import: ") && l.contains("sales acknowledged"))
        .collect();
    assert!(
        !log.contains(&format!("{sent}/{sent}")),
        "claims every sale: {log}"
    );
    assert_eq!(
        progress.last().copied(),
        Some(
            format!(
                "import: {acked}/{sent} sales acknowledged, {} not acknowledged",
                sent - acked
            )
            .as_str()
        ),
        "{log}"
    );
    for n in missing {
        assert!(
            n["transaction"].as_u64().is_some_and(|t| t > 0)
                && n["line"].as_u64().is_some_and(|l| l >= 2),
            "{n}"
        );
    }

    node.kill().expect("reaped");
    let node = support::start(&spec);
    let (code, again) = tokio::task::spawn_blocking({
        let api = node.api.clone();
        move || import_outcome(&api, &["--limit", SLICE])
    })
    .await
    .expect("import task");
    assert_eq!(code, Some(0), "{again}");
    assert_eq!(again["reconciled"], true);
    let replayed = again["sales_replayed"].as_u64().expect("replayed");
    let recorded = again["sales_recorded"].as_u64().expect("recorded");
    assert_eq!(replayed + recorded, sent);
    assert!(
        replayed >= acked,
        "every acknowledged sale survived the crash"
    );
    assert_eq!(
        support::head(&client, &node.mgmt).await.0,
        sent,
        "nothing recorded twice"
    );
    node.stop().expect("clean stop");
}

/// The same export through a second device of the store is refused before anything is
/// sent (it would record every sale again: Idempotency-Keys are per device), naming the
/// device to re-run it through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_export_through_a_second_device_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    support::issue_identities_in(d, &[("s1", "till-1"), ("s1", "till-2")]);
    let a = support::start_mesh_node(d, "s1", "till-1", "127.0.0.1:0", &[]);
    let client = reqwest::Client::new();
    let a_mesh = support::mesh_addr(&client, &a).await;
    let b = support::start_mesh_node(
        d,
        "s1",
        "till-2",
        "127.0.0.1:0",
        &[format!("till-1@{a_mesh}")],
    );
    let (code, first) = tokio::task::spawn_blocking({
        let api = a.api.clone();
        move || import_outcome(&api, &["--limit", "300"])
    })
    .await
    .expect("import task");
    assert_eq!(code, Some(0), "{first}");
    let sent = first["sales_recorded"].as_u64().expect("recorded");
    let started = std::time::Instant::now();
    while support::node_status(&client, &b).await["replication"]["version_vector"]["till-1"]
        .as_u64()
        != Some(sent)
    {
        assert!(
            started.elapsed() < CATCH_UP_LIMIT,
            "till-2 did not catch up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let output = Command::new(support::binary())
        .arg("import")
        .arg(support::bakery_csv())
        .args(["--api", &b.api, "--limit", "300"])
        .output()
        .expect("import runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("already imported through device till-1")
            && stderr.contains("Idempotency-Keys are per device"),
        "{stderr}"
    );
    assert_eq!(
        support::head(&client, &b.mgmt).await.0,
        0,
        "till-2 recorded nothing"
    );
    a.stop().expect("clean stop");
    b.stop().expect("clean stop");
}
