//! Replication of the sales ledger between the devices of a store.
//!
//! Every device appends to its own journal (gap-free `seq`, SHA-256 hash chain, an Ed25519
//! signed head per written batch). The union of all journals is a grow-only set of
//! `(device, seq)` entries — a G-Set CRDT (Shapiro et al., "Conflict-free Replicated Data
//! Types", 2011) — so replicas converge by exchanging what the other lacks, in any order,
//! any number of times. What a node holds is summarised by a [`VersionVector`] (Parker et al.
//! 1983); nodes exchange vectors periodically and push the difference: anti-entropy as in
//! Demers et al., "Epidemic Algorithms for Replicated Database Maintenance" (PODC 1987),
//! with new local entries also pushed at once.
//!
//! The [`Replicator`] is sans-IO (quinn-proto style): the driver passes time and messages in,
//! reads the ledger through [`LedgerRead`] and device keys through [`SigningKeys`], and
//! carries out what [`Replicator::poll_transmit`] and [`Replicator::poll_event`] return.
//! Wire messages are `posmesh.sync.v1` ([`posmesh_proto::sync::v1`]).
//!
//! # Layout
//! - [`version_vector`] — the [`VersionVector`].
//! - [`replicator`] — the [`Replicator`] state machine.
//! - [`config`] — [`ReplicatorConfig`], its limits and timers.
//! - [`event`] — [`ReplicationEvent`] and [`RefusalReason`].
//! - [`ledger_read`], [`signing_keys`] — the traits the driver implements; the ledger also
//!   answers devices' ledger cuts ([`LedgerRead::cut`]: a revoked or retired device's
//!   entries beyond its cut are neither sent nor accepted, [`RefusalReason::BeyondCut`]).
//! - [`key_pinning`] — which key verifies a device's journal ([`judge_key`]: a key that
//!   verifies held entries is never replaced) and how a device learns that its id has
//!   history it does not hold ([`own_identity_conflict`]).
//! - [`peer_id`], [`stats`] — [`PeerId`] and [`ReplicatorStats`].
//! - `canary` (feature `canaries`, enabled by the simulator only) — planted bugs the
//!   simulation's checkers must catch.
//! - private: `batch_check` (verifying a received batch), `batch_cut` (cutting a batch to
//!   send at a signed head), `peer_state` (send windows per peer), `inbound` (pending store
//!   and parked batches per device).
//! - tests: `cut_tests` (ledger cuts in the replicator and the cloud's ingest).
//!
//! # Tests
//! Beside the unit tests here, the replicator is tested where an in-memory ledger and a
//! simulated store exist: `simulations/tests/replication` (the sans-IO contract input by
//! input, every refusal reason) and the deterministic simulator (`simulations/src/sim`,
//! `make sim`), which drives it through crashes, partitions and tampering.

pub(crate) mod batch_check;
pub(crate) mod batch_cut;
#[cfg(feature = "canaries")]
pub mod canary;
pub mod config;
#[cfg(test)]
mod cut_tests;
pub mod event;
mod inbound;
pub mod key_pinning;
pub mod ledger_read;
pub mod peer_id;
mod peer_state;
pub mod replicator;
pub mod signing_keys;
pub mod stats;
pub mod version_vector;

#[cfg(feature = "canaries")]
pub use canary::Canary;
pub use config::ReplicatorConfig;
pub use event::{RefusalReason, ReplicationEvent};
pub use key_pinning::{
    judge_key, own_identity_conflict, IdentityConflict, IdentityEvidence, KeyClaim, KeyConflict,
    KeyVerdict,
};
pub use ledger_read::LedgerRead;
pub use peer_id::PeerId;
pub use replicator::Replicator;
pub use signing_keys::SigningKeys;
pub use stats::ReplicatorStats;
pub use version_vector::{VersionVector, VERSION_VECTOR_DEVICES_MAX};
