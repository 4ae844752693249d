//! Store-wide decisions through Raft: openraft 0.10 with RocksDB-backed log and state
//! machine storage, and the store's state machine.
//!
//! # Layout
//! - [`command`]: [`StoreCommand`] (what goes into a log entry), [`StoreResponse`],
//!   [`Outcome`] and [`Refusal`] (what a client gets back). serde/JSON.
//! - [`state`]: [`StoreState`] and its sans-IO, deterministic
//!   `apply(index, command) -> response`: gift cards, catalog version, day close,
//!   certificate revocations, offline card exposure allotments, tax rates ([`tax`]),
//!   operators and shifts ([`staff`]).
//! - [`storage`]: openraft's `RaftLogStorage` ([`LogStore`]) and `RaftStateMachine`
//!   ([`StateMachineStore`], also the snapshot builder) on one RocksDB directory of their
//!   own (`<data-dir>/raft`), column families `raft_log`, `raft_meta`, `raft_sm`.
//! - [`rocksdb_tuning`]: how every posmesh RocksDB is opened (recovery mode, tables); the
//!   node's journal store uses it too.
//! - [`timings`]: [`RaftTimings`] for store Wi-Fi and the openraft [`openraft::Config`].
//! - [`failover_nudge`]: [`FailoverNudge`] (sans-IO) — a follower starts a pre-vote as soon
//!   as a silent leader's lease has run out, not an election timeout later;
//!   [`failover_nudge_task`] runs it against a `Raft` ([`NudgeHandle`],
//!   [`run_failover_nudge`]).
//! - [`forced_membership`]: after a permanent quorum loss, a stopped survivor's log gets a
//!   new membership of the devices kept (etcd's `--force-new-cluster`), with a plan of what
//!   may be lost first.
//! - [`group`]: a Raft group's identity ([`group::GroupIdentity`]) and the gate that refuses
//!   another group's RPCs (a store initialised twice) before they touch the log or the vote.
//! - [`restore`]: a store that lost every device, restored on a new device from the state
//!   the cloud keeps (installed as a snapshot, membership forced to the new device).
//! - [`ledger_cut`]: [`LedgerCut`] — where a revoked or retired device's journal ends for
//!   the store (every ledger and the cloud refuse its entries beyond it).
//! - [`precheck`]: the refusals decided by the state alone, asked by the API on its
//!   device's applied state before it proposes (no Raft entry for a certain refusal).
//! - [`rules`]: rules versions — which rules `apply` follows, switched on by an entry
//!   ([`StoreCommand::AdoptRules`]) at the same log index on every replica, so a rule
//!   change never makes an old log or an older replica compute another state.
//! - [`serial`]: the canonical form of a certificate serial in the log, and the
//!   normalisation of what an admin types (hex case folded, zero refused).
//! - [`snapshot_receive`]: a leader's snapshot is installed unless this device's log already
//!   holds its last entry (Raft §7 rule 6; works around an openraft cursor that otherwise
//!   stalls the follower's state machine short of its commit index).
//! - [`client`]: [`write`] and [`read_linearizable`] with openraft's errors mapped to
//!   [`ConsensusError`] (`Unconfirmed`, `NoQuorum`, `NoLeader`, `NotLeader`, …).
//!
//! The network is not here: openraft's `RaftNetworkFactory`/`RaftNetworkV2` is implemented
//! over the QUIC mesh by the node, and over tokio channels by this crate's cluster test
//! (`tests/consensus_cluster.rs`).
//!
//! # What is durable when
//! - A log entry counts towards a commit only after it is fsynced: `append` writes it, a
//!   flusher thread fsyncs RocksDB's WAL and only then calls openraft's `IOFlushed`
//!   callback (Raft paper §5.3 and Figure 2: followers reply after storing entries on
//!   stable storage; openraft docs `RaftLogStorage::append`).
//! - The vote (term and voted-for) is fsynced before `save_vote` returns (Figure 2:
//!   persistent state is updated on stable storage before responding to RPCs).
//! - A client's response is sent once the entry is on a majority's disks (committed) and
//!   applied in memory; the applied state is a pure function of the log, written as an
//!   unsynced checkpoint every [`storage::CHECKPOINT_EVERY_ENTRIES`] entries and rebuilt
//!   on start by re-applying the committed log after it (see [`storage`]).
//! - Snapshots are fsynced when built or installed, together with the state they hold.
//! - The committed index, truncations and purges are written unsynced and become durable
//!   with the next synced write; losing one is safe (see [`storage`]).
//!
//! # The state machine's rules, and where they come from
//! - Every replica applies the same committed commands in log order and `apply` is pure
//!   (no clock, no randomness): replicas stay identical (Raft paper §5.3, State Machine
//!   Safety; §8: commands must be deterministic).
//! - Retries are idempotent: a gift-card redemption carries a client-chosen
//!   `redemption_id`; a retried id returns the first outcome instead of redeeming twice
//!   (Raft paper §8: "the state machine tracks the latest serial number processed for each
//!   client"; openraft docs `Raft::client_write`). The dedup records live in the state
//!   machine, so they are in snapshots too.
//! - No double spend: a redemption is applied only if the balance covers it; two devices
//!   redeeming the same card concurrently are ordered by the log, the second is refused
//!   with [`Refusal::InsufficientBalance`].
//! - A change to what `apply` computes for an existing command is a new rules version
//!   ([`rules`]), in force from the log index of the entry that adopted it: never from the
//!   binary that runs (an old log replays, and old and new binaries apply side by side,
//!   with the same result).
//! - A refusal changes nothing (DESIGN guarantee 9); refusals are committed responses, not
//!   errors of the consensus layer.
//! - Catalog versions never go back; a business date is closed once, recording the sales
//!   ledger's version vector (the consistent cut); a certificate revocation is effective
//!   from the log index of its entry and never moves (never retroactive: DESIGN, "which
//!   data replicates how"); offline exposure allotments never sum above the store budget
//!   (DESIGN guarantee 6).
//! - Reads that must be linearizable (a gift-card balance before a sale) go through
//!   [`read_linearizable`]: openraft's ReadIndex (Raft paper §8: the leader confirms its
//!   leadership with a quorum before answering a read-only request).
//! - A partitioned minority cannot commit (Raft paper §5.2/§5.4: commits need a majority);
//!   a leader that lost its quorum refuses new proposals once its lease has run out
//!   (openraft docs, "CheckQuorum"). [`write`] reports the first as
//!   [`ConsensusError::Unconfirmed`] (proposed, not committed in time: may still commit) and
//!   the second as [`ConsensusError::NoLeader`] (nothing proposed: safe to send again).

pub mod client;
pub mod command;
pub mod failover_nudge;
pub mod failover_nudge_task;
pub mod forced_membership;
pub mod group;
pub mod idempotency;
pub mod ledger_cut;
pub mod log_cache;
pub mod precheck;
pub mod restore;
pub mod rocksdb_tuning;
pub mod roles;
pub mod rules;
pub mod serial;
pub mod snapshot_receive;
pub mod staff;
pub mod state;
pub mod storage;
pub mod tax;
pub mod timings;

#[cfg(test)]
mod test_fixtures;

pub use client::{read_index, read_linearizable, write, ConsensusError};
pub use command::{Outcome, Refusal, StoreCommand, StoreResponse, CATALOG_TOML_BYTES_MAX};
pub use failover_nudge::{FailoverNudge, NudgeRole};
pub use failover_nudge_task::{run_failover_nudge, NudgeHandle};
pub use ledger_cut::{DeviceCut, LedgerCut};
pub use snapshot_receive::{install_full_snapshot_unless_held, SnapshotReceived};
pub use state::StoreState;
pub use storage::{open, LogStore, OpenError, StateMachineStore, StoreReader};
pub use timings::{raft_config, RaftTimings};

/// A Raft node id. The node maps device ids to node ids; a removed id is never reused
/// (openraft: reusing a removed node's id can corrupt the membership history).
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// openraft's type configuration for the store's Raft group: [`StoreCommand`] in the
    /// log, [`StoreResponse`] back, `u64` node ids, [`openraft::BasicNode`] (an address) per
    /// member, tokio runtime.
    ///
    /// Leader ids are standard Raft's (`leader_id_std`): at most one leader per term (Raft
    /// paper §5.2, "Election Safety"), which the simulator's `raft-election-safety` checker
    /// asserts. openraft's default (`leader_id_adv`) lets two nodes lead the same term.
    pub TypeConfig:
        D = StoreCommand,
        R = StoreResponse,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        LeaderId = openraft::impls::leader_id_std::LeaderId<u64, NodeId>,
);

/// A store's Raft node.
pub type StoreRaft = openraft::Raft<TypeConfig, StateMachineStore>;
