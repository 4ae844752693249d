//! The store's uplink to the chain's cloud, on every device that has `--cloud`: uploads
//! what the cloud lacks of the store's ledger (every device's entries this device holds,
//! not only its own), in bounded batches cut at signed heads, resuming from the cloud's
//! version vector after any interruption; uploads the store's Raft snapshot; and brings the
//! catalog published at the cloud into the store's Raft group.
//!
//! # Layout
//! - [`service`]: [`UplinkService`] — the connect / hello / upload loop with backoff, and
//!   [`UplinkStatus`] for `posmesh status` (metrics `posmesh_uplink_*`).
//! - [`catalog_proposal`]: which device proposes a published catalog (the leader at once,
//!   a follower after a grace), so the Raft log takes one entry per release.

pub mod catalog_proposal;
pub mod service;

pub use service::{UplinkService, UplinkStatus};
