//! Verification of a received [`EntryBatch`]: pure functions, no state.
//!
//! A batch is accepted only when (1) it is well formed, (2) every entry links by hash to the
//! one before it, the first to the chain hash the receiver already holds (or the genesis),
//! (3) the head names the last entry's chain hash and incarnation, and (4) the head's
//! Ed25519 signature verifies with the device's key. Because the chain hash of the last
//! entry commits to all entries before it, (2)–(4) together prove that the device wrote
//! exactly these entries, with one signature check per batch.

use super::{RefusalReason, SigningKeys};
use crate::chain::{entry_hash, BreakKind, ChainBreak, ChainHash, ChainVerifier};
use crate::chain_head::ChainHead;
use posmesh_proto::journal::v1::{ChainHeadSignature, JournalEntry};
use posmesh_proto::sync::v1::{EntryBatch, EntryBytes};
use prost::Message as _;

/// The sequence range `first ..= last` of a well-formed batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BatchRange {
    pub first: u64,
    pub last: u64,
}

/// A batch that passed every check, trimmed to the entries not yet held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct VerifiedBatch {
    pub entries: Vec<(u64, Vec<u8>)>,
    pub head: ChainHeadSignature,
    /// Chain hash of the last entry.
    pub last_hash: ChainHash,
}

impl VerifiedBatch {
    pub fn first_seq(&self) -> u64 {
        self.entries[0].0
    }

    pub fn last_seq(&self) -> u64 {
        self.entries[self.entries.len() - 1].0
    }
}

/// Checks what needs no ledger: a device id, at least one entry, seqs ≥ 1 and consecutive,
/// a head for the same device at the last seq.
pub(crate) fn check_shape(batch: &EntryBatch) -> Result<BatchRange, RefusalReason> {
    let malformed = |detail: &str| RefusalReason::Malformed {
        detail: detail.to_owned(),
    };
    if batch.device_id.is_empty() {
        return Err(malformed("batch names no device"));
    }
    let (Some(first), Some(last)) = (batch.entries.first(), batch.entries.last()) else {
        return Err(malformed("batch has no entries"));
    };
    if first.seq == 0 {
        return Err(malformed("entry with seq 0 (seqs start at 1)"));
    }
    for (offset, entry) in (0u64..).zip(&batch.entries) {
        let expected = first.seq.saturating_add(offset);
        if entry.seq != expected {
            return Err(RefusalReason::ChainBroken(ChainBreak {
                device_id: batch.device_id.clone(),
                seq: entry.seq,
                kind: BreakKind::SequenceGap {
                    expected,
                    found: entry.seq,
                },
            }));
        }
    }
    let Some(head) = &batch.head else {
        return Err(malformed("batch has no signed head"));
    };
    if head.device_id != batch.device_id {
        return Err(malformed("head names another device than the batch"));
    }
    if head.seq != last.seq {
        return Err(RefusalReason::HeadMismatch {
            detail: format!(
                "head is at seq {}, the batch ends at {}",
                head.seq, last.seq
            ),
        });
    }
    debug_assert!(last.seq >= first.seq);
    Ok(BatchRange {
        first: first.seq,
        last: last.seq,
    })
}

/// Verifies `entries` (already trimmed: they start at `after_seq + 1`) against the held
/// chain hash `after_hash` of entry `after_seq` (the genesis hash when `after_seq` is 0), and
/// the head against the last entry and the device's key.
///
/// `check_links` is always true except under the planted `SkipLinkCheck` canary (feature
/// `canaries`, simulator only), which skips the `prev_hash` comparison of every entry.
pub(crate) fn verify_suffix(
    device_id: &str,
    entries: Vec<EntryBytes>,
    head: ChainHeadSignature,
    after_seq: u64,
    after_hash: ChainHash,
    keys: &impl SigningKeys,
    check_links: bool,
) -> Result<VerifiedBatch, RefusalReason> {
    assert!(!entries.is_empty(), "verify_suffix needs entries");
    assert_eq!(
        entries[0].seq,
        after_seq + 1,
        "entries start after what is held"
    );
    let mut verifier = ChainVerifier::resume(device_id, after_seq, after_hash);
    let mut last_entry = None;
    for entry in &entries {
        if !check_links {
            // The canary: take each entry as the new head without comparing its prev_hash.
            let decoded = JournalEntry::decode(entry.bytes.as_slice()).map_err(|e| {
                RefusalReason::ChainBroken(ChainBreak {
                    device_id: device_id.to_owned(),
                    seq: entry.seq,
                    kind: BreakKind::Undecodable(e.to_string()),
                })
            })?;
            verifier = ChainVerifier::resume(device_id, entry.seq, entry_hash(&entry.bytes));
            last_entry = Some(decoded);
            continue;
        }
        let decoded = verifier
            .push(entry.seq, &entry.bytes)
            .map_err(RefusalReason::ChainBroken)?;
        last_entry = Some(decoded);
    }
    let Some(last_entry) = last_entry else {
        unreachable!("entries is not empty");
    };
    let (last_seq, last_hash) = verifier.head();
    assert_eq!(
        last_seq, head.seq,
        "check_shape matched the head to the last entry"
    );
    if head.chain_hash.as_slice() != last_hash.as_slice() {
        return Err(RefusalReason::HeadMismatch {
            detail: format!(
                "head names chain hash {}, the last entry's is {}",
                hex::encode(&head.chain_hash),
                hex::encode(last_hash)
            ),
        });
    }
    if head.device_incarnation != last_entry.device_incarnation {
        return Err(RefusalReason::HeadMismatch {
            detail: format!(
                "head names incarnation {}, the entries {}",
                head.device_incarnation, last_entry.device_incarnation
            ),
        });
    }
    let public_key = keys
        .public_key(device_id)
        .ok_or(RefusalReason::UnknownDevice)?;
    let chain_head = ChainHead {
        store_id: last_entry.store_id,
        device_id: device_id.to_owned(),
        device_incarnation: head.device_incarnation,
        seq: head.seq,
        chain_hash: last_hash,
    };
    chain_head
        .verify(&public_key, &head.signature)
        .map_err(|e| RefusalReason::BadSignature {
            detail: e.to_string(),
        })?;
    Ok(VerifiedBatch {
        entries: entries.into_iter().map(|e| (e.seq, e.bytes)).collect(),
        head,
        last_hash,
    })
}
