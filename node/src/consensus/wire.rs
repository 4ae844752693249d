//! Messages of the store's Raft RPCs on the mesh: one [`RaftRequest`] per call, one
//! [`RaftReply`] back, JSON-encoded (openraft's types are serde) — except a snapshot chunk,
//! whose bytes travel raw after a JSON header ([`encode_request`], [`decode_request`]), in
//! chunks that each fit one mesh frame ([`super::snapshot_transfer`]).

use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::type_config::alias::{SnapshotMetaOf, VoteOf};
use posmesh_consensus::group::{GroupConflict, GroupIdentity};
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
    /// One chunk of a snapshot (InstallSnapshot, Raft §7, with `offset`): the last one
    /// (`offset + data.len() == total_bytes`) installs it.
    SnapshotChunk {
        /// The leader's vote.
        vote: VoteOf<TypeConfig>,
        /// What the snapshot covers (its signature names the transfer).
        meta: SnapshotMetaOf<TypeConfig>,
        /// Offset of the chunk's first byte in the snapshot.
        offset: u64,
        /// Size of the whole snapshot in bytes.
        total_bytes: u64,
        /// The chunk's bytes: not in the JSON header, raw after it on the wire.
        #[serde(skip)]
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
        /// The operator who authorised the removal (PIN verified by the forwarding
        /// device); `None` in a store without operators. The retirement is proposed as
        /// [`StoreCommand::Authorised`], so the role rules are checked when it applies.
        #[serde(default)]
        authorised_by: Option<String>,
        /// The Idempotency-Key the removing device assigned the retirement
        /// ([`super::assigned_key`]), the same in every send of one removal: proposed
        /// under it, a removal resent to the next leader replays its retirement. `None`
        /// from a device of an older version.
        #[serde(default)]
        idempotency_key: Option<String>,
        /// The sender reads [`RaftReply::RemovedAt`] (the retirement's index and answer,
        /// so a client's key can replay it); `false` from a device of an older version,
        /// answered [`RaftReply::Removed`].
        #[serde(default)]
        answer_index: bool,
    },
    /// A linearizable read of a gift card's balance, forwarded to the leader.
    ReadGiftCard {
        /// The card.
        card_id: String,
    },
    /// Which Raft group are you in? (Asked by a leader before it adds a device as a
    /// learner, so a device of another group is never added.)
    GroupOf,
    /// Commands forwarded by a follower together, to be committed by the leader each on
    /// its own ([`super::forwarding`]); answered with one outcome per command, in order.
    ClientWriteBatch(Vec<StoreCommand>),
    /// Which Raft incarnation is your database, is its log empty, and which rules
    /// versions do you follow? (Asked by a leader before it records a device's seat,
    /// [`super::seat`], before it adds a device as a learner, and of every member before
    /// it adopts a newer rules version, [`posmesh_consensus::rules`].)
    IncarnationOf,
    /// The leader's read index ([`posmesh_consensus::read_index`]): asked by a follower
    /// that must hold every acknowledged write before it answers (an operator created
    /// through another device a moment ago).
    ReadIndex,
}

/// The answer to a [`RaftRequest`].
#[derive(Debug, Serialize, Deserialize)]
pub enum RaftReply {
    /// To `Append`.
    Append(AppendEntriesResponse<TypeConfig>),
    /// To `Vote` and `PreVote`.
    Vote(VoteResponse<TypeConfig>),
    /// To the last `SnapshotChunk`: the snapshot is installed.
    Snapshot(SnapshotResponse<TypeConfig>),
    /// To any other `SnapshotChunk`: taken, send the one at `next_offset`.
    SnapshotChunkTaken {
        /// Offset of the next chunk expected.
        next_offset: u64,
    },
    /// To `ClientWrite`: the log index and the state machine's answer.
    Written {
        /// Log index the command was applied at.
        index: u64,
        /// The state machine's response.
        response: StoreResponse,
    },
    /// To `TransferLeader`: `None` when accepted, else why it was rejected.
    TransferLeader(Option<String>),
    /// To `RemoveDevice` from a sender of an older version: done.
    Removed,
    /// To `RemoveDevice` with `answer_index`: the log index and the state machine's answer
    /// to the retirement — applied, a replay of its key (the first outcome), or refused
    /// (nothing changed: the key used for another request, the operator's role).
    RemovedAt {
        /// Log index the retirement was applied (or refused) at.
        index: u64,
        /// The state machine's response.
        response: StoreResponse,
    },
    /// To `ReadGiftCard`: balance in minor units and the ISO 4217 code, if the card exists.
    GiftCard(Option<(i64, String)>),
    /// The peer could not serve the call (not leader, no quorum, stopped…): why.
    Failed(String),
    /// To `GroupOf`: the peer's Raft group (`None`: it is in none yet).
    GroupIs(Option<GroupIdentity>),
    /// The peer refused the call: the caller belongs to another Raft group (code
    /// `raft_group_mismatch`; `peer` is the caller, `local_group` the refusing peer's).
    WrongGroup(GroupConflict),
    /// To `RemoveDevice`: refused, the device is the store's only voter (nothing changed).
    LastVoter {
        /// The device asked to be removed.
        device_id: String,
    },
    /// To `ClientWriteBatch`: per command, in order, its outcome or why it failed.
    WrittenBatch(Vec<Result<ForwardedWrite, String>>),
    /// The peer refused the call: the caller was retired from the store (removed by a
    /// manager) and is no member any more (code `device_retired`,
    /// [`super::retirement`]).
    Retired {
        /// The caller, as the peer knows it.
        device_id: String,
        /// Raft log index of its retirement.
        retired_at_index: u64,
    },
    /// To `IncarnationOf`.
    IncarnationIs {
        /// The incarnation of the peer's Raft database.
        incarnation: u64,
        /// Its Raft log is empty (no entry, no snapshot).
        empty_log: bool,
        /// It refuses its seat: it knows its Raft state lost, or its id is in
        /// `device_identity_conflict`.
        seat_barred: bool,
        /// The newest rules version it follows ([`posmesh_consensus::rules`]); `None`
        /// from a node of an older version, which follows version 1 only. (An older
        /// node reading this answer ignores the field.)
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rules_up_to: Option<u32>,
    },
    /// The peer refused the call: `device_id` (the peer itself or the caller) lost its
    /// Raft state — it is not the incarnation its seat is recorded under (code
    /// `raft_state_lost`, [`super::seat`]).
    SeatLost {
        /// The device that lost its Raft state.
        device_id: String,
        /// The incarnation its seat is recorded under, if known to the peer.
        seat: Option<u64>,
        /// The incarnation it is now, if known to the peer.
        answering_as: Option<u64>,
    },
    /// To `ReadIndex`: the log index a follower must have applied to hold every write
    /// acknowledged before the call.
    ReadIndexIs(u64),
}

/// What a call says about its sender besides the request: its Raft group, its Raft
/// incarnation and the incarnation it has recorded for the receiver ([`super::seat`]).
/// JSON with the group's fields at the top level, so a node of an older version, which
/// reads a [`GroupIdentity`] here, still understands it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallHeader {
    /// The sender's Raft group.
    #[serde(flatten)]
    pub group: GroupIdentity,
    /// The sender's Raft incarnation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_incarnation: Option<u64>,
    /// The receiver's seat as the sender has it recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_incarnation: Option<u64>,
}

/// A forwarded command's outcome: committed and applied.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ForwardedWrite {
    /// Log index the command was applied at.
    pub index: u64,
    /// The state machine's response.
    pub response: StoreResponse,
}

/// How a request this node cannot decode is answered (the start of [`WireError::Json`]'s
/// text): a follower that sent a batch to an older leader sends its commands again one by
/// one.
pub const UNDECODABLE: &str = "undecodable request";

/// First byte of a request with a raw payload: `0x00`, never the first byte of JSON.
const RAW_PAYLOAD_MARK: u8 = 0x00;
/// First byte of a request that names the sender's Raft group: `0x01`.
const GROUP_MARK: u8 = 0x01;

/// Why a request's bytes could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The bytes end before the header length or the header they announce.
    #[error("request truncated: {0}")]
    Truncated(&'static str),
    /// The JSON is not a [`RaftRequest`].
    #[error("undecodable request: {0}")]
    Json(#[from] serde_json::Error),
    /// A raw payload came with a request that has none.
    #[error("raw payload with a request that takes none")]
    UnexpectedPayload,
}

/// The bytes of `request`: its JSON, or for a [`RaftRequest::SnapshotChunk`]
/// `0x00 ‖ header length (u32, big-endian) ‖ JSON header ‖ raw chunk bytes`.
///
/// # Errors
/// serde_json's, if the request cannot be serialised (not expected for these types).
pub fn encode_request(request: &RaftRequest) -> Result<Vec<u8>, serde_json::Error> {
    let header = serde_json::to_vec(request)?;
    let RaftRequest::SnapshotChunk { data, .. } = request else {
        return Ok(header);
    };
    let header_len = u32::try_from(header.len()).map_err(serde::ser::Error::custom)?;
    let mut bytes = Vec::with_capacity(5 + header.len() + data.len());
    bytes.push(RAW_PAYLOAD_MARK);
    bytes.extend_from_slice(&header_len.to_be_bytes());
    bytes.extend_from_slice(&header);
    bytes.extend_from_slice(data);
    Ok(bytes)
}

/// The request in `bytes` (see [`encode_request`]).
///
/// # Errors
/// [`WireError`] for truncated bytes, bad JSON, or a payload on a request without one.
pub fn decode_request(bytes: &[u8]) -> Result<RaftRequest, WireError> {
    let Some((&RAW_PAYLOAD_MARK, rest)) = bytes.split_first() else {
        return Ok(serde_json::from_slice(bytes)?);
    };
    let (len, rest) = rest
        .split_first_chunk::<4>()
        .ok_or(WireError::Truncated("header length"))?;
    let header_len = usize::try_from(u32::from_be_bytes(*len))
        .map_err(|_| WireError::Truncated("header length"))?;
    if rest.len() < header_len {
        return Err(WireError::Truncated("header"));
    }
    let (header, payload) = rest.split_at(header_len);
    let mut request: RaftRequest = serde_json::from_slice(header)?;
    match &mut request {
        RaftRequest::SnapshotChunk { data, .. } => *data = payload.to_vec(),
        _ => return Err(WireError::UnexpectedPayload),
    }
    Ok(request)
}

/// The bytes of `request` sent by a member of a group: `0x01 ‖ header length (u32,
/// big-endian) ‖` [`CallHeader`] JSON `‖` [`encode_request`]; without a group,
/// [`encode_request`] alone.
///
/// # Errors
/// serde_json's, as [`encode_request`].
pub fn encode_envelope(
    header: Option<&CallHeader>,
    request: &RaftRequest,
) -> Result<Vec<u8>, serde_json::Error> {
    let inner = encode_request(request)?;
    let Some(header) = header else {
        return Ok(inner);
    };
    let header = serde_json::to_vec(header)?;
    let header_len = u32::try_from(header.len()).map_err(serde::ser::Error::custom)?;
    let mut bytes = Vec::with_capacity(5 + header.len() + inner.len());
    bytes.push(GROUP_MARK);
    bytes.extend_from_slice(&header_len.to_be_bytes());
    bytes.extend_from_slice(&header);
    bytes.extend_from_slice(&inner);
    Ok(bytes)
}

/// The sender's header (if it named a group) and the request in `bytes` (see
/// [`encode_envelope`]).
///
/// # Errors
/// [`WireError`], as [`decode_request`], and for a truncated group header.
pub fn decode_envelope(bytes: &[u8]) -> Result<(Option<CallHeader>, RaftRequest), WireError> {
    let Some((&GROUP_MARK, rest)) = bytes.split_first() else {
        return Ok((None, decode_request(bytes)?));
    };
    let (len, rest) = rest
        .split_first_chunk::<4>()
        .ok_or(WireError::Truncated("group length"))?;
    let group_len = usize::try_from(u32::from_be_bytes(*len))
        .map_err(|_| WireError::Truncated("group length"))?;
    if rest.len() < group_len {
        return Err(WireError::Truncated("group"));
    }
    let (group, request) = rest.split_at(group_len);
    Ok((
        Some(serde_json::from_slice(group)?),
        decode_request(request)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::type_config::alias::{LeaderIdOf, LogIdOf, StoredMembershipOf};
    use openraft::vote::{RaftLeaderId, RaftVote};

    fn leader() -> LeaderIdOf<TypeConfig> {
        <LeaderIdOf<TypeConfig> as RaftLeaderId>::new(3, 7)
    }

    fn chunk(data: Vec<u8>) -> RaftRequest {
        RaftRequest::SnapshotChunk {
            vote: VoteOf::<TypeConfig>::from_leader_id(leader(), true),
            meta: SnapshotMetaOf::<TypeConfig> {
                last_log_id: Some(LogIdOf::<TypeConfig>::new(leader().to_committed(), 42)),
                last_membership: StoredMembershipOf::<TypeConfig>::default(),
            },
            offset: 1024,
            total_bytes: 4096,
            data,
        }
    }

    #[test]
    fn a_chunk_travels_raw_after_its_header() {
        let data: Vec<u8> = (0..=255).cycle().take(3000).collect();
        let bytes = encode_request(&chunk(data.clone())).expect("encodes");
        assert_eq!(bytes[0], RAW_PAYLOAD_MARK);
        assert!(bytes.ends_with(&data), "payload not raw at the end");
        assert!(bytes.len() < data.len() + 1024, "{} bytes", bytes.len());
        match decode_request(&bytes).expect("decodes") {
            RaftRequest::SnapshotChunk {
                offset,
                total_bytes,
                data: decoded,
                meta,
                ..
            } => {
                assert_eq!((offset, total_bytes), (1024, 4096));
                assert_eq!(meta.last_log_id.map(|l| l.index()), Some(42));
                assert!(decoded == data, "payload differs");
            }
            other => panic!("decoded as {other:?}"),
        }
    }

    #[test]
    fn other_requests_stay_plain_json() {
        let request = RaftRequest::ReadGiftCard {
            card_id: "GC-1".into(),
        };
        let bytes = encode_request(&request).expect("encodes");
        assert_eq!(bytes[0], b'{');
        assert!(matches!(
            decode_request(&bytes),
            Ok(RaftRequest::ReadGiftCard { card_id }) if card_id == "GC-1"
        ));
    }

    #[test]
    fn a_request_carries_its_senders_group() {
        let group = GroupIdentity::found("till-1", 1_796_032_000_000, 42);
        let header = CallHeader {
            group: group.clone(),
            from_incarnation: Some(0xfeed),
            to_incarnation: Some(u64::MAX),
        };
        for request in [chunk(vec![7; 100]), RaftRequest::GroupOf] {
            let bytes = encode_envelope(Some(&header), &request).expect("encodes");
            assert_eq!(bytes[0], GROUP_MARK);
            let (sent_by, decoded) = decode_envelope(&bytes).expect("decodes");
            assert_eq!(sent_by.as_ref(), Some(&header));
            assert_eq!(format!("{decoded:?}"), format!("{request:?}"));
            assert!(
                decode_envelope(&bytes[..bytes.len().min(8)]).is_err(),
                "truncated group header accepted"
            );
        }
        // A node of an older version reads the header as the group alone, and a header of
        // an older version reads as one without incarnations.
        let json = serde_json::to_vec(&header).expect("JSON");
        let old_reader: GroupIdentity = serde_json::from_slice(&json).expect("older reader");
        assert_eq!(old_reader, group);
        let old_header = serde_json::to_vec(&group).expect("JSON");
        let read: CallHeader = serde_json::from_slice(&old_header).expect("newer reader");
        assert_eq!((read.from_incarnation, read.to_incarnation), (None, None));
        let plain = encode_envelope(None, &RaftRequest::GroupOf).expect("encodes");
        assert!(matches!(
            decode_envelope(&plain),
            Ok((None, RaftRequest::GroupOf))
        ));
    }

    #[test]
    fn an_incarnation_answer_names_the_rules_and_older_nodes_still_read_it() {
        let answer = RaftReply::IncarnationIs {
            incarnation: 7,
            empty_log: false,
            seat_barred: false,
            rules_up_to: Some(posmesh_consensus::rules::RULES_VERSION_LATEST),
        };
        let json = serde_json::to_string(&answer).expect("JSON");
        // The answer as a node of an older version declares it: no `rules_up_to`.
        #[derive(Deserialize)]
        enum OlderReply {
            IncarnationIs {
                incarnation: u64,
                empty_log: bool,
                seat_barred: bool,
            },
        }
        let OlderReply::IncarnationIs {
            incarnation,
            empty_log,
            seat_barred,
        } = serde_json::from_str(&json).expect("an older node reads it");
        assert_eq!((incarnation, empty_log, seat_barred), (7, false, false));
        // And an older node's answer reads as one without rules (version 1 only).
        let older = r#"{"IncarnationIs":{"incarnation":7,"empty_log":false,"seat_barred":false}}"#;
        assert!(matches!(
            serde_json::from_str::<RaftReply>(older),
            Ok(RaftReply::IncarnationIs {
                rules_up_to: None,
                ..
            })
        ));
    }

    #[test]
    fn bad_request_bytes_get_precise_errors() {
        let good = encode_request(&chunk(vec![1, 2, 3])).expect("encodes");
        let header_len = u32::from_be_bytes([good[1], good[2], good[3], good[4]]) as usize;
        let mut plain_with_payload = vec![RAW_PAYLOAD_MARK];
        let plain = br#"{"ReadGiftCard":{"card_id":"x"}}"#;
        plain_with_payload.extend_from_slice(&(plain.len() as u32).to_be_bytes());
        plain_with_payload.extend_from_slice(plain);
        plain_with_payload.push(9);
        let cases: Vec<(&[u8], &str)> = vec![
            (&good[..3], "header length"),
            (&good[..5 + header_len - 1], "truncated: header"),
            (&plain_with_payload, "raw payload"),
            (b"{not json", "undecodable"),
            (&[], "undecodable"),
        ];
        for (bytes, message) in cases {
            let error = decode_request(bytes).expect_err("refused");
            assert!(
                error.to_string().contains(message),
                "{error} lacks {message:?}"
            );
        }
    }
}
