//! [`upload_batch`]: the next bounded batch of one device's journal to upload.

use crate::replication::batch_cut::next_batch;
use crate::replication::{LedgerRead, ReplicatorConfig};
use posmesh_proto::sync::v1::EntryBatch;

/// Bounds of one upload batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UploadLimits {
    /// Most entries per batch. Must be at least the journal writer's largest signed batch
    /// (a batch always ends at a signed head).
    pub batch_entries_max: usize,
    /// Most entry bytes per batch (a single larger entry still goes alone).
    pub batch_bytes_max: usize,
}

impl Default for UploadLimits {
    /// 1 024 entries / 1 MiB, as peer-to-peer replication.
    fn default() -> Self {
        let config = ReplicatorConfig::default();
        Self {
            batch_entries_max: config.batch_entries_max,
            batch_bytes_max: config.batch_bytes_max,
        }
    }
}

/// The next batch of `device_id` after `cloud_seq` (what the cloud holds), within `limits`
/// and cut back to the last signed head; `None` when nothing after `cloud_seq` can be cut
/// at a signed head (nothing to send, or the head is not stored yet).
pub fn upload_batch(
    ledger: &impl LedgerRead,
    device_id: &str,
    cloud_seq: u64,
    limits: UploadLimits,
) -> Option<EntryBatch> {
    let config = ReplicatorConfig {
        batch_entries_max: limits.batch_entries_max.max(1),
        batch_bytes_max: limits.batch_bytes_max.max(1),
        ..ReplicatorConfig::default()
    };
    next_batch(&config, ledger, device_id, cloud_seq)
}
