//! Replication of the sales ledger between the devices of a store, on the node's side: the
//! tokio driver of the sans-IO core [`posmesh_sync::replication`] over the store mesh.
//!
//! Each peer connection carries one `Sync` stream per direction; its frames are
//! `posmesh.mesh.v1.SyncFrame`s: replication messages of the core, and key attestations
//! (`posmesh_mesh::tls::KeyAttestation`) that bind each device's Ed25519 chain-head key to
//! its certificate. A node sends its own attestation and every one it has verified to each
//! peer, and relays those it learns, so keys reach devices that never met directly.
//!
//! # Layout
//! - [`service`]: [`ReplicationService`] — owns the [`Replicator`](posmesh_sync::replication::Replicator),
//!   routes its transmits, persists its `Store`s, counts its refusals, follows local commits.
//! - [`peer_link`]: the send and receive loops of one connection's `Sync` streams.
//! - [`node_ledger`]: [`NodeLedger`], the core's `LedgerRead` over the node's RocksDB.
//! - [`device_keys`]: [`DeviceKeys`], the core's `SigningKeys` from verified attestations,
//!   pinned ([`posmesh_sync::replication::key_pinning`]).
//! - [`key_conflicts`]: a second key claimed for a device, reported once (ERROR, alert).
//! - [`identity_conflict`]: this device's id has history elsewhere that it does not hold
//!   (a wiped till restarted under its old id): it stops selling.
//! - [`own_id_refusals`]: such a device's refusals of its own id's entries pushed by
//!   peers, logged at WARN once per peer.
//! - [`card_escrow`]: peer escrow of the sealed card data of offline card payments.
//! - [`catch_up`]: [`CatchUp`](catch_up::CatchUp), entries behind the peers and the
//!   progress lines of a device catching up.
//! - [`ledger_digest`]: [`LedgerDigest`], the per-device heads and their digest shown by
//!   the management API, so nodes can be compared.

pub mod card_escrow;
pub mod catch_up;
pub mod device_keys;
pub mod identity_conflict;
pub mod key_conflicts;
pub mod ledger_digest;
pub mod node_ledger;
pub mod own_id_refusals;
pub mod peer_link;
pub mod service;

pub use device_keys::{DeviceKeys, VerifiedKey};
pub use ledger_digest::LedgerDigest;
pub use node_ledger::NodeLedger;
pub use service::{ReplicationService, ReplicationSnapshot};
