//! The chain's cloud (`posmesh cloud`): accepts the devices of every store of the chain
//! over QUIC with mutual TLS, ingests their journal entries exactly once by
//! `(store, device, seq)` — checking hash chains and signed heads with the sans-IO
//! [`posmesh_sync::cloud`] core — tells each store its version vector, keeps each store's
//! Raft snapshot, publishes catalogs to stores, and reports on the chain.
//!
//! # Layout
//! - [`store`]: the [`CloudStore`] storage trait, its obligations, and how a PostgreSQL
//!   backend maps onto it.
//! - [`rocks_store`]: [`RocksCloudStore`], the embedded default (RocksDB).
//! - [`service`]: [`CloudService`], the answer to each device call.
//! - [`report`]: the chain report (sales per store, day and tender; last contact;
//!   unforwarded offline card payments).
//! - [`server`]: `posmesh cloud serve` — the QUIC endpoint and the HTTP admin API.
//! - [`journal_routes`]: the admin API's read of a store's journals (for a restore).
//! - [`admin_token`]: the admin API's bearer token (file, check, 401 answers).
//! - [`process`]: [`process::CloudProcess`], the cloud as a child process (demo, tests).
//! - [`client`]: `posmesh cloud publish-catalog` and `posmesh report chain`, over the
//!   admin API.

pub mod admin_token;
pub mod client;
pub mod journal_routes;
pub mod process;
pub mod report;
pub mod rocks_store;
pub mod server;
pub mod service;
pub mod store;
#[cfg(test)]
mod tests;

pub use report::{ChainReport, StoreReport};
pub use rocks_store::RocksCloudStore;
pub use service::CloudService;
pub use store::{CloudStore, CloudStoreError};
