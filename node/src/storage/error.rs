//! Storage errors.

use thiserror::Error;

/// Errors of the node's storage.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StorageError {
    /// RocksDB refused an operation (I/O error, disk full, corruption, lock held…).
    #[error("storage: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// A stored record does not decode.
    #[error("corrupt record {what}: {reason}")]
    Corrupt {
        /// Which record.
        what: String,
        /// Decoder message.
        reason: String,
    },
    /// The data directory belongs to another store or device than the configuration says.
    #[error(
        "data directory belongs to store {stored_store:?} device {stored_device:?}, \
         but the configuration says store {store:?} device {device:?}"
    )]
    IdentityMismatch {
        /// Store id in the directory.
        stored_store: String,
        /// Device id in the directory.
        stored_device: String,
        /// Store id configured.
        store: String,
        /// Device id configured.
        device: String,
    },
    /// An operating-system error outside RocksDB (e.g. starting the writer thread).
    #[error("storage: {0}")]
    Io(#[from] std::io::Error),
    /// A synced write failed; nothing of it was acknowledged. Retry with the same keys.
    #[error("journal write failed: {0}")]
    WriteFailed(String),
    /// Another process (a running node) holds the data directory's lock.
    #[error("data directory {0} is in use by another posmesh node (stop it first)")]
    InUse(String),
    /// A replicated batch that does not extend the stored journal of its device (a driver
    /// bug: the replicator only asks to store what follows what is held), or that names
    /// this node's own device. Nothing was written.
    #[error("replicated batch refused by storage: {0}")]
    ReplicaRefused(String),
    /// The data directory has never been initialised (read-only open of a fresh directory).
    #[error("data directory is not initialised (no identity record)")]
    NotInitialised,
}
