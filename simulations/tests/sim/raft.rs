//! The store's Raft group in the simulator: seeds of faults (partitions, one-way links,
//! crashes, power cuts, loss, latency) on 3- and 5-device stores break none of the Raft
//! checkers, and the run really exercised them (failovers, snapshots, a card that runs out,
//! days closed); the `fsync-lie` canary is caught by `raft-committed-kept`.

use posmesh_simulations::raft::{sweep, RaftCanary, RaftSimOptions};

/// Seeds of a 3-device store `make test` runs.
const SEEDS_3: u64 = 40;
/// Seeds of a 5-device store.
const SEEDS_5: u64 = 10;

/// The seed count: `seeds`, or `POSMESH_RAFT_SIM_SEEDS` when set (a longer sweep by hand,
/// e.g. `POSMESH_RAFT_SIM_SEEDS=300 cargo test ... raft_on_three`).
fn seed_count(seeds: u64) -> u64 {
    std::env::var("POSMESH_RAFT_SIM_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(seeds)
}

/// The first seed: 1, or `POSMESH_RAFT_SIM_FIRST_SEED` when set (replaying a failing seed by
/// hand: openraft draws its election timeouts from its own RNG, so a seed's interleaving
/// varies from run to run and a rare failure may need several runs).
fn first_seed() -> u64 {
    std::env::var("POSMESH_RAFT_SIM_FIRST_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

/// `POSMESH_RAFT_SIM_LOG=<filter>` (an `EnvFilter`, e.g. `openraft=debug`): openraft's own
/// log on stderr, to diagnose a seed by hand.
fn log_if_asked() {
    if let Ok(filter) = std::env::var("POSMESH_RAFT_SIM_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .try_init();
    }
}

fn run(devices: u64, seeds: u64) {
    log_if_asked();
    let seeds = seed_count(seeds);
    let options = RaftSimOptions {
        devices,
        ..RaftSimOptions::default()
    };
    let first = first_seed();
    let (failed, total) = sweep(first, first + seeds - 1, &options);
    for outcome in &failed {
        for violation in &outcome.violations {
            eprintln!("{devices} devices, seed {}: {violation}", outcome.seed);
        }
    }
    assert!(failed.is_empty(), "{} failing seeds", failed.len());
    eprintln!("{devices} devices, {seeds} seeds: {total:?}");
    for kind in [
        "partition-device",
        "partition-split",
        "link-one-way",
        "crash",
        "restart",
        "power-cut",
        "latency",
    ] {
        assert!(
            total.faults.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} injected: {:?}",
            total.faults
        );
    }
    assert!(
        total.leaderships > seeds,
        "leadership changed hands: {total:?}"
    );
    assert!(total.snapshots_installed > 0, "{total:?}");
    assert!(
        total.redemptions_refused > 0,
        "the card ran out, so no double spend was tried: {total:?}"
    );
    assert!(
        total.redemptions_applied > 0 && total.days_closed > 0,
        "{total:?}"
    );
    assert!(
        total.rules_adopted > 0,
        "no run switched rules mid-log: {total:?}"
    );
}

#[test]
fn raft_on_three_devices_keeps_every_safety_property() {
    run(3, SEEDS_3);
}

#[test]
fn raft_on_five_devices_keeps_every_safety_property() {
    run(5, SEEDS_5);
}

#[test]
fn the_fsync_lie_canary_is_caught_by_committed_kept() {
    let options = RaftSimOptions {
        canary: Some(RaftCanary::FsyncLie),
        ..RaftSimOptions::default()
    };
    let caught = (1..=40_u64).find(|seed| {
        posmesh_simulations::raft::run_raft_seed(*seed, &options)
            .violations
            .iter()
            .any(|v| v.checker == "raft-committed-kept")
    });
    assert!(caught.is_some(), "the fsync-lie canary was never caught");
    eprintln!("fsync-lie caught at seed {caught:?}");
}
