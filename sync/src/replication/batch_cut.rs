//! Cutting the next batch to send: within the limits, ending at a signed head.

use super::{LedgerRead, ReplicatorConfig};
use posmesh_proto::sync::v1::{EntryBatch, EntryBytes};

/// The next batch of `device_id` after `after_seq`: at most `batch_entries_max` entries and
/// `batch_bytes_max` bytes (at least one entry), never beyond the device's ledger cut
/// ([`LedgerRead::cut`]), cut back to the last signed head within them. `None` when no
/// signed head lies within the limits, or nothing lies before the cut.
pub(crate) fn next_batch(
    config: &ReplicatorConfig,
    ledger: &impl LedgerRead,
    device_id: &str,
    after_seq: u64,
) -> Option<EntryBatch> {
    let limit = match ledger.cut(device_id) {
        Some(cut) => config
            .batch_entries_max
            .min(usize::try_from(cut.saturating_sub(after_seq)).unwrap_or(usize::MAX)),
        None => config.batch_entries_max,
    };
    if limit == 0 {
        return None;
    }
    let mut entries = ledger.entries_after(device_id, after_seq, limit);
    assert!(
        entries.len() <= limit,
        "entries_after returned more than the limit"
    );
    for (offset, (seq, _)) in (1u64..).zip(&entries) {
        assert_eq!(
            *seq,
            after_seq + offset,
            "entries_after is gap-free from after_seq + 1"
        );
    }
    let mut bytes_total = 0usize;
    let within_bytes = entries
        .iter()
        .take_while(|(_, bytes)| {
            bytes_total = bytes_total.saturating_add(bytes.len());
            bytes_total <= config.batch_bytes_max
        })
        .count()
        .max(1);
    entries.truncate(within_bytes);
    let (last_candidate, _) = entries.last()?;
    let head = ledger.head_signature_at_or_before(device_id, *last_candidate)?;
    assert!(
        head.seq <= *last_candidate,
        "head_signature_at_or_before went past seq"
    );
    assert_eq!(head.device_id, device_id, "head of another device");
    if head.seq <= after_seq {
        return None;
    }
    entries.truncate(usize::try_from(head.seq - after_seq).unwrap_or(usize::MAX));
    Some(EntryBatch {
        device_id: device_id.to_owned(),
        entries: entries
            .into_iter()
            .map(|(seq, bytes)| EntryBytes { seq, bytes })
            .collect(),
        head: Some(head),
    })
}
