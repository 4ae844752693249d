//! A deterministic cluster of replicators over a simulated network (seeded faults: drop,
//! duplicate, reorder by random latency, partitions, failed stores) with a virtual clock that
//! jumps to the next due time. Everything is derived from the seed, so a run replays exactly.

use super::mem_ledger::MemLedger;
use crate::chain::ChainVerifier;
use crate::replication::{
    LedgerRead, PeerId, RefusalReason, ReplicationEvent, Replicator, ReplicatorConfig,
    ReplicatorStats, VersionVector,
};
use posmesh_proto::journal::v1::ChainHeadSignature;
use posmesh_proto::sync::v1::SyncMessage;
use prost::Message as _;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny seeded generator for the schedule.
#[derive(Clone, Debug)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0);
        self.next_u64() % n
    }

    /// True with probability `per_mille / 1000`.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

/// Fault rates of the network and the disks.
#[derive(Clone, Copy, Debug)]
pub struct Faults {
    pub drop_per_mille: u64,
    pub duplicate_per_mille: u64,
    pub store_fail_per_mille: u64,
    /// Message latency is uniform in `1 ..= latency_max_ms`, so messages reorder.
    pub latency_max_ms: u64,
    /// Store (fsync) latency is uniform in `0 ..= store_latency_max_ms`.
    pub store_latency_max_ms: u64,
}

impl Faults {
    pub const NONE: Faults = Faults {
        drop_per_mille: 0,
        duplicate_per_mille: 0,
        store_fail_per_mille: 0,
        latency_max_ms: 5,
        store_latency_max_ms: 2,
    };
}

/// A `Store` the simulated disk is writing.
#[derive(Clone, Debug)]
struct PendingStore {
    ready_ms: u64,
    device_id: String,
    entries: Vec<(u64, Vec<u8>)>,
    head: ChainHeadSignature,
}

/// One simulated node.
#[derive(Debug)]
pub struct Node {
    pub name: String,
    pub replicator: Replicator,
    pub ledger: MemLedger,
    stores: Vec<PendingStore>,
    pub refusals: Vec<(PeerId, String, RefusalReason)>,
}

#[derive(Clone, Debug)]
struct InFlight {
    deliver_ms: u64,
    id: u64,
    from: usize,
    to: usize,
    message: SyncMessage,
}

/// The whole simulated store.
#[derive(Debug)]
pub struct Cluster {
    pub now_ms: u64,
    pub rng: SplitMix64,
    pub faults: Faults,
    pub nodes: Vec<Node>,
    links_up: BTreeSet<(usize, usize)>,
    network: Vec<InFlight>,
    next_id: u64,
    trace: Sha256,
    /// Messages handed to the network (before faults).
    pub messages_sent: u64,
    last_run_ms: Option<u64>,
    runs_at_same_ms: u32,
}

/// Most rounds of due work at one virtual instant before the run is declared a livelock.
const RUNS_AT_SAME_MS_MAX: u32 = 1_000;

fn link(a: usize, b: usize) -> (usize, usize) {
    (a.min(b), a.max(b))
}

impl Cluster {
    /// Nodes named `names` (each writes the journal of the device of its name), all keys
    /// known everywhere, every pair connected at time 0.
    pub fn new(names: &[&str], config: &ReplicatorConfig, seed: u64, faults: Faults) -> Self {
        let nodes = names
            .iter()
            .map(|name| Node {
                name: (*name).to_owned(),
                replicator: Replicator::new(name, config.clone()).expect("valid config"),
                ledger: MemLedger::new(names.iter().copied()),
                stores: Vec::new(),
                refusals: Vec::new(),
            })
            .collect();
        let mut cluster = Self {
            now_ms: 0,
            rng: SplitMix64(seed),
            faults,
            nodes,
            links_up: BTreeSet::new(),
            network: Vec::new(),
            next_id: 0,
            trace: Sha256::new(),
            messages_sent: 0,
            last_run_ms: None,
            runs_at_same_ms: 0,
        };
        for a in 0..names.len() {
            for b in a + 1..names.len() {
                cluster.set_link(a, b, true);
            }
        }
        cluster
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    fn record(&mut self, what: &str, node: usize, bytes: &[u8]) {
        self.trace.update(self.now_ms.to_be_bytes());
        self.trace.update(what.as_bytes());
        self.trace.update((node as u64).to_be_bytes());
        self.trace.update(bytes);
    }

    /// Digest of everything that happened so far (the replay check compares two runs).
    pub fn digest(&self) -> [u8; 32] {
        self.trace.clone().finalize().into()
    }

    /// Node `node`'s writer appends `count` entries as one signed batch.
    pub fn append(&mut self, node: usize, count: u64) {
        let name = self.nodes[node].name.clone();
        self.nodes[node].ledger.append_local(&name, count);
        self.nodes[node].replicator.handle_local_append(self.now_ms);
        self.record("append", node, &count.to_be_bytes());
        self.drain(node);
    }

    /// Connects or cuts the link between `a` and `b` (both sides are told; a cut link loses
    /// what is in flight on it).
    pub fn set_link(&mut self, a: usize, b: usize, up: bool) {
        assert_ne!(a, b);
        let key = link(a, b);
        if up == self.links_up.contains(&key) {
            return;
        }
        self.record(
            if up { "link-up" } else { "link-down" },
            a,
            &(b as u64).to_be_bytes(),
        );
        if up {
            self.links_up.insert(key);
            for (x, y) in [(a, b), (b, a)] {
                let peer = PeerId(self.nodes[y].name.clone());
                self.nodes[x].replicator.handle_connected(peer, self.now_ms);
            }
        } else {
            self.links_up.remove(&key);
            self.network.retain(|m| link(m.from, m.to) != key);
            for (x, y) in [(a, b), (b, a)] {
                let peer = PeerId(self.nodes[y].name.clone());
                self.nodes[x].replicator.handle_disconnected(&peer);
            }
        }
        for node in [a, b] {
            self.drain(node);
        }
    }

    /// Node `node` crashes and restarts: its links drop, its replicator starts afresh, and
    /// stores its disk had not finished are lost (they were never acknowledged). Its ledger
    /// (durable) survives. Links come back with later `set_link` / `heal` calls.
    pub fn restart(&mut self, node: usize) {
        for other in (0..self.nodes.len()).filter(|&o| o != node) {
            self.set_link(node, other, false);
        }
        self.record("restart", node, &[]);
        let config = self.nodes[node].replicator.config().clone();
        let name = self.nodes[node].name.clone();
        self.nodes[node].replicator = Replicator::new(&name, config).expect("valid config");
        self.nodes[node].stores.clear();
    }

    pub fn link_is_up(&self, a: usize, b: usize) -> bool {
        self.links_up.contains(&link(a, b))
    }

    /// Every link up.
    pub fn heal(&mut self) {
        for a in 0..self.nodes.len() {
            for b in a + 1..self.nodes.len() {
                self.set_link(a, b, true);
            }
        }
    }

    /// Hands a message from `from_peer` (any name, e.g. a forger) straight to `node`.
    pub fn inject(&mut self, node: usize, from_peer: &str, message: SyncMessage) {
        let now_ms = self.now_ms;
        let target = &mut self.nodes[node];
        let peer = PeerId::from(from_peer);
        target
            .replicator
            .handle_message(&peer, message, now_ms, &target.ledger, &target.ledger);
        self.drain(node);
    }

    /// Routes `node`'s transmits into the network (with faults) and its events to its disk.
    fn drain(&mut self, node: usize) {
        while let Some((peer, message)) = self.nodes[node].replicator.poll_transmit() {
            self.messages_sent += 1;
            let Some(to) = self.index_of(&peer.0) else {
                continue; // a peer outside the cluster (a forger): nobody listens
            };
            assert!(self.link_is_up(node, to), "transmit to a disconnected peer");
            if self.rng.chance(self.faults.drop_per_mille) {
                continue;
            }
            let copies = if self.rng.chance(self.faults.duplicate_per_mille) {
                2
            } else {
                1
            };
            for _ in 0..copies {
                let latency_ms = 1 + self.rng.below(self.faults.latency_max_ms);
                self.next_id += 1;
                self.network.push(InFlight {
                    deliver_ms: self.now_ms + latency_ms,
                    id: self.next_id,
                    from: node,
                    to,
                    message: message.clone(),
                });
            }
        }
        while let Some(event) = self.nodes[node].replicator.poll_event() {
            match event {
                ReplicationEvent::Store {
                    device_id,
                    entries,
                    head,
                    ..
                } => {
                    let ready_ms =
                        self.now_ms + self.rng.below(self.faults.store_latency_max_ms + 1);
                    self.nodes[node].stores.push(PendingStore {
                        ready_ms,
                        device_id,
                        entries,
                        head,
                    });
                }
                ReplicationEvent::Refused {
                    peer,
                    device_id,
                    reason,
                } => self.nodes[node].refusals.push((peer, device_id, reason)),
            }
        }
    }

    /// The earliest time anything is due.
    fn next_due_ms(&self) -> Option<u64> {
        let deliveries = self.network.iter().map(|m| m.deliver_ms);
        let stores = self
            .nodes
            .iter()
            .flat_map(|n| n.stores.iter().map(|s| s.ready_ms));
        let timeouts = self
            .nodes
            .iter()
            .filter_map(|n| n.replicator.poll_timeout());
        deliveries.chain(stores).chain(timeouts).min()
    }

    /// Runs everything due at or before `until_ms`, jumping the clock from one due time to the
    /// next; the clock ends at `until_ms`.
    pub fn run_until(&mut self, until_ms: u64) {
        while let Some(due_ms) = self.next_due_ms() {
            if due_ms > until_ms {
                break;
            }
            self.now_ms = self.now_ms.max(due_ms);
            self.run_due();
        }
        self.now_ms = self.now_ms.max(until_ms);
    }

    /// Runs until `done` holds (checked after each due time) or `deadline_ms`. Returns when
    /// `done` first held.
    pub fn run_until_done(
        &mut self,
        deadline_ms: u64,
        done: impl Fn(&Cluster) -> bool,
    ) -> Option<u64> {
        while !done(self) {
            let due_ms = self.next_due_ms()?;
            if due_ms > deadline_ms {
                return None;
            }
            self.now_ms = self.now_ms.max(due_ms);
            self.run_due();
        }
        Some(self.now_ms)
    }

    fn run_due(&mut self) {
        let now_ms = self.now_ms;
        if self.last_run_ms == Some(now_ms) {
            self.runs_at_same_ms += 1;
            // A replicator whose poll_timeout stays in the past would spin here forever.
            assert!(
                self.runs_at_same_ms < RUNS_AT_SAME_MS_MAX,
                "livelock: virtual time stuck at {now_ms} ms"
            );
        } else {
            self.last_run_ms = Some(now_ms);
            self.runs_at_same_ms = 0;
        }
        // Deliveries, in (time, id) order.
        loop {
            let next = self
                .network
                .iter()
                .enumerate()
                .filter(|(_, m)| m.deliver_ms <= now_ms)
                .min_by_key(|(_, m)| (m.deliver_ms, m.id))
                .map(|(i, _)| i);
            let Some(index) = next else { break };
            let m = self.network.swap_remove(index);
            self.record("deliver", m.to, &m.message.encode_to_vec());
            let peer = PeerId(self.nodes[m.from].name.clone());
            let node = &mut self.nodes[m.to];
            node.replicator
                .handle_message(&peer, m.message, now_ms, &node.ledger, &node.ledger);
            self.drain(m.to);
        }
        for index in 0..self.nodes.len() {
            self.run_stores(index);
            if self.nodes[index]
                .replicator
                .poll_timeout()
                .is_some_and(|t| t <= now_ms)
            {
                self.record("timeout", index, &[]);
                let node = &mut self.nodes[index];
                node.replicator.handle_timeout(now_ms, &node.ledger);
                self.drain(index);
            }
        }
    }

    fn run_stores(&mut self, index: usize) {
        let now_ms = self.now_ms;
        while let Some(position) = self.nodes[index]
            .stores
            .iter()
            .position(|s| s.ready_ms <= now_ms)
        {
            let store = self.nodes[index].stores.remove(position);
            let last_seq = store.entries.last().map_or(0, |e| e.0);
            if self.rng.chance(self.faults.store_fail_per_mille) {
                self.record("store-failed", index, store.device_id.as_bytes());
                self.nodes[index]
                    .replicator
                    .handle_store_failed(&store.device_id);
            } else {
                self.record("store", index, &store.head.encode_to_vec());
                let node = &mut self.nodes[index];
                node.ledger
                    .store(&store.device_id, &store.entries, &store.head);
                node.replicator
                    .handle_stored(&store.device_id, last_seq, now_ms);
            }
            self.drain(index);
        }
    }

    /// What the authors hold: each node's own device, fully.
    pub fn authored(&self) -> VersionVector {
        self.nodes
            .iter()
            .map(|n| (n.name.clone(), n.ledger.version_vector().get(&n.name)))
            .collect()
    }

    /// Whether every node holds exactly what the authors wrote.
    pub fn converged(&self) -> bool {
        let authored = self.authored();
        self.nodes
            .iter()
            .all(|n| n.ledger.version_vector() == authored)
    }

    /// Sum of every node's counters.
    pub fn stats_total(&self) -> ReplicatorStats {
        let mut total = ReplicatorStats::default();
        for node in &self.nodes {
            let s = node.replicator.stats();
            total.vectors_sent += s.vectors_sent;
            total.batches_sent += s.batches_sent;
            total.batches_received += s.batches_received;
            total.batches_duplicate += s.batches_duplicate;
            total.batches_trimmed += s.batches_trimmed;
            total.batches_gap_ignored += s.batches_gap_ignored;
            total.batches_refused += s.batches_refused;
            total.batches_parked += s.batches_parked;
            total.batches_park_full += s.batches_park_full;
            total.stores_emitted += s.stores_emitted;
            total.stores_confirmed += s.stores_confirmed;
            total.stores_failed += s.stores_failed;
            total.acks_sent += s.acks_sent;
            total.go_backs += s.go_backs;
            total.batches_stalled_without_head += s.batches_stalled_without_head;
            total.messages_from_unknown_peer += s.messages_from_unknown_peer;
            total.messages_unknown_kind += s.messages_unknown_kind;
        }
        total
    }

    /// The convergence checker (guarantee 3): every node holds every entry of every device
    /// with the author's bytes, gap-free and hash-chained, with a verifying signed head at the
    /// end; each received entry was stored exactly once; nothing honest was refused.
    pub fn check_convergence(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let authored = self.authored();
        let total: u64 = authored.entries_total();
        for node in &self.nodes {
            for author in &self.nodes {
                let theirs = author.ledger.entries(&author.name);
                let mine = node.ledger.entries(&author.name);
                if mine != theirs {
                    problems.push(format!(
                        "{} holds {} entries of {} differing from the author's {}",
                        node.name,
                        mine.len(),
                        author.name,
                        theirs.len()
                    ));
                    continue;
                }
                let mut verifier = ChainVerifier::new(&author.name);
                for (seq, bytes) in (1u64..).zip(mine) {
                    if let Err(e) = verifier.push(seq, bytes) {
                        problems.push(format!("{}: chain of {}: {e:?}", node.name, author.name));
                        break;
                    }
                }
                let last = mine.len() as u64;
                if last > 0 && node.ledger.heads(&author.name).last() != Some(&last) {
                    problems.push(format!(
                        "{} has no signed head at the last entry {last} of {}",
                        node.name, author.name
                    ));
                }
            }
            let own = authored.get(&node.name);
            if node.ledger.entries_stored != total - own {
                problems.push(format!(
                    "{} stored {} received entries, expected {} (duplicates?)",
                    node.name,
                    node.ledger.entries_stored,
                    total - own
                ));
            }
            if !node.refusals.is_empty() {
                problems.push(format!("{} refused {:?}", node.name, node.refusals));
            }
        }
        problems
    }
}
