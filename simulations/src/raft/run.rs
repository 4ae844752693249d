//! One seeded Raft run: a store's devices run openraft (production configuration and state
//! machine, in-memory disks) on a current-thread tokio runtime with paused time, clients
//! redeem one gift card and close days through their own device while seeded faults hit the
//! store; then everything heals, the devices converge, and the checkers run.

use super::checkers::{self, violation, ClientOp, Observed};
use super::network::{SimNet, SimNetwork};
use super::storage::{self, MemDisk};
use super::{RaftCanary, SimRaft};
use crate::sim::rng::SimRng;
use crate::sim::Violation;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, Config, ServerState, SnapshotPolicy};
use posmesh_consensus::{
    run_failover_nudge, NodeId, NudgeHandle, RaftTimings, StoreCommand, StoreResponse,
};
use posmesh_domain::money::Currency;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The gift card every client redeems from.
pub const CARD: &str = "gc-1";
/// Its initial balance, minor units (small, so it runs out during a run).
pub const CARD_BALANCE_MINOR: i64 = 200;

/// What a Raft run does.
#[derive(Clone, Debug)]
pub struct RaftSimOptions {
    /// Devices (voters): 3 or 5.
    pub devices: u64,
    /// Virtual duration of the fault phase, ms.
    pub fault_phase_ms: u64,
    /// Virtual time allowed to converge after the heal, ms.
    pub heal_deadline_ms: u64,
    /// A planted bug, or none.
    pub canary: Option<RaftCanary>,
}

impl Default for RaftSimOptions {
    fn default() -> Self {
        Self {
            devices: 3,
            fault_phase_ms: 90_000,
            heal_deadline_ms: 30_000,
            canary: None,
        }
    }
}

/// The result of one run.
#[derive(Clone, Debug, Default)]
pub struct RaftOutcome {
    /// The seed.
    pub seed: u64,
    /// Devices.
    pub devices: u64,
    /// What the checkers found.
    pub violations: Vec<Violation>,
    /// Faults injected, by kind.
    pub faults: BTreeMap<&'static str, u64>,
    /// Distinct (term, leader) pairs seen.
    pub leaderships: u64,
    /// Client writes acknowledged.
    pub acked: u64,
    /// Redemptions acknowledged as applied (not refused).
    pub redemptions_applied: u64,
    /// Redemptions refused for want of balance.
    pub redemptions_refused: u64,
    /// Day closes acknowledged as applied.
    pub days_closed: u64,
    /// Adoptions of the newest rules version acknowledged ([`posmesh_consensus::rules`]).
    pub rules_adopted: u64,
    /// Snapshots installed on devices.
    pub snapshots_installed: u64,
    /// Messages lost.
    pub messages_lost: u64,
}

/// Runs `seed`.
///
/// # Panics
/// If the tokio runtime cannot be built.
pub fn run_raft_seed(seed: u64, options: &RaftSimOptions) -> RaftOutcome {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"));
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(self::run(seed, options.clone()))
    })) {
        Ok(outcome) => outcome,
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "a panic".to_owned());
            RaftOutcome {
                seed,
                devices: options.devices,
                violations: vec![violation("raft-panic", None, message)],
                ..RaftOutcome::default()
            }
        }
    }
}

struct Store {
    net: SimNet,
    disks: BTreeMap<NodeId, MemDisk>,
    config: Arc<Config>,
    observed: Arc<Mutex<Observed>>,
    canary: Option<RaftCanary>,
    clock: Arc<dyn Fn() -> u64 + Send + Sync>,
}

impl Store {
    async fn start(&self, id: NodeId) {
        let (log, sm) = storage::open(&self.disks[&id]);
        let network = SimNetwork {
            net: self.net.clone(),
            from: id,
        };
        match SimRaft::new(id, self.config.clone(), network, log, sm).await {
            Ok(raft) => {
                // The production failover nudge, told by the simulated network when this
                // device answers its leader's AppendEntries.
                let nudge = NudgeHandle::new(id, self.config.election_timeout_max);
                tokio::spawn(run_failover_nudge(raft.clone(), nudge.clone()));
                let mut net = self.net.lock();
                net.nudges.insert(id, nudge);
                net.up.insert(id, raft.clone());
                drop(net);
                tokio::spawn(observe(id, raft, self.observed.clone()));
            }
            Err(e) => self
                .observed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .start_failures
                .push(format!("device {id}: {e}")),
        }
    }

    async fn crash(&self, id: NodeId) {
        let raft = self.net.lock().up.remove(&id);
        if let Some(raft) = raft {
            let _ = raft.shutdown().await;
            if self.canary == Some(RaftCanary::FsyncLie) {
                self.disks[&id].lose_recent_appends((self.clock)());
            }
        }
    }

    fn up(&self) -> Vec<NodeId> {
        self.net.lock().up.keys().copied().collect()
    }
}

/// Records every leadership seen on `raft` (term, node) until it shuts down.
async fn observe(id: NodeId, raft: SimRaft, observed: Arc<Mutex<Observed>>) {
    let mut metrics = raft.metrics();
    loop {
        let now = metrics.borrow_watched().clone();
        if now.state == ServerState::Shutdown {
            return;
        }
        if now.state == ServerState::Leader {
            observed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .leaders
                .entry(now.current_term)
                .or_default()
                .insert(id);
        }
        if metrics.changed().await.is_err() {
            return;
        }
    }
}

async fn run(seed: u64, options: RaftSimOptions) -> RaftOutcome {
    let mut rng = SimRng::new(seed);
    let start = tokio::time::Instant::now();
    let clock: Arc<dyn Fn() -> u64 + Send + Sync> =
        Arc::new(move || u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX));
    let mut config = match posmesh_consensus::raft_config("sim-store", RaftTimings::STORE) {
        Ok(config) => config,
        Err(e) => panic!("store timings: {e}"),
    };
    // Frequent snapshots with no log kept behind them: a device back from a crash or a
    // partition often needs a snapshot.
    config.snapshot_policy = SnapshotPolicy::LogsSinceLast(16);
    config.max_in_snapshot_log_to_keep = 0;
    config.purge_batch_size = 1;
    let config = Arc::new(config);
    let ids: Vec<NodeId> = (1..=options.devices).collect();
    let store = Arc::new(Store {
        net: SimNet::new(rng.fork()),
        disks: ids
            .iter()
            .map(|id| (*id, MemDisk::new(clock.clone())))
            .collect(),
        config,
        observed: Arc::default(),
        canary: options.canary,
        clock: clock.clone(),
    });
    for id in &ids {
        store.start(*id).await;
    }
    let members: BTreeMap<NodeId, BasicNode> = ids
        .iter()
        .map(|id| (*id, BasicNode::new(format!("d{id}"))))
        .collect();
    let first = store.net.lock().up.get(&1).cloned();
    if let Some(raft) = first {
        let _ = raft.initialize(members).await;
    }
    let history: Arc<Mutex<Vec<ClientOp>>> = Arc::default();
    let gbp = Currency::from_code("GBP").unwrap_or_else(|e| panic!("{e}"));
    // The card is issued before the faults start (retried until a leader takes it).
    for _ in 0..100 {
        let issue = StoreCommand::IssueGiftCard {
            card_id: CARD.into(),
            amount_minor: CARD_BALANCE_MINOR,
            currency: gbp,
        };
        if let Some((index, response)) = submit(&store, 1, issue.clone()).await {
            history
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(ClientOp::acked(&issue, index, response));
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let fault_end = clock() + options.fault_phase_ms;
    let mut clients = Vec::new();
    // Halfway through the faults the store adopts the newest rules version
    // ([`posmesh_consensus::rules`]), as a leader does once every member supports it:
    // every device must switch at the same entry (`raft-rules-version`).
    {
        let store = store.clone();
        let history = history.clone();
        let clock = clock.clone();
        let halfway = options.fault_phase_ms / 2;
        clients.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(halfway)).await;
            let adopt = StoreCommand::AdoptRules {
                version: posmesh_consensus::rules::RULES_VERSION_LATEST,
            };
            while clock() < fault_end {
                let op = match submit(&store, 1, adopt.clone()).await {
                    Some((index, response)) => ClientOp::acked(&adopt, index, response),
                    None => ClientOp::unknown(&adopt),
                };
                let acked = op.index.is_some();
                history.lock().unwrap_or_else(|p| p.into_inner()).push(op);
                if acked {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }));
    }
    for id in &ids {
        let store = store.clone();
        let history = history.clone();
        let mut rng = rng.fork();
        let clock = clock.clone();
        let id = *id;
        clients.push(tokio::spawn(async move {
            let mut n = 0_u64;
            while clock() < fault_end {
                tokio::time::sleep(Duration::from_millis(rng.between(50, 600))).await;
                n += 1;
                let command = if rng.chance(850) {
                    StoreCommand::RedeemGiftCard {
                        card_id: CARD.into(),
                        amount_minor: i64::try_from(rng.between(1, 3)).unwrap_or(1),
                        redemption_id: format!("d{id}-r{n}"),
                    }
                } else {
                    StoreCommand::CloseDay {
                        business_date: format!("2026-01-{:02}", rng.between(1, 9)),
                        version_vector: BTreeMap::from([(format!("d{id}"), n)]),
                    }
                };
                let op = match submit(&store, id, command.clone()).await {
                    Some((index, response)) => ClientOp::acked(&command, index, response),
                    None => ClientOp::unknown(&command),
                };
                history.lock().unwrap_or_else(|p| p.into_inner()).push(op);
            }
        }));
    }
    let mut faults: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut fault_rng = rng.fork();
    while clock() < fault_end {
        tokio::time::sleep(Duration::from_millis(fault_rng.between(1_000, 9_000))).await;
        inject(&store, &ids, &mut fault_rng, &mut faults).await;
    }
    for client in clients {
        let _ = client.await;
    }
    // Heal: every link mends, no loss, every device up.
    {
        let mut net = store.net.lock();
        net.cut.clear();
        net.loss_per_mille = 0;
        net.latency_ms = (1, 5);
    }
    for id in &ids {
        if !store.up().contains(id) {
            store.start(*id).await;
        }
    }
    let heal_end = clock() + options.heal_deadline_ms;
    let converged = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let applied: BTreeSet<Option<u64>> = ids
            .iter()
            .map(|id| {
                store.disks[id]
                    .lock()
                    .last_applied
                    .as_ref()
                    .map(|l| l.index())
            })
            .collect();
        let leader_committed = leader_commit(&store);
        if applied.len() == 1
            && leader_committed.is_some()
            && applied.first() == Some(&leader_committed)
        {
            break true;
        }
        if clock() > heal_end {
            break false;
        }
    };
    // What every device's Raft reports when the run did not converge (read before they
    // stop): enough to tell a stuck election from a stuck follower.
    let stuck = if converged {
        String::new()
    } else {
        describe_devices(&store, &ids)
    };
    for id in &ids {
        store.crash(*id).await; // stop (the canary's loss does not matter any more)
    }
    let history = history.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let observed = store
        .observed
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let disks: BTreeMap<NodeId, storage::DiskState> = ids
        .iter()
        .map(|id| (*id, std::mem::take(&mut *store.disks[id].lock())))
        .collect();
    let mut violations = checkers::check_all(&history, &observed, &disks, CARD_BALANCE_MINOR);
    if !converged {
        violations.push(violation(
            "raft-liveness",
            None,
            format!(
                "devices did not converge within {} ms after the heal: {stuck}",
                options.heal_deadline_ms
            ),
        ));
    }
    let messages_lost = store.net.lock().lost;
    let count = |f: &dyn Fn(&ClientOp) -> bool| history.iter().filter(|op| f(op)).count() as u64;
    RaftOutcome {
        seed,
        devices: options.devices,
        violations,
        faults,
        leaderships: observed.leaders.values().map(|s| s.len() as u64).sum(),
        acked: count(&|op| op.index.is_some()),
        redemptions_applied: count(&|op| op.is_redemption() && op.applied()),
        redemptions_refused: count(&|op| op.is_redemption() && op.refused()),
        days_closed: count(&|op| op.is_close() && op.applied()),
        rules_adopted: count(&|op| {
            matches!(op.command, StoreCommand::AdoptRules { .. }) && op.applied()
        }),
        snapshots_installed: disks.values().map(|d| d.snapshots_installed).sum(),
        messages_lost,
    }
}

/// One line per device: role, term, vote, last log, committed and applied indexes, the
/// leader it follows, and its disk's applied index.
fn describe_devices(store: &Store, ids: &[NodeId]) -> String {
    let net = store.net.lock();
    let lines: Vec<String> = ids
        .iter()
        .map(|id| {
            let disk_applied = store.disks[id]
                .lock()
                .last_applied
                .as_ref()
                .map(|l| l.index());
            match net.up.get(id) {
                Some(raft) => {
                    let m = raft.metrics().borrow_watched().clone();
                    format!(
                        "d{id} {:?} term {} vote {} last log {:?} committed {:?} applied {:?} \
                         leader {:?} voters {:?} disk applied {disk_applied:?}",
                        m.state,
                        m.current_term,
                        m.vote,
                        m.last_log_index,
                        m.local_committed.map(|l| l.index()),
                        m.last_applied.map(|l| l.index()),
                        m.current_leader,
                        m.membership_config
                            .membership()
                            .voter_ids()
                            .collect::<Vec<_>>(),
                    )
                }
                None => format!("d{id} down, disk applied {disk_applied:?}"),
            }
        })
        .collect();
    lines.join("; ")
}

fn leader_commit(store: &Store) -> Option<u64> {
    let net = store.net.lock();
    net.up.values().find_map(|raft| {
        let m = raft.metrics().borrow_watched().clone();
        (m.state == ServerState::Leader)
            .then(|| m.last_applied.as_ref().map(|l| l.index()))
            .flatten()
    })
}

/// One seeded fault.
async fn inject(
    store: &Store,
    ids: &[NodeId],
    rng: &mut SimRng,
    faults: &mut BTreeMap<&'static str, u64>,
) {
    let pick = ids[rng.index(ids.len())];
    let kind: &'static str = match rng.below(11) {
        0 | 1 => {
            // Isolate one device (both directions); replaces the previous partition.
            let mut net = store.net.lock();
            net.cut.clear();
            for other in ids {
                if *other != pick {
                    net.cut.insert((pick, *other));
                    net.cut.insert((*other, pick));
                }
            }
            "partition-device"
        }
        2 => {
            // Split the store in two halves; replaces the previous partition.
            let mut shuffled = ids.to_vec();
            rng.shuffle(&mut shuffled);
            let (left, right) = shuffled.split_at(shuffled.len() / 2);
            let mut net = store.net.lock();
            net.cut.clear();
            for a in left {
                for b in right {
                    net.cut.insert((*a, *b));
                    net.cut.insert((*b, *a));
                }
            }
            "partition-split"
        }
        3 => {
            let other = ids[rng.index(ids.len())];
            if other != pick {
                store.net.lock().cut.insert((pick, other)); // one direction only
            }
            "link-one-way"
        }
        4 | 5 => {
            store.net.lock().cut.clear();
            "heal"
        }
        6 => {
            store.crash(pick).await;
            "crash"
        }
        7 => {
            let down: Vec<NodeId> = ids
                .iter()
                .copied()
                .filter(|id| !store.up().contains(id))
                .collect();
            if down.is_empty() {
                store.crash(pick).await;
                tokio::time::sleep(Duration::from_millis(rng.between(100, 3_000))).await;
                store.start(pick).await;
                "crash-restart"
            } else {
                store.start(down[rng.index(down.len())]).await;
                "restart"
            }
        }
        8 => {
            // A power cut: every device at once, back after a moment.
            for id in ids {
                store.crash(*id).await;
            }
            tokio::time::sleep(Duration::from_millis(rng.between(200, 2_000))).await;
            for id in ids {
                store.start(*id).await;
            }
            "power-cut"
        }
        9 => {
            store.net.lock().loss_per_mille = rng.between(0, 200);
            "message-loss"
        }
        _ => {
            let hi = rng.between(5, 400);
            store.net.lock().latency_ms = (1, hi);
            "latency"
        }
    };
    *faults.entry(kind).or_default() += 1;
}

/// Proposes `command` on device `id`, or on the leader it names when the link to it is
/// open (a follower forwards); `None` when no answer came (no quorum, a timeout, a crash:
/// the outcome is unknown).
async fn submit(store: &Store, id: NodeId, command: StoreCommand) -> Option<(u64, StoreResponse)> {
    let mut target = id;
    for _ in 0..2 {
        let raft = store.net.lock().up.get(&target).cloned()?;
        if target != id && store.net.lock().cut.contains(&(id, target)) {
            return None;
        }
        let answer =
            tokio::time::timeout(Duration::from_secs(5), raft.client_write(command.clone())).await;
        match answer {
            Ok(Ok(response)) => return Some((response.log_id.index(), response.data)),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                target = f.leader_id?;
            }
            _ => return None,
        }
    }
    None
}
