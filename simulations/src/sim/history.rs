//! [`History`]: what the checkers need to know about a run besides the final disks — every
//! sale request and its answer, the entries each device durably authored, refusals, and
//! tampered batches that got through.

use posmesh_sync::chain::ChainHash;
use posmesh_sync::orders::{OrderEdit, OrderView};
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

/// What a POS app asked of an order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrderOp {
    /// Open the order.
    Create,
    /// Edit it.
    Edit(OrderEdit),
}

/// What became of an order request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrderOutcome {
    /// Not answered (yet).
    Pending,
    /// Acknowledged at `at_ms` (its chunk synced).
    Acked {
        /// When, ms.
        at_ms: u64,
    },
    /// Refused at `at_ms` (device down, disk full, or the core refused the edit).
    Refused {
        /// When, ms.
        at_ms: u64,
        /// Why.
        because: String,
    },
    /// The device crashed before answering.
    Interrupted {
        /// When, ms.
        at_ms: u64,
    },
}

/// One order request.
#[derive(Clone, Debug)]
pub struct OrderRecord {
    /// Device asked (index).
    pub device: usize,
    /// The order.
    pub order_id: String,
    /// What was asked.
    pub op: OrderOp,
    /// When, ms.
    pub requested_ms: u64,
    /// Whether the device's book applied it in memory (its changes may spread even when it
    /// is not acknowledged).
    pub applied: bool,
    /// What became of it.
    pub outcome: OrderOutcome,
}

/// A device's orders at the end of the run.
#[derive(Clone, Debug, Default)]
pub struct OrdersSnapshot {
    /// `OrderBook::digest()` of the running book (`None` when the device is down).
    pub digest: Option<[u8; 32]>,
    /// Every order held and its view (`Err` when it does not read).
    pub views: BTreeMap<String, Result<Option<OrderView>, String>>,
    /// The orders as reloaded from the device's durable chunks (`None` while writes are
    /// still pending, so the disk may lag memory).
    pub reloaded: Option<BTreeMap<String, Result<Option<OrderView>, String>>>,
}

/// An order message a book refused, or stored chunks that did not load.
#[derive(Clone, Debug)]
pub struct OrderFailure {
    /// When, ms.
    pub at_ms: u64,
    /// The device (index).
    pub device: usize,
    /// The order.
    pub order_id: String,
    /// What happened.
    pub what: String,
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
    /// Every order request, by id (its index).
    pub orders: Vec<OrderRecord>,
    /// Order messages refused and stored orders that did not load.
    pub order_failures: Vec<OrderFailure>,
    /// Each device's orders at the end of the run (taken before the checkers run).
    pub orders_final: Vec<OrdersSnapshot>,
    /// Lines added so far (line ids are `{device}-l{n}`, unique in the run).
    pub lines_added: u64,
    /// When the cloud first held every entry of every device after the heal, ms (`None`
    /// when the run has no cloud or it missed the deadline).
    pub cloud_converged_at_ms: Option<u64>,
}
