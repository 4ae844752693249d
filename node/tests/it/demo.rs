//! The main job on a shorter slice: `posmesh demo --days 20` (a 3-device store, a SIGKILL
//! with sales in flight, a partition, an internet outage cutting the store from the
//! chain's cloud) must reconcile — every device holds every planned sale exactly once, the
//! cloud too, day totals identical everywhere (cloud included) and equal to the file's
//! items, every journal verifies — and say so in its JSON line. Card payments go to the
//! acquirer simulator; during the outage they are taken offline (a small allotment makes
//! some refused offline and paid in cash), and after it every offline payment reaches the
//! acquirer exactly once; the last day's Z-report, closed through Raft, is byte-identical
//! on every device.

use super::support;
use serde_json::Value;
use std::process::Command;

#[test]
fn the_demo_store_reconciles_through_a_crash_and_a_partition() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = Command::new(support::binary())
        .args(["demo"])
        .arg(support::bakery_csv())
        .arg("--catalog")
        .arg(support::bakery_catalog())
        .args([
            "--days",
            "20",
            "--offline-allotment-minor",
            "4000",
            "--network",
            "loopback",
            "--work-dir",
        ])
        .arg(dir.path())
        .output()
        .expect("demo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or_else(|e| {
            panic!(
                "no JSON line ({e}):\n{stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    assert!(output.status.success(), "demo failed:\n{stdout}");
    assert_eq!(report["reconciled"], true, "{report}");
    assert_eq!(report["days"], 20);
    let planned = report["sales_planned"].as_u64().expect("planned");
    assert!(planned > 1000, "{report}");
    assert_eq!(report["planned_per_device"], report["recorded_per_device"]);
    // Every device holds the same entries: the sales and the forwarder's acknowledgements.
    let entries = report["entries_on_every_device"][0]
        .as_u64()
        .expect("entries");
    assert!(entries >= planned, "{report}");
    assert_eq!(
        report["entries_on_every_device"],
        serde_json::json!([entries, entries, entries])
    );
    assert_eq!(report["killed"][0], "till-2");
    assert!(
        report["resent_after_restart"].as_u64().expect("resent") > 0,
        "the SIGKILL must hit sales in flight: {report}"
    );
    assert!(
        report["sold_while_partitioned"].as_u64().expect("alone") > 0,
        "{report}"
    );
    assert_eq!(report["days_identical"], 20);
    assert_eq!(report["days_matching_file"], 20);
    assert_eq!(report["journals_verified"], 3);
    assert_eq!(
        report["cloud_entries"], entries,
        "each entry once in the cloud"
    );
    assert_eq!(report["sales_in_cloud"], planned);
    assert_eq!(report["cloud_days_identical"], 20);
    assert!(report["cloud_outage"].is_array(), "{report}");
    let during = report["sold_during_cloud_outage"]
        .as_u64()
        .expect("outage sales");
    assert!(during > 0, "{report}");
    assert!(
        report["cloud_entries_at_heal"].as_u64().expect("at heal") + during <= planned,
        "the outage held sales back from the cloud: {report}"
    );
    // Cards: online before and after the outage, offline during it, some refused offline
    // and paid in cash; every offline payment forwarded exactly once, nothing left queued.
    let online = report["card_online"].as_u64().expect("online");
    let offline = report["card_offline_taken"].as_u64().expect("offline");
    let refused = report["card_refused_offline_paid_cash"]
        .as_u64()
        .expect("refused");
    assert!(online > 0 && offline > 0 && refused > 0, "{report}");
    assert_eq!(report["forwarded"]["unique"], offline, "{report}");
    assert!(
        report["forwarded"]["raw"].as_u64().expect("raw") >= offline,
        "{report}"
    );
    assert_eq!(report["queued_at_end"], 0);
    assert_eq!(report["cloud_unforwarded"], 0);
    // The last day closed through Raft: one Z-report, byte-identical on the 3 devices,
    // complete, and its sales equal the day's in the file.
    assert_eq!(report["z_report_identical"], 3, "{report}");
    assert_eq!(report["z_report"]["complete"], true, "{report}");
    assert!(
        report["z_report"]["totals"]["sales"]
            .as_u64()
            .expect("z sales")
            > 0,
        "{report}"
    );
    assert_eq!(report["network"], "loopback", "{report}");
    assert_eq!(report["discovery"], "static", "{report}");
    assert!(stdout.contains("RECONCILED"), "{stdout}");
}
