//! Durable storage of a node: one RocksDB per data directory.
//!
//! - [`keys`]: how records are laid out in keys (column families, byte encodings).
//! - [`journal_store`]: opening the database and reading journal entries and records.
//! - [`writer`]: the single journal writer thread and its group commit.
//! - [`replica`]: reads and writes of replication — version vector, other devices'
//!   batches and key attestations.
//! - [`replica_effects`]: what another device's entries change beyond the journal (order
//!   index, sale status, alerts on merge).
//! - [`saf`]: the store-and-forward queue of offline card payments and their sealed card
//!   data (outside the hash chain).
//! - [`orders`]: shared orders' documents, the order index and manager alerts.
//! - [`pending_auth`]: durable reversal records of card authorisations in flight.
//! - [`pin_attempts`]: this device's wrong-PIN counts and lockouts.
//! - [`own_revocation`]: this device's own certificate revocation, as it learned it.
//! - [`error`]: storage errors.

pub mod error;
pub mod journal_store;
pub mod keys;
pub mod orders;
pub mod own_revocation;
pub mod pending_auth;
pub mod pin_attempts;
pub mod replica;
pub mod replica_effects;
pub mod saf;
pub mod writer;

pub use error::StorageError;
pub use journal_store::JournalStore;

#[cfg(test)]
mod writer_tests;
