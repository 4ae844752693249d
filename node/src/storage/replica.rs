//! Storage of replication: what the node holds of every device's journal (its version
//! vector and chain heads), persisting batches of other devices received from peers, and
//! the verified key attestations of other devices.
//!
//! The local device's journal is written only by the [`writer`](super::writer) thread;
//! [`JournalStore::store_replica_batch`] refuses entries of the local device, so the two
//! writers never touch the same keys (they share nothing but the database).

use super::journal_store::decode_entry;
use super::keys::{self, CF_CHAIN_HEADS, CF_DEVICE_KEYS, CF_JOURNAL};
use super::replica_effects::{EffectsBuilder, ReplicaEffects};
use super::{JournalStore, StorageError};
use posmesh_proto::journal::v1::ChainHeadSignature;
use posmesh_proto::mesh::v1::KeyAttestation;
use posmesh_sync::chain::{entry_hash, ChainHash};
use prost::Message;
use rocksdb::{IteratorMode, WriteBatch};
use std::collections::BTreeMap;

impl JournalStore {
    /// The highest stored sequence number of `device_id` (0 when nothing is stored). Entries
    /// are only ever stored contiguously from 1, so this is also how many are held.
    pub fn last_seq(&self, device_id: &str) -> Result<u64, StorageError> {
        let mut iter = self.db().raw_iterator_cf(self.cf(CF_JOURNAL));
        iter.seek_for_prev(keys::entry_key(device_id, u64::MAX));
        let last = match iter.key() {
            Some(key) if key.starts_with(&keys::device_prefix(device_id)) => {
                match keys::parse_entry_key(key) {
                    Some((_, seq)) => seq,
                    None => return Err(corrupt_key(key)),
                }
            }
            _ => 0,
        };
        iter.status()?;
        Ok(last)
    }

    /// For every device of which anything is stored, the highest stored seq (see
    /// [`JournalStore::last_seq`]): the node's version vector.
    pub fn stored_version_vector(&self) -> Result<BTreeMap<String, u64>, StorageError> {
        let mut vector = BTreeMap::new();
        for device in self.devices()? {
            let seq = self.last_seq(&device)?;
            vector.insert(device, seq);
        }
        Ok(vector)
    }

    /// The chain hash of stored entry `(device_id, seq)`: SHA-256 of its stored bytes.
    pub fn chain_hash(&self, device_id: &str, seq: u64) -> Result<Option<ChainHash>, StorageError> {
        Ok(self
            .entry_bytes(device_id, seq)?
            .map(|bytes| entry_hash(&bytes)))
    }

    /// The stored signed chain head of `device_id` with the greatest seq ≤ `seq`.
    pub fn head_signature_at_or_before(
        &self,
        device_id: &str,
        seq: u64,
    ) -> Result<Option<ChainHeadSignature>, StorageError> {
        let mut iter = self.db().raw_iterator_cf(self.cf(CF_CHAIN_HEADS));
        iter.seek_for_prev(keys::entry_key(device_id, seq));
        let found = match (iter.key(), iter.value()) {
            (Some(key), Some(value)) if key.starts_with(&keys::device_prefix(device_id)) => Some(
                ChainHeadSignature::decode(value).map_err(|e| StorageError::Corrupt {
                    what: format!("chain head signature {}", hex::encode(key)),
                    reason: e.to_string(),
                })?,
            ),
            _ => None,
        };
        iter.status()?;
        Ok(found)
    }

    /// Persists a verified batch of another device's journal received from a peer: the
    /// entries (as `(seq, stored bytes)`, ascending, gap-free) and the device's signed head
    /// at the last of them, in **one synced WriteBatch** — once this returns Ok, all of it
    /// survives a crash; on error, none of it is stored.
    ///
    /// # Errors
    /// [`StorageError::ReplicaRefused`] when `device_id` is `local_device_id`, the batch is
    /// empty, does not start right after what is stored of the device, has a gap, or its
    /// head names another device or seq than its last entry; storage errors otherwise.
    pub fn store_replica_batch(
        &self,
        local_device_id: &str,
        device_id: &str,
        entries: &[(u64, Vec<u8>)],
        head: &ChainHeadSignature,
    ) -> Result<ReplicaEffects, StorageError> {
        let refuse = |reason: String| Err(StorageError::ReplicaRefused(reason));
        if device_id == local_device_id {
            return refuse(format!(
                "{device_id} is this node's device: only its journal writer extends it"
            ));
        }
        if device_id.is_empty() || device_id.as_bytes().contains(&0) {
            return refuse(format!("invalid device id {device_id:?}"));
        }
        let Some(&(first_seq, _)) = entries.first() else {
            return refuse("empty batch".into());
        };
        let held = self.last_seq(device_id)?;
        if first_seq != held + 1 {
            return refuse(format!(
                "batch of {device_id} starts at seq {first_seq}, but {held} are stored"
            ));
        }
        // Sale status is read, changed and written by the journal writer too.
        let _derived = self.lock_derived_records();
        let mut batch = WriteBatch::default();
        let now_ms = i64::try_from(crate::clock::wall_clock_ms()).unwrap_or(i64::MAX);
        let mut effects = EffectsBuilder::new(self, now_ms);
        let mut expected = first_seq;
        for (seq, bytes) in entries {
            if *seq != expected {
                return refuse(format!("gap in batch of {device_id} at seq {expected}"));
            }
            batch.put_cf(self.cf(CF_JOURNAL), keys::entry_key(device_id, *seq), bytes);
            effects.add(decode_entry(device_id, *seq, bytes)?, &mut batch)?;
            expected += 1;
        }
        let last_seq = expected - 1;
        if head.device_id != device_id || head.seq != last_seq {
            return refuse(format!(
                "head names {}/{}, the batch ends at {device_id}/{last_seq}",
                head.device_id, head.seq
            ));
        }
        batch.put_cf(
            self.cf(CF_CHAIN_HEADS),
            keys::entry_key(device_id, last_seq),
            head.encode_to_vec(),
        );
        self.write_synced(batch)?;
        Ok(effects.finish())
    }

    /// The stored key attestations of other devices, by device id (none in a read-only
    /// directory written before they existed).
    pub fn key_attestations(&self) -> Result<BTreeMap<String, KeyAttestation>, StorageError> {
        let mut out = BTreeMap::new();
        let Some(cf) = self.db().cf_handle(CF_DEVICE_KEYS) else {
            return Ok(out);
        };
        for item in self.db().iterator_cf(cf, IteratorMode::Start) {
            let (key, value) = item?;
            let device = String::from_utf8_lossy(&key).into_owned();
            let attestation =
                KeyAttestation::decode(value.as_ref()).map_err(|e| StorageError::Corrupt {
                    what: format!("key attestation of {device}"),
                    reason: e.to_string(),
                })?;
            out.insert(device, attestation);
        }
        Ok(out)
    }

    /// Durably stores the verified key attestation of `device_id` (replacing an older one).
    pub fn put_key_attestation(
        &self,
        device_id: &str,
        attestation: &KeyAttestation,
    ) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(CF_DEVICE_KEYS),
            device_id.as_bytes(),
            attestation.encode_to_vec(),
        );
        self.write_synced(batch)
    }
}

fn corrupt_key(key: &[u8]) -> StorageError {
    StorageError::Corrupt {
        what: format!("journal key {}", hex::encode(key)),
        reason: "not a (device, seq) key".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use posmesh_proto::journal::v1::JournalEntry;
    use posmesh_sync::chain::{link_entry, GENESIS_PREV_HASH};

    fn chain(device: &str, count: u64) -> Vec<(u64, Vec<u8>)> {
        let mut prev = GENESIS_PREV_HASH;
        (1..=count)
            .map(|seq| {
                let mut entry = JournalEntry {
                    store_id: "s".into(),
                    device_id: device.into(),
                    device_incarnation: 1,
                    seq,
                    ..Default::default()
                };
                let (bytes, hash) = link_entry(&mut entry, &prev);
                prev = hash;
                (seq, bytes)
            })
            .collect()
    }

    fn head(device: &str, seq: u64) -> ChainHeadSignature {
        ChainHeadSignature {
            device_id: device.into(),
            device_incarnation: 1,
            seq,
            ..Default::default()
        }
    }

    #[test]
    fn batches_extend_contiguously_and_heads_seek_backwards() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let store = JournalStore::open(dir.path())?;
        let entries = chain("till-2", 10);
        assert_eq!(store.last_seq("till-2")?, 0);
        store.store_replica_batch("till-1", "till-2", &entries[..4], &head("till-2", 4))?;
        store.store_replica_batch("till-1", "till-2", &entries[4..], &head("till-2", 10))?;
        // A neighbour whose id extends ours must not be mistaken for it.
        store.store_replica_batch(
            "till-1",
            "till-20",
            &chain("till-20", 3)[..],
            &head("till-20", 3),
        )?;
        assert_eq!(store.last_seq("till-2")?, 10);
        let vector = store.stored_version_vector()?;
        assert_eq!(vector.get("till-2"), Some(&10));
        assert_eq!(vector.get("till-20"), Some(&3));
        assert_eq!(
            store.chain_hash("till-2", 7)?,
            Some(entry_hash(&entries[6].1))
        );
        assert_eq!(store.head_signature_at_or_before("till-2", 3)?, None);
        assert_eq!(
            store
                .head_signature_at_or_before("till-2", 9)?
                .map(|h| h.seq),
            Some(4)
        );
        assert_eq!(
            store
                .head_signature_at_or_before("till-2", 99)?
                .map(|h| h.seq),
            Some(10)
        );
        Ok(())
    }

    #[test]
    fn gaps_duplicates_and_the_local_device_are_refused() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let store = JournalStore::open(dir.path())?;
        let entries = chain("till-2", 6);
        let refused = |r: Result<ReplicaEffects, StorageError>| {
            matches!(r, Err(StorageError::ReplicaRefused(_)))
        };
        assert!(refused(store.store_replica_batch(
            "till-2",
            "till-2",
            &entries,
            &head("till-2", 6)
        )));
        assert!(refused(store.store_replica_batch(
            "till-1",
            "till-2",
            &entries[2..],
            &head("till-2", 6)
        )));
        assert!(refused(store.store_replica_batch(
            "till-1",
            "till-2",
            &entries,
            &head("till-2", 5)
        )));
        assert!(refused(store.store_replica_batch(
            "till-1",
            "till-2",
            &[],
            &head("till-2", 0)
        )));
        assert_eq!(store.last_seq("till-2")?, 0);
        store.store_replica_batch("till-1", "till-2", &entries, &head("till-2", 6))?;
        assert!(refused(store.store_replica_batch(
            "till-1",
            "till-2",
            &entries,
            &head("till-2", 6)
        )));
        Ok(())
    }
}
