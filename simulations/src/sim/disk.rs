//! [`SimDisk`]: a device's disk. A write is buffered (in the page cache) until its fsync
//! completes after a seeded latency; only then is it durable and visible through the
//! [`Ledger`]. Writes complete in the order they were issued (one writer, one WAL). A crash
//! drops every write not yet synced. A full disk fails writes at once with an error.

use super::ledger::Ledger;
use posmesh_proto::journal::v1::ChainHeadSignature;
use std::collections::VecDeque;

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

#[derive(Clone, Debug)]
struct Pending {
    id: u64,
    synced_ms: u64,
    write: DiskWrite,
}

/// A simulated disk: the durable ledger plus writes waiting for their fsync.
#[derive(Clone, Debug)]
pub struct SimDisk {
    durable: Ledger,
    pending: VecDeque<Pending>,
    full: bool,
    next_id: u64,
}

impl SimDisk {
    /// An empty disk over `durable` (which carries the key directory).
    pub fn new(durable: Ledger) -> Self {
        Self {
            durable,
            pending: VecDeque::new(),
            full: false,
            next_id: 1,
        }
    }

    /// What survives a crash, and all that readers see.
    pub fn durable(&self) -> &Ledger {
        &self.durable
    }

    /// Issues `write` at `now_ms`; its fsync takes `latency_ms` after the writes before it.
    /// Returns the write's id.
    ///
    /// # Errors
    /// [`DiskError::Full`] when the disk is full: nothing is written.
    pub fn write(
        &mut self,
        write: DiskWrite,
        now_ms: u64,
        latency_ms: u64,
    ) -> Result<u64, DiskError> {
        if self.full {
            return Err(DiskError::Full);
        }
        let after = self
            .pending
            .back()
            .map_or(now_ms, |p| p.synced_ms.max(now_ms));
        let id = self.next_id;
        self.next_id += 1;
        self.pending.push_back(Pending {
            id,
            synced_ms: after + latency_ms,
            write,
        });
        Ok(id)
    }

    /// When the oldest pending write is synced, ms.
    pub fn next_synced_ms(&self) -> Option<u64> {
        self.pending.front().map(|p| p.synced_ms)
    }

    /// Completes the oldest pending write if it is synced by `now_ms`: it becomes durable.
    /// Returns its id and the write.
    pub fn complete_due(&mut self, now_ms: u64) -> Option<(u64, DiskWrite)> {
        if self.pending.front()?.synced_ms > now_ms {
            return None;
        }
        let done = self.pending.pop_front()?;
        self.durable
            .append(&done.write.device_id, &done.write.entries, &done.write.head);
        Some((done.id, done.write))
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
