//! [`SimDisk`]: a device's disk. A write is buffered (in the page cache) until its fsync
//! completes after a seeded latency; only then is it durable and visible through the
//! [`Ledger`] (journal writes) or [`SimDisk::order_chunks`] (order chunks). Writes become
//! durable in the order they were issued (one writer, one WAL). A crash drops every write
//! not yet durable. A full disk fails writes at once with an error.
//!
//! Order chunks of merged peer changes are written *unsynced* (as the node does): nobody
//! waits for them, and they become durable after a seeded write-back delay or as soon as a
//! later synced write's fsync completes (the fsync covers the WAL before it), whichever
//! comes first — so a crash can lose them, but never a prefix-violating subset.

use super::ledger::Ledger;
use posmesh_proto::journal::v1::ChainHeadSignature;
use std::collections::{BTreeMap, VecDeque};

/// One atomic write: a run of one device's entries and the signed head at its last entry
/// (the node's synced RocksDB `WriteBatch`).
#[derive(Clone, Debug)]
pub struct DiskWrite {
    /// Whose journal the entries extend.
    pub device_id: String,
    /// `(seq, stored bytes)`, ascending and gap-free.
    pub entries: Vec<(u64, Vec<u8>)>,
    /// The signed head at the last entry.
    pub head: ChainHeadSignature,
}

impl DiskWrite {
    /// Seq of the last entry.
    pub fn last_seq(&self) -> u64 {
        self.entries.last().map_or(0, |(seq, _)| *seq)
    }
}

/// Why a write failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskError {
    /// No space left on the device (ENOSPC): nothing of the write is kept.
    Full,
}

/// One write of an order's stored chunks (the node's `put_order_chunk` / `compact_order`).
#[derive(Clone, Debug)]
pub struct OrderWrite {
    /// The order.
    pub order_id: String,
    /// The bytes: a `save_incremental` chunk, or a whole `save` when `replace`.
    pub bytes: Vec<u8>,
    /// The write replaces every stored chunk of the order (compaction).
    pub replace: bool,
}

/// What a write carries.
#[derive(Clone, Debug)]
pub enum DiskOp {
    /// Journal entries and their signed head.
    Ledger(DiskWrite),
    /// An order chunk.
    Order(OrderWrite),
}

#[derive(Clone, Debug)]
struct Pending {
    id: u64,
    /// When the write is durable on its own (its fsync, or its write-back when unsynced).
    synced_ms: u64,
    /// Whether the write was issued with an fsync.
    sync: bool,
    op: DiskOp,
}

/// A simulated disk: the durable ledger and order chunks, plus writes waiting to be durable.
#[derive(Clone, Debug)]
pub struct SimDisk {
    durable: Ledger,
    orders: BTreeMap<String, Vec<Vec<u8>>>,
    pending: VecDeque<Pending>,
    full: bool,
    next_id: u64,
}

impl SimDisk {
    /// An empty disk over `durable` (which carries the key directory).
    pub fn new(durable: Ledger) -> Self {
        Self {
            durable,
            orders: BTreeMap::new(),
            pending: VecDeque::new(),
            full: false,
            next_id: 1,
        }
    }

    /// What survives a crash, and all that readers see.
    pub fn durable(&self) -> &Ledger {
        &self.durable
    }

    /// The durable chunks of every order, in write order (what a restart loads).
    pub fn order_chunks(&self) -> &BTreeMap<String, Vec<Vec<u8>>> {
        &self.orders
    }

    /// Issues `write` at `now_ms` with an fsync; its fsync takes `latency_ms` after the
    /// synced writes before it. Returns the write's id.
    ///
    /// # Errors
    /// [`DiskError::Full`] when the disk is full: nothing is written.
    pub fn write(
        &mut self,
        write: DiskWrite,
        now_ms: u64,
        latency_ms: u64,
    ) -> Result<u64, DiskError> {
        self.issue(DiskOp::Ledger(write), true, now_ms, latency_ms)
    }

    /// Issues an order chunk at `now_ms`: with an fsync taking `latency_ms` when `sync`,
    /// otherwise durable after a write-back of `latency_ms` (or a later fsync). Returns the
    /// write's id.
    ///
    /// # Errors
    /// [`DiskError::Full`] when the disk is full: nothing is written.
    pub fn write_order(
        &mut self,
        write: OrderWrite,
        sync: bool,
        now_ms: u64,
        latency_ms: u64,
    ) -> Result<u64, DiskError> {
        self.issue(DiskOp::Order(write), sync, now_ms, latency_ms)
    }

    fn issue(
        &mut self,
        op: DiskOp,
        sync: bool,
        now_ms: u64,
        latency_ms: u64,
    ) -> Result<u64, DiskError> {
        if self.full {
            return Err(DiskError::Full);
        }
        // An fsync waits for the fsyncs before it; a write-back never becomes durable before
        // a write issued earlier (one WAL), so durability stays in issue order.
        let after = if sync {
            self.pending
                .iter()
                .rev()
                .find(|p| p.sync)
                .map_or(now_ms, |p| p.synced_ms.max(now_ms))
        } else {
            self.pending
                .back()
                .map_or(now_ms, |p| p.synced_ms.max(now_ms))
        };
        let id = self.next_id;
        self.next_id += 1;
        self.pending.push_back(Pending {
            id,
            synced_ms: after + latency_ms,
            sync,
            op,
        });
        Ok(id)
    }

    /// When the oldest pending write is durable, ms: its own time, or the fsync of a later
    /// synced write if that comes first.
    pub fn next_synced_ms(&self) -> Option<u64> {
        let front = self.pending.front()?;
        let covered = self
            .pending
            .iter()
            .filter(|p| p.sync)
            .map(|p| p.synced_ms)
            .next();
        Some(covered.map_or(front.synced_ms, |c| c.min(front.synced_ms)))
    }

    /// Completes the oldest pending write if it is durable by `now_ms`. Returns its id and
    /// what it wrote.
    pub fn complete_due(&mut self, now_ms: u64) -> Option<(u64, DiskOp)> {
        if self.next_synced_ms()? > now_ms {
            return None;
        }
        let done = self.pending.pop_front()?;
        match &done.op {
            DiskOp::Ledger(write) => {
                self.durable
                    .append(&write.device_id, &write.entries, &write.head);
            }
            DiskOp::Order(write) => {
                let chunks = self.orders.entry(write.order_id.clone()).or_default();
                if write.replace {
                    chunks.clear();
                }
                chunks.push(write.bytes.clone());
            }
        }
        Some((done.id, done.op))
    }

    /// Writes not yet durable.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Power loss: every write not yet synced is gone. Returns how many were lost.
    pub fn crash(&mut self) -> usize {
        let lost = self.pending.len();
        self.pending.clear();
        lost
    }

    /// Fills the disk (writes fail) or frees it.
    pub fn set_full(&mut self, full: bool) {
        self.full = full;
    }

    /// Whether writes currently fail.
    pub fn is_full(&self) -> bool {
        self.full
    }
}
