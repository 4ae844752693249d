//! A byzantine link: alters entry batches in flight (see [`TamperKind`]). The receiver must
//! refuse every altered batch it verifies and store nothing of it (DESIGN guarantees 3 and 8;
//! checked by `checkers::tamper_refusal`).

use super::keys::sign_head;
use super::network::TamperKind;
use ed25519_dalek::SigningKey;
use posmesh_proto::journal::v1::JournalEntry;
use posmesh_proto::sync::v1::EntryBatch;
use posmesh_sync::chain::entry_hash;
use prost::Message as _;

fn alter(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut entry = JournalEntry::decode(bytes).ok()?;
    entry.operator_id = "mallory".into();
    entry.receipt_no = entry.receipt_no.wrapping_add(1_000);
    Some(entry.encode_to_vec())
}

/// Alters `batch` as `kind` says (a one-entry batch cannot be altered in the middle: its
/// last entry is altered instead). `forger` signs the head for [`TamperKind::ForeignKey`].
/// Returns whether the batch was altered.
pub fn tamper(batch: &mut EntryBatch, kind: TamperKind, forger: &SigningKey) -> bool {
    let count = batch.entries.len();
    if count == 0 {
        return false;
    }
    let index = match kind {
        TamperKind::MiddleEntry if count >= 2 => count - 2,
        _ => count - 1,
    };
    let Some(altered) = alter(&batch.entries[index].bytes) else {
        return false;
    };
    batch.entries[index].bytes = altered;
    if kind == TamperKind::ForeignKey {
        let last = &batch.entries[count - 1];
        let head = sign_head(&batch.device_id, last.seq, entry_hash(&last.bytes), forger);
        batch.head = Some(head);
    }
    true
}
