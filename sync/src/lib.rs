//! The sales ledger's hash chain and the replication cores, written sans-IO: functions and
//! state machines that take bytes, messages and time as input and return results, so the
//! node (tokio, RocksDB) and the deterministic simulator drive the same code.
//!
//! # Layout
//! - [`chain`]: the per-device journal hash chain (SHA-256) — computing links and verifying
//!   a run of entries, naming the first broken link.
//! - [`chain_head`]: the Ed25519-signed head of a device's chain, one signature per batch.
//! - [`hlc`]: the hybrid logical clock that stamps journal entries.
//! - [`replication`]: version-vector anti-entropy of the ledger between the devices of a
//!   store (the [`replication::Replicator`] state machine, its traits and wire messages).
//! - [`orders`]: shared orders (open tabs) as Automerge documents and their sync
//!   ([`orders::OrderBook`]), and the rule that settles an order closed twice.
//! - [`cloud`]: the cloud uplink's sans-IO parts — cutting upload batches and the cloud's
//!   idempotent ingest decision.
//! - [`error`]: the crate's error enum.
#![deny(clippy::disallowed_methods)]

pub mod chain;
pub mod chain_head;
pub mod cloud;
pub mod error;
pub mod hlc;
pub mod orders;
pub mod replication;

pub use error::SyncError;
