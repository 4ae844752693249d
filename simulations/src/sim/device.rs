//! [`SimDevice`]: one simulated POS device — its disk, its journal writer (modelled, see
//! [`super::writer`]), its production [`Replicator`], its clock skew, and the sales waiting
//! for the writer. The [`World`](super::world::World) drives it.

use super::disk::SimDisk;
use super::writer::{Assigned, JournalWriter, SaleInput};
use ed25519_dalek::SigningKey;
use posmesh_sync::orders::{OrderBook, OrderSyncStats};
use posmesh_sync::replication::{Replicator, ReplicatorStats};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Virtual time 0 on the devices' wall clocks: 2025-11-30T00:00:00Z, ms since the Unix epoch.
pub const EPOCH_MS: u64 = 1_764_460_800_000;

/// The local write in progress (the writer does one at a time, as the node's writer thread).
#[derive(Clone, Debug)]
pub struct LocalWrite {
    /// The disk's id of the write.
    pub disk_id: u64,
    /// What each sale of the group was assigned.
    pub assigned: Vec<Assigned>,
}

/// One device.
#[derive(Debug)]
pub struct SimDevice {
    /// Device id (`till-1`, …).
    pub name: String,
    /// Its Ed25519 chain-head key (derived from the seed).
    pub key: SigningKey,
    /// Its disk.
    pub disk: SimDisk,
    /// Powered and running.
    pub up: bool,
    /// Its wall clock minus virtual time, ms (drawn at start and at each restart).
    pub skew_ms: i64,
    /// The production replication core (`None` while down).
    pub replicator: Option<Replicator>,
    /// The journal writer (`None` while down).
    pub writer: Option<JournalWriter>,
    /// Sales waiting for the writer.
    pub queue: VecDeque<SaleInput>,
    /// The writer's write in progress.
    pub local_write: Option<LocalWrite>,
    /// Replicated stores in progress: disk id → (author, last seq).
    pub stores: BTreeMap<u64, (String, u64)>,
    /// Canary `wait-for-peer`: written sales whose answer waits for a connected peer.
    pub held_acks: Vec<Assigned>,
    /// Counters of replicators that died in crashes.
    pub past_stats: ReplicatorStats,
    /// The production order book (`None` while down).
    pub orders: Option<OrderBook>,
    /// The order session of the running book (raised durably at every boot; the actor is
    /// `order_actor(name, 1, session)`).
    pub order_session: u64,
    /// Order chunk writes in progress that answer local edits: disk id → edit ids.
    pub order_writes: BTreeMap<u64, Vec<usize>>,
    /// The newest synced local order write in progress: the book's messages wait for it
    /// (the node sends a local edit only after it is on disk).
    pub order_gate: Option<u64>,
    /// Chunks stored per order since its last compaction (as the node counts them).
    pub order_chunk_counts: BTreeMap<String, usize>,
    /// Orders whose last chunk write failed: the next write is a whole `save` (the failed
    /// chunk's changes would otherwise never be stored).
    pub order_resave: BTreeSet<String>,
    /// Counters of order books that died in crashes.
    pub past_order_stats: OrderSyncStats,
}

impl SimDevice {
    /// The device's wall clock at virtual time `now_ms`.
    pub fn local_ms(&self, now_ms: u64) -> u64 {
        let local = i128::from(EPOCH_MS) + i128::from(now_ms) + i128::from(self.skew_ms);
        u64::try_from(local).unwrap_or(0)
    }

    /// The virtual time at which the device's wall clock shows `local_ms`.
    pub fn virtual_ms(&self, local_ms: u64) -> u64 {
        let now = i128::from(local_ms) - i128::from(EPOCH_MS) - i128::from(self.skew_ms);
        u64::try_from(now).unwrap_or(0)
    }

    /// Order sync counters of every book this device ran.
    pub fn order_stats(&self) -> OrderSyncStats {
        let mut total = self.past_order_stats.clone();
        if let Some(book) = &self.orders {
            add_order_stats(&mut total, book.stats());
        }
        total
    }

    /// Counters of every replicator this device ran.
    pub fn stats(&self) -> ReplicatorStats {
        let mut total = self.past_stats.clone();
        if let Some(r) = &self.replicator {
            add_stats(&mut total, r.stats());
        }
        total
    }
}

/// Adds order sync counters `more` into `total`.
pub fn add_order_stats(total: &mut OrderSyncStats, more: &OrderSyncStats) {
    total.messages_sent += more.messages_sent;
    total.bytes_sent += more.bytes_sent;
    total.messages_received += more.messages_received;
    total.messages_refused += more.messages_refused;
}

/// Adds `more` into `total`, field by field.
pub fn add_stats(total: &mut ReplicatorStats, more: &ReplicatorStats) {
    total.vectors_sent += more.vectors_sent;
    total.batches_sent += more.batches_sent;
    total.batches_received += more.batches_received;
    total.batches_duplicate += more.batches_duplicate;
    total.batches_trimmed += more.batches_trimmed;
    total.batches_gap_ignored += more.batches_gap_ignored;
    total.batches_refused += more.batches_refused;
    total.batches_beyond_cut += more.batches_beyond_cut;
    total.batches_parked += more.batches_parked;
    total.batches_park_full += more.batches_park_full;
    total.stores_emitted += more.stores_emitted;
    total.stores_confirmed += more.stores_confirmed;
    total.stores_failed += more.stores_failed;
    total.acks_sent += more.acks_sent;
    total.go_backs += more.go_backs;
    total.batches_stalled_without_head += more.batches_stalled_without_head;
    total.messages_from_unknown_peer += more.messages_from_unknown_peer;
    total.messages_unknown_kind += more.messages_unknown_kind;
}
