//! The store's Raft group in simulation: several openraft nodes (the production
//! configuration — store timings, pre-vote — and the production state machine
//! [`posmesh_consensus::StoreState`]) on in-memory disks, driven on a current-thread tokio
//! runtime with paused time (virtual time jumps to the next timer, so a 70 s run takes
//! well under a second), with seeded faults and checkers for Raft safety, gift cards and day
//! close.
//!
//! | part | in this simulation |
//! | --- | --- |
//! | openraft (elections, pre-vote, replication, snapshots, membership) | production library and configuration (snapshots every 16 entries, so restarted devices often need one) |
//! | state machine | production `StoreState::apply` |
//! | RocksDB log and state storage | **modelled** in [`storage`]: in memory, durable when a call returns (what the RocksDB storage's fsyncs give); openraft's own storage suite tests the real one |
//! | the mesh | **modelled** in [`network`]: per-message seeded latency and loss, cut links (one or both ways), devices down |
//! | clients | one per device: redeem 1–3 minor units of one gift card, or close one of nine days with the device's own cut, through the device (forwarded to the leader it names) |
//!
//! Faults ([`run`]): a device isolated, the store split in halves, a link cut one way, heal,
//! a crash (Raft shut down, restarted later from its disk), a restart, a power cut of every
//! device at once, message loss, latency. Then every fault heals and the devices must
//! converge within the deadline.
//!
//! Replay: the fault schedule, the clients' choices and the network's draws come from the
//! seed; openraft draws its election timeouts from its own thread RNG, so a seed replays the
//! same schedule but not necessarily the same interleaving (the checkers judge every
//! interleaving alike). A rare failure is chased by running one seed many times:
//! `POSMESH_RAFT_SIM_FIRST_SEED=10 POSMESH_RAFT_SIM_SEEDS=1 cargo test … raft_on_five`, with
//! `POSMESH_RAFT_SIM_LOG=openraft=debug` for openraft's own log; a `raft-liveness` violation
//! lists every device's role, term, vote and log/commit/apply indexes.
//!
//! Snapshots reach a device through the production receive rule
//! ([`posmesh_consensus::snapshot_receive`]): the 5-device sweep found a follower whose state
//! machine stalled short of its commit index after a snapshot it already held (1 run in ~150).
//!
//! Canary ([`RaftCanary::FsyncLie`]): storage that acknowledges appends it then loses in a
//! crash (an fsync that lied); caught by `raft-committed-kept` after power cuts.

pub mod checkers;
pub mod network;
pub mod run;
pub mod storage;

pub use run::{run_raft_seed, RaftOutcome, RaftSimOptions};

/// A Raft node of the simulation (the production type configuration on in-memory storage).
pub type SimRaft = openraft::Raft<posmesh_consensus::TypeConfig, storage::MemStateMachine>;

/// A planted bug that a checker must catch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RaftCanary {
    /// The log storage acknowledges appends and loses the last 2 s of them in a crash.
    FsyncLie,
}

/// Runs seeds `first..=last` one after the other; returns the outcomes with violations and
/// the totals.
pub fn sweep(first: u64, last: u64, options: &RaftSimOptions) -> (Vec<RaftOutcome>, RaftOutcome) {
    let mut failed = Vec::new();
    let mut total = RaftOutcome::default();
    for seed in first..=last {
        let outcome = run_raft_seed(seed, options);
        total.acked += outcome.acked;
        total.leaderships += outcome.leaderships;
        total.redemptions_applied += outcome.redemptions_applied;
        total.redemptions_refused += outcome.redemptions_refused;
        total.days_closed += outcome.days_closed;
        total.rules_adopted += outcome.rules_adopted;
        total.snapshots_installed += outcome.snapshots_installed;
        total.messages_lost += outcome.messages_lost;
        for (kind, n) in &outcome.faults {
            *total.faults.entry(kind).or_default() += n;
        }
        total.violations.extend(outcome.violations.iter().cloned());
        if !outcome.violations.is_empty() {
            failed.push(outcome);
        }
    }
    (failed, total)
}
