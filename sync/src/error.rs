//! The crate's error enum.

use thiserror::Error;

/// Errors of the ledger and replication cores.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncError {
    /// A journal entry's bytes are not a valid `JournalEntry` protobuf message.
    #[error("entry at seq {seq} of device {device_id:?} does not decode: {reason}")]
    Undecodable {
        /// Device whose journal holds the entry.
        device_id: String,
        /// Sequence number the entry is stored under.
        seq: u64,
        /// Decoder message.
        reason: String,
    },
    /// A signed chain head does not verify.
    #[error("chain head signature of device {device_id:?} at seq {seq}: {reason}")]
    BadSignature {
        /// Device whose head it is.
        device_id: String,
        /// Sequence number of the head.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
    /// A link of the hash chain is broken; see [`crate::chain::ChainBreak`].
    #[error("chain broken at seq {} of device {:?}: {}", .0.seq, .0.device_id, .0.kind)]
    ChainBroken(crate::chain::ChainBreak),
    /// A replication message from a peer is not well formed (e.g. a version vector that
    /// names a device twice or has too many devices).
    #[error("malformed sync message: {reason}")]
    MalformedMessage {
        /// What is wrong.
        reason: String,
    },
    /// A replication configuration is not usable (fatal: fix the configuration).
    #[error("invalid replication config: {reason}")]
    InvalidConfig {
        /// Which limit is wrong and why.
        reason: String,
    },
}
