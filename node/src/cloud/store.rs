//! [`CloudStore`]: where the cloud keeps every store's ledger, keys, catalogs and Raft
//! snapshots — a trait, so the embedded RocksDB backend ([`super::RocksCloudStore`]) and a
//! PostgreSQL backend for production scale implement the same obligations.
//!
//! # A PostgreSQL backend
//! The trait maps onto tables keyed like the RocksDB column families:
//! `entries(store, device, seq, bytes, PRIMARY KEY (store, device, seq))`,
//! `cursors(store, device, held_seq, chain_hash)`, `device_keys(store, device, attestation)`,
//! `stores(store, last_contact_ms)`, `catalogs(store, version, effective_at_ms, toml)`,
//! `snapshots(store, raft_log_index, state)`,
//! `revocations(store, serial, effective_index, PRIMARY KEY (store, serial))` and
//! `ledger_cuts(store, device, up_to_seq, cut_at_index, PRIMARY KEY (store, device))`
//! (both inserted with `ON CONFLICT DO NOTHING`). [`CloudStore::append`] is one transaction that
//! inserts the entries and moves the cursor with `UPDATE … WHERE held_seq = $first - 1`
//! (zero rows updated = a concurrent append won: roll back, answer as a duplicate), so
//! several cloud replicas may ingest at once. Methods are synchronous; an async backend
//! runs them on its own pool behind `spawn_blocking`, as the RocksDB one does.

use posmesh_proto::cloud::v1::CatalogRelease;
use posmesh_proto::mesh::v1::KeyAttestation;
use posmesh_sync::chain::ChainHash;
use posmesh_sync::cloud::VerifiedUpload;
use posmesh_sync::replication::VersionVector;
use thiserror::Error;

/// Errors of a cloud storage backend.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CloudStoreError {
    /// The backend failed (I/O, database).
    #[error("cloud storage: {0}")]
    Backend(String),
    /// A stored record does not decode.
    #[error("cloud storage holds a corrupt {what}: {reason}")]
    Corrupt {
        /// Which record.
        what: String,
        /// Why.
        reason: String,
    },
    /// An append that does not start right after the held prefix (a caller bug or a
    /// concurrent writer): nothing was written.
    #[error("append of {device_id} at seq {first_seq} does not follow the held seq {held_seq}")]
    NotContiguous {
        /// The device.
        device_id: String,
        /// What is held.
        held_seq: u64,
        /// Where the append starts.
        first_seq: u64,
    },
    /// A catalog version not above the one published before.
    #[error("catalog version {version} is not above the published version {published}")]
    CatalogVersion {
        /// The refused version.
        version: u64,
        /// The store's current version.
        published: u64,
    },
}

impl From<rocksdb::Error> for CloudStoreError {
    fn from(error: rocksdb::Error) -> Self {
        Self::Backend(error.to_string())
    }
}

/// What the cloud holds of one device of one store: entries `1 ..= held_seq`, the last
/// with chain hash `chain_hash` (all zero when nothing is held).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceCursor {
    /// Highest contiguous sequence number held.
    pub held_seq: u64,
    /// Chain hash of entry `held_seq`.
    pub chain_hash: ChainHash,
}

/// A store the cloud has heard from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreContact {
    /// The store id (from its devices' certificates).
    pub store_id: String,
    /// Unix ms of the last call from any of its devices.
    pub last_contact_ms: i64,
}

/// The cloud's storage of every store's data.
///
/// # Obligations
/// - **Durable on return.** Every write method returns only once its data survives a
///   crash (fsync / commit); the cloud acknowledges uploads on that basis.
/// - **Atomic append.** [`append`](Self::append) stores all entries of an upload and
///   moves the device's cursor in one atomic write; a crash leaves either all or nothing.
/// - **Contiguous.** A device's stored entries are exactly `1 ..= held_seq`;
///   `append` refuses ([`CloudStoreError::NotContiguous`]) anything but `held_seq + 1 ..`.
/// - **Immutable.** Stored entry bytes never change.
/// - **Per store.** Nothing of one store is visible through another store's id.
pub trait CloudStore: Send + Sync {
    /// The cursor of `(store_id, device_id)` (held_seq 0 when nothing is held).
    ///
    /// # Errors
    /// Backend errors.
    fn cursor(&self, store_id: &str, device_id: &str) -> Result<DeviceCursor, CloudStoreError>;

    /// The store's version vector: every device's `held_seq`.
    ///
    /// # Errors
    /// Backend errors.
    fn version_vector(&self, store_id: &str) -> Result<VersionVector, CloudStoreError>;

    /// Stores a verified upload that starts at the device's `held_seq + 1`, with its head.
    ///
    /// # Errors
    /// [`CloudStoreError::NotContiguous`]; backend errors (nothing written).
    fn append(&self, store_id: &str, upload: &VerifiedUpload) -> Result<(), CloudStoreError>;

    /// Up to `limit` stored entries of a device after `after_seq`, in order.
    ///
    /// # Errors
    /// Backend errors.
    fn entries_after(
        &self,
        store_id: &str,
        device_id: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, CloudStoreError>;

    /// The stored key attestation of a device (verified when stored).
    ///
    /// # Errors
    /// Backend errors.
    fn key_attestation(
        &self,
        store_id: &str,
        device_id: &str,
    ) -> Result<Option<KeyAttestation>, CloudStoreError>;

    /// Stores a verified key attestation of a device (replacing an older incarnation's).
    ///
    /// # Errors
    /// Backend errors.
    fn put_key_attestation(
        &self,
        store_id: &str,
        device_id: &str,
        attestation: &KeyAttestation,
    ) -> Result<(), CloudStoreError>;

    /// Records a call from the store at `now_ms` (Unix ms; never moves back).
    ///
    /// # Errors
    /// Backend errors.
    fn record_contact(&self, store_id: &str, now_ms: i64) -> Result<(), CloudStoreError>;

    /// Every store heard from, by id.
    ///
    /// # Errors
    /// Backend errors.
    fn stores(&self) -> Result<Vec<StoreContact>, CloudStoreError>;

    /// Publishes a catalog for a store; its version must exceed the current one.
    ///
    /// # Errors
    /// [`CloudStoreError::CatalogVersion`]; backend errors.
    fn publish_catalog(
        &self,
        store_id: &str,
        release: &CatalogRelease,
    ) -> Result<(), CloudStoreError>;

    /// The newest catalog published for a store.
    ///
    /// # Errors
    /// Backend errors.
    fn catalog(&self, store_id: &str) -> Result<Option<CatalogRelease>, CloudStoreError>;

    /// Keeps a store's Raft snapshot taken at `raft_log_index` when newer than the held one.
    /// Returns the index now held.
    ///
    /// # Errors
    /// Backend errors.
    fn put_snapshot(
        &self,
        store_id: &str,
        raft_log_index: u64,
        state: &[u8],
    ) -> Result<u64, CloudStoreError>;

    /// The store's newest Raft snapshot, `(raft_log_index, state)`.
    ///
    /// # Errors
    /// Backend errors.
    fn snapshot(&self, store_id: &str) -> Result<Option<(u64, Vec<u8>)>, CloudStoreError>;

    /// The device's signed chain head at its `held_seq` (what a restore verifies the
    /// device's entries against); `None` when nothing is held.
    ///
    /// # Errors
    /// Backend errors.
    fn head(
        &self,
        store_id: &str,
        device_id: &str,
    ) -> Result<Option<posmesh_proto::journal::v1::ChainHeadSignature>, CloudStoreError>;

    /// Records certificate revocations the store's Raft group committed, as `(serial,
    /// effective_index)` (serial: lowercase hex; index: the Raft log index it is refused
    /// from). A serial already recorded keeps its index (a revocation never moves).
    /// Returns how many were new. Durable on return.
    ///
    /// # Errors
    /// Backend errors (nothing written).
    fn add_revocations(
        &self,
        store_id: &str,
        revocations: &[(String, u64)],
    ) -> Result<usize, CloudStoreError>;

    /// The Raft log index from which the store revoked certificate `serial`, if it did.
    ///
    /// # Errors
    /// Backend errors.
    fn revoked_at(&self, store_id: &str, serial: &str) -> Result<Option<u64>, CloudStoreError>;

    /// Records ledger cuts the store's Raft group committed
    /// ([`posmesh_consensus::ledger_cut`]), as `(device, up_to_seq, cut_at_index)`. A
    /// device already cut keeps its cut (a cut never moves). Returns how many were new.
    /// Durable on return.
    ///
    /// # Errors
    /// Backend errors (nothing written).
    fn add_ledger_cuts(
        &self,
        store_id: &str,
        cuts: &[(String, u64, u64)],
    ) -> Result<usize, CloudStoreError>;

    /// The last sequence number of `device_id`'s journal the store keeps, if the store
    /// cut it: entries beyond it are refused.
    ///
    /// # Errors
    /// Backend errors.
    fn ledger_cut(&self, store_id: &str, device_id: &str) -> Result<Option<u64>, CloudStoreError>;
}
