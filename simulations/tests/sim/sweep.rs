//! 1,000 seeds of the quick profile: every fault kind is injected, the rare paths of the
//! replicator are reached, shared orders are edited concurrently on every side of the
//! faults, and no checker reports anything.

use posmesh_simulations::sim::{sweep, RunOptions, SimConfig};

/// Seeds `make test` runs (the issue asks for at least 1,000).
const SEEDS: u64 = 1_000;

#[test]
fn a_thousand_seeds_of_faults_break_no_guarantee() {
    let options = RunOptions::new(SimConfig::quick());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    let report = sweep(1, SEEDS, &options, threads);
    for outcome in &report.failed {
        for violation in &outcome.violations {
            eprintln!("seed {}: {violation}", outcome.seed);
        }
        eprintln!("  replay: {}", options.replay_command(outcome.seed));
    }
    assert_eq!(report.seeds, SEEDS);
    assert_eq!(
        report.violations,
        0,
        "{} failing seeds",
        report.failed.len()
    );
    eprintln!("faults injected: {}", report.faults);
    for kind in [
        "partition",
        "clog",
        "crash",
        "restart",
        "disk-full",
        "message-loss",
        "message-duplicate",
        "message-delay",
        "message-reorder",
        "clock-skew",
        "byzantine-link",
        "tamper",
        "cloud-outage",
    ] {
        assert!(
            report.faults.0.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} fault in {SEEDS} seeds"
        );
    }
    let (delivered, refused) = report.tampered;
    assert!(
        refused > 0 && delivered >= refused,
        "tampered batches: {delivered} delivered, {refused} refused"
    );
    // FoundationDB practice: the rare paths the guarantees rely on are actually exercised.
    let s = &report.stats;
    eprintln!("replicator paths: {s:?}");
    assert!(s.batches_duplicate > 0, "{s:?}");
    assert!(s.batches_trimmed > 0, "{s:?}");
    assert!(s.batches_gap_ignored > 0, "{s:?}");
    assert!(s.batches_parked > 0, "{s:?}");
    assert!(s.go_backs > 0, "{s:?}");
    assert!(s.stores_failed > 0, "{s:?}");
    assert_eq!(s.batches_stalled_without_head, 0, "{s:?}");
    // The orders workload: orders opened, edits acknowledged, concurrent edits, edits lost
    // to crashes or refused by full disks after they were applied, and order sync traffic
    // on the same faulty network.
    let (o, m) = (&report.orders, &report.order_stats);
    eprintln!("orders: {o:?}, order sync: {m:?}");
    assert!(o.created > SEEDS, "{o:?}");
    assert!(o.edits_acked > 10 * SEEDS, "{o:?}");
    assert!(o.edits_concurrent > SEEDS, "{o:?}");
    assert!(o.edits_unacked_applied > 0, "{o:?}");
    assert!(m.messages_sent > 100 * SEEDS, "{m:?}");
    assert_eq!(m.messages_refused, 0, "{m:?}");
    // The cloud: every durable entry ends up there (the checker), and duplicate uploads —
    // re-sends after a lost answer, double deliveries — were really made.
    let (cloud_entries, cloud_duplicates) = report.cloud;
    eprintln!("cloud: {cloud_entries} entries stored, {cloud_duplicates} duplicate uploads");
    assert!(cloud_entries >= report.sales_acked, "{:?}", report.cloud);
    assert!(cloud_duplicates > SEEDS / 10, "{:?}", report.cloud);
}

/// Seeds of the `cloud-days` profile: three store-days with the internet down for about a
/// day at a time; every sale reaches the cloud exactly once after the heal.
#[test]
fn cloud_outages_of_days_leave_every_sale_once_in_the_cloud() {
    let options = RunOptions::new(SimConfig::cloud_days());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    let report = sweep(1, 8, &options, threads);
    for outcome in &report.failed {
        for violation in &outcome.violations {
            eprintln!("seed {}: {violation}", outcome.seed);
        }
        eprintln!("  replay: {}", options.replay_command(outcome.seed));
    }
    assert_eq!(
        report.violations,
        0,
        "{} failing seeds",
        report.failed.len()
    );
    assert!(
        report.faults.0.get("cloud-outage").copied().unwrap_or(0) >= 4,
        "{}",
        report.faults
    );
}
