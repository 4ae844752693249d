//! [`World`]: a whole store in one thread — devices, the LAN, the virtual clock, the agenda
//! of scheduled actions, the history the checkers read and the event trace. The clock jumps
//! from one due time to the next (agenda, deliveries, fsyncs, replicator timers), so idle
//! virtual time costs nothing. Every random draw comes from the run's seed.

use super::canary::Canary;
use super::cloud::SimCloud;
use super::config::SimConfig;
use super::device::{add_order_stats, add_stats, LocalWrite, SimDevice};
use super::disk::{DiskError, DiskOp, DiskWrite, SimDisk};
use super::faults::{Action, Agenda, FaultCounts};
use super::history::{
    ForeignEntry, History, RefusalRecord, RefusedBecause, SaleOutcome, SaleRecord,
};
use super::keys::device_key;
use super::ledger::Ledger;
use super::network::{pair, Envelope, Network, Wire};
use super::rng::SimRng;
use super::tamper::tamper;
use super::trace::Trace;
use super::writer::{Assigned, JournalWriter, SaleInput};
use posmesh_proto::sync::v1::{sync_message::Kind, SyncMessage};
use posmesh_sync::chain::entry_hash;
use posmesh_sync::chain_head::public_key;
use posmesh_sync::cloud::{upload_batch, UploadLimits};
use posmesh_sync::orders::OrderSyncStats;
use posmesh_sync::replication::LedgerRead;
use posmesh_sync::replication::{PeerId, ReplicationEvent, Replicator, ReplicatorStats};
use std::collections::{BTreeMap, BTreeSet};

/// Most rounds of due work at one virtual instant before the run is declared a livelock.
const RUNS_AT_SAME_MS_MAX: u32 = 10_000;

/// A short description of a message for the trace: (kind, device-ish word, a, b).
fn describe(message: &Wire) -> (u64, String, u64, u64) {
    let message = match message {
        Wire::Ledger(message) => message,
        Wire::Order(order) => {
            return (
                4,
                format!(
                    "order {}{}",
                    order.order_id,
                    if order.reset { " (reset)" } else { "" }
                ),
                order.automerge_sync.len() as u64,
                u64::from(order.reset),
            )
        }
    };
    match &message.kind {
        Some(Kind::VersionVector(v)) => (
            1,
            "vector".into(),
            v.devices.iter().map(|d| d.seq).sum(),
            v.devices.len() as u64,
        ),
        Some(Kind::EntryBatch(b)) => (
            2,
            format!("batch {}", b.device_id),
            b.entries.first().map_or(0, |e| e.seq),
            b.entries.last().map_or(0, |e| e.seq),
        ),
        Some(Kind::BatchAck(a)) => (3, format!("ack {}", a.device_id), a.up_to_seq, 0),
        None => (0, "unknown".into(), 0, 0),
    }
}

/// The simulated store.
#[derive(Debug)]
pub struct World {
    /// The run's seed.
    pub seed: u64,
    /// Its configuration.
    pub config: SimConfig,
    /// The planted bug, if any.
    pub canary: Option<Canary>,
    /// Virtual time, ms.
    pub now_ms: u64,
    pub(super) rng: SimRng,
    /// The devices, by index.
    pub devices: Vec<SimDevice>,
    index: BTreeMap<String, usize>,
    /// The LAN.
    pub network: Network,
    /// Pairs that are not partitioned (connected whenever both devices are up).
    mended: BTreeSet<(usize, usize)>,
    /// Scheduled actions.
    pub agenda: Agenda,
    agenda_order: u64,
    /// What the checkers read.
    pub history: History,
    /// Faults injected, by kind.
    pub faults: FaultCounts,
    /// The event trace.
    pub trace: Trace,
    /// Whether per-message faults (loss, duplication, delay spikes) apply.
    pub message_faults: bool,
    delivering_tampered: bool,
    last_step_ms: Option<u64>,
    steps_at_same_ms: u32,
    /// The chain's cloud the devices upload to.
    pub cloud: SimCloud,
    /// When the next upload round is due (`None`: no cloud in this run).
    cloud_next_ms: Option<u64>,
}

impl World {
    /// A store of devices named `names`, all connected, with clock skews drawn from `rng`.
    pub fn new(
        seed: u64,
        config: SimConfig,
        canary: Option<Canary>,
        names: &[String],
        mut rng: SimRng,
        keep_trace: bool,
    ) -> Self {
        let keys: Vec<_> = names.iter().map(|n| device_key(seed, n)).collect();
        let directory: BTreeMap<String, [u8; 32]> = names
            .iter()
            .zip(&keys)
            .map(|(n, k)| (n.clone(), public_key(k)))
            .collect();
        let mut faults = FaultCounts::default();
        let devices = names
            .iter()
            .zip(keys)
            .map(|(name, key)| {
                let skew_ms = draw_skew(&mut rng, config.skew_max_ms, &mut faults);
                SimDevice {
                    name: name.clone(),
                    key,
                    disk: SimDisk::new(Ledger::new(directory.clone())),
                    up: false,
                    skew_ms,
                    replicator: None,
                    writer: None,
                    queue: Default::default(),
                    local_write: None,
                    stores: BTreeMap::new(),
                    held_acks: Vec::new(),
                    past_stats: ReplicatorStats::default(),
                    orders: None,
                    order_session: 0,
                    order_writes: BTreeMap::new(),
                    order_gate: None,
                    order_chunk_counts: BTreeMap::new(),
                    order_resave: BTreeSet::new(),
                    past_order_stats: OrderSyncStats::default(),
                }
            })
            .collect();
        let index = names.iter().cloned().zip(0..).collect();
        let mut world = Self {
            seed,
            config: config.clone(),
            canary,
            now_ms: 0,
            rng,
            devices,
            index,
            network: Network::default(),
            mended: BTreeSet::new(),
            agenda: Agenda::new(),
            agenda_order: 0,
            history: History::default(),
            faults,
            trace: Trace::new(keep_trace),
            message_faults: true,
            delivering_tampered: false,
            last_step_ms: None,
            steps_at_same_ms: 0,
            cloud: SimCloud::new(canary == Some(Canary::CloudStoresDuplicates)),
            cloud_next_ms: (config.cloud_round_ms > 0).then_some(config.cloud_round_ms),
        };
        let n = names.len();
        for a in 0..n {
            for b in a + 1..n {
                world.mended.insert((a, b));
            }
        }
        for d in 0..n {
            world.boot(d);
        }
        world
    }

    /// The index of the device called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// Schedules `action` at virtual time `at_ms`.
    pub fn schedule(&mut self, at_ms: u64, action: Action) {
        self.agenda_order += 1;
        self.agenda.insert((at_ms, self.agenda_order), action);
    }

    pub(super) fn record(
        &mut self,
        kind: &'static str,
        words: &[u64],
        line: impl FnOnce() -> String,
    ) {
        self.trace.record(self.now_ms, kind, words, line);
    }

    // ---- sales and the journal writer ------------------------------------------------

    /// A POS app asks device `d` for a sale now. Returns the sale id.
    pub fn request_sale(&mut self, d: usize) -> u64 {
        let sale_id = self.enqueue_sale(d);
        self.pump_writer(d);
        sale_id
    }

    /// Records a sale request and queues it for the writer (a down device refuses it).
    fn enqueue_sale(&mut self, d: usize) -> u64 {
        let sale_id = self.history.sales.len() as u64;
        let quantity = 1 + self.rng.below(3) as i64;
        let unit_price_minor = 100 + 10 * self.rng.below(40) as i64;
        let name = self.devices[d].name.clone();
        self.record("sale", &[d as u64, sale_id], || {
            format!("{name} sale #{sale_id} requested")
        });
        let outcome = if self.devices[d].up {
            SaleOutcome::Pending
        } else {
            SaleOutcome::Refused {
                at_ms: self.now_ms,
                because: RefusedBecause::DeviceDown,
            }
        };
        let device = &self.devices[d];
        let group_max = self.config.writer_group_max.max(1) as u64;
        let queued = device.queue.len() as u64 + 1;
        let writes_to_wait = u64::from(device.local_write.is_some()) + queued.div_ceil(group_max);
        self.history.sales.push(SaleRecord {
            device: d,
            requested_ms: self.now_ms,
            writes_to_wait,
            outcome,
        });
        if self.devices[d].up {
            self.devices[d].queue.push_back(SaleInput {
                sale_id,
                quantity,
                unit_price_minor,
            });
        }
        sale_id
    }

    /// A POS app asks device `d` for `count` sales at the same instant: they queue before
    /// the writer looks, so an idle writer takes them as one group (one write, one signed
    /// head). Returns the sale ids.
    pub fn request_sales(&mut self, d: usize, count: usize) -> Vec<u64> {
        let ids = (0..count).map(|_| self.enqueue_sale(d)).collect();
        self.pump_writer(d);
        ids
    }

    /// The writer takes the next group of queued sales if it is idle.
    fn pump_writer(&mut self, d: usize) {
        while self.devices[d].up
            && self.devices[d].local_write.is_none()
            && !self.devices[d].queue.is_empty()
        {
            let group_max = self.config.writer_group_max;
            let device = &mut self.devices[d];
            let take = device.queue.len().min(group_max);
            let group: Vec<SaleInput> = device.queue.drain(..take).collect();
            let local_ms = device.local_ms(self.now_ms);
            let Some(writer) = device.writer.as_ref() else {
                return;
            };
            let prepared = writer.prepare(&group, local_ms);
            let latency = self.rng.between(1, self.config.disk_latency_max_ms);
            let device = &mut self.devices[d];
            let name = device.name.clone();
            let first = prepared.write.entries.first().map_or(0, |e| e.0);
            let last = prepared.write.last_seq();
            match device
                .disk
                .write(prepared.write.clone(), self.now_ms, latency)
            {
                Ok(disk_id) => {
                    if let Some(writer) = device.writer.as_mut() {
                        writer.commit(&prepared);
                    }
                    device.local_write = Some(LocalWrite {
                        disk_id,
                        assigned: prepared.assigned.clone(),
                    });
                    self.record("write", &[d as u64, first, last], || {
                        format!("{name} writes seq {first}..={last}")
                    });
                    if self.canary == Some(Canary::AckBeforeSync) {
                        for assigned in prepared.assigned {
                            self.ack(d, assigned);
                        }
                    }
                }
                Err(DiskError::Full) => {
                    if self.canary == Some(Canary::ReceiptLeak) {
                        if let Some(writer) = device.writer.as_mut() {
                            writer.leak_receipts(&prepared);
                        }
                    }
                    self.record("write-failed", &[d as u64, first, last], || {
                        format!("{name} disk full: {} sales refused", group.len())
                    });
                    for sale in group {
                        self.history.sales[sale.sale_id as usize].outcome = SaleOutcome::Refused {
                            at_ms: self.now_ms,
                            because: RefusedBecause::DiskFull,
                        };
                    }
                }
            }
        }
    }

    fn ack(&mut self, d: usize, assigned: Assigned) {
        let record = &mut self.history.sales[assigned.sale_id as usize];
        if record.outcome != SaleOutcome::Pending {
            return; // answered early (canary) and now synced
        }
        record.outcome = SaleOutcome::Acked {
            at_ms: self.now_ms,
            seq: assigned.seq,
            receipt_no: assigned.receipt_no,
            hash: assigned.hash,
        };
        let name = self.devices[d].name.clone();
        self.record("ack", &[d as u64, assigned.sale_id, assigned.seq], || {
            format!(
                "{name} acks sale #{} as seq {} receipt {}",
                assigned.sale_id, assigned.seq, assigned.receipt_no
            )
        });
    }

    /// A write of device `d` became durable.
    fn on_durable(&mut self, d: usize, disk_id: u64, op: DiskOp) {
        match op {
            DiskOp::Ledger(write) => self.on_synced(d, disk_id, write),
            DiskOp::Order(_) => self.on_order_durable(d, disk_id),
        }
    }

    /// A journal write of device `d` finished its fsync.
    fn on_synced(&mut self, d: usize, disk_id: u64, write: DiskWrite) {
        let name = self.devices[d].name.clone();
        let last = write.last_seq();
        let local_ms = self.devices[d].local_ms(self.now_ms);
        let is_local = self.devices[d]
            .local_write
            .as_ref()
            .is_some_and(|w| w.disk_id == disk_id);
        if is_local {
            let Some(done) = self.devices[d].local_write.take() else {
                return;
            };
            for (seq, bytes) in &write.entries {
                let hash = entry_hash(bytes);
                let key = (name.clone(), *seq);
                if let Some(old) = self.history.authored.insert(key, hash) {
                    if old != hash {
                        self.history.rewritten.push((name.clone(), *seq));
                    }
                }
            }
            self.record("synced", &[d as u64, last], || {
                format!("{name} synced own seq ..={last}")
            });
            let wait = self.canary == Some(Canary::WaitForPeer) && !self.has_peer(d);
            for assigned in done.assigned {
                if wait {
                    self.devices[d].held_acks.push(assigned);
                } else {
                    self.ack(d, assigned);
                }
            }
            if let Some(r) = self.devices[d].replicator.as_mut() {
                r.handle_local_append(local_ms);
            }
            self.pump_writer(d);
        } else if let Some((author, up_to)) = self.devices[d].stores.remove(&disk_id) {
            self.record("stored", &[d as u64, last], || {
                format!("{name} stored {author} ..={up_to}")
            });
            if let Some(r) = self.devices[d].replicator.as_mut() {
                r.handle_stored(&author, up_to, local_ms);
            }
        }
        self.drain(d);
    }

    fn has_peer(&self, d: usize) -> bool {
        (0..self.devices.len()).any(|o| o != d && self.network.is_connected(d, o))
    }

    fn release_held_acks(&mut self, d: usize) {
        let held = std::mem::take(&mut self.devices[d].held_acks);
        for assigned in held {
            self.ack(d, assigned);
        }
    }

    // ---- replication -------------------------------------------------------------------

    /// Routes device `d`'s transmits to the network and its events to its disk.
    fn drain(&mut self, d: usize) {
        loop {
            let Some(replicator) = self.devices[d].replicator.as_mut() else {
                return;
            };
            if let Some((peer, message)) = replicator.poll_transmit() {
                self.send(d, &peer, Wire::Ledger(message));
                continue;
            }
            let Some(event) = replicator.poll_event() else {
                return;
            };
            match event {
                ReplicationEvent::Store {
                    device_id,
                    entries,
                    head,
                    ..
                } => self.store(d, device_id, entries, head),
                ReplicationEvent::Refused {
                    peer,
                    device_id,
                    reason,
                } => {
                    let name = self.devices[d].name.clone();
                    self.record("refused", &[d as u64], || {
                        format!("{name} refused a batch of {device_id} from {peer}: {reason}")
                    });
                    self.history.refusals.push(RefusalRecord {
                        at_ms: self.now_ms,
                        device: d,
                        peer: peer.0,
                        author: device_id,
                        reason,
                        tampered: self.delivering_tampered,
                    });
                }
            }
        }
    }

    fn store(
        &mut self,
        d: usize,
        author: String,
        entries: Vec<(u64, Vec<u8>)>,
        head: posmesh_proto::journal::v1::ChainHeadSignature,
    ) {
        for (seq, bytes) in &entries {
            let written = self.history.authored.get(&(author.clone(), *seq));
            if written != Some(&entry_hash(bytes)) {
                self.history.foreign_stores.push(ForeignEntry {
                    at_ms: self.now_ms,
                    device: d,
                    author: author.clone(),
                    seq: *seq,
                });
            }
        }
        let write = DiskWrite {
            device_id: author.clone(),
            entries,
            head,
        };
        let last = write.last_seq();
        let latency = self.rng.between(1, self.config.disk_latency_max_ms);
        let name = self.devices[d].name.clone();
        match self.devices[d].disk.write(write, self.now_ms, latency) {
            Ok(disk_id) => {
                self.record("store", &[d as u64, last], || {
                    format!("{name} stores {author} ..={last}")
                });
                self.devices[d].stores.insert(disk_id, (author, last));
            }
            Err(DiskError::Full) => {
                self.record("store-failed", &[d as u64, last], || {
                    format!("{name} disk full: store of {author} ..={last} failed")
                });
                if self.canary != Some(Canary::ForgetStoreFailed) {
                    if let Some(r) = self.devices[d].replicator.as_mut() {
                        r.handle_store_failed(&author);
                    }
                }
            }
        }
    }

    pub(super) fn send(&mut self, from: usize, peer: &PeerId, mut message: Wire) {
        let Some(to) = self.index_of(&peer.0) else {
            return; // a peer outside the store (a test's forger): nobody listens
        };
        assert!(
            self.network.is_connected(from, to),
            "replicator or order book of {} transmits to {} which is not connected",
            self.devices[from].name,
            peer
        );
        let (code, what, a, b) = describe(&message);
        let names = (self.devices[from].name.clone(), peer.0.clone());
        if self.message_faults && self.rng.chance(self.config.drop_per_mille) {
            self.faults.add("message-loss");
            self.record("drop", &[from as u64, to as u64, code, a, b], || {
                format!("{} -> {} lost: {what} {a}..{b}", names.0, names.1)
            });
            return;
        }
        let mut tampered = None;
        if let Some(kind) = self.network.tampering(from, to) {
            if let Wire::Ledger(SyncMessage {
                kind: Some(Kind::EntryBatch(batch)),
            }) = &mut message
            {
                // The forger signs with the key of another device of the store than the
                // batch's author (a stolen key of the author would be a valid signature).
                let n = self.devices.len();
                let forger = (1..n)
                    .map(|k| (from + k) % n)
                    .find(|&f| self.devices[f].name != batch.device_id)
                    .unwrap_or(from);
                if tamper(batch, kind, &self.devices[forger].key) {
                    tampered = Some(kind);
                    self.faults.add("tamper");
                }
            }
        }
        let copies = if self.message_faults && self.rng.chance(self.config.duplicate_per_mille) {
            self.faults.add("message-duplicate");
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut latency = self.rng.between(1, self.config.latency_max_ms);
            if self.message_faults && self.rng.chance(self.config.delay_per_mille) {
                self.faults.add("message-delay");
                latency += self.rng.between(1, self.config.delay_spike_max_ms);
            }
            let deliver_ms = self.now_ms + latency;
            let id = self
                .network
                .send(from, to, deliver_ms, message.clone(), tampered);
            self.record("send", &[from as u64, to as u64, code, a, b, id], || {
                format!(
                    "{} -> {} #{id} {what} {a}..{b} in {latency} ms{}",
                    names.0,
                    names.1,
                    if tampered.is_some() { " TAMPERED" } else { "" }
                )
            });
        }
    }

    fn deliver(&mut self, envelope: Envelope, reordered: bool) {
        let Envelope {
            id,
            from,
            to,
            message,
            tampered,
            ..
        } = envelope;
        if reordered {
            self.faults.add("message-reorder");
        }
        if tampered.is_some() {
            self.history.tampered_delivered += 1;
        }
        let (to_name, from_name) = (
            self.devices[to].name.clone(),
            self.devices[from].name.clone(),
        );
        self.record("deliver", &[from as u64, to as u64, id], || {
            format!("{from_name} -> {to_name} #{id} delivered")
        });
        let message = match message {
            Wire::Ledger(message) => message,
            Wire::Order(message) => {
                if let Some(book) = self.devices[to].orders.as_mut() {
                    // A refusal comes back as an event too; drain_orders records it.
                    let _ = book.handle_message(&PeerId(from_name), &message);
                }
                self.drain_orders(to);
                return;
            }
        };
        let device = &mut self.devices[to];
        let local_ms = device.local_ms(self.now_ms);
        let ledger = device.disk.durable();
        if let Some(r) = device.replicator.as_mut() {
            r.handle_message(&PeerId(from_name), message, local_ms, ledger, ledger);
        }
        self.delivering_tampered = tampered.is_some();
        self.drain(to);
        self.delivering_tampered = false;
    }

    /// Hands `message` from a peer called `from_peer` (which the receiver must have been told
    /// is connected, e.g. a forger in a test) straight to device `d`.
    pub fn inject(&mut self, d: usize, from_peer: &str, message: SyncMessage, tampered: bool) {
        let device = &mut self.devices[d];
        let local_ms = device.local_ms(self.now_ms);
        let ledger = device.disk.durable();
        if let Some(r) = device.replicator.as_mut() {
            r.handle_message(&PeerId::from(from_peer), message, local_ms, ledger, ledger);
        }
        self.delivering_tampered = tampered;
        self.drain(d);
        self.delivering_tampered = false;
    }

    // ---- links, crashes, disks ------------------------------------------------------------

    fn connect(&mut self, a: usize, b: usize) {
        if !(self.devices[a].up && self.devices[b].up && self.mended.contains(&pair(a, b))) {
            return;
        }
        if !self.network.connect(a, b) {
            return;
        }
        let (na, nb) = (self.devices[a].name.clone(), self.devices[b].name.clone());
        self.record("connect", &[a as u64, b as u64], || {
            format!("{na} <-> {nb}")
        });
        for (x, y) in [(a, b), (b, a)] {
            let peer = PeerId(self.devices[y].name.clone());
            let local_ms = self.devices[x].local_ms(self.now_ms);
            if let Some(r) = self.devices[x].replicator.as_mut() {
                r.handle_connected(peer.clone(), local_ms);
            }
            if let Some(book) = self.devices[x].orders.as_mut() {
                book.handle_connected(peer, local_ms);
            }
        }
        for x in [a, b] {
            self.release_held_acks(x);
            self.drain(x);
            self.drain_orders(x);
        }
    }

    fn disconnect(&mut self, a: usize, b: usize) {
        if !self.network.disconnect(a, b) {
            return;
        }
        let (na, nb) = (self.devices[a].name.clone(), self.devices[b].name.clone());
        self.record("disconnect", &[a as u64, b as u64], || {
            format!("{na} -/- {nb}")
        });
        for (x, y) in [(a, b), (b, a)] {
            let peer = PeerId(self.devices[y].name.clone());
            if let Some(r) = self.devices[x].replicator.as_mut() {
                r.handle_disconnected(&peer);
            }
            if let Some(book) = self.devices[x].orders.as_mut() {
                book.handle_disconnected(&peer);
            }
        }
        for x in [a, b] {
            self.drain(x);
            self.drain_orders(x);
        }
    }

    /// Partitions `a` from `b` until [`mend`](Self::mend).
    pub fn cut(&mut self, a: usize, b: usize) {
        if self.mended.remove(&pair(a, b)) {
            self.faults.add("partition");
        }
        self.disconnect(a, b);
    }

    /// Ends the partition of `a` and `b`.
    pub fn mend(&mut self, a: usize, b: usize) {
        self.mended.insert(pair(a, b));
        self.connect(a, b);
    }

    /// Boots device `d` from its disk: a new writer and a new replicator.
    fn boot(&mut self, d: usize) {
        let config = self.config.replicator.clone();
        let device = &mut self.devices[d];
        device.up = true;
        device.writer = Some(JournalWriter::resume(
            &device.name,
            device.key.clone(),
            device.disk.durable(),
        ));
        let mut replicator = match Replicator::new(&device.name, config) {
            Ok(r) => r,
            Err(e) => panic!("simulator config refused: {e}"),
        };
        if self.canary == Some(Canary::SkipLinkCheck) {
            replicator.plant_canary(posmesh_sync::replication::Canary::SkipLinkCheck);
        }
        device.replicator = Some(replicator);
        self.boot_orders(d);
        for other in 0..self.devices.len() {
            if other != d {
                self.connect(d, other);
            }
        }
    }

    /// Device `d` loses power: unsynced writes are lost, its links drop, sales in progress
    /// are interrupted (never answered).
    pub fn crash(&mut self, d: usize) {
        if !self.devices[d].up {
            return;
        }
        self.faults.add("crash");
        for other in 0..self.devices.len() {
            if other != d {
                self.disconnect(d, other);
            }
        }
        let device = &mut self.devices[d];
        device.up = false;
        let lost = device.disk.crash();
        if let Some(r) = device.replicator.take() {
            add_stats(&mut device.past_stats, r.stats());
        }
        device.writer = None;
        device.stores.clear();
        let mut interrupted: Vec<u64> = device.queue.drain(..).map(|s| s.sale_id).collect();
        if let Some(write) = device.local_write.take() {
            interrupted.extend(write.assigned.iter().map(|a| a.sale_id));
        }
        interrupted.extend(device.held_acks.drain(..).map(|a| a.sale_id));
        let name = device.name.clone();
        self.crash_orders(d);
        for sale_id in interrupted {
            let record = &mut self.history.sales[sale_id as usize];
            if record.outcome == SaleOutcome::Pending {
                record.outcome = SaleOutcome::Interrupted { at_ms: self.now_ms };
            }
        }
        self.record("crash", &[d as u64, lost as u64], || {
            format!("{name} crashes, {lost} unsynced writes lost")
        });
    }

    /// Device `d` boots again from its disk, with a freshly drawn clock skew.
    pub fn restart(&mut self, d: usize) {
        if self.devices[d].up {
            return;
        }
        self.faults.add("restart");
        let skew = draw_skew(&mut self.rng, self.config.skew_max_ms, &mut self.faults);
        self.devices[d].skew_ms = skew;
        let name = self.devices[d].name.clone();
        self.record("restart", &[d as u64], || {
            format!("{name} restarts, clock skew {skew} ms")
        });
        self.boot(d);
    }

    /// Fills or frees device `d`'s disk.
    pub fn set_disk_full(&mut self, d: usize, full: bool) {
        if full && !self.devices[d].disk.is_full() {
            self.faults.add("disk-full");
        }
        self.devices[d].disk.set_full(full);
        let name = self.devices[d].name.clone();
        self.record("disk", &[d as u64, u64::from(full)], || {
            format!("{name} disk {}", if full { "full" } else { "freed" })
        });
    }

    /// Carries out a scheduled action.
    pub fn apply(&mut self, action: Action) {
        match action {
            Action::Sale(d) => {
                self.request_sale(d);
            }
            Action::Cut(a, b) => self.cut(a, b),
            Action::Mend(a, b) => self.mend(a, b),
            Action::Clog(from, to) => {
                if self.network.clog(from, to) {
                    self.faults.add("clog");
                    self.record("clog", &[from as u64, to as u64], || {
                        format!("clog {from} -> {to}")
                    });
                }
            }
            Action::Unclog(from, to) => {
                if self.network.unclog(from, to) {
                    self.record("unclog", &[from as u64, to as u64], || {
                        format!("unclog {from} -> {to}")
                    });
                }
            }
            Action::Crash(d) => self.crash(d),
            Action::Restart(d) => self.restart(d),
            Action::DiskFull(d) => self.set_disk_full(d, true),
            Action::DiskFreed(d) => self.set_disk_full(d, false),
            Action::TamperStart(from, to, kind) => {
                self.faults.add("byzantine-link");
                self.network.set_tampering(from, to, Some(kind));
                self.record("tamper-on", &[from as u64, to as u64], || {
                    format!("link {from} -> {to} tampers: {kind:?}")
                });
            }
            Action::TamperStop(from, to) => {
                self.network.set_tampering(from, to, None);
                self.record("tamper-off", &[from as u64, to as u64], || {
                    format!("link {from} -> {to} honest")
                });
            }
            Action::OrderCreate(d, k) => self.create_order(d, k),
            Action::OrderEdit { device, pick } => self.edit_order(device, pick),
            Action::CloudDown => {
                if self.cloud.reachable {
                    self.faults.add("cloud-outage");
                }
                self.cloud.reachable = false;
                self.record("cloud", &[0], || "the store loses its internet".into());
            }
            Action::CloudUp => {
                self.cloud.reachable = true;
                self.record("cloud", &[1], || "the store's internet is back".into());
            }
        }
    }

    /// The heal that starts the liveness phase: no more scheduled actions, every partition
    /// mended, links unclogged and honest, disks freed, crashed devices restarted, and no
    /// more message loss, duplication or delay spikes (latency still reorders).
    pub fn heal(&mut self) {
        self.agenda.clear();
        self.message_faults = false;
        self.network.unclog_all();
        self.network.stop_tampering();
        self.history.healed_at_ms = self.now_ms;
        self.cloud.reachable = true;
        self.record("heal", &[], || "every fault healed".into());
        for d in 0..self.devices.len() {
            self.devices[d].disk.set_full(false);
            self.restart(d);
        }
        let n = self.devices.len();
        for a in 0..n {
            for b in a + 1..n {
                self.mend(a, b);
            }
        }
    }

    // ---- the clock -------------------------------------------------------------------

    /// The earliest virtual time anything is due.
    pub fn next_due_ms(&self) -> Option<u64> {
        let agenda = self.agenda.keys().next().map(|(t, _)| *t);
        let agenda = match (agenda, self.cloud_next_ms) {
            (Some(a), Some(c)) => Some(a.min(c)),
            (a, c) => a.or(c),
        };
        let network = self.network.next_due_ms();
        let disks = self.devices.iter().filter_map(|d| d.disk.next_synced_ms());
        let timers = self.devices.iter().filter_map(|d| {
            let due = d.replicator.as_ref()?.poll_timeout()?;
            Some(d.virtual_ms(due))
        });
        let order_timers = self.devices.iter().filter_map(|d| {
            let due = d.orders.as_ref()?.poll_timeout()?;
            Some(d.virtual_ms(due))
        });
        agenda
            .into_iter()
            .chain(network)
            .chain(disks)
            .chain(timers)
            .chain(order_timers)
            .min()
    }

    /// Runs everything due at the current virtual time.
    fn step(&mut self) {
        let now_ms = self.now_ms;
        if self.last_step_ms == Some(now_ms) {
            self.steps_at_same_ms += 1;
            assert!(
                self.steps_at_same_ms < RUNS_AT_SAME_MS_MAX,
                "livelock: virtual time stuck at {now_ms} ms"
            );
        } else {
            self.last_step_ms = Some(now_ms);
            self.steps_at_same_ms = 0;
        }
        while let Some(entry) = self.agenda.first_entry() {
            if entry.key().0 > now_ms {
                break;
            }
            let action = entry.remove();
            self.apply(action);
        }
        while let Some((envelope, reordered)) = self.network.pop_due(now_ms) {
            self.deliver(envelope, reordered);
        }
        if self.cloud_next_ms.is_some_and(|due| due <= now_ms) {
            self.cloud_round();
            self.cloud_next_ms = Some(now_ms + self.config.cloud_round_ms.max(1));
        }
        for d in 0..self.devices.len() {
            while let Some((disk_id, op)) = self.devices[d].disk.complete_due(now_ms) {
                self.on_durable(d, disk_id, op);
            }
            let device = &mut self.devices[d];
            let local_ms = device.local_ms(now_ms);
            let ledger = device.disk.durable();
            if let Some(r) = device.replicator.as_mut() {
                if r.poll_timeout().is_some_and(|due| due <= local_ms) {
                    r.handle_timeout(local_ms, ledger);
                    self.drain(d);
                }
            }
            let device = &mut self.devices[d];
            if let Some(book) = device.orders.as_mut() {
                if book.poll_timeout().is_some_and(|due| due <= local_ms) {
                    book.handle_timeout(local_ms);
                    self.drain_orders(d);
                }
            }
        }
    }

    /// Runs everything due up to `until_ms`; the clock ends there.
    pub fn run_until(&mut self, until_ms: u64) {
        while let Some(due_ms) = self.next_due_ms() {
            if due_ms > until_ms {
                break;
            }
            self.now_ms = self.now_ms.max(due_ms);
            self.step();
        }
        self.now_ms = self.now_ms.max(until_ms);
    }

    /// Runs until every device holds every entry of every device and the same orders
    /// (checked after each step) or `deadline_ms`. Returns when convergence first held.
    pub fn run_until_converged(&mut self, deadline_ms: u64) -> Option<u64> {
        loop {
            if self.converged() && self.orders_converged() {
                return Some(self.now_ms);
            }
            let due_ms = self.next_due_ms()?;
            if due_ms > deadline_ms {
                self.now_ms = deadline_ms;
                return None;
            }
            self.now_ms = self.now_ms.max(due_ms);
            self.step();
        }
    }

    /// Runs until the cloud holds every entry every author durably wrote (checked after
    /// each step) or `deadline_ms`. Returns when that first held.
    pub fn run_until_cloud_converged(&mut self, deadline_ms: u64) -> Option<u64> {
        loop {
            if self.cloud_converged() {
                return Some(self.now_ms);
            }
            let due_ms = self.next_due_ms()?;
            if due_ms > deadline_ms {
                self.now_ms = deadline_ms;
                return None;
            }
            self.now_ms = self.now_ms.max(due_ms);
            self.step();
        }
    }

    /// Whether the cloud holds exactly what every author durably wrote.
    pub fn cloud_converged(&self) -> bool {
        let cloud = self.cloud.version_vector();
        self.authored()
            .iter()
            .all(|(author, &seq)| cloud.get(author) == seq)
    }

    /// One upload round: every device that is up and reaches the cloud uploads what the
    /// cloud lacks of every device's journal it holds, in batches cut at signed heads.
    /// Under per-message faults an upload may be lost (the round for that range ends), its
    /// acknowledgement may be lost (the device sends the same batch again) or it may
    /// arrive twice.
    fn cloud_round(&mut self) {
        const BATCHES_PER_DEVICE_ROUND_MAX: usize = 64;
        let limits = UploadLimits {
            batch_entries_max: self.config.replicator.batch_entries_max,
            batch_bytes_max: self.config.replicator.batch_bytes_max,
        };
        let mut lines = Vec::new();
        for d in 0..self.devices.len() {
            if !self.devices[d].up {
                continue;
            }
            if !self.cloud.reachable {
                self.cloud.unreachable_uploads += 1;
                continue;
            }
            let ledger = self.devices[d].disk.durable();
            let cloud_vector = self.cloud.version_vector();
            let mut batches = 0;
            for (author, after, upto) in ledger.version_vector().missing_from(&cloud_vector) {
                let mut cloud_seq = after;
                while cloud_seq < upto && batches < BATCHES_PER_DEVICE_ROUND_MAX {
                    let Some(batch) = upload_batch(ledger, &author, cloud_seq, limits) else {
                        break;
                    };
                    batches += 1;
                    if self.message_faults && self.rng.chance(self.config.drop_per_mille) {
                        break; // the upload is lost: the next round starts from the cloud's vector
                    }
                    let twice =
                        self.message_faults && self.rng.chance(self.config.duplicate_per_mille);
                    let held = match self.cloud.ingest(batch.clone(), ledger) {
                        Ok(held) => held,
                        Err(_) => break,
                    };
                    if twice {
                        let _ = self.cloud.ingest(batch, ledger);
                    }
                    lines.push((d, author.clone(), cloud_seq, held));
                    if self.message_faults && self.rng.chance(self.config.drop_per_mille) {
                        continue; // the ack is lost: the same batch goes again
                    }
                    cloud_seq = held;
                }
            }
        }
        for (d, author, from, held) in lines {
            let name = self.devices[d].name.clone();
            self.record("upload", &[d as u64, from, held], || {
                format!("{name} uploads {author} after {from}: the cloud holds ..={held}")
            });
        }
    }

    /// What the authors durably hold of their own journals: device id → last seq.
    pub fn authored(&self) -> BTreeMap<&str, u64> {
        self.devices
            .iter()
            .map(|d| (d.name.as_str(), d.disk.durable().held(&d.name)))
            .collect()
    }

    /// Whether every device is up, idle, and holds exactly what every author wrote.
    pub fn converged(&self) -> bool {
        let authored = self.authored();
        self.devices.iter().all(|d| {
            d.up && d.queue.is_empty()
                && d.local_write.is_none()
                && authored
                    .iter()
                    .all(|(author, &seq)| d.disk.durable().held(author) == seq)
        })
    }

    /// Replicator counters summed over every device and incarnation.
    pub fn stats_total(&self) -> ReplicatorStats {
        let mut total = ReplicatorStats::default();
        for d in &self.devices {
            add_stats(&mut total, &d.stats());
        }
        total
    }

    /// Order sync counters summed over every device and session.
    pub fn order_stats_total(&self) -> OrderSyncStats {
        let mut total = OrderSyncStats::default();
        for d in &self.devices {
            add_order_stats(&mut total, &d.order_stats());
        }
        total
    }
}

/// A clock skew in `-max ..= max` ms; counts a `clock-skew` fault when it is not zero.
fn draw_skew(rng: &mut SimRng, max: u64, faults: &mut FaultCounts) -> i64 {
    let span = rng.below(2 * max + 1);
    let skew = i64::try_from(span).unwrap_or(0) - i64::try_from(max).unwrap_or(0);
    if skew != 0 {
        faults.add("clock-skew");
    }
    skew
}
