//! [`SimCloud`]: the chain's cloud in the simulated world — the same sans-IO ingest
//! decision as `posmesh cloud` ([`plan_ingest`]) over an in-memory store, fed by every
//! device's uplink ([`upload_batch`]) every `cloud_round_ms`, through cloud outages, lost
//! acknowledgements and duplicated uploads. The `exactly-once-in-cloud` checker reads it.

use posmesh_proto::sync::v1::EntryBatch;
use posmesh_sync::chain::{ChainHash, CHAIN_HASH_LEN};
use posmesh_sync::cloud::{plan_ingest, IngestPlan, IngestRefusal};
use posmesh_sync::replication::{SigningKeys, VersionVector};
use std::collections::BTreeMap;

/// What the simulated cloud holds and did.
#[derive(Clone, Debug, Default)]
pub struct SimCloud {
    /// Whether the store can reach the cloud (false during an outage).
    pub reachable: bool,
    /// Per device: held seq and the chain hash of that entry.
    cursors: BTreeMap<String, (u64, ChainHash)>,
    /// Stored entries by (device, seq).
    pub entries: BTreeMap<(String, u64), Vec<u8>>,
    /// Every (device, seq) stored, in order, once per store operation: a seq stored twice
    /// appears twice (the checker's evidence of a double).
    pub stored_log: Vec<(String, u64)>,
    /// Uploads answered as duplicates (nothing stored).
    pub duplicates: u64,
    /// Uploads refused, by code.
    pub refusals: BTreeMap<&'static str, u64>,
    /// Uploads sent while the cloud was unreachable (lost).
    pub unreachable_uploads: u64,
    /// The planted bug `cloud-stores-duplicates`: a batch already held is stored again.
    pub canary_stores_duplicates: bool,
}

impl SimCloud {
    /// A reachable, empty cloud; `canary_stores_duplicates` plants that bug.
    pub fn new(canary_stores_duplicates: bool) -> Self {
        Self {
            reachable: true,
            canary_stores_duplicates,
            ..Self::default()
        }
    }

    /// The cloud's version vector of the store.
    pub fn version_vector(&self) -> VersionVector {
        self.cursors
            .iter()
            .map(|(d, (seq, _))| (d.clone(), *seq))
            .collect()
    }

    /// Ingests one uploaded batch with the device keys of `keys`; returns the held seq of
    /// the batch's device afterwards.
    ///
    /// # Errors
    /// The refusal of [`plan_ingest`]; nothing is stored.
    pub fn ingest(
        &mut self,
        batch: EntryBatch,
        keys: &impl SigningKeys,
    ) -> Result<u64, IngestRefusal> {
        let device = batch.device_id.clone();
        let (held, hash) = self
            .cursors
            .get(&device)
            .copied()
            .unwrap_or((0, [0; CHAIN_HASH_LEN]));
        let seqs: Vec<u64> = batch.entries.iter().map(|e| e.seq).collect();
        match plan_ingest(batch, held, hash, None, keys) {
            Ok(IngestPlan::Duplicate { held_seq }) => {
                self.duplicates += 1;
                if self.canary_stores_duplicates {
                    self.stored_log
                        .extend(seqs.into_iter().map(|seq| (device.clone(), seq)));
                }
                Ok(held_seq)
            }
            Ok(IngestPlan::Append(upload)) => {
                let last = upload.last_seq();
                for (seq, bytes) in upload.entries {
                    self.stored_log.push((device.clone(), seq));
                    self.entries.insert((device.clone(), seq), bytes);
                }
                self.cursors.insert(device, (last, upload.last_hash));
                Ok(last)
            }
            Err(refusal) => {
                *self.refusals.entry(refusal.code()).or_insert(0) += 1;
                Err(refusal)
            }
        }
    }
}
