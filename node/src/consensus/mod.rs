//! Store-wide decisions on a device node: the store's Raft group
//! ([`posmesh_consensus`], openraft on RocksDB) driven over the store mesh.
//!
//! - [`service`]: [`RaftService`] — opens the Raft storage (`<data-dir>/raft`), bootstraps a
//!   store on its first device (`--raft-bootstrap`), adds every connected device of the
//!   store as a learner and promotes caught-up learners to voters while there are fewer
//!   than five (keeping the count odd where it can), forwards writes and linearizable reads
//!   to the leader, hands leadership over on a graceful stop, and reports role, term,
//!   leader, commit and applied index for `posmesh status`.
//! - [`founding`]: `posmesh init` — the Raft group initialised on the store's first
//!   device, with the provisioning file's commands committed, durably, before it returns.
//! - [`network`]: openraft's network over the mesh — one request/response call per RPC on
//!   `Raft` streams of the peer's connection ([`posmesh_mesh::transport::MeshConnection::call`]).
//! - [`append_budget`]: an AppendEntries cut to fit one mesh frame (a few large entries
//!   never stop a lagging follower from catching up).
//! - [`forwarding`]: client writes a follower forwards to the leader, coalesced into one
//!   call while earlier ones are under way.
//! - [`assigned_key`]: the Idempotency-Key a device gives a guarded write its client sent
//!   without one, so that every guarded write can be resent after a leader's death.
//! - [`resend`]: whether a forwarded write whose answer was lost with the leader may be
//!   sent again to the next leader (a command whose second application is a no-op replay).
//! - [`wire`]: the RPC messages (JSON of openraft's serde types; snapshot chunks raw).
//! - [`snapshot_transfer`]: a snapshot cut into chunks that fit a mesh frame, and put back
//!   together on the receiving device (sans-IO).
//! - [`leader_precheck`]: the pre-check on the leader before it proposes (its own API's
//!   commands and those forwarded by followers): refusals the state alone decides take no
//!   Raft entry; those a newer entry could lift are decided on its settled state.
//! - [`leader_contact`]: when a leader was last heard; a follower forwards writes only to
//!   a leader heard lately, and otherwise waits (bounded) for one.
//! - [`ledger_cut`]: the leader fills a revocation's or retirement's ledger cut (the
//!   device's position in its own chain) from its ledger before it proposes it.
//! - [`node_id`]: device id → Raft node id.
//! - [`own_revocation`]: a device whose own certificate was revoked store-wide finds out
//!   (alert, status, writes refused).
//! - [`retirement`]: a device removed from the store finds out (its own retirement
//!   applied, or a peer refusing its calls), says so once and stops taking writes.
//! - [`rules_adoption`]: when the leader adopts a newer rules version (every member
//!   follows it) and which devices may join ([`posmesh_consensus::rules`]).
//! - [`group_file`]: the Raft group's identity in the data directory; every RPC carries it
//!   and a peer of another group (a store initialised twice) is refused
//!   ([`posmesh_consensus::group`]), shown in `posmesh status` and raised as an alert.
//!
//! - [`seat`]: a device's seat in the group is tied to its Raft database's incarnation; a
//!   device that lost its Raft state (wiped, restarted under its old id) refuses its old
//!   seat's calls and is refused, so it never votes or counts towards a commit.
//! - [`lost_member`]: members found to have lost their Raft state, alerted and taken out
//!   of the group by the leader.
//!
//! Sales never wait on any of this (DESIGN: local first).

pub mod append_budget;
pub mod assigned_key;
pub mod forwarding;
pub mod founding;
pub mod group_file;
pub mod leader_contact;
pub mod leader_precheck;
pub mod ledger_cut;
pub mod lost_member;
pub mod network;
pub mod node_id;
pub mod own_revocation;
pub mod resend;
pub mod retirement;
pub mod rules_adoption;
pub mod seat;
pub mod service;
pub mod snapshot_transfer;
pub mod voter_parity;
pub mod wire;

pub use node_id::node_id;
pub use service::{RaftService, RaftStatus};
