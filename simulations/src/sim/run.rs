//! Running seeds: [`run_seed`] plays one store from one seed through the two phases and the
//! checkers; [`sweep`] runs many seeds on a few threads and aggregates in seed order, so its
//! report does not depend on the thread count.
//!
//! One run: the seed picks the store (3–5 devices in the quick profile) and forks three
//! independent streams — the shape, the schedule (sales and faults of the safety phase, drawn
//! before the run starts) and the runtime (latencies, per-message faults, clock skews, fsync
//! times). Safety phase: sales and faults until `safety_ms`. Then the heal, and the liveness
//! phase: no new faults, no loss; every device must converge within `liveness_deadline_ms`.
//! A further second (or anti-entropy round) runs after convergence: late duplicates must
//! change nothing. Then every checker runs.

use super::canary::Canary;
use super::checkers::{check_all, Violation};
use super::config::SimConfig;
use super::device::{add_order_stats, add_stats};
use super::faults::{
    schedule_cloud_outages, schedule_faults, schedule_orders, schedule_sales, Agenda, FaultCounts,
};
use super::history::{OrderOp, OrderOutcome, SaleOutcome};
use super::rng::SimRng;
use super::world::World;
use posmesh_sync::orders::OrderSyncStats;
use posmesh_sync::replication::ReplicatorStats;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Device ids, in the order a store gets them.
pub const DEVICE_NAMES: [&str; 6] = [
    "till-1",
    "till-2",
    "till-3",
    "kiosk-1",
    "handheld-1",
    "till-4",
];

/// What to run besides the seed.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The profile.
    pub config: SimConfig,
    /// The planted bug, if any.
    pub canary: Option<Canary>,
    /// Keep the trace as text lines (for a replay).
    pub keep_trace: bool,
}

impl RunOptions {
    /// `config`, no canary, no trace lines.
    pub fn new(config: SimConfig) -> Self {
        Self {
            config,
            canary: None,
            keep_trace: false,
        }
    }

    /// The one command that replays `seed` with these options exactly, with its trace.
    pub fn replay_command(&self, seed: u64) -> String {
        let mut args = Vec::new();
        if self.config.profile != "quick" {
            args.push(format!("--profile {}", self.config.profile));
        }
        if let Some(canary) = self.canary {
            args.push(format!("--canary {canary}"));
        }
        if args.is_empty() {
            format!("make sim SEED={seed}")
        } else {
            format!("make sim SEED={seed} SIM_ARGS='{}'", args.join(" "))
        }
    }
}

/// What one seed did.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The seed.
    pub seed: u64,
    /// Devices in the store.
    pub devices: usize,
    /// Broken guarantees (empty when the run is clean).
    pub violations: Vec<Violation>,
    /// Faults injected, by kind.
    pub faults: FaultCounts,
    /// Digest of the event trace.
    pub digest: String,
    /// The trace lines (when kept).
    pub trace: Vec<String>,
    /// Events in the trace.
    pub events: u64,
    /// Virtual time simulated, ms.
    pub virtual_ms: u64,
    /// Sales asked for.
    pub sales: u64,
    /// Sales acknowledged.
    pub sales_acked: u64,
    /// Entries in the store's ledger (sum of the authors' journals).
    pub entries: u64,
    /// When every device held everything after the heal, ms of virtual time.
    pub converged_at_ms: Option<u64>,
    /// When the heal came, ms.
    pub healed_at_ms: u64,
    /// Altered batches delivered, and refusals of altered batches.
    pub tampered: (u64, u64),
    /// Replicator counters over all devices.
    pub stats: ReplicatorStats,
    /// The order workload.
    pub orders: OrderCounts,
    /// Order sync counters over all devices.
    pub order_stats: OrderSyncStats,
    /// Entries the cloud holds at the end.
    pub cloud_entries: u64,
    /// Uploads the cloud answered as duplicates (stored nothing).
    pub cloud_duplicates: u64,
}

/// What became of the order requests of a run (or a sweep).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrderCounts {
    /// Orders opened and acknowledged.
    pub created: u64,
    /// Edits asked for (on a running device holding an order).
    pub edits: u64,
    /// Edits acknowledged.
    pub edits_acked: u64,
    /// Edits applied in memory but refused (full disk) or interrupted by a crash.
    pub edits_unacked_applied: u64,
    /// Edits requested at the same instant as another on another device.
    pub edits_concurrent: u64,
}

impl OrderCounts {
    fn add(&mut self, other: &OrderCounts) {
        self.created += other.created;
        self.edits += other.edits;
        self.edits_acked += other.edits_acked;
        self.edits_unacked_applied += other.edits_unacked_applied;
        self.edits_concurrent += other.edits_concurrent;
    }
}

fn count_orders(world: &World) -> OrderCounts {
    let mut counts = OrderCounts::default();
    let records = &world.history.orders;
    for (i, record) in records.iter().enumerate() {
        let acked = matches!(record.outcome, OrderOutcome::Acked { .. });
        match record.op {
            OrderOp::Create => counts.created += u64::from(acked),
            OrderOp::Edit(_) => {
                counts.edits += 1;
                counts.edits_acked += u64::from(acked);
                counts.edits_unacked_applied += u64::from(record.applied && !acked);
                let concurrent = |j: usize| {
                    records.get(j).is_some_and(|other| {
                        other.requested_ms == record.requested_ms
                            && other.device != record.device
                            && matches!(other.op, OrderOp::Edit(_))
                    })
                };
                counts.edits_concurrent +=
                    u64::from(concurrent(i + 1) || i.checked_sub(1).is_some_and(concurrent));
            }
        }
    }
    counts
}

fn simulate(seed: u64, options: &RunOptions) -> Outcome {
    let config = options.config.clone();
    let mut root = SimRng::new(seed);
    let mut shape = root.fork();
    let mut schedule = root.fork();
    let runtime = root.fork();
    let mut order_schedule = root.fork();
    let mut cloud_schedule = root.fork();
    let mut payments_rng = root.fork();
    let span = (config.devices_max - config.devices_min) as u64;
    let n = config.devices_min + shape.below(span + 1) as usize;
    let names: Vec<String> = DEVICE_NAMES[..n].iter().map(|s| (*s).to_owned()).collect();
    let mut world = World::new(
        seed,
        config.clone(),
        options.canary,
        &names,
        runtime,
        options.keep_trace,
    );
    let mut agenda = Agenda::new();
    schedule_sales(&config, n, &mut schedule, &mut agenda);
    schedule_faults(&config, n, &mut schedule, &mut agenda);
    schedule_orders(&config, n, &mut order_schedule, &mut agenda);
    schedule_cloud_outages(&config, &mut cloud_schedule, &mut agenda);
    for ((at_ms, _), action) in agenda {
        world.schedule(at_ms, action);
    }
    world.run_until(config.safety_ms);
    world.heal();
    let converged = world.run_until_converged(config.safety_ms + config.liveness_deadline_ms);
    world.history.converged_at_ms = converged;
    if converged.is_some() {
        let extra = config
            .replicator
            .anti_entropy_interval_ms
            .max(config.order_writeback_max_ms)
            .max(1_000);
        world.run_until(world.now_ms + extra);
    }
    if config.cloud_round_ms > 0 {
        world.history.cloud_converged_at_ms =
            world.run_until_cloud_converged(world.now_ms + config.liveness_deadline_ms);
    }
    world.history.orders_final = world.snapshot_orders();
    let mut violations = check_all(&world);
    // Card payments (guarantee 6 and card data), modelled beside the ledger world.
    violations.extend(super::payments::run(&mut payments_rng, n).violations);
    let sales_acked = world
        .history
        .sales
        .iter()
        .filter(|s| matches!(s.outcome, SaleOutcome::Acked { .. }))
        .count() as u64;
    Outcome {
        seed,
        devices: n,
        violations,
        faults: world.faults.clone(),
        digest: world.trace.digest(),
        trace: world.trace.lines().to_vec(),
        events: world.trace.events(),
        virtual_ms: world.now_ms,
        sales: world.history.sales.len() as u64,
        sales_acked,
        entries: world.authored().values().sum(),
        converged_at_ms: converged,
        healed_at_ms: world.history.healed_at_ms,
        tampered: (
            world.history.tampered_delivered,
            world.history.refusals.iter().filter(|r| r.tampered).count() as u64,
        ),
        stats: world.stats_total(),
        orders: count_orders(&world),
        order_stats: world.order_stats_total(),
        cloud_entries: world.cloud.entries.len() as u64,
        cloud_duplicates: world.cloud.duplicates,
    }
}

/// Runs one seed. A panic inside the simulator or a core (a broken assertion) is reported as
/// a violation of checker `panic`, so a sweep carries on and the seed can be replayed.
pub fn run_seed(seed: u64, options: &RunOptions) -> Outcome {
    match catch_unwind(AssertUnwindSafe(|| simulate(seed, options))) {
        Ok(outcome) => outcome,
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "panic".into());
            Outcome {
                seed,
                devices: 0,
                violations: vec![Violation {
                    checker: "panic",
                    device: None,
                    seq: None,
                    message,
                }],
                faults: FaultCounts::default(),
                digest: String::new(),
                trace: Vec::new(),
                events: 0,
                virtual_ms: 0,
                sales: 0,
                sales_acked: 0,
                entries: 0,
                converged_at_ms: None,
                healed_at_ms: 0,
                tampered: (0, 0),
                stats: ReplicatorStats::default(),
                orders: OrderCounts::default(),
                order_stats: OrderSyncStats::default(),
                cloud_entries: 0,
                cloud_duplicates: 0,
            }
        }
    }
}

/// The aggregate of many seeds.
#[derive(Clone, Debug, Default)]
pub struct SweepReport {
    /// Seeds run.
    pub seeds: u64,
    /// Faults injected, by kind, over all seeds.
    pub faults: FaultCounts,
    /// Seeds with violations, with their outcome (seed order).
    pub failed: Vec<Outcome>,
    /// Violations over all seeds.
    pub violations: u64,
    /// Virtual time simulated, ms.
    pub virtual_ms: u64,
    /// Sales acknowledged.
    pub sales_acked: u64,
    /// Trace events.
    pub events: u64,
    /// Altered batches delivered, and refused.
    pub tampered: (u64, u64),
    /// Violations by checker.
    pub by_checker: std::collections::BTreeMap<&'static str, u64>,
    /// Replicator counters over all seeds.
    pub stats: ReplicatorStats,
    /// The order workload over all seeds.
    pub orders: OrderCounts,
    /// Order sync counters over all seeds.
    pub order_stats: OrderSyncStats,
    /// Entries the cloud stored, and uploads it answered as duplicates, over all seeds.
    pub cloud: (u64, u64),
}

impl SweepReport {
    fn add(&mut self, outcome: Outcome) {
        self.seeds += 1;
        self.faults.merge(&outcome.faults);
        self.virtual_ms += outcome.virtual_ms;
        self.sales_acked += outcome.sales_acked;
        self.events += outcome.events;
        self.tampered.0 += outcome.tampered.0;
        self.tampered.1 += outcome.tampered.1;
        add_stats(&mut self.stats, &outcome.stats);
        self.orders.add(&outcome.orders);
        add_order_stats(&mut self.order_stats, &outcome.order_stats);
        self.cloud.0 += outcome.cloud_entries;
        self.cloud.1 += outcome.cloud_duplicates;
        if !outcome.violations.is_empty() {
            self.violations += outcome.violations.len() as u64;
            for v in &outcome.violations {
                *self.by_checker.entry(v.checker).or_insert(0) += 1;
            }
            self.failed.push(outcome);
        }
    }
}

/// Runs seeds `first ..= first + count - 1` on `threads` threads.
pub fn sweep(first: u64, count: u64, options: &RunOptions, threads: usize) -> SweepReport {
    let threads = threads.max(1) as u64;
    let mut per_thread: Vec<Vec<Outcome>> = Vec::new();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    (0..count)
                        .filter(|i| i % threads == t)
                        .map(|i| run_seed(first.wrapping_add(i), options))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for handle in handles {
            match handle.join() {
                Ok(outcomes) => per_thread.push(outcomes),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    let mut all: Vec<Outcome> = per_thread.into_iter().flatten().collect();
    all.sort_by_key(|o| o.seed.wrapping_sub(first));
    let mut report = SweepReport::default();
    for outcome in all {
        report.add(outcome);
    }
    report
}
