//! What the [`Replicator`](super::Replicator) asks of its driver.

use super::PeerId;
use crate::chain::ChainBreak;
use posmesh_proto::journal::v1::ChainHeadSignature;
use std::fmt;

/// An action for the driver, from [`Replicator::poll_event`](super::Replicator::poll_event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplicationEvent {
    /// Persist a verified batch of another device's journal.
    ///
    /// The driver must write `entries` and `head` **atomically and durably** (one synced
    /// write batch), only then make them visible through [`LedgerRead`](super::LedgerRead),
    /// and then call [`Replicator::handle_stored`](super::Replicator::handle_stored)`(device_id,
    /// last seq)`; or, when the write fails,
    /// [`Replicator::handle_store_failed`](super::Replicator::handle_store_failed). The
    /// entries start right after what the ledger holds of the device, are gap-free, have been
    /// checked link by link from the held chain hash, and `head` (verified with the device's
    /// key) names the last of them. At most one `Store` per device is outstanding.
    Store {
        /// The peer the batch came from (it gets the ack).
        from_peer: PeerId,
        /// The device whose journal the entries extend.
        device_id: String,
        /// `(seq, stored bytes)`, ascending and gap-free; never empty.
        entries: Vec<(u64, Vec<u8>)>,
        /// The device's signed head at the last entry.
        head: ChainHeadSignature,
    },
    /// A peer sent a batch (or message) that was refused; nothing of it is stored. An alert
    /// for the manager: a refused batch is tampered, forged or from a broken peer.
    Refused {
        /// The peer that sent it.
        peer: PeerId,
        /// The device the batch claims to carry ("" for a message about no single device).
        device_id: String,
        /// Why.
        reason: RefusalReason,
    },
}

/// Why a batch from a peer was refused. The whole batch is refused; nothing is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefusalReason {
    /// The message is not well formed: an empty batch, no head, a head naming another
    /// device or another seq than the last entry, seq 0, or a malformed version vector.
    Malformed {
        /// What is wrong.
        detail: String,
    },
    /// The hash chain is broken: an entry does not link to what is held or to the entry
    /// before it in the batch (`PrevHashMismatch`), a seq gap inside the batch
    /// (`SequenceGap`), an entry naming another device (`DeviceMismatch`), bytes that do not
    /// decode, or a changed store / incarnation. See [`crate::chain::BreakKind`].
    ChainBroken(ChainBreak),
    /// The head does not match the last entry: another chain hash or incarnation.
    HeadMismatch {
        /// What differs.
        detail: String,
    },
    /// No verifying key is known for the device (not a member of the store).
    UnknownDevice,
    /// The head signature does not verify with the device's key (forged, or signed with
    /// another key).
    BadSignature {
        /// The verifier's message.
        detail: String,
    },
    /// The batch claims entries of this node's own device beyond what it holds: only the
    /// local journal writer extends the local chain.
    LocalDevice,
    /// The batch reaches beyond the device's ledger cut: its certificate was revoked or
    /// it was retired, and the store keeps its entries only up to `up_to_seq`
    /// ([`LedgerRead::cut`](super::LedgerRead::cut)).
    BeyondCut {
        /// The last sequence number of the device the store keeps.
        up_to_seq: u64,
        /// The batch's last sequence number.
        last_seq: u64,
    },
}

impl fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RefusalReason::Malformed { detail } => write!(f, "malformed: {detail}"),
            RefusalReason::ChainBroken(b) => {
                write!(f, "hash chain broken at seq {}: {}", b.seq, b.kind)
            }
            RefusalReason::HeadMismatch { detail } => {
                write!(f, "head does not match the last entry: {detail}")
            }
            RefusalReason::UnknownDevice => write!(f, "no verifying key for the device"),
            RefusalReason::BadSignature { detail } => {
                write!(f, "head signature does not verify: {detail}")
            }
            RefusalReason::LocalDevice => {
                write!(f, "claims entries of this device that it does not hold")
            }
            RefusalReason::BeyondCut {
                up_to_seq,
                last_seq,
            } => write!(
                f,
                "reaches seq {last_seq}, beyond the device's ledger cut at seq {up_to_seq} (its \
                 certificate was revoked or it was retired: the store keeps its entries up to \
                 the cut only)"
            ),
        }
    }
}
