//! The node's RocksDB: opening it, and reading journal entries and records.
//!
//! Writes go through the single [`writer`](super::writer) thread only; this type exposes the
//! synced write it uses, and reads for everyone else. Reads see only committed batches.

use super::keys::{
    self, CF_CHAIN_HEADS, CF_DEVICE_META, CF_IDEMPOTENCY, CF_JOURNAL, CF_SALE_STATUS,
};
use super::StorageError;
use posmesh_consensus::rocksdb_tuning::RocksTuning;
use posmesh_proto::journal::v1::{ChainHeadSignature, JournalEntry};
use posmesh_proto::storage::v1::{
    IdempotencyRecord, LocalHead, LocalIdentity, SaleStatus, SigningSecret,
};
use prost::Message;
use rocksdb::{
    Cache, ColumnFamily, ColumnFamilyDescriptor, Direction, IteratorMode, Options, WriteBatch,
    WriteOptions, DB,
};
use std::path::Path;

/// Memtable size per column family, bytes. Small: a till writes little, and an idle node's
/// memory (RSS target ≤ 50 MB with 1M entries) is mostly memtables and block cache.
const WRITE_BUFFER_BYTES: usize = 4 << 20;
/// Shared block cache, bytes.
const BLOCK_CACHE_BYTES: usize = 8 << 20;

/// A node's open database.
pub struct JournalStore {
    db: DB,
    /// Held while a writer reads, changes and writes the records derived from the journal
    /// (sale status, the order index): the local journal writer and the store of replicated
    /// batches both do, from different threads.
    derived: std::sync::Mutex<()>,
}

impl JournalStore {
    /// Opens (creating if needed) the database in `dir` for reading and writing. Takes
    /// RocksDB's lock: a second process gets [`StorageError::Rocks`] naming the lock.
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        let mut db_opts = base_options();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);
        let descriptors = keys::COLUMN_FAMILIES
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(*name, TUNING.cf_options(&cache)))
            .collect::<Vec<_>>();
        let db = DB::open_cf_descriptors(&db_opts, dir, descriptors).map_err(|e| in_use(dir, e))?;
        Ok(Self {
            db,
            derived: std::sync::Mutex::new(()),
        })
    }

    /// Opens an existing database read-only (for `posmesh journal verify` and reports); works
    /// beside a running node and sees what was committed when it opened.
    pub fn open_read_only(dir: &Path) -> Result<Self, StorageError> {
        // A directory written by an older version lacks the newer column families (e.g.
        // `device_keys`); read-only, they cannot be created, so only those present open.
        let present = DB::list_cf(&base_options(), dir).unwrap_or_default();
        let families = keys::COLUMN_FAMILIES
            .iter()
            .filter(|name| present.is_empty() || present.iter().any(|p| p == *name));
        let db = DB::open_cf_for_read_only(&base_options(), dir, families, false)?;
        let store = Self {
            db,
            derived: std::sync::Mutex::new(()),
        };
        if store.identity()?.is_none() {
            return Err(StorageError::NotInitialised);
        }
        Ok(store)
    }

    /// Takes the lock of the derived records (sale status, order index); hold it from the
    /// first read to the synced write of a batch that changes them.
    pub fn lock_derived_records(&self) -> std::sync::MutexGuard<'_, ()> {
        // The guarded data is in RocksDB, not in the mutex: a panic elsewhere leaves nothing
        // half-changed here, so a poisoned lock is still usable.
        self.derived
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The identity record, if the directory was initialised.
    pub fn identity(&self) -> Result<Option<LocalIdentity>, StorageError> {
        self.get_record(CF_DEVICE_META, keys::META_IDENTITY, "identity")
    }

    /// Initialises the identity on first start, or checks that it matches on later starts.
    /// `new_incarnation` and `new_signing_secret` (32 random bytes: the device's Ed25519
    /// chain-head key) are used only when the directory is new.
    pub fn ensure_identity(
        &self,
        store_id: &str,
        device_id: &str,
        new_incarnation: u64,
        new_signing_secret: [u8; 32],
        now_ms: i64,
    ) -> Result<LocalIdentity, StorageError> {
        if let Some(stored) = self.identity()? {
            if stored.store_id != store_id || stored.device_id != device_id {
                return Err(StorageError::IdentityMismatch {
                    stored_store: stored.store_id,
                    stored_device: stored.device_id,
                    store: store_id.to_owned(),
                    device: device_id.to_owned(),
                });
            }
            return Ok(stored);
        }
        let signing_key = posmesh_sync::chain_head::signing_key(&new_signing_secret);
        let identity = LocalIdentity {
            store_id: store_id.to_owned(),
            device_id: device_id.to_owned(),
            device_incarnation: new_incarnation,
            created_at_ms: now_ms,
            signing_public_key: posmesh_sync::chain_head::public_key(&signing_key).to_vec(),
        };
        let secret = SigningSecret {
            secret_key: new_signing_secret.to_vec(),
        };
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(CF_DEVICE_META),
            keys::META_IDENTITY,
            identity.encode_to_vec(),
        );
        batch.put_cf(
            self.cf(CF_DEVICE_META),
            keys::META_SIGNING_SECRET,
            secret.encode_to_vec(),
        );
        self.write_synced(batch)?;
        Ok(identity)
    }

    /// The device's chain-head signing key.
    pub fn signing_key(&self) -> Result<ed25519_dalek::SigningKey, StorageError> {
        let secret: SigningSecret = self
            .get_record(CF_DEVICE_META, keys::META_SIGNING_SECRET, "signing_secret")?
            .ok_or(StorageError::NotInitialised)?;
        let bytes: [u8; 32] =
            secret
                .secret_key
                .as_slice()
                .try_into()
                .map_err(|_| StorageError::Corrupt {
                    what: "signing_secret".into(),
                    reason: "not 32 bytes".into(),
                })?;
        Ok(posmesh_sync::chain_head::signing_key(&bytes))
    }

    /// The signed chain heads of `device_id`, in sequence order.
    pub fn chain_head_signatures(
        &self,
        device_id: &str,
    ) -> Result<Vec<ChainHeadSignature>, StorageError> {
        let prefix = keys::device_prefix(device_id);
        let mut out = Vec::new();
        let iter = self.db.iterator_cf(
            self.cf(CF_CHAIN_HEADS),
            IteratorMode::From(&prefix, Direction::Forward),
        );
        for item in iter {
            let (key, value) = item?;
            if !key.starts_with(&prefix) {
                break;
            }
            out.push(ChainHeadSignature::decode(value.as_ref()).map_err(|e| {
                StorageError::Corrupt {
                    what: format!("chain head signature {}", hex::encode(&key)),
                    reason: e.to_string(),
                }
            })?);
        }
        Ok(out)
    }

    /// The local journal head (all zero for an empty journal).
    pub fn head(&self) -> Result<LocalHead, StorageError> {
        Ok(self
            .get_record(CF_DEVICE_META, keys::META_HEAD, "head")?
            .unwrap_or_else(|| LocalHead {
                head_hash: posmesh_sync::chain::GENESIS_PREV_HASH.to_vec(),
                ..Default::default()
            }))
    }

    /// The stored bytes of entry `(device_id, seq)`.
    pub fn entry_bytes(&self, device_id: &str, seq: u64) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self
            .db
            .get_cf(self.cf(CF_JOURNAL), keys::entry_key(device_id, seq))?)
    }

    /// Entry `(device_id, seq)`, decoded.
    pub fn entry(&self, device_id: &str, seq: u64) -> Result<Option<JournalEntry>, StorageError> {
        self.entry_bytes(device_id, seq)?
            .map(|bytes| decode_entry(device_id, seq, &bytes))
            .transpose()
    }

    /// Up to `limit` entries of `device_id` with seq > `after_seq`, in order, as stored bytes.
    pub fn entries_after(
        &self,
        device_id: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StorageError> {
        let mut out = Vec::new();
        self.scan_device(device_id, after_seq, |seq, bytes| {
            out.push((seq, bytes.to_vec()));
            out.len() < limit
        })?;
        Ok(out)
    }

    /// Calls `visit(seq, bytes)` for each entry of `device_id` with seq > `after_seq`, in
    /// order, until it returns false.
    pub fn scan_device(
        &self,
        device_id: &str,
        after_seq: u64,
        mut visit: impl FnMut(u64, &[u8]) -> bool,
    ) -> Result<(), StorageError> {
        let prefix = keys::device_prefix(device_id);
        let start = keys::entry_key(device_id, after_seq.saturating_add(1));
        let iter = self.db.iterator_cf(
            self.cf(CF_JOURNAL),
            IteratorMode::From(&start, Direction::Forward),
        );
        for item in iter {
            let (key, value) = item?;
            if !key.starts_with(&prefix) {
                break;
            }
            let Some((_, seq)) = keys::parse_entry_key(&key) else {
                return Err(corrupt_key(&key));
            };
            if !visit(seq, &value) {
                break;
            }
        }
        Ok(())
    }

    /// The device ids that have entries in this journal, in byte order.
    pub fn devices(&self) -> Result<Vec<String>, StorageError> {
        let mut devices: Vec<String> = Vec::new();
        let mut iter = self.db.raw_iterator_cf(self.cf(CF_JOURNAL));
        iter.seek_to_first();
        while let Some(key) = iter.key() {
            let Some((device, _)) = keys::parse_entry_key(key) else {
                return Err(corrupt_key(key));
            };
            let device = device.to_owned();
            // Jump past this device's entries: its prefix with the separator incremented.
            let mut next = device.as_bytes().to_vec();
            next.push(1);
            devices.push(device);
            iter.seek(&next);
        }
        iter.status()?;
        Ok(devices)
    }

    /// The record of a used Idempotency-Key.
    pub fn idempotency(&self, key: &str) -> Result<Option<IdempotencyRecord>, StorageError> {
        self.get_record(CF_IDEMPOTENCY, key.as_bytes(), "idempotency")
    }

    /// The status of sale `(device_id, seq)`, if anything happened to it since.
    pub fn sale_status(
        &self,
        device_id: &str,
        seq: u64,
    ) -> Result<Option<SaleStatus>, StorageError> {
        self.get_record(
            CF_SALE_STATUS,
            &keys::entry_key(device_id, seq),
            "sale_status",
        )
    }

    /// Writes `batch` atomically and fsyncs the write-ahead log before returning: once this
    /// returns Ok, the batch survives a crash or power loss.
    pub fn write_synced(&self, batch: WriteBatch) -> Result<(), StorageError> {
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        self.db.write_opt(batch, &opts)?;
        Ok(())
    }

    /// The database, for the other storage modules' reads and writes.
    pub(super) fn db(&self) -> &DB {
        &self.db
    }

    /// Column family handle by name (one of [`keys::COLUMN_FAMILIES`]).
    pub fn cf(&self, name: &str) -> &ColumnFamily {
        match self.db.cf_handle(name) {
            Some(cf) => cf,
            // Every name in keys::COLUMN_FAMILIES is opened in `open`/`open_read_only`.
            None => panic!("column family {name} is not open"),
        }
    }

    fn get_record<M: Message + Default>(
        &self,
        cf: &str,
        key: &[u8],
        what: &str,
    ) -> Result<Option<M>, StorageError> {
        let Some(bytes) = self.db.get_pinned_cf(self.cf(cf), key)? else {
            return Ok(None);
        };
        M::decode(bytes.as_ref())
            .map(Some)
            .map_err(|e| StorageError::Corrupt {
                what: what.to_owned(),
                reason: e.to_string(),
            })
    }
}

/// Decodes a stored journal entry, naming it on error.
pub fn decode_entry(device_id: &str, seq: u64, bytes: &[u8]) -> Result<JournalEntry, StorageError> {
    JournalEntry::decode(bytes).map_err(|e| StorageError::Corrupt {
        what: format!("journal entry {device_id}/{seq}"),
        reason: e.to_string(),
    })
}

/// RocksDB's lock error, said plainly.
fn in_use(dir: &Path, error: rocksdb::Error) -> StorageError {
    let text = error.to_string();
    if text.contains("LOCK") && text.contains("temporarily unavailable") {
        StorageError::InUse(dir.display().to_string())
    } else {
        StorageError::Rocks(error)
    }
}

fn corrupt_key(key: &[u8]) -> StorageError {
    StorageError::Corrupt {
        what: format!("journal key {}", hex::encode(key)),
        reason: "not a (device, seq) key".to_owned(),
    }
}

/// The journal database's sizes (see [`posmesh_consensus::rocksdb_tuning`] for the options
/// every posmesh database shares).
const TUNING: RocksTuning = RocksTuning {
    max_open_files: 256,
    max_total_wal_bytes: 64 << 20,
    max_background_jobs: 2,
    write_buffer_bytes: WRITE_BUFFER_BYTES,
};

fn base_options() -> Options {
    TUNING.db_options()
}
