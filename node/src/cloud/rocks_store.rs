//! [`RocksCloudStore`]: the cloud's embedded default storage, one RocksDB.
//!
//! Column families (keys use `/` between ids: store and device ids are DNS labels, which
//! hold no `/`):
//! - `cloud_entries`: `store/device/` + seq (u64 big-endian) → the entry's stored bytes.
//! - `cloud_cursors`: `store/device` → held_seq (u64 BE) ‖ chain hash (32 bytes).
//! - `cloud_heads`: `store/device` → the signed head at held_seq (`ChainHeadSignature`).
//! - `cloud_keys`: `store/device` → the device's `KeyAttestation`.
//! - `cloud_stores`: `store` → last contact, Unix ms (i64 BE).
//! - `cloud_catalogs`: `store` → the newest `CatalogRelease`.
//! - `cloud_snapshots`: `store` → raft_log_index (u64 BE) ‖ state.
//! - `cloud_revocations`: `store/serial` → the Raft log index the store revoked that
//!   certificate from (u64 BE).
//! - `cloud_ledger_cuts`: `store/device` → the last kept seq of the device's journal (u64
//!   BE) ‖ the Raft log index of the cut (u64 BE).

use super::store::{CloudStore, CloudStoreError, DeviceCursor, StoreContact};
use posmesh_consensus::rocksdb_tuning::RocksTuning;
use posmesh_proto::cloud::v1::CatalogRelease;
use posmesh_proto::mesh::v1::KeyAttestation;
use posmesh_sync::chain::{ChainHash, CHAIN_HASH_LEN};
use posmesh_sync::cloud::VerifiedUpload;
use posmesh_sync::replication::VersionVector;
use prost::Message;
use rocksdb::{
    Cache, ColumnFamily, ColumnFamilyDescriptor, Direction, IteratorMode, WriteBatch, WriteOptions,
    DB,
};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;

const CF_ENTRIES: &str = "cloud_entries";
const CF_CURSORS: &str = "cloud_cursors";
const CF_HEADS: &str = "cloud_heads";
const CF_KEYS: &str = "cloud_keys";
const CF_STORES: &str = "cloud_stores";
const CF_CATALOGS: &str = "cloud_catalogs";
const CF_SNAPSHOTS: &str = "cloud_snapshots";
const CF_REVOCATIONS: &str = "cloud_revocations";
const CF_LEDGER_CUTS: &str = "cloud_ledger_cuts";
const COLUMN_FAMILIES: [&str; 9] = [
    CF_ENTRIES,
    CF_CURSORS,
    CF_HEADS,
    CF_KEYS,
    CF_STORES,
    CF_CATALOGS,
    CF_SNAPSHOTS,
    CF_REVOCATIONS,
    CF_LEDGER_CUTS,
];

/// The cloud's sizes (the options every posmesh database shares come from
/// [`posmesh_consensus::rocksdb_tuning`]).
const TUNING: RocksTuning = RocksTuning {
    max_open_files: 512,
    max_total_wal_bytes: 128 << 20,
    max_background_jobs: 2,
    write_buffer_bytes: 16 << 20,
};
const BLOCK_CACHE_BYTES: usize = 32 << 20;

/// [`CloudStore`] on an embedded RocksDB (synced writes).
pub struct RocksCloudStore {
    db: DB,
    /// Serialises read-modify-write of the small per-store records (contact, catalog,
    /// snapshot) and appends (the cursor check and the write form one step).
    write_lock: Mutex<()>,
}

impl RocksCloudStore {
    /// Opens (creating if needed) the cloud's database in `dir`.
    ///
    /// # Errors
    /// RocksDB errors (e.g. the directory is in use by another cloud process).
    pub fn open(dir: &Path) -> Result<Self, CloudStoreError> {
        let mut opts = TUNING.db_options();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);
        let descriptors = COLUMN_FAMILIES
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(*name, TUNING.cf_options(&cache)));
        let db = DB::open_cf_descriptors(&opts, dir, descriptors)?;
        Ok(Self {
            db,
            write_lock: Mutex::new(()),
        })
    }

    fn cf(&self, name: &str) -> &ColumnFamily {
        match self.db.cf_handle(name) {
            Some(cf) => cf,
            // Every name in COLUMN_FAMILIES is opened in `open`.
            None => panic!("column family {name} is not open"),
        }
    }

    fn write_synced(&self, batch: WriteBatch) -> Result<(), CloudStoreError> {
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        self.db.write_opt(batch, &opts)?;
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        // The guarded data lives in RocksDB: a poisoned lock guards nothing half-changed.
        self.write_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn decode<M: Message + Default>(bytes: &[u8], what: &str) -> Result<M, CloudStoreError> {
        M::decode(bytes).map_err(|e| CloudStoreError::Corrupt {
            what: what.to_owned(),
            reason: e.to_string(),
        })
    }
}

fn device_key(store_id: &str, device_id: &str) -> Vec<u8> {
    format!("{store_id}/{device_id}").into_bytes()
}

fn entries_prefix(store_id: &str, device_id: &str) -> Vec<u8> {
    format!("{store_id}/{device_id}/").into_bytes()
}

fn entry_key(store_id: &str, device_id: &str, seq: u64) -> Vec<u8> {
    let mut key = entries_prefix(store_id, device_id);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn decode_cursor(bytes: &[u8], what: &str) -> Result<DeviceCursor, CloudStoreError> {
    let corrupt = || CloudStoreError::Corrupt {
        what: what.to_owned(),
        reason: format!("{} bytes, expected {}", bytes.len(), 8 + CHAIN_HASH_LEN),
    };
    if bytes.len() != 8 + CHAIN_HASH_LEN {
        return Err(corrupt());
    }
    let (seq, hash) = bytes.split_at(8);
    let held_seq = u64::from_be_bytes(seq.try_into().map_err(|_| corrupt())?);
    let chain_hash: ChainHash = hash.try_into().map_err(|_| corrupt())?;
    Ok(DeviceCursor {
        held_seq,
        chain_hash,
    })
}

impl CloudStore for RocksCloudStore {
    fn cursor(&self, store_id: &str, device_id: &str) -> Result<DeviceCursor, CloudStoreError> {
        let key = device_key(store_id, device_id);
        match self.db.get_pinned_cf(self.cf(CF_CURSORS), &key)? {
            Some(bytes) => decode_cursor(&bytes, &format!("cursor {store_id}/{device_id}")),
            None => Ok(DeviceCursor {
                held_seq: 0,
                chain_hash: [0; CHAIN_HASH_LEN],
            }),
        }
    }

    fn version_vector(&self, store_id: &str) -> Result<VersionVector, CloudStoreError> {
        let prefix = format!("{store_id}/").into_bytes();
        let mut vector = VersionVector::new();
        let iter = self.db.iterator_cf(
            self.cf(CF_CURSORS),
            IteratorMode::From(&prefix, Direction::Forward),
        );
        for item in iter {
            let (key, value) = item?;
            let Some(device) = key.strip_prefix(prefix.as_slice()) else {
                break;
            };
            let device = String::from_utf8_lossy(device).into_owned();
            let cursor = decode_cursor(&value, &format!("cursor {store_id}/{device}"))?;
            vector.advance(&device, cursor.held_seq);
        }
        Ok(vector)
    }

    fn append(&self, store_id: &str, upload: &VerifiedUpload) -> Result<(), CloudStoreError> {
        let Some((first_seq, _)) = upload.entries.first() else {
            return Ok(());
        };
        let _guard = self.lock();
        let held = self.cursor(store_id, &upload.device_id)?;
        if *first_seq != held.held_seq + 1 {
            return Err(CloudStoreError::NotContiguous {
                device_id: upload.device_id.clone(),
                held_seq: held.held_seq,
                first_seq: *first_seq,
            });
        }
        let mut batch = WriteBatch::default();
        for (seq, bytes) in &upload.entries {
            batch.put_cf(
                self.cf(CF_ENTRIES),
                entry_key(store_id, &upload.device_id, *seq),
                bytes,
            );
        }
        let mut cursor = upload.last_seq().to_be_bytes().to_vec();
        cursor.extend_from_slice(&upload.last_hash);
        let key = device_key(store_id, &upload.device_id);
        batch.put_cf(self.cf(CF_CURSORS), &key, cursor);
        batch.put_cf(self.cf(CF_HEADS), &key, upload.head.encode_to_vec());
        self.write_synced(batch)
    }

    fn entries_after(
        &self,
        store_id: &str,
        device_id: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, CloudStoreError> {
        let prefix = entries_prefix(store_id, device_id);
        let start = entry_key(store_id, device_id, after_seq.saturating_add(1));
        let iter = self.db.iterator_cf(
            self.cf(CF_ENTRIES),
            IteratorMode::From(&start, Direction::Forward),
        );
        let mut entries = Vec::new();
        for item in iter.take(limit) {
            let (key, value) = item?;
            let Some(seq) = key.strip_prefix(prefix.as_slice()) else {
                break;
            };
            let seq: [u8; 8] = seq.try_into().map_err(|_| CloudStoreError::Corrupt {
                what: format!("entry key of {store_id}/{device_id}"),
                reason: "not 8 seq bytes".to_owned(),
            })?;
            entries.push((u64::from_be_bytes(seq), value.into_vec()));
        }
        Ok(entries)
    }

    fn key_attestation(
        &self,
        store_id: &str,
        device_id: &str,
    ) -> Result<Option<KeyAttestation>, CloudStoreError> {
        self.db
            .get_pinned_cf(self.cf(CF_KEYS), device_key(store_id, device_id))?
            .map(|bytes| Self::decode(&bytes, "key attestation"))
            .transpose()
    }

    fn head(
        &self,
        store_id: &str,
        device_id: &str,
    ) -> Result<Option<posmesh_proto::journal::v1::ChainHeadSignature>, CloudStoreError> {
        self.db
            .get_pinned_cf(self.cf(CF_HEADS), device_key(store_id, device_id))?
            .map(|bytes| Self::decode(&bytes, "chain head"))
            .transpose()
    }

    fn put_key_attestation(
        &self,
        store_id: &str,
        device_id: &str,
        attestation: &KeyAttestation,
    ) -> Result<(), CloudStoreError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(CF_KEYS),
            device_key(store_id, device_id),
            attestation.encode_to_vec(),
        );
        self.write_synced(batch)
    }

    fn record_contact(&self, store_id: &str, now_ms: i64) -> Result<(), CloudStoreError> {
        let _guard = self.lock();
        let cf = self.cf(CF_STORES);
        let last = self
            .db
            .get_pinned_cf(cf, store_id.as_bytes())?
            .and_then(|b| <[u8; 8]>::try_from(b.as_ref()).ok())
            .map_or(i64::MIN, i64::from_be_bytes);
        if now_ms <= last {
            return Ok(());
        }
        // Contact is a hint for the report, not acknowledged data: no fsync needed.
        self.db
            .put_cf(cf, store_id.as_bytes(), now_ms.to_be_bytes())?;
        Ok(())
    }

    fn stores(&self) -> Result<Vec<StoreContact>, CloudStoreError> {
        let mut stores = Vec::new();
        for item in self.db.iterator_cf(self.cf(CF_STORES), IteratorMode::Start) {
            let (key, value) = item?;
            let last_contact_ms = <[u8; 8]>::try_from(value.as_ref())
                .map(i64::from_be_bytes)
                .map_err(|_| CloudStoreError::Corrupt {
                    what: "store contact".to_owned(),
                    reason: "not 8 bytes".to_owned(),
                })?;
            stores.push(StoreContact {
                store_id: String::from_utf8_lossy(&key).into_owned(),
                last_contact_ms,
            });
        }
        Ok(stores)
    }

    fn publish_catalog(
        &self,
        store_id: &str,
        release: &CatalogRelease,
    ) -> Result<(), CloudStoreError> {
        let _guard = self.lock();
        let published = self.catalog(store_id)?.map_or(0, |c| c.version);
        if release.version <= published {
            return Err(CloudStoreError::CatalogVersion {
                version: release.version,
                published,
            });
        }
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(CF_CATALOGS),
            store_id.as_bytes(),
            release.encode_to_vec(),
        );
        self.write_synced(batch)
    }

    fn catalog(&self, store_id: &str) -> Result<Option<CatalogRelease>, CloudStoreError> {
        self.db
            .get_pinned_cf(self.cf(CF_CATALOGS), store_id.as_bytes())?
            .map(|bytes| Self::decode(&bytes, "catalog release"))
            .transpose()
    }

    fn put_snapshot(
        &self,
        store_id: &str,
        raft_log_index: u64,
        state: &[u8],
    ) -> Result<u64, CloudStoreError> {
        let _guard = self.lock();
        let held = self.snapshot(store_id)?.map_or(0, |(index, _)| index);
        if raft_log_index <= held {
            return Ok(held);
        }
        let mut value = raft_log_index.to_be_bytes().to_vec();
        value.extend_from_slice(state);
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_SNAPSHOTS), store_id.as_bytes(), value);
        self.write_synced(batch)?;
        Ok(raft_log_index)
    }

    fn snapshot(&self, store_id: &str) -> Result<Option<(u64, Vec<u8>)>, CloudStoreError> {
        let Some(bytes) = self
            .db
            .get_pinned_cf(self.cf(CF_SNAPSHOTS), store_id.as_bytes())?
        else {
            return Ok(None);
        };
        if bytes.len() < 8 {
            return Err(CloudStoreError::Corrupt {
                what: format!("snapshot of {store_id}"),
                reason: "shorter than its index".to_owned(),
            });
        }
        let (index, state) = bytes.split_at(8);
        let index: [u8; 8] = index.try_into().map_err(|_| CloudStoreError::Corrupt {
            what: format!("snapshot of {store_id}"),
            reason: "index".to_owned(),
        })?;
        Ok(Some((u64::from_be_bytes(index), state.to_vec())))
    }

    fn add_revocations(
        &self,
        store_id: &str,
        revocations: &[(String, u64)],
    ) -> Result<usize, CloudStoreError> {
        let _guard = self.lock();
        let mut batch = WriteBatch::default();
        let mut added = 0;
        for (serial, effective_index) in revocations {
            let key = device_key(store_id, serial);
            if self
                .db
                .get_pinned_cf(self.cf(CF_REVOCATIONS), &key)?
                .is_some()
            {
                continue; // a revocation's index never moves
            }
            batch.put_cf(self.cf(CF_REVOCATIONS), key, effective_index.to_be_bytes());
            added += 1;
        }
        if added > 0 {
            self.write_synced(batch)?;
        }
        Ok(added)
    }

    fn add_ledger_cuts(
        &self,
        store_id: &str,
        cuts: &[(String, u64, u64)],
    ) -> Result<usize, CloudStoreError> {
        let _guard = self.lock();
        let mut batch = WriteBatch::default();
        let mut added = BTreeSet::new();
        for (device_id, up_to_seq, cut_at_index) in cuts {
            let key = device_key(store_id, device_id);
            if added.contains(device_id)
                || self
                    .db
                    .get_pinned_cf(self.cf(CF_LEDGER_CUTS), &key)?
                    .is_some()
            {
                continue; // a cut never moves
            }
            let mut value = up_to_seq.to_be_bytes().to_vec();
            value.extend_from_slice(&cut_at_index.to_be_bytes());
            batch.put_cf(self.cf(CF_LEDGER_CUTS), key, value);
            added.insert(device_id.clone());
        }
        if !added.is_empty() {
            self.write_synced(batch)?;
        }
        Ok(added.len())
    }

    fn ledger_cut(&self, store_id: &str, device_id: &str) -> Result<Option<u64>, CloudStoreError> {
        self.db
            .get_pinned_cf(self.cf(CF_LEDGER_CUTS), device_key(store_id, device_id))?
            .map(|bytes| {
                bytes
                    .get(..8)
                    .filter(|_| bytes.len() == 16)
                    .and_then(|seq| <[u8; 8]>::try_from(seq).ok())
                    .map(u64::from_be_bytes)
                    .ok_or_else(|| CloudStoreError::Corrupt {
                        what: format!("ledger cut {store_id}/{device_id}"),
                        reason: "not 16 bytes".to_owned(),
                    })
            })
            .transpose()
    }

    fn revoked_at(&self, store_id: &str, serial: &str) -> Result<Option<u64>, CloudStoreError> {
        self.db
            .get_pinned_cf(self.cf(CF_REVOCATIONS), device_key(store_id, serial))?
            .map(|bytes| {
                <[u8; 8]>::try_from(bytes.as_ref())
                    .map(u64::from_be_bytes)
                    .map_err(|_| CloudStoreError::Corrupt {
                        what: format!("revocation {store_id}/{serial}"),
                        reason: "not 8 index bytes".to_owned(),
                    })
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_empty_is_zero() -> Result<(), CloudStoreError> {
        let dir = tempfile::tempdir().map_err(|e| CloudStoreError::Backend(e.to_string()))?;
        let store = RocksCloudStore::open(dir.path())?;
        assert_eq!(store.cursor("s1", "till-1")?.held_seq, 0);
        assert!(store
            .version_vector("s1")?
            .missing_from(&VersionVector::new())
            .is_empty());
        let release = CatalogRelease {
            version: 2,
            effective_at_ms: 0,
            catalog_toml: "x".into(),
        };
        store.publish_catalog("s1", &release)?;
        assert!(matches!(
            store.publish_catalog("s1", &release),
            Err(CloudStoreError::CatalogVersion {
                version: 2,
                published: 2
            })
        ));
        assert_eq!(store.catalog("s1")?, Some(release));
        assert_eq!(store.catalog("s2")?, None);
        assert_eq!(store.put_snapshot("s1", 5, b"state")?, 5);
        assert_eq!(store.put_snapshot("s1", 4, b"older")?, 5);
        assert_eq!(store.snapshot("s1")?, Some((5, b"state".to_vec())));
        Ok(())
    }

    #[test]
    fn revocations_are_per_store_keep_their_index_and_survive_a_reopen(
    ) -> Result<(), CloudStoreError> {
        let dir = tempfile::tempdir().map_err(|e| CloudStoreError::Backend(e.to_string()))?;
        {
            let store = RocksCloudStore::open(dir.path())?;
            assert_eq!(store.revoked_at("s1", "0c")?, None);
            assert_eq!(
                store.add_revocations("s1", &[("0c".into(), 42), ("0d".into(), 50)])?,
                2
            );
            // Sent again (every device sends them) or with another index: unchanged.
            assert_eq!(
                store.add_revocations("s1", &[("0c".into(), 7), ("0e".into(), 60)])?,
                1
            );
        }
        let store = RocksCloudStore::open(dir.path())?;
        assert_eq!(store.revoked_at("s1", "0c")?, Some(42));
        assert_eq!(store.revoked_at("s1", "0e")?, Some(60));
        assert_eq!(store.revoked_at("s2", "0c")?, None, "another store's");
        Ok(())
    }
}
