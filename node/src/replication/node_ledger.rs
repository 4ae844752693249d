//! [`NodeLedger`]: the replicator's view of the node's RocksDB journal.

use crate::storage::JournalStore;
use posmesh_proto::journal::v1::ChainHeadSignature;
use posmesh_sync::chain::ChainHash;
use posmesh_sync::replication::{LedgerRead, VersionVector};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// The ledger cut of a device as the store's Raft state applied here holds it
/// ([`posmesh_consensus::StoreState::ledger_cut`]): the last seq of its journal the store
/// keeps, `None` when it has none.
pub type LedgerCuts = Arc<dyn Fn(&str) -> Option<u64> + Send + Sync>;

/// [`LedgerRead`] over the node's [`JournalStore`].
///
/// The version vector is kept in memory: read from disk once at start, then raised only by
/// the driver after a write is durable — a local group commit (the writer's commit watch)
/// or a replicated batch (before `handle_stored`). So it is durable-only and monotone by
/// construction, and never costs a disk read. Entries, heads and chain hashes are read
/// from RocksDB, which shows only committed (synced) batches.
///
/// A read error cannot be returned through [`LedgerRead`]: it is logged and counted
/// (`posmesh_replication_read_errors_total`) and answered as "not held", which only
/// delays sending (the range is tried again on the next round).
///
/// Ledger cuts ([`LedgerRead::cut`]) come from the store's Raft state once
/// [`NodeLedger::set_cuts`] connected it; until then (and on a device without Raft state)
/// no device is cut.
pub struct NodeLedger {
    store: Arc<JournalStore>,
    vector: Mutex<VersionVector>,
    cuts: OnceLock<LedgerCuts>,
}

impl NodeLedger {
    /// The ledger of `store`, its version vector read from disk now.
    ///
    /// # Errors
    /// Storage errors of the initial read.
    pub fn open(store: Arc<JournalStore>) -> Result<Self, crate::storage::StorageError> {
        let vector = store.stored_version_vector()?.into_iter().collect();
        Ok(Self {
            store,
            vector: Mutex::new(vector),
            cuts: OnceLock::new(),
        })
    }

    /// Reads devices' ledger cuts through `cuts` from now on (set once; later calls change
    /// nothing).
    pub fn set_cuts(&self, cuts: LedgerCuts) {
        let _ = self.cuts.set(cuts);
    }

    /// `device_id` is durably held up to `seq` (a lower `seq` is ignored: never goes down).
    pub fn advance(&self, device_id: &str, seq: u64) {
        self.lock().advance(device_id, seq);
    }

    fn lock(&self) -> MutexGuard<'_, VersionVector> {
        self.vector
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn read_failed(what: &str, device_id: &str, error: &crate::storage::StorageError) {
    tracing::error!(%error, device = device_id, what, "replication: ledger read failed");
    metrics::counter!("posmesh_replication_read_errors_total").increment(1);
}

impl LedgerRead for NodeLedger {
    fn version_vector(&self) -> VersionVector {
        self.lock().clone()
    }

    fn entries_after(&self, device_id: &str, after_seq: u64, limit: usize) -> Vec<(u64, Vec<u8>)> {
        // Never beyond the vector: what the vector does not show yet is not advertised.
        let held = self.lock().get(device_id);
        let limit =
            limit.min(usize::try_from(held.saturating_sub(after_seq)).unwrap_or(usize::MAX));
        if limit == 0 {
            return Vec::new();
        }
        match self.store.entries_after(device_id, after_seq, limit) {
            Ok(entries) => {
                debug_assert!(entries
                    .iter()
                    .zip(after_seq + 1..)
                    .all(|((seq, _), expected)| *seq == expected));
                entries
            }
            Err(error) => {
                read_failed("entries", device_id, &error);
                Vec::new()
            }
        }
    }

    fn head_signature_at_or_before(&self, device_id: &str, seq: u64) -> Option<ChainHeadSignature> {
        let seq = seq.min(self.lock().get(device_id));
        match self.store.head_signature_at_or_before(device_id, seq) {
            Ok(head) => head,
            Err(error) => {
                read_failed("head signature", device_id, &error);
                None
            }
        }
    }

    fn chain_hash(&self, device_id: &str, seq: u64) -> Option<ChainHash> {
        match self.store.chain_hash(device_id, seq) {
            Ok(hash) => hash,
            Err(error) => {
                read_failed("chain hash", device_id, &error);
                None
            }
        }
    }

    fn cut(&self, device_id: &str) -> Option<u64> {
        self.cuts.get().and_then(|cuts| cuts(device_id))
    }
}
