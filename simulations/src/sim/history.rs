//! [`History`]: what the checkers need to know about a run besides the final disks — every
//! sale request and its answer, the entries each device durably authored, refusals, and
//! tampered batches that got through.

use posmesh_sync::chain::ChainHash;
use posmesh_sync::replication::RefusalReason;
use std::collections::BTreeMap;

/// Why a sale was refused (the POS app got an error; nothing was acknowledged).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusedBecause {
    /// The device's disk is full.
    DiskFull,
    /// The device is down (crashed, not yet restarted): the app cannot reach it.
    DeviceDown,
}

/// What became of a sale request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaleOutcome {
    /// Not answered (yet).
    Pending,
    /// Acknowledged at `at_ms` as journal entry `seq` with `receipt_no`, chain hash `hash`.
    Acked {
        /// When, ms of virtual time.
        at_ms: u64,
        /// Journal seq.
        seq: u64,
        /// Receipt number.
        receipt_no: u64,
        /// Chain hash of the entry as written.
        hash: ChainHash,
    },
    /// Refused at `at_ms`.
    Refused {
        /// When, ms.
        at_ms: u64,
        /// Why.
        because: RefusedBecause,
    },
    /// The device crashed at `at_ms` before answering (the app saw the connection drop).
    Interrupted {
        /// When, ms.
        at_ms: u64,
    },
}

/// One sale request.
#[derive(Clone, Debug)]
pub struct SaleRecord {
    /// Device asked (index).
    pub device: usize,
    /// When, ms of virtual time.
    pub requested_ms: u64,
    /// Writes of the device that must complete before it is answered, its own included
    /// (the write in progress, the groups queued before it, its group).
    pub writes_to_wait: u64,
    /// What became of it.
    pub outcome: SaleOutcome,
}

/// A batch refusal a device reported.
#[derive(Clone, Debug)]
pub struct RefusalRecord {
    /// When, ms.
    pub at_ms: u64,
    /// The refusing device (index).
    pub device: usize,
    /// The peer that sent the batch.
    pub peer: String,
    /// The device the batch claimed to carry.
    pub author: String,
    /// Why.
    pub reason: RefusalReason,
    /// Whether the refused message had been altered by a byzantine link.
    pub tampered: bool,
}

/// An entry a device was asked to store whose bytes are not what the author wrote.
#[derive(Clone, Debug)]
pub struct ForeignEntry {
    /// When the store was asked for, ms.
    pub at_ms: u64,
    /// The storing device (index).
    pub device: usize,
    /// The author device.
    pub author: String,
    /// The seq.
    pub seq: u64,
}

/// The run's history.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// Every sale request, by sale id (its index).
    pub sales: Vec<SaleRecord>,
    /// Every entry made durable by its author: (author, seq) → chain hash.
    pub authored: BTreeMap<(String, u64), ChainHash>,
    /// Authored entries whose seq was written twice with different bytes (author, seq).
    pub rewritten: Vec<(String, u64)>,
    /// Refusals reported by replicators.
    pub refusals: Vec<RefusalRecord>,
    /// Store actions that carried bytes their author never wrote.
    pub foreign_stores: Vec<ForeignEntry>,
    /// Altered batches delivered to a receiver.
    pub tampered_delivered: u64,
    /// When the liveness phase began (faults healed), ms.
    pub healed_at_ms: u64,
    /// When every device first held every entry after the heal, ms.
    pub converged_at_ms: Option<u64>,
}
