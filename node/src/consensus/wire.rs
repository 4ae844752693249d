//! Messages of the store's Raft RPCs on the mesh: one [`RaftRequest`] per call, one
//! [`RaftReply`] back, JSON-encoded (openraft's types are serde). A snapshot travels whole
//! in one call, so it must fit one mesh frame (4 MiB); a store's state machine is a few
//! kilobytes to a few hundred.

use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::type_config::alias::{SnapshotMetaOf, VoteOf};
use posmesh_consensus::{StoreCommand, StoreResponse, TypeConfig};
use serde::{Deserialize, Serialize};

/// A call to a peer's Raft.
#[derive(Debug, Serialize, Deserialize)]
pub enum RaftRequest {
    /// AppendEntries (Raft §5.3), heartbeats included.
    Append(AppendEntriesRequest<TypeConfig>),
    /// RequestVote (Raft §5.2).
    Vote(VoteRequest<TypeConfig>),
    /// Pre-vote (Raft thesis §9.6): would you vote for me?
    PreVote(VoteRequest<TypeConfig>),
    /// A whole snapshot (InstallSnapshot, Raft §7).
    Snapshot {
        /// The leader's vote.
        vote: VoteOf<TypeConfig>,
        /// What the snapshot covers.
        meta: SnapshotMetaOf<TypeConfig>,
        /// The snapshot's bytes.
        data: Vec<u8>,
    },
    /// A leader stepping down asks this node to take over (openraft's leader transfer).
    TransferLeader(openraft::raft::TransferLeaderRequest<TypeConfig>),
    /// A command forwarded by a follower to the leader, to be committed there.
    ClientWrite(StoreCommand),
    /// A manager's removal of a device, forwarded to the leader: retire it (committed), then
    /// take it out of the membership.
    RemoveDevice {
        /// The device.
        device_id: String,
    },
    /// A linearizable read of a gift card's balance, forwarded to the leader.
    ReadGiftCard {
        /// The card.
        card_id: String,
    },
}

/// The answer to a [`RaftRequest`].
#[derive(Debug, Serialize, Deserialize)]
pub enum RaftReply {
    /// To `Append`.
    Append(AppendEntriesResponse<TypeConfig>),
    /// To `Vote` and `PreVote`.
    Vote(VoteResponse<TypeConfig>),
    /// To `Snapshot`.
    Snapshot(SnapshotResponse<TypeConfig>),
    /// To `ClientWrite`: the log index and the state machine's answer.
    Written {
        /// Log index the command was applied at.
        index: u64,
        /// The state machine's response.
        response: StoreResponse,
    },
    /// To `TransferLeader`: `None` when accepted, else why it was rejected.
    TransferLeader(Option<String>),
    /// To `RemoveDevice`: done.
    Removed,
    /// To `ReadGiftCard`: balance in minor units and the ISO 4217 code, if the card exists.
    GiftCard(Option<(i64, String)>),
    /// The peer could not serve the call (not leader, no quorum, stopped…): why.
    Failed(String),
}
