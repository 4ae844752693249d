//! [`plan_ingest`]: the cloud's decision for one uploaded batch (pure).

use crate::chain::{ChainHash, GENESIS_PREV_HASH};
use crate::replication::batch_check::{check_shape, verify_suffix};
use crate::replication::{RefusalReason, SigningKeys};
use posmesh_proto::journal::v1::ChainHeadSignature;
use posmesh_proto::sync::v1::{EntryBatch, EntryBytes};
use std::fmt;

/// Verified entries the cloud does not hold yet: store them (all, atomically) and the
/// device's held prefix becomes `1 ..= last_seq`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedUpload {
    /// The device whose journal the entries belong to.
    pub device_id: String,
    /// `(seq, stored bytes)`, gap-free, starting right after what the cloud held.
    pub entries: Vec<(u64, Vec<u8>)>,
    /// The device's signed head at the last entry.
    pub head: ChainHeadSignature,
    /// Chain hash of the last entry (the cloud keeps it to check the next batch).
    pub last_hash: ChainHash,
}

impl VerifiedUpload {
    /// Sequence number of the last entry.
    pub fn last_seq(&self) -> u64 {
        self.entries.last().map_or(0, |(seq, _)| *seq)
    }
}

/// What the cloud does with an uploaded batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IngestPlan {
    /// Every entry of the batch is held already (a duplicate or re-sent upload): store
    /// nothing, answer with what is held.
    Duplicate {
        /// The device's held sequence number.
        held_seq: u64,
    },
    /// Store these entries (the batch minus what is held).
    Append(VerifiedUpload),
}

/// Why an uploaded batch is refused. Nothing of it is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum IngestRefusal {
    /// The batch starts after a gap: the cloud holds `1 ..= held_seq` and the batch starts
    /// at `first_seq > held_seq + 1`. The uploader re-reads the cloud's version vector.
    Gap {
        /// What the cloud holds of the device.
        held_seq: u64,
        /// The batch's first sequence number.
        first_seq: u64,
    },
    /// The batch does not verify (shape, hash chain, head, key or signature).
    Invalid(RefusalReason),
    /// The batch reaches beyond the device's ledger cut (its certificate was revoked or
    /// it was retired, `posmesh_consensus::ledger_cut`): the store keeps its entries up
    /// to `up_to_seq` only.
    BeyondCut {
        /// The last sequence number of the device the store keeps.
        up_to_seq: u64,
        /// The batch's last sequence number.
        last_seq: u64,
    },
}

impl IngestRefusal {
    /// A stable machine-readable code (`gap`, `beyond_cut`, `malformed`, `chain_broken`,
    /// `head_mismatch`, `unknown_device`, `bad_signature`, `invalid`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Gap { .. } => "gap",
            Self::BeyondCut { .. } | Self::Invalid(RefusalReason::BeyondCut { .. }) => "beyond_cut",
            Self::Invalid(RefusalReason::Malformed { .. }) => "malformed",
            Self::Invalid(RefusalReason::ChainBroken(_)) => "chain_broken",
            Self::Invalid(RefusalReason::HeadMismatch { .. }) => "head_mismatch",
            Self::Invalid(RefusalReason::UnknownDevice) => "unknown_device",
            Self::Invalid(RefusalReason::BadSignature { .. }) => "bad_signature",
            Self::Invalid(_) => "invalid",
        }
    }
}

impl fmt::Display for IngestRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Gap {
                held_seq,
                first_seq,
            } => write!(
                f,
                "batch starts at seq {first_seq} but the cloud holds only up to {held_seq}"
            ),
            Self::Invalid(reason) => write!(f, "{reason}"),
            Self::BeyondCut {
                up_to_seq,
                last_seq,
            } => write!(
                f,
                "{}",
                RefusalReason::BeyondCut {
                    up_to_seq: *up_to_seq,
                    last_seq: *last_seq
                }
            ),
        }
    }
}

/// Decides what to do with `batch` when the cloud holds the device's entries
/// `1 ..= held_seq`, the last of which has chain hash `held_hash` (ignored when `held_seq`
/// is 0: the genesis), and the store cut the device's journal after `cut` (`None`: no
/// cut; see `posmesh_consensus::ledger_cut`). `keys` gives the device's chain-head key
/// (from a verified certificate attestation, never from the batch).
///
/// Checks, in order: the shape (device, entries, consecutive seqs, a head at the last
/// entry); whether anything is new; the cut (a batch whose last entry lies beyond it is
/// refused whole: its signed head is beyond it); a gap; then the hash chain of the new suffix from
/// `held_hash`, the head's chain hash and incarnation, and its Ed25519 signature. Because
/// the last chain hash commits to every entry before it, a batch that passes holds exactly
/// the entries the device wrote after `held_seq`.
///
/// # Errors
/// [`IngestRefusal::Gap`], [`IngestRefusal::BeyondCut`] or [`IngestRefusal::Invalid`];
/// the caller stores nothing.
pub fn plan_ingest(
    batch: EntryBatch,
    held_seq: u64,
    held_hash: ChainHash,
    cut: Option<u64>,
    keys: &impl SigningKeys,
) -> Result<IngestPlan, IngestRefusal> {
    let range = check_shape(&batch).map_err(IngestRefusal::Invalid)?;
    if range.last <= held_seq {
        return Ok(IngestPlan::Duplicate { held_seq });
    }
    if let Some(up_to_seq) = cut.filter(|cut| range.last > *cut) {
        return Err(IngestRefusal::BeyondCut {
            up_to_seq,
            last_seq: range.last,
        });
    }
    if range.first > held_seq + 1 {
        return Err(IngestRefusal::Gap {
            held_seq,
            first_seq: range.first,
        });
    }
    let after_hash = if held_seq == 0 {
        GENESIS_PREV_HASH
    } else {
        held_hash
    };
    let skip = usize::try_from(held_seq + 1 - range.first).unwrap_or(usize::MAX);
    let device_id = batch.device_id.clone();
    let Some(head) = batch.head else {
        unreachable!("check_shape requires a head");
    };
    let entries: Vec<EntryBytes> = batch.entries.into_iter().skip(skip).collect();
    let verified = verify_suffix(&device_id, entries, head, held_seq, after_hash, keys, true)
        .map_err(IngestRefusal::Invalid)?;
    debug_assert_eq!(verified.first_seq(), held_seq + 1);
    Ok(IngestPlan::Append(VerifiedUpload {
        device_id,
        entries: verified.entries,
        head: verified.head,
        last_hash: verified.last_hash,
    }))
}
