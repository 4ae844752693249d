//! Durable storage of a node: one RocksDB per data directory.
//!
//! - [`keys`]: how records are laid out in keys (column families, byte encodings).
//! - [`journal_store`]: opening the database and reading journal entries and records.
//! - [`writer`]: the single journal writer thread and its group commit.
//! - [`replica`]: reads and writes of replication — version vector, other devices'
//!   batches and key attestations.
//! - [`error`]: storage errors.

pub mod error;
pub mod journal_store;
pub mod keys;
pub mod replica;
pub mod writer;

pub use error::StorageError;
pub use journal_store::JournalStore;

#[cfg(test)]
mod writer_tests;
