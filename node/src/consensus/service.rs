//! [`RaftService`]: the store's Raft group on this device.

use super::forwarding::{self, Forwarder};
use super::group_file;
use super::leader_contact::LeaderContact;
use super::leader_precheck;
use super::lost_member::{lost_member_step, LostMember, LostStep};
use super::network::{MeshRaftNetwork, RaftLinks, RequestHandler};
use super::node_id::node_id;
use super::own_revocation::OwnRevocation;
use super::resend;
use super::retirement::Retirement;
use super::rules_adoption::{may_join, next_step, RulesStep};
use super::seat::{self, SeatCheck, SeatLoss, SeatRpc, SeatVerdict};
use super::snapshot_transfer::{ChunkOutcome, SnapshotAssembly};
use super::wire::{CallHeader, ForwardedWrite, RaftReply, RaftRequest};
use crate::peers::retired_gate::RevokedClaim;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::{BasicNode, ChangeMembers, ServerState};
use posmesh_consensus::group::{self, Admission, GroupConflict, RpcKind};
use posmesh_consensus::{
    raft_config, run_failover_nudge, ConsensusError, NodeId, NudgeHandle, RaftTimings, Refusal,
    SnapshotReceived, StoreCommand, StoreRaft, StoreReader, StoreResponse,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a write or a linearizable read may wait for a quorum before it is answered
/// "no quorum" (a store's election takes 1.5–3 s, so a failover fits).
pub const DECISION_DEADLINE: Duration = Duration::from_secs(8);
/// Voters a store has at most; more devices stay learners (they still hold everything).
pub const VOTERS_MAX: usize = 5;
/// A learner within this many entries of the leader's log counts as caught up.
pub const CAUGHT_UP_LAG_MAX: u64 = 16;
/// How often the leader reconciles membership with the connected devices.
pub const MEMBERSHIP_INTERVAL: Duration = Duration::from_secs(1);
/// Longest wait for another membership change to finish before applying one.
pub const MEMBERSHIP_BUSY_WAIT: Duration = Duration::from_secs(10);
/// How long a device that forwarded a removal whose answer was lost waits to see the
/// retirement applied (committed) before answering that the removal failed.
pub const RETIREMENT_SEEN_WAIT: Duration = Duration::from_secs(3);
/// Longest wait for the leader's answer to one [`RaftRequest::ReadIndex`] (a heartbeat
/// round); a follower catching up asks again, the next leader if need be, while it may
/// wait for one.
pub const READ_INDEX_CALL_WAIT: Duration = Duration::from_secs(2);
/// How often a write waiting for a reachable leader tries again.
pub const LEADER_POLL: Duration = Duration::from_millis(50);

/// The Raft state `posmesh status` shows.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RaftStatus {
    /// `leader`, `follower`, `candidate`, `learner` or `shutdown`.
    pub role: String,
    /// Current term.
    pub term: u64,
    /// The leader's device id, if known.
    pub leader: Option<String>,
    /// Highest log index known committed.
    pub commit_index: Option<u64>,
    /// Highest log index applied to the state machine.
    pub applied_index: Option<u64>,
    /// Last log index held.
    pub last_log_index: Option<u64>,
    /// Voting members (device ids).
    pub voters: Vec<String>,
    /// Non-voting members (device ids).
    pub learners: Vec<String>,
    /// On the leader: entries each member is behind the leader's last log index.
    pub lag: BTreeMap<String, u64>,
    /// Last log index covered by this device's current snapshot (built here or installed).
    #[serde(default)]
    pub snapshot_index: Option<u64>,
    /// Snapshots received from a leader over the mesh and installed since this process
    /// started.
    #[serde(default)]
    pub snapshots_installed: u64,
    /// Size in bytes of the last snapshot received and installed (0: none yet).
    #[serde(default)]
    pub last_snapshot_installed_bytes: u64,
    /// This device's Raft group (`group 1a2b3c4d… founded on till-1 at …`), if it is in one.
    #[serde(default)]
    pub group: Option<String>,
    /// Peers of the store found in another Raft group (the store was initialised twice):
    /// what happened and what to do, one sentence each (code `raft_group_mismatch`).
    #[serde(default)]
    pub group_conflicts: Vec<String>,
    /// Set once this device learned it was removed from the store (code `device_retired`):
    /// what happened and what to do. Its Raft state above is frozen from then on.
    #[serde(default)]
    pub retired: Option<String>,
    /// On the leader: per member, milliseconds since it last acknowledged a heartbeat
    /// (openraft's heartbeat metrics; `None`: never since this device leads).
    #[serde(default)]
    pub last_contact_ms: BTreeMap<String, Option<u64>>,
    /// On the leader: milliseconds since a quorum last acknowledged it (openraft's
    /// `last_quorum_acked`); a leader cut off from the quorum sees it grow.
    #[serde(default)]
    pub quorum_acked_ms: Option<u64>,
    /// This device's Raft database's incarnation (16 hex digits; [`super::seat`]).
    #[serde(default)]
    pub incarnation: Option<String>,
    /// Set once this device learned it lost its Raft state (code `raft_state_lost`): what
    /// happened and what to do. It refuses every Raft call of its old seat.
    #[serde(default)]
    pub seat_lost: Option<String>,
    /// Members found here to have lost their Raft state (code `raft_member_lost`), by
    /// device id: what happened and what to do. Never counted in `lag`; the leader takes
    /// them out of the group.
    #[serde(default)]
    pub lost_members: BTreeMap<String, String>,
    /// Set once this device learned its own certificate was revoked store-wide (code
    /// `certificate_revoked`, [`super::own_revocation`]): what happened and what to do.
    #[serde(default)]
    pub certificate_revoked: Option<String>,
    /// The rules version the store's state machine follows here
    /// ([`posmesh_consensus::rules`]; `None` from a node of an older version).
    #[serde(default)]
    pub rules_version: Option<u32>,
    /// The rules version in words: `rules version 2`, or, while a newer one this device
    /// knows is not adopted, `rules version 1 (2 available, waiting for till-3 to
    /// upgrade)` (on the leader, which asks every member; on a follower without the
    /// member), and on the leader the devices not added to the Raft group because their
    /// posmesh does not follow the store's rules.
    #[serde(default)]
    pub rules: Option<String>,
}

/// Why a device could not be removed from the store ([`RaftService::remove_device`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoveError {
    /// The device is the store's only voter: removing it would leave the Raft group with
    /// no voter (openraft refuses an empty membership). Permanent until another device is
    /// a voter.
    #[error("{device_id} is the store's only voter: removing it would leave the store without a Raft group. Add another device and wait until it is promoted to voter (`posmesh status` lists voters; a store keeps an odd number, so with 2 devices only 1 votes: add a third), then remove {device_id}; or, if {device_id} is destroyed for good, stop a surviving device and run `posmesh store force-membership --data-dir D --keep <that device>` on it")]
    LastVoter {
        /// The device asked to be removed.
        device_id: String,
    },
    /// No quorum, the leader unreachable, the store refused (a sentence saying why).
    #[error("{0}")]
    Unavailable(String),
}

/// The store's Raft group on this device: storage in `<data-dir>/raft`, RPCs over the
/// mesh through [`RaftLinks`].
pub struct RaftService {
    local_device: String,
    id: NodeId,
    /// This device's Raft database's incarnation ([`super::seat`]).
    incarnation: u64,
    raft: StoreRaft,
    reader: StoreReader,
    links: Arc<RaftLinks>,
    /// The snapshot being received from the leader, chunk by chunk.
    snapshot_assembly: Mutex<SnapshotAssembly>,
    /// The data directory (where an adopted Raft group is recorded).
    data_dir: std::path::PathBuf,
    /// Snapshots received from a leader and installed since this process started.
    snapshots_installed: AtomicU64,
    /// Size in bytes of the last snapshot received and installed.
    last_snapshot_installed_bytes: AtomicU64,
    /// Told when the leader is heard; starts a pre-vote once its lease ran out
    /// ([`posmesh_consensus::failover_nudge`]).
    nudge: NudgeHandle,
    /// Client writes forwarded to the leader, coalesced while busy.
    forwarder: Forwarder,
    /// When a leader was last heard here.
    leader_contact: LeaderContact,
    /// A follower forwards writes only to a leader heard within this.
    leader_silence_max: Duration,
    /// How long a write without a reachable leader waits for one.
    leader_wait: Duration,
    /// On the leader, while the store's rules are older than this binary's newest: the
    /// members that do not support the newest yet (or did not answer), which the
    /// adoption waits for ([`super::rules_adoption`]).
    rules_waiting: Mutex<Vec<String>>,
    /// On the leader: devices not added to the Raft group because they do not follow the
    /// store's rules version, with the newest version each follows.
    rules_held_back: Mutex<BTreeMap<String, u32>>,
}

/// A device's answer to [`RaftRequest::IncarnationOf`].
enum SeatAnswer {
    /// Its Raft incarnation, whether its log is empty and whether it refuses its seat, and
    /// the newest rules version it follows (1 from a node that does not say).
    Answered {
        incarnation: u64,
        empty_log: bool,
        seat_barred: bool,
        rules_up_to: u32,
    },
    /// A node of an older version (no incarnation, rules version 1 only): added as before
    /// while the store follows rules version 1.
    OlderVersion,
    /// No answer now: asked again next round.
    Unanswered,
}

impl SeatAnswer {
    /// The newest rules version the device follows ([`posmesh_consensus::rules`]; 1 for
    /// a node of an older version), if it answered.
    fn rules_up_to(&self) -> Option<u32> {
        match self {
            SeatAnswer::Answered { rules_up_to, .. } => Some(*rules_up_to),
            SeatAnswer::OlderVersion => Some(posmesh_consensus::rules::RULES_VERSION_ORIGINAL),
            SeatAnswer::Unanswered => None,
        }
    }
}

/// One try of a store-wide write or read through the current leader.
enum Attempt<T> {
    /// Done: the outcome, or why it failed (final: it may have been proposed).
    Done(Result<T, String>),
    /// Not sent anywhere (no leader known, the leader unheard lately or unreachable, or it
    /// answered it is not the leader): may be tried again once a leader is reachable.
    NotSent(String),
    /// Sent to a leader that became unreachable or changed before answering (the outcome is
    /// unknown, the sentence says so), for a command whose second application is a no-op
    /// replay ([`super::resend`]): sent again once a leader is reachable; if none is in
    /// time, the answer stays this sentence.
    Unanswered(String),
}

/// The retirement of `device_id` as a removal proposes it: under `idempotency_key` (the
/// client's or one the removing device assigned) with the SHA-256 of the retirement as
/// its request hash ([`super::assigned_key::keyed`]: the key replays this very retirement
/// and is refused for any other request), inside the authorisation of `authorised_by`
/// (`None`: a store without operators). Its ledger cut is left for the leader to fill
/// (`with_ledger_cut`), inside the key: the hash is the same on every device.
fn retirement_command(
    device_id: &str,
    authorised_by: Option<String>,
    idempotency_key: Option<String>,
) -> StoreCommand {
    let retire = StoreCommand::RetireDevice {
        device_id: device_id.to_owned(),
        up_to_seq: None,
    };
    let retire = match idempotency_key {
        Some(key) => super::assigned_key::keyed(key, retire),
        None => retire,
    };
    match authorised_by {
        Some(by) => StoreCommand::Authorised {
            authorised_by: by,
            command: Box::new(retire),
        },
        None => retire,
    }
}

impl RaftService {
    /// Opens the Raft storage of `data_dir`, starts Raft and, with `bootstrap`, initialises
    /// a one-member store on this device if it has never been initialised, with `timings`
    /// (normally [`RaftTimings::STORE`]). Starts the membership task (until `stop`).
    ///
    /// # Errors
    /// Storage and openraft start errors.
    pub async fn start(
        data_dir: &Path,
        store_id: &str,
        local_device: &str,
        bootstrap: bool,
        timings: RaftTimings,
        links: Arc<RaftLinks>,
        stop: watch::Receiver<bool>,
    ) -> anyhow::Result<Arc<Self>> {
        let (log, state_machine) = posmesh_consensus::open(&data_dir.join("raft"))?;
        let incarnation = log.incarnation(rand::random())?;
        let reader = state_machine.reader();
        let seats = reader.clone();
        links.set_local_seat(
            local_device,
            incarnation,
            Arc::new(move |device| {
                seats.read(|state| state.raft_incarnations.get(device).copied())
            }),
        );
        let config = Arc::new(raft_config(store_id, timings)?.validate()?);
        let id = node_id(local_device);
        let network = MeshRaftNetwork {
            links: links.clone(),
        };
        let raft = StoreRaft::new(id, config, network, log, state_machine).await?;
        if let Some(group) = group_file::load(data_dir)? {
            links.set_group(group);
        }
        let founded_here = bootstrap && !raft.is_initialized().await?;
        if founded_here {
            // The group's identity is on disk before the group exists.
            let group = group_file::found(local_device);
            group_file::store(data_dir, &group)?;
            links.set_group(group);
            let members = BTreeMap::from([(id, BasicNode::new(local_device))]);
            raft.initialize(members).await?;
            tracing::info!(
                device = local_device,
                "store Raft group initialised on this device"
            );
        }
        let service = Arc::new(Self {
            local_device: local_device.to_owned(),
            id,
            incarnation,
            raft,
            reader,
            links: links.clone(),
            snapshot_assembly: Mutex::new(SnapshotAssembly::default()),
            data_dir: data_dir.to_owned(),
            snapshots_installed: AtomicU64::new(0),
            last_snapshot_installed_bytes: AtomicU64::new(0),
            nudge: NudgeHandle::new(id, timings.election_timeout_max_ms),
            forwarder: Forwarder::start(links.clone(), DECISION_DEADLINE),
            leader_contact: LeaderContact::default(),
            leader_silence_max: Duration::from_millis(timings.leader_silence_max_ms()),
            leader_wait: Duration::from_millis(timings.leader_wait_ms()),
            rules_waiting: Mutex::new(Vec::new()),
            rules_held_back: Mutex::new(BTreeMap::new()),
        });
        let handler_service = Arc::downgrade(&service);
        let handler: RequestHandler = Arc::new(move |peer, header, request| {
            let service = handler_service.clone();
            Box::pin(async move {
                match service.upgrade() {
                    Some(service) => service.admit_and_handle(&peer, header, request).await,
                    None => RaftReply::Failed("raft service stopped".into()),
                }
            })
        });
        links.serve_with(handler);
        // A device removed before it stopped knows it from the state it applied: before
        // its API opens, not a membership round later.
        service.check_own_retirement();
        service.check_own_revocation();
        if founded_here {
            // A store founded here follows the newest rules from its first entry on
            // ([`posmesh_consensus::rules`]); if this fails, the membership task adopts
            // them once this device leads (it is the only member).
            match super::founding::adopt_latest_rules(&service.raft).await {
                Ok(index) => tracing::info!(
                    index,
                    version = posmesh_consensus::rules::RULES_VERSION_LATEST,
                    "the new store follows the newest rules"
                ),
                Err(error) => {
                    tracing::warn!(%error, "rules version not adopted at founding (the leader adopts it later)")
                }
            }
        }
        tokio::spawn(service.clone().manage_membership(stop));
        tokio::spawn(run_failover_nudge(
            service.raft.clone(),
            service.nudge.clone(),
        ));
        Ok(service)
    }

    /// Answers a peer's call if the peer's Raft group is this device's ([`group::admit`]):
    /// a call from another group is refused before it touches the log or the vote; a
    /// device in no group yet takes its leader's group (recorded durably first).
    async fn admit_and_handle(
        &self,
        peer: &str,
        header: Option<CallHeader>,
        request: RaftRequest,
    ) -> RaftReply {
        if matches!(request, RaftRequest::GroupOf) {
            return RaftReply::GroupIs(self.links.group());
        }
        if matches!(request, RaftRequest::IncarnationOf) {
            return self.incarnation_answer();
        }
        // A device removed from the store is no member: every call of its own is refused,
        // so it learns of its retirement (and a stale candidate cannot disturb the group).
        let retired_at = self
            .reader
            .read(|state| state.retired_devices.get(peer).copied());
        if let Some(retired_at_index) = retired_at {
            return RaftReply::Retired {
                device_id: peer.to_owned(),
                retired_at_index,
            };
        }
        if let Some(refusal) = self.check_seats(peer, header.as_ref(), &request) {
            return refusal;
        }
        let kind = match request {
            RaftRequest::Append(_) | RaftRequest::SnapshotChunk { .. } => RpcKind::FromLeader,
            _ => RpcKind::Other,
        };
        let local = self.links.group();
        let peer_group = header.map(|header| header.group);
        match group::admit(local.as_ref(), peer, peer_group.as_ref(), kind) {
            Admission::Accept => {}
            Admission::Refuse(conflict) => {
                self.links.record_conflict(conflict.clone());
                return RaftReply::WrongGroup(conflict);
            }
            Admission::Adopt(group) => {
                if let Err(error) = group_file::store(&self.data_dir, &group) {
                    return RaftReply::Failed(format!("cannot record the Raft group: {error:#}"));
                }
                tracing::info!(leader = peer, group = %group.describe(), "joined the store's Raft group");
                self.links.set_group(group);
            }
        }
        self.handle(request).await
    }

    /// Judges a peer's call by the Raft incarnations it names ([`super::seat`]): the reply
    /// refusing it, if it must be refused before it touches the log or the vote.
    fn check_seats(
        &self,
        peer: &str,
        header: Option<&CallHeader>,
        request: &RaftRequest,
    ) -> Option<RaftReply> {
        let rpc = match request {
            RaftRequest::Append(_)
            | RaftRequest::SnapshotChunk { .. }
            | RaftRequest::TransferLeader(_) => SeatRpc::Replication,
            RaftRequest::Vote(_) | RaftRequest::PreVote(_) => SeatRpc::Vote,
            _ => SeatRpc::Other,
        };
        let check = SeatCheck {
            own: self.incarnation,
            own_seat_barred: self.links.seat_barred(),
            to: header.and_then(|h| h.to_incarnation),
            from: header.and_then(|h| h.from_incarnation),
            sender_seat: self
                .reader
                .read(|state| state.raft_incarnations.get(peer).copied()),
            empty_log: rpc == SeatRpc::Vote && self.log_is_empty(),
            rpc,
        };
        match seat::judge(&check) {
            SeatVerdict::Accept => None,
            SeatVerdict::LostHere { expected } => {
                if expected.is_some() {
                    self.links.seat_loss().record(SeatLoss {
                        device_id: self.local_device.clone(),
                        incarnation: self.incarnation,
                        seat: expected,
                        learned_from: format!("a Raft call from {peer}"),
                    });
                }
                Some(RaftReply::SeatLost {
                    device_id: self.local_device.clone(),
                    seat: expected,
                    answering_as: Some(self.incarnation),
                })
            }
            SeatVerdict::SenderLost { seat, calling_as } => {
                self.links.lost_members().record(LostMember {
                    device_id: peer.to_owned(),
                    seat: Some(seat),
                    answering_as: Some(calling_as),
                });
                Some(RaftReply::SeatLost {
                    device_id: peer.to_owned(),
                    seat: Some(seat),
                    answering_as: Some(calling_as),
                })
            }
            SeatVerdict::NoVoteWithEmptyLog => Some(RaftReply::Failed(format!(
                "{}: {} has an empty Raft log and never votes (a device is sent the log \
                 before it votes; an empty one asked for a vote lost its Raft state)",
                seat::SEAT_LOST_CODE,
                self.local_device
            ))),
        }
    }

    /// This device's answer to [`RaftRequest::IncarnationOf`]: its Raft incarnation, its
    /// log empty or not, its seat barred or not, and the newest rules it follows.
    fn incarnation_answer(&self) -> RaftReply {
        RaftReply::IncarnationIs {
            incarnation: self.incarnation,
            empty_log: self.log_is_empty(),
            seat_barred: self.links.seat_barred(),
            rules_up_to: Some(posmesh_consensus::rules::RULES_VERSION_LATEST),
        }
    }

    /// Whether this device's Raft log is empty: no entry, no snapshot.
    fn log_is_empty(&self) -> bool {
        let metrics = self.raft.metrics().borrow_watched().clone();
        metrics.last_log_index.is_none() && metrics.snapshot.is_none()
    }

    /// Answers a peer's call.
    async fn handle(&self, request: RaftRequest) -> RaftReply {
        let failed = |e: &dyn std::fmt::Display| RaftReply::Failed(e.to_string());
        match request {
            RaftRequest::Append(rpc) => match self.raft.append_entries(rpc).await {
                Ok(response) => {
                    self.nudge.append_answered(&response);
                    if !matches!(
                        response,
                        openraft::raft::AppendEntriesResponse::HigherVote(_)
                    ) {
                        self.leader_contact.heard();
                    }
                    RaftReply::Append(response)
                }
                Err(e) => failed(&e),
            },
            RaftRequest::Vote(rpc) => match self.raft.vote(rpc).await {
                Ok(response) => {
                    self.nudge.vote_answered(&response);
                    RaftReply::Vote(response)
                }
                Err(e) => failed(&e),
            },
            RaftRequest::PreVote(rpc) => match self.raft.pre_vote(rpc).await {
                Ok(response) => RaftReply::Vote(response),
                Err(e) => failed(&e),
            },
            RaftRequest::SnapshotChunk {
                vote,
                meta,
                offset,
                total_bytes,
                data,
            } => {
                let outcome = self
                    .snapshot_assembly
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .accept(
                        &format!("{:?}", meta.signature()),
                        offset,
                        total_bytes,
                        &data,
                    );
                match outcome {
                    Ok(ChunkOutcome::NeedMore { next_offset }) => {
                        RaftReply::SnapshotChunkTaken { next_offset }
                    }
                    Ok(ChunkOutcome::Complete(bytes)) => {
                        let size_bytes = bytes.len() as u64;
                        let snapshot = openraft::storage::Snapshot {
                            meta,
                            snapshot: std::io::Cursor::new(bytes),
                        };
                        match posmesh_consensus::install_full_snapshot_unless_held(
                            &self.raft, vote, snapshot,
                        )
                        .await
                        {
                            Ok(SnapshotReceived::Installed(response)) => {
                                self.nudge.heard_from_leader();
                                self.leader_contact.heard();
                                self.snapshots_installed.fetch_add(1, Ordering::Relaxed);
                                self.last_snapshot_installed_bytes
                                    .store(size_bytes, Ordering::Relaxed);
                                tracing::info!(size_bytes, "snapshot from the leader installed");
                                RaftReply::Snapshot(response)
                            }
                            Ok(SnapshotReceived::AlreadyHeld(response)) => {
                                self.nudge.heard_from_leader();
                                self.leader_contact.heard();
                                tracing::info!(
                                    size_bytes,
                                    "snapshot from the leader not installed: this log already \
                                     holds its last entry"
                                );
                                RaftReply::Snapshot(response)
                            }
                            Err(e) => failed(&e),
                        }
                    }
                    Err(e) => failed(&e),
                }
            }
            RaftRequest::ClientWrite(command) => {
                if let Err((index, refusal)) = self.precheck_as_leader(&command).await {
                    return RaftReply::Written {
                        index,
                        response: StoreResponse::Refused(refusal),
                    };
                }
                let command = self.with_ledger_cut(command);
                match posmesh_consensus::write(&self.raft, command, DECISION_DEADLINE).await {
                    Ok((index, response)) => RaftReply::Written { index, response },
                    Err(e) => failed(&e),
                }
            }
            RaftRequest::TransferLeader(rpc) => match self.raft.handle_transfer_leader(rpc).await {
                Ok(Ok(())) => RaftReply::TransferLeader(None),
                Ok(Err(rejected)) => RaftReply::TransferLeader(Some(rejected.to_string())),
                Err(e) => failed(&e),
            },
            RaftRequest::RemoveDevice {
                device_id,
                authorised_by,
                idempotency_key,
                answer_index,
            } => match self
                .remove_here(&device_id, authorised_by, idempotency_key)
                .await
            {
                Ok((index, response)) if answer_index => RaftReply::RemovedAt { index, response },
                // A sender of an older version reads a refusal as it always did: a sentence.
                Ok((_, StoreResponse::Refused(refusal))) => RaftReply::Failed(refusal.to_string()),
                Ok(_) => RaftReply::Removed,
                Err(RemoveError::LastVoter { device_id }) => RaftReply::LastVoter { device_id },
                Err(RemoveError::Unavailable(why)) => RaftReply::Failed(why),
            },
            RaftRequest::ReadGiftCard { card_id } => {
                match self.read_gift_card_here(&card_id).await {
                    Ok(card) => RaftReply::GiftCard(card),
                    Err(e) => failed(&e),
                }
            }
            RaftRequest::GroupOf => RaftReply::GroupIs(self.links.group()),
            RaftRequest::IncarnationOf => self.incarnation_answer(),
            RaftRequest::ClientWriteBatch(commands) => self.serve_batch(commands).await,
            RaftRequest::ReadIndex => {
                match posmesh_consensus::read_index(&self.raft, DECISION_DEADLINE).await {
                    Ok(index) => RaftReply::ReadIndexIs(index),
                    Err(e) => failed(&e),
                }
            }
        }
    }

    /// Commits `command` through the leader (forwarded there from a follower) and returns
    /// the log index and the state machine's answer. With no reachable leader — an
    /// election under way, the leader unheard for longer than two heartbeats (maybe dead,
    /// its connection not timed out yet), unreachable, or answering it is no longer the
    /// leader — the write waits for one, at most `leader_wait`
    /// ([`posmesh_consensus::RaftTimings::leader_wait_ms`], 6.5 s in a store), and is then
    /// sent to it. A write never sent anywhere is sent again; one sent to a leader that
    /// became unreachable or changed before answering is sent again, within the same wait,
    /// only if applying it twice is a no-op replay ([`super::resend`]: deduplicated by id,
    /// or "set X to V"); otherwise, or if no leader is reachable in time, it stays
    /// "outcome unknown". A guarded write its client sent without an Idempotency-Key gets
    /// one from this device before it is first sent ([`super::assigned_key`]), so it can
    /// be resent; a replay of that key is answered as the first send would have been.
    ///
    /// # Errors
    /// A sentence for the person at the till: no quorum (this device is cut off from most
    /// of the store, or no leader appeared in time), outcome unknown
    /// ([`forwarding::OUTCOME_UNKNOWN`]), or this device was retired
    /// ([`super::retirement::DEVICE_RETIRED`]).
    ///
    /// A refusal the state alone decides takes no Raft entry
    /// ([`posmesh_consensus::StoreState::precheck`]): one that holds for good is answered
    /// from the state applied here, on any device; the leader answers the others from its
    /// settled state ([`leader_precheck`]) — a follower forwards them. Such an answer is
    /// `(index, StoreResponse::Refused)`, `index` the log index of the state that decided
    /// it (nothing was appended).
    pub async fn write(&self, command: StoreCommand) -> Result<(u64, StoreResponse), String> {
        if let Err(refusal) = self.reader.read(|state| state.precheck(&command)) {
            if refusal.holds_for_good() {
                return Ok((self.applied_index(), StoreResponse::Refused(refusal)));
            }
        }
        let (command, assigned) =
            super::assigned_key::assign(&self.local_device, rand::random(), command);
        let written = self
            .with_leader(|| self.write_once(command.clone()))
            .await?;
        Ok(if assigned {
            super::assigned_key::first_answer(written)
        } else {
            written
        })
    }

    /// On the leader, the pre-check's refusal of `command` on its settled state
    /// ([`leader_precheck::precheck`]) with the index it was decided at; `Ok` to propose
    /// (also on a follower: its proposal is refused as not the leader's).
    async fn precheck_as_leader(&self, command: &StoreCommand) -> Result<(), (u64, Refusal)> {
        if !self.leads() {
            return Ok(());
        }
        leader_precheck::precheck(&self.raft, &self.reader, command).await
    }

    /// The leader's side of [`RaftRequest::ClientWriteBatch`]: each command pre-checked
    /// ([`Self::precheck_as_leader`]), those that pass proposed together
    /// ([`forwarding::serve_batch`]), one outcome per command, in order.
    async fn serve_batch(&self, commands: Vec<StoreCommand>) -> RaftReply {
        let checks = commands
            .iter()
            .map(|command| self.precheck_as_leader(command));
        let checks = futures_util::future::join_all(checks).await;
        let mut refused = Vec::with_capacity(commands.len());
        let mut proposed = Vec::new();
        for (command, check) in commands.into_iter().zip(checks) {
            match check {
                Ok(()) => {
                    refused.push(None);
                    proposed.push(self.with_ledger_cut(command));
                }
                Err((index, refusal)) => refused.push(Some(ForwardedWrite {
                    index,
                    response: StoreResponse::Refused(refusal),
                })),
            }
        }
        let written = if proposed.is_empty() {
            Vec::new()
        } else {
            match forwarding::serve_batch(&self.raft, proposed, DECISION_DEADLINE).await {
                RaftReply::WrittenBatch(written) => written,
                other => return other,
            }
        };
        let mut written = written.into_iter();
        let outcomes = refused
            .into_iter()
            .map(|refused| match refused {
                Some(refused) => Ok(refused),
                None => written
                    .next()
                    .unwrap_or_else(|| Err("the leader lost a command of the batch".to_owned())),
            })
            .collect();
        RaftReply::WrittenBatch(outcomes)
    }

    /// The last log index applied on this device (0: none).
    fn applied_index(&self) -> u64 {
        self.raft
            .metrics()
            .borrow_watched()
            .clone()
            .last_applied
            .map_or(0, |log_id| log_id.index())
    }

    async fn write_once(&self, command: StoreCommand) -> Attempt<(u64, StoreResponse)> {
        if let Err((index, refusal)) = self.precheck_as_leader(&command).await {
            return Attempt::Done(Ok((index, StoreResponse::Refused(refusal))));
        }
        // Filled for a proposal here; a follower forwards the command as it came.
        let proposed = self.with_ledger_cut(command.clone());
        match posmesh_consensus::write(&self.raft, proposed, DECISION_DEADLINE).await {
            Ok(written) => Attempt::Done(Ok(written)),
            Err(ConsensusError::NotLeader { leader }) => {
                let device = match self.reachable_leader(leader) {
                    Ok(device) => device,
                    Err(why) => return Attempt::NotSent(why),
                };
                match self.forwarder.write(device, command.clone()).await {
                    Err(why) if forwarding::never_sent(&why) => Attempt::NotSent(why),
                    Err(why) if resend::may_resend(&command, &why) => {
                        tracing::info!(
                            "a forwarded write's answer was lost with the leader; it will be \
                             sent again to the next leader (a replay of it is a no-op): {why}"
                        );
                        Attempt::Unanswered(why)
                    }
                    outcome => Attempt::Done(outcome),
                }
            }
            Err(e) if e.never_proposed() => Attempt::NotSent(e.to_string()),
            Err(e) => Attempt::Done(Err(e.to_string())),
        }
    }

    /// Runs `attempt` until it is done, while it is not sent for want of a reachable
    /// leader waiting [`LEADER_POLL`] between tries, at most `leader_wait` in all, and
    /// only while this device reaches a majority of the voters. Refused at once on a
    /// retired device.
    async fn with_leader<T, F, Fut>(&self, mut attempt: F) -> Result<T, String>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Attempt<T>>,
    {
        let started = Instant::now();
        // Set once a try was sent and its answer lost: from then on the write may have
        // committed, and running out of time answers this, never "nothing was sent".
        let mut unknown: Option<String> = None;
        loop {
            if let Some(refusal) = self.links.retirement().refusal() {
                return Err(refusal);
            }
            let why = match attempt().await {
                Attempt::Done(outcome) => return outcome,
                Attempt::NotSent(why) => why,
                Attempt::Unanswered(why) => {
                    unknown = Some(why.clone());
                    why
                }
            };
            if let Some(refusal) = self.links.retirement().refusal() {
                return Err(refusal);
            }
            if started.elapsed() >= self.leader_wait {
                return Err(unknown.unwrap_or_else(|| {
                    format!(
                        "no quorum: no reachable leader within {} ms, nothing was sent ({why})",
                        self.leader_wait.as_millis()
                    )
                }));
            }
            let (reached, voters) = self.voters_reached();
            if voters == 0 {
                return Err(unknown.unwrap_or_else(|| {
                    "no quorum: this device is in no Raft group yet — found the store's group \
                     once, on one device (`posmesh init`, or `posmesh device --raft-bootstrap`); \
                     a device of a store that has one joins it by itself once it reaches a \
                     member over the mesh; nothing was sent"
                        .to_owned()
                }));
            }
            if reached * 2 <= voters {
                return Err(unknown.unwrap_or_else(|| {
                    format!(
                        "no quorum: this device reaches {reached} of the store's {voters} \
                         voters over the mesh, and a leader needs a majority; nothing was \
                         sent ({why})"
                    )
                }));
            }
            tokio::time::sleep(LEADER_POLL).await;
        }
    }

    /// Voters this device reaches — itself if it votes, and those it has a mesh
    /// connection to — and the voter count. With no more than half reached, a partitioned
    /// minority, waiting for a leader is pointless (on a store's LAN every device sees
    /// every other): the write is answered "no quorum" at once.
    fn voters_reached(&self) -> (usize, usize) {
        let metrics = self.raft.metrics().borrow_watched().clone();
        let membership = metrics.membership_config.membership().clone();
        let mut voters = 0;
        let mut reached = 0;
        for id in membership.voter_ids() {
            voters += 1;
            let connected = membership
                .get_node(&id)
                .is_some_and(|node| self.links.connection(&node.addr).is_some());
            if id == self.id || connected {
                reached += 1;
            }
        }
        (reached, voters)
    }

    /// The device of `leader` if a write may be sent to it: a member heard from within
    /// `leader_silence_max`.
    fn reachable_leader(&self, leader: NodeId) -> Result<String, String> {
        let device = self.leader_device(leader)?;
        if !self.leader_contact.heard_within(self.leader_silence_max) {
            let silent = self.leader_contact.silent_for().map_or_else(
                || "never".to_owned(),
                |d| format!("{} ms ago", d.as_millis()),
            );
            return Err(format!(
                "the leader {device} was last heard {silent}: waiting for it or the next leader"
            ));
        }
        Ok(device)
    }

    /// This device's retirement from the store, once learned ([`super::retirement`]).
    pub fn retirement(&self) -> Option<Retirement> {
        self.links.retirement().get().cloned()
    }

    /// The Raft log index `device_id` was retired at, if the state applied here holds it
    /// (the mesh refuses such a device, [`crate::peers::retired_gate`]).
    pub fn retired_at(&self, device_id: &str) -> Option<u64> {
        self.reader
            .read(|state| state.retired_devices.get(device_id).copied())
    }

    /// The last sequence number of `device_id`'s journal the store keeps, if the state
    /// applied here holds a ledger cut of it ([`posmesh_consensus::ledger_cut`]).
    pub fn ledger_cut(&self, device_id: &str) -> Option<u64> {
        self.reader.read(|state| state.ledger_cut(device_id))
    }

    /// This device's id and the ledger cut of its own journal, if the state applied here
    /// holds one (its certificate was revoked, or it was retired).
    pub fn own_ledger_cut(&self) -> Option<(String, posmesh_consensus::DeviceCut)> {
        self.reader
            .read(|state| state.ledger_cuts.get(&self.local_device).copied())
            .map(|cut| (self.local_device.clone(), cut))
    }

    /// `command` with its ledger cut filled from this device's ledger
    /// ([`super::ledger_cut`]), for a proposal here. The certificate's device is found as
    /// this device's own, a connected peer's, or a pinned attestation's.
    fn with_ledger_cut(&self, command: StoreCommand) -> StoreCommand {
        let Some(positions) = self.links.ledger_positions() else {
            return command;
        };
        let device_of_serial = |serial: &str| self.device_of_serial(positions, serial);
        super::ledger_cut::fill(command, &device_of_serial, &|device| positions.held(device))
    }

    /// The device whose certificate has serial `serial` (lowercase hex), as this device
    /// knows it: its own, a connected peer's, or a pinned attestation's.
    fn device_of_serial(
        &self,
        positions: &Arc<dyn super::ledger_cut::LedgerPositions>,
        serial: &str,
    ) -> Option<String> {
        if self.links.own_revocation().own_serial() == Some(serial) {
            return Some(self.local_device.clone());
        }
        let connected = self.links.devices().into_iter().find(|device| {
            self.links
                .connection(device)
                .is_some_and(|connection| connection.peer_serial_hex() == Some(serial))
        });
        connected.or_else(|| positions.device_of_serial(serial))
    }

    /// The revocations applied here of certificates this device knows to be
    /// `device_id`'s (as for a ledger cut: a connected peer's or a pinned attestation's),
    /// as (serial, effective log index), in serial order. Empty when none is known: the
    /// device may still hold a revoked certificate this device never saw.
    pub fn revoked_certificates_of(&self, device_id: &str) -> Vec<(String, u64)> {
        let Some(positions) = self.links.ledger_positions() else {
            return Vec::new();
        };
        let revocations = self.reader.read(|state| state.revocations.clone());
        revocations
            .into_iter()
            .filter(|(serial, _)| {
                self.device_of_serial(positions, serial).as_deref() == Some(device_id)
            })
            .collect()
    }

    /// The Raft log index the certificate of serial `serial_hex` (lowercase hex) was
    /// revoked at, if the state applied here holds it (the mesh refuses it from then on,
    /// [`crate::peers::retired_gate`]).
    pub fn revoked_at(&self, serial_hex: &str) -> Option<u64> {
        self.reader
            .read(|state| state.revocations.get(serial_hex).copied())
    }

    /// `peer` refused this device's mesh connection: it was retired at `retired_at_index`.
    pub fn refused_as_retired(&self, peer: &str, retired_at_index: u64) {
        self.links.retirement().record(Retirement {
            device_id: self.local_device.clone(),
            retired_at_index,
            learned_from: format!("refused at the mesh by {peer}"),
        });
    }

    /// The revocation of this device's own certificate, once learned
    /// ([`super::own_revocation`]).
    pub fn own_revocation(&self) -> Option<OwnRevocation> {
        self.links.own_revocation().get().cloned()
    }

    /// `peer` closed this device's mesh connection claiming this device's certificate was
    /// revoked: believed when the claim names the certificate this device presents
    /// ([`super::own_revocation::judge_claim`]; who claimed it is logged), ignored with a
    /// WARN otherwise.
    pub fn refused_as_revoked(&self, peer: &str, claim: &RevokedClaim) {
        let notice = self.links.own_revocation();
        if notice.get().is_some() {
            return;
        }
        let Some(serial) = notice.own_serial() else {
            tracing::warn!(peer, "a peer says this device's certificate is revoked, but its serial is unknown here: ignored");
            return;
        };
        let learned_from = match super::own_revocation::judge_claim(serial, peer, claim) {
            Ok(learned_from) => learned_from,
            Err(why) => {
                tracing::warn!(peer, %serial, "{why}");
                return;
            }
        };
        tracing::warn!(
            peer,
            %serial,
            revoked_at_index = claim.revoked_at_index,
            "{peer} closed this device's mesh connection: it says this device's certificate is \
             revoked store-wide. Believed: any device of the store could commit the revocation \
             through Raft itself"
        );
        notice.record(OwnRevocation {
            device_id: self.local_device.clone(),
            serial: serial.to_owned(),
            revoked_at_index: claim.revoked_at_index,
            learned_from,
        });
    }

    /// Records the revocation of this device's own certificate if the state applied here
    /// holds it.
    fn check_own_revocation(&self) {
        let notice = self.links.own_revocation();
        if notice.get().is_some() {
            return;
        }
        let Some(serial) = notice.own_serial() else {
            return;
        };
        if let Some(revoked_at_index) = self.revoked_at(serial) {
            notice.record(OwnRevocation {
                device_id: self.local_device.clone(),
                serial: serial.to_owned(),
                revoked_at_index,
                learned_from: "applied here".to_owned(),
            });
        }
    }

    /// Records this device's retirement if the state applied here holds it.
    fn check_own_retirement(&self) {
        if self.links.retirement().get().is_some() {
            return;
        }
        let retired_at = self
            .reader
            .read(|state| state.retired_devices.get(&self.local_device).copied());
        if let Some(retired_at_index) = retired_at {
            self.links.retirement().record(Retirement {
                device_id: self.local_device.clone(),
                retired_at_index,
                learned_from: "applied here".to_owned(),
            });
        }
    }

    /// Removes `device_id` from the store for good (a manager's command; a replaced till
    /// gets a new id): retired through Raft, then taken out of the membership by the leader
    /// (forwarded there). Its certificate should be revoked too (`posmesh ca revoke`).
    /// Done once the retirement is committed: if the membership change is not confirmed
    /// (removing the leader hands leadership over) and the retirement is seen applied here
    /// (at once after a lost answer, within [`RETIREMENT_SEEN_WAIT`] after a failure), it
    /// is still a success — whichever device leads takes a retired member out of the group
    /// (`reconcile_membership`). An answer lost with the leader and no retirement seen: the
    /// removal is sent again at once to the next leader within the write's bounded wait
    /// ([`RaftService::write`]): its retirement carries an Idempotency-Key, so a second
    /// application replays the first.
    ///
    /// `idempotency_key`: the client's, when it sent one; otherwise this device assigns
    /// one before the first send ([`super::assigned_key`]). The retirement is proposed
    /// under it with the retirement's own request hash ([`retirement_command`]): a
    /// client's retry under its key replays the first retirement (its index and outcome,
    /// nothing applied twice, whatever the operator's role is by then), and the key used
    /// for another request is refused ([`Refusal::IdempotencyKeyReused`]).
    ///
    /// `authorised_by`: the operator (PIN verified) whose authority the retirement is
    /// committed under ([`StoreCommand::Authorised`]); `None` in a store without operators.
    ///
    /// Returns the retirement's log index and the state machine's answer:
    /// [`StoreResponse::Applied`] with the device's retirement; [`StoreResponse::Replayed`]
    /// for a client's key already used for this removal (a key this device assigned
    /// answers as its first send did, [`super::assigned_key::first_answer`]); or
    /// [`StoreResponse::Refused`], nothing changed — answered from the state applied here
    /// without a Raft entry when the refusal holds for good (a key used for another
    /// request), else by the leader.
    ///
    /// # Errors
    /// [`RemoveError::LastVoter`] when the device is the store's only voter (checked here
    /// on this device's view of the membership, and again on the leader before anything is
    /// committed); otherwise as [`RaftService::write`]; removing this device itself is
    /// refused (ask another).
    pub async fn remove_device(
        &self,
        device_id: &str,
        authorised_by: Option<String>,
        idempotency_key: Option<String>,
    ) -> Result<(u64, StoreResponse), RemoveError> {
        if device_id == self.local_device {
            return Err(RemoveError::Unavailable(
                "a device cannot remove itself: ask another device of the store".into(),
            ));
        }
        self.check_not_last_voter(device_id)?;
        // One key for every send of this removal: sent again to the next leader after its
        // answer was lost with a dead one, its retirement is a replay of the first.
        let assigned = idempotency_key.is_none();
        let key = idempotency_key
            .unwrap_or_else(|| super::assigned_key::key_for(&self.local_device, rand::random()));
        let retirement = retirement_command(device_id, authorised_by.clone(), Some(key.clone()));
        if let Err(refusal) = self.reader.read(|state| state.precheck(&retirement)) {
            if refusal.holds_for_good() {
                return Ok((self.applied_index(), StoreResponse::Refused(refusal)));
            }
        }
        let answer = self
            .with_leader(|| self.remove_once(device_id, authorised_by.clone(), &key))
            .await
            .map_err(RemoveError::Unavailable)??;
        Ok(if assigned {
            super::assigned_key::first_answer(answer)
        } else {
            answer
        })
    }

    /// One try of [`RaftService::remove_device`]: on the leader, or forwarded to it.
    async fn remove_once(
        &self,
        device_id: &str,
        authorised_by: Option<String>,
        key: &str,
    ) -> Attempt<Result<(u64, StoreResponse), RemoveError>> {
        let metrics = self.raft.metrics().borrow_watched().clone();
        let failure = if metrics.state == ServerState::Leader {
            match self
                .remove_here(device_id, authorised_by, Some(key.to_owned()))
                .await
            {
                Err(RemoveError::Unavailable(why))
                    if why.starts_with(forwarding::OUTCOME_UNKNOWN) =>
                {
                    why
                }
                done => return Attempt::Done(Ok(done)),
            }
        } else {
            let Some(leader) = metrics.current_leader else {
                return Attempt::NotSent("no quorum: the store has no leader now".to_owned());
            };
            let device = match self.reachable_leader(leader) {
                Ok(device) => device,
                Err(why) => return Attempt::NotSent(why),
            };
            let request = RaftRequest::RemoveDevice {
                device_id: device_id.to_owned(),
                authorised_by,
                idempotency_key: Some(key.to_owned()),
                answer_index: true,
            };
            let answer =
                forwarding::call_leader_write(&self.links, &device, &request, DECISION_DEADLINE)
                    .await;
            match answer {
                Ok(RaftReply::RemovedAt { index, response }) => {
                    return Attempt::Done(Ok(Ok((index, response))))
                }
                // A leader of an older version says only "done": the answer is read from
                // the state here once the retirement is applied (index 0 if it is not
                // within the wait).
                Ok(RaftReply::Removed) => {
                    self.retirement_applied(device_id, RETIREMENT_SEEN_WAIT)
                        .await;
                    let answer = self
                        .removal_settled_here(device_id, key)
                        .unwrap_or_else(|| {
                            let outcome = posmesh_consensus::Outcome::DeviceRetired {
                                device_id: device_id.to_owned(),
                                retired_at_index: 0,
                            };
                            (0, StoreResponse::Applied(outcome))
                        });
                    return Attempt::Done(Ok(Ok(answer)));
                }
                Ok(RaftReply::LastVoter { device_id }) => {
                    return Attempt::Done(Ok(Err(RemoveError::LastVoter { device_id })))
                }
                Ok(RaftReply::Failed(why)) | Err(why) if forwarding::never_sent(&why) => {
                    return Attempt::NotSent(why)
                }
                Ok(RaftReply::Failed(why)) if why.starts_with(forwarding::OUTCOME_UNKNOWN) => why,
                Ok(other) => format!("the leader answered {other:?}"),
                Err(why) => why,
            }
        };
        // The leader's answer was lost (it died, or removing the leader itself handed
        // leadership over mid-way): sent again at once to the next leader under the same
        // key — its retirement replays the first if that one committed — unless the
        // retirement is already applied here. Waiting to see it first would spend the
        // leader wait on a leader that is gone.
        if failure.starts_with(forwarding::OUTCOME_UNKNOWN) {
            if let Some(answer) = self.removal_settled_here(device_id, key) {
                return Attempt::Done(Ok(Ok(answer)));
            }
            tracing::info!(
                device = device_id,
                "a removal's answer was lost with the leader; it will be sent again to the next leader: {failure}"
            );
            return Attempt::Unanswered(failure);
        }
        // Another failure: if the retirement committed anyway, the removal is done — the
        // next leader takes the device out of the group by itself.
        if self
            .retirement_applied(device_id, RETIREMENT_SEEN_WAIT)
            .await
        {
            if let Some(answer) = self.removal_settled_here(device_id, key) {
                tracing::info!(
                    device = device_id,
                    %failure,
                    "the leader's answer was a failure, but the retirement is committed"
                );
                return Attempt::Done(Ok(Ok(answer)));
            }
        }
        Attempt::Done(Ok(Err(RemoveError::Unavailable(failure))))
    }

    /// The answer to the removal of `device_id` under `key` as the state applied here
    /// settles it, if it does: the key recorded for this very retirement (its index and
    /// outcome, as its first send was answered), the key recorded for another request
    /// (refused), or the device retired under another key (its retirement); `None` while
    /// the state here holds neither.
    fn removal_settled_here(&self, device_id: &str, key: &str) -> Option<(u64, StoreResponse)> {
        // The hash of the retirement as keyed: before its ledger cut is filled.
        let hash = super::assigned_key::request_hash(&StoreCommand::RetireDevice {
            device_id: device_id.to_owned(),
            up_to_seq: None,
        });
        let applied_index = self.applied_index();
        self.reader.read(|state| {
            if let Some(done) = state.idempotent_writes.get(key) {
                return Some(if done.request_hash == hash {
                    (
                        done.applied_at_index,
                        StoreResponse::Applied(done.outcome.clone()),
                    )
                } else {
                    (
                        applied_index,
                        StoreResponse::Refused(Refusal::IdempotencyKeyReused {
                            idempotency_key: key.to_owned(),
                            applied_at_index: done.applied_at_index,
                        }),
                    )
                });
            }
            state.retired_devices.get(device_id).map(|index| {
                let outcome = posmesh_consensus::Outcome::DeviceRetired {
                    device_id: device_id.to_owned(),
                    retired_at_index: *index,
                };
                (*index, StoreResponse::Applied(outcome))
            })
        })
    }

    /// Waits (at most `wait`) until the retirement of `device_id` is applied here.
    async fn retirement_applied(&self, device_id: &str, wait: Duration) -> bool {
        let started = Instant::now();
        loop {
            if self.reader.read(|state| state.is_retired(device_id)) {
                return true;
            }
            if started.elapsed() >= wait {
                return false;
            }
            tokio::time::sleep(LEADER_POLL).await;
        }
    }

    /// Refuses to remove the only voter: openraft cannot make an empty membership, and
    /// retiring it first would ban it while it stays the store's only voter.
    fn check_not_last_voter(&self, device_id: &str) -> Result<(), RemoveError> {
        let id = node_id(device_id);
        let metrics = self.raft.metrics().borrow_watched().clone();
        let voters: BTreeSet<NodeId> = metrics.membership_config.membership().voter_ids().collect();
        if voters.len() == 1 && voters.contains(&id) {
            return Err(RemoveError::LastVoter {
                device_id: device_id.to_owned(),
            });
        }
        Ok(())
    }

    /// Applies `change`, waiting (at most [`MEMBERSHIP_BUSY_WAIT`]) while another
    /// membership change is in progress — e.g. the membership task promoting a learner
    /// while a manager removes a device: openraft runs one change at a time.
    async fn change_membership_when_free(
        &self,
        change: ChangeMembers<NodeId, BasicNode>,
    ) -> anyhow::Result<()> {
        let started = std::time::Instant::now();
        loop {
            match self.raft.change_membership(change.clone(), false).await {
                Ok(_) => return Ok(()),
                Err(error)
                    if matches!(
                        error.api_error(),
                        Some(openraft::error::ClientWriteError::ChangeMembershipError(
                            openraft::error::ChangeMembershipError::InProgress(_)
                        ))
                    ) && started.elapsed() < MEMBERSHIP_BUSY_WAIT =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                // The leader lost its entry while the change was under way (removing the
                // leader itself hands leadership over): it may have taken effect.
                Err(error)
                    if matches!(
                        error.api_error(),
                        Some(openraft::error::ClientWriteError::LogEntryDiscarded(_))
                    ) =>
                {
                    anyhow::bail!(
                        "{}: the leadership changed while the membership was changing (removing the leader hands leadership over); the change may have taken effect: check `posmesh status`, or send it again (repeating it is safe)",
                        posmesh_consensus::client::OUTCOME_UNKNOWN
                    )
                }
                // This device stopped leading before proposing: nothing changed.
                Err(error)
                    if matches!(
                        error.api_error(),
                        Some(openraft::error::ClientWriteError::ForwardToLeader(_))
                    ) =>
                {
                    anyhow::bail!(
                        "no quorum: the leadership moved to another device before the membership change was proposed; send it again (repeating it is safe)"
                    )
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// On the leader: check it is not the last voter, retire, then drop from the
    /// membership. The retirement's log index and answer (a refusal drops nothing).
    async fn remove_here(
        &self,
        device_id: &str,
        authorised_by: Option<String>,
        idempotency_key: Option<String>,
    ) -> Result<(u64, StoreResponse), RemoveError> {
        self.check_not_last_voter(device_id)?;
        self.retire_and_drop(device_id, authorised_by, idempotency_key)
            .await
            .map_err(|e| RemoveError::Unavailable(e.to_string()))
    }

    async fn retire_and_drop(
        &self,
        device_id: &str,
        authorised_by: Option<String>,
        idempotency_key: Option<String>,
    ) -> anyhow::Result<(u64, StoreResponse)> {
        // Under the removal's key: a removal resent after a leader's death, or retried by
        // its client under its key, replays its retirement, whatever the operator's role
        // is by then. The ledger cut is filled inside the key, after its hash.
        let command = self.with_ledger_cut(retirement_command(
            device_id,
            authorised_by.clone(),
            idempotency_key,
        ));
        if let Some(refused) = self
            .release_allotment(device_id, authorised_by, &command)
            .await?
        {
            return Ok(refused);
        }
        let (index, response) =
            posmesh_consensus::write(&self.raft, command, DECISION_DEADLINE).await?;
        if let StoreResponse::Refused(_) = response {
            return Ok((index, response));
        }
        let id = node_id(device_id);
        let membership = self
            .raft
            .metrics()
            .borrow_watched()
            .clone()
            .membership_config
            .membership()
            .clone();
        let dropped = if membership.voter_ids().any(|v| v == id) {
            self.change_membership_when_free(ChangeMembers::RemoveVoters(BTreeSet::from([id])))
                .await
        } else if membership.get_node(&id).is_some() {
            self.change_membership_when_free(ChangeMembers::RemoveNodes(BTreeSet::from([id])))
                .await
        } else {
            Ok(())
        };
        // The retirement is committed: the device is removed from the store whatever
        // happens next. Whichever device leads takes a retired member out of the group
        // (`reconcile_membership`), e.g. when removing the leader handed leadership over
        // before the change was confirmed here.
        if let Err(error) = dropped {
            tracing::warn!(
                device = device_id,
                %error,
                "device retired; the Raft group's leader takes it out of the membership"
            );
            return Ok((index, response));
        }
        tracing::warn!(
            device = device_id,
            "device removed from the store's Raft group"
        );
        Ok((index, response))
    }

    /// On the leader, before `retirement` (the removal of `device_id`) is proposed: sets
    /// the device's offline card allotment to 0 through the log, so that it stops counting
    /// against the store's exposure budget once the device is gone. Done only when the
    /// retirement would apply (the pre-check passes: not for a key used for another
    /// request, or an operator whose role may not) and the device holds an allotment and
    /// is not retired yet — a replay or a removal of a removed device changes nothing.
    ///
    /// Why an entry of its own rather than the retirement dropping the allotment, or the
    /// budget check skipping retired devices: either would change what `apply` computes for
    /// commands existing logs already hold (a `SetExposureAllotment` refused there as over
    /// the budget would apply on replay), so replicas of different versions, or a replica
    /// replaying an old log, would reach different states. `SetExposureAllotment` to 0
    /// applies the same on every version. A device retired before this release (by an
    /// older version) keeps its allotment counted: the state machine refuses any allotment
    /// for a retired device.
    ///
    /// Returns `Some` (the release's index and refusal) when the release was refused: the
    /// removal is answered with it and nothing else is proposed.
    ///
    /// # Errors
    /// When the release could not be committed (as [`posmesh_consensus::write`]).
    async fn release_allotment(
        &self,
        device_id: &str,
        authorised_by: Option<String>,
        retirement: &StoreCommand,
    ) -> anyhow::Result<Option<(u64, StoreResponse)>> {
        let holds = self.reader.read(|state| {
            !state.is_retired(device_id)
                && state
                    .exposure
                    .allotments
                    .get(device_id)
                    .copied()
                    .unwrap_or(0)
                    > 0
                && state.precheck(retirement).is_ok()
        });
        if !holds {
            return Ok(None);
        }
        let release = StoreCommand::SetExposureAllotment {
            device_id: device_id.to_owned(),
            amount_minor: 0,
        };
        let release = match authorised_by {
            Some(by) => StoreCommand::Authorised {
                authorised_by: by,
                command: Box::new(release),
            },
            None => release,
        };
        let (index, response) =
            posmesh_consensus::write(&self.raft, release, DECISION_DEADLINE).await?;
        if let StoreResponse::Refused(refusal) = response {
            return Ok(Some((index, StoreResponse::Refused(refusal))));
        }
        tracing::info!(
            device = device_id,
            "the device's offline card allotment is released before its retirement"
        );
        Ok(None)
    }

    /// A gift card's balance and currency, read linearizably (through the leader).
    ///
    /// # Errors
    /// As [`RaftService::write`].
    pub async fn gift_card(&self, card_id: &str) -> Result<Option<(i64, String)>, String> {
        self.with_leader(|| self.gift_card_once(card_id)).await
    }

    async fn gift_card_once(&self, card_id: &str) -> Attempt<Option<(i64, String)>> {
        match self.read_gift_card_here(card_id).await {
            Ok(card) => Attempt::Done(Ok(card)),
            Err(ConsensusError::NotLeader { leader }) => {
                let device = match self.reachable_leader(leader) {
                    Ok(device) => device,
                    Err(why) => return Attempt::NotSent(why),
                };
                let request = RaftRequest::ReadGiftCard {
                    card_id: card_id.to_owned(),
                };
                match forwarding::call_leader(&self.links, &device, &request, DECISION_DEADLINE)
                    .await
                {
                    Ok(RaftReply::GiftCard(card)) => Attempt::Done(Ok(card)),
                    Ok(other) => Attempt::Done(Err(format!("the leader answered {other:?}"))),
                    Err(why) if forwarding::never_sent(&why) => Attempt::NotSent(why),
                    // A read changes nothing: asked again of the next leader (a leader that
                    // died or changed after the call was sent), within the same wait.
                    Err(why) => Attempt::Unanswered(why),
                }
            }
            Err(e) if e.never_proposed() => Attempt::NotSent(e.to_string()),
            Err(e) => Attempt::Done(Err(e.to_string())),
        }
    }

    /// The card's balance and currency code, read linearizably on this node (the leader).
    async fn read_gift_card_here(
        &self,
        card_id: &str,
    ) -> Result<Option<(i64, String)>, ConsensusError> {
        posmesh_consensus::read_linearizable(&self.raft, &self.reader, DECISION_DEADLINE, |state| {
            state
                .gift_card_balance(card_id)
                .map(|(balance, currency)| (balance, currency.code().to_owned()))
        })
        .await
    }

    fn leader_device(&self, leader: NodeId) -> Result<String, String> {
        self.device_of(leader)
            .ok_or_else(|| format!("the leader (node {leader}) is not a known member"))
    }

    fn device_of(&self, id: NodeId) -> Option<String> {
        let metrics = self.raft.metrics().borrow_watched().clone();
        let membership = metrics.membership_config.membership().clone();
        membership.get_node(&id).map(|node| node.addr.clone())
    }

    /// What `posmesh status` shows.
    pub fn status(&self) -> RaftStatus {
        // Clone at once: holding the borrow can block openraft (DEPENDENCIES.md).
        let metrics = self.raft.metrics().borrow_watched().clone();
        let membership = metrics.membership_config.membership().clone();
        let device = |id: &NodeId| {
            membership
                .get_node(id)
                .map_or_else(|| id.to_string(), |node| node.addr.clone())
        };
        let last = metrics.last_log_index.unwrap_or(0);
        let lost_members = self.links.lost_members().all();
        // A lost member's matched index is its old log's: it holds none of it now.
        let lag = metrics
            .replication
            .as_ref()
            .map(|replication| {
                replication
                    .iter()
                    .map(|(id, matched)| {
                        let matched = matched.as_ref().map_or(0, |log_id| log_id.index());
                        (device(id), last.saturating_sub(matched))
                    })
                    .filter(|(device, _)| !lost_members.contains_key(device))
                    .collect()
            })
            .unwrap_or_default();
        use openraft::Instant as _;
        let last_contact_ms = metrics
            .heartbeat
            .as_ref()
            .map(|heartbeat| {
                heartbeat
                    .iter()
                    .map(|(id, acked)| {
                        let ago = acked.as_ref().map(|at| millis(at.elapsed()));
                        (device(id), ago)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let quorum_acked_ms = metrics
            .last_quorum_acked
            .as_ref()
            .map(|at| millis(at.elapsed()));
        RaftStatus {
            last_contact_ms,
            quorum_acked_ms,
            role: match metrics.state {
                ServerState::Leader => "leader",
                ServerState::Follower => "follower",
                ServerState::Candidate => "candidate",
                ServerState::Learner => "learner",
                ServerState::Shutdown => "shutdown",
            }
            .to_owned(),
            term: metrics.current_term,
            leader: metrics.current_leader.as_ref().map(device),
            commit_index: metrics.cluster_committed.as_ref().map(|l| l.index()),
            applied_index: metrics.last_applied.as_ref().map(|l| l.index()),
            last_log_index: metrics.last_log_index,
            voters: membership.voter_ids().map(|id| device(&id)).collect(),
            learners: membership.learner_ids().map(|id| device(&id)).collect(),
            lag,
            snapshot_index: metrics.snapshot.as_ref().map(|l| l.index()),
            snapshots_installed: self.snapshots_installed.load(Ordering::Relaxed),
            last_snapshot_installed_bytes: self
                .last_snapshot_installed_bytes
                .load(Ordering::Relaxed),
            group: self.links.group().map(|g| g.describe()),
            group_conflicts: self
                .links
                .conflicts()
                .values()
                .map(ToString::to_string)
                .collect(),
            retired: self.retirement().map(|r| r.to_string()),
            incarnation: Some(format!("{:016x}", self.incarnation)),
            seat_lost: self.links.seat_loss().get().map(ToString::to_string),
            lost_members: lost_members
                .iter()
                .map(|(device, member)| (device.clone(), member.to_string()))
                .collect(),
            certificate_revoked: self.own_revocation().map(|r| r.to_string()),
            rules_version: Some(self.reader.read(|state| state.rules_version)),
            rules: Some(self.rules_described()),
        }
    }

    /// The store's rules version in words, for `posmesh status` ([`RaftStatus::rules`]).
    fn rules_described(&self) -> String {
        let adopted = self.reader.read(|state| state.rules_version);
        let waiting = lock(&self.rules_waiting).join(", ");
        let waiting = (!waiting.is_empty()).then_some(waiting);
        let mut text = posmesh_consensus::rules::describe(adopted, waiting.as_deref());
        for (device, up_to) in lock(&self.rules_held_back).iter() {
            text.push_str(&format!(
                "; {device} is not added to the Raft group: its posmesh follows rules up to \
                 version {up_to}, the store follows {adopted} (upgrade it)"
            ));
        }
        text
    }

    /// On the leader, every [`MEMBERSHIP_INTERVAL`]: connected store devices that are not
    /// members join as learners; caught-up learners become voters while there are fewer
    /// than [`VOTERS_MAX`], promoted so that the voter count stays odd where it can (one
    /// task makes every membership change: concurrent changes can stick openraft in a joint
    /// configuration).
    async fn manage_membership(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(MEMBERSHIP_INTERVAL);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|stopped| *stopped) => return,
            }
            self.check_own_retirement();
            self.check_own_revocation();
            if let Err(error) = self.reconcile_membership().await {
                tracing::debug!(%error, "membership change not made (will retry)");
            }
        }
    }

    /// One round of [`RaftService::manage_membership`] on the leader, at most one change:
    /// 1. this device's own seat recorded ([`super::seat`]), and the newest rules version
    ///    adopted once every member supports it ([`RaftService::adopt_newer_rules`]);
    /// 2. a retired device still a member taken out (the leader that retired it may have
    ///    lost its leadership before dropping it: removing the leader hands it over);
    /// 3. a member found to have lost its Raft state taken out ([`super::lost_member`]);
    /// 4. a member without a recorded seat (joined under an older version) recorded as it
    ///    answers, or found lost when its log is empty or it refuses its seat;
    /// 5. a connected store device that is no member joins as a learner, its seat recorded
    ///    first (never one whose seat is pinned to another incarnation: it lost its Raft
    ///    state and must be enrolled again under a new id; never one that does not follow
    ///    the store's rules version: it could not decode or apply the log);
    /// 6. caught-up learners with a recorded seat promoted, or one voter demoted, to keep
    ///    an odd number of voters ([`super::voter_parity`]).
    async fn reconcile_membership(&self) -> anyhow::Result<()> {
        let metrics = self.raft.metrics().borrow_watched().clone();
        if metrics.state != ServerState::Leader {
            return Ok(());
        }
        let membership = metrics.membership_config.membership().clone();
        let members: BTreeMap<NodeId, String> = membership
            .nodes()
            .map(|(id, node)| (*id, node.addr.clone()))
            .collect();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let learners: BTreeSet<NodeId> = membership.learner_ids().collect();
        if self.seat_of(&self.local_device).is_none() {
            self.record_seat(&self.local_device, self.incarnation)
                .await?;
        }
        if self.adopt_newer_rules(&members).await? {
            return Ok(());
        }
        if let Some(change) = self.retired_member_change(&members, &voters) {
            self.raft.change_membership(change, false).await?;
            return Ok(());
        }
        let lost_devices = self.links.lost_members().all();
        let lost: BTreeSet<NodeId> = members
            .iter()
            .filter(|(_, device)| lost_devices.contains_key(*device))
            .map(|(id, _)| *id)
            .collect();
        let reachable: BTreeSet<NodeId> = members
            .iter()
            .filter(|(_, device)| self.links.connection(device).is_some())
            .map(|(id, _)| *id)
            .collect();
        match lost_member_step(&voters, &learners, self.id, &lost, &reachable) {
            Some(LostStep::RemoveLearner(id)) => {
                tracing::warn!(device = %members[&id], "taking a learner that lost its Raft state out of the Raft group");
                self.raft
                    .change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([id])), false)
                    .await?;
                return Ok(());
            }
            Some(LostStep::RemoveVoter(id)) => {
                tracing::warn!(device = %members[&id], voters = voters.len() - 1, "taking a voter that lost its Raft state out of the Raft group");
                self.raft
                    .change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([id])), false)
                    .await?;
                return Ok(());
            }
            None => {}
        }
        for (id, device) in &members {
            if *id == self.id || self.seat_of(device).is_some() || lost_devices.contains_key(device)
            {
                continue;
            }
            if let SeatAnswer::Answered {
                incarnation,
                empty_log,
                seat_barred,
                ..
            } = self.ask_seat(device).await
            {
                if empty_log || seat_barred || !self.record_seat(device, incarnation).await? {
                    self.links.lost_members().record(LostMember {
                        device_id: device.clone(),
                        seat: self.seat_of(device),
                        answering_as: Some(incarnation),
                    });
                }
                return Ok(());
            }
        }
        for device in self.links.devices() {
            let id = node_id(&device);
            if members.contains_key(&id)
                || self.reader.read(|state| state.is_retired(&device))
                || lost_devices.contains_key(&device)
                || !self.in_this_group(&device).await
            {
                continue;
            }
            let answer = self.ask_seat(&device).await;
            if !self.follows_store_rules(&device, &answer) {
                continue;
            }
            match answer {
                SeatAnswer::Unanswered => continue,
                SeatAnswer::Answered { seat_barred, .. } if seat_barred => continue,
                SeatAnswer::Answered { incarnation, .. } => {
                    let pinned = self.seat_of(&device);
                    let lost = match pinned {
                        Some(pinned) => pinned != incarnation,
                        None => !self.record_seat(&device, incarnation).await?,
                    };
                    if lost {
                        self.links.lost_members().record(LostMember {
                            device_id: device.clone(),
                            seat: self.seat_of(&device),
                            answering_as: Some(incarnation),
                        });
                        continue;
                    }
                }
                SeatAnswer::OlderVersion => {}
            }
            tracing::info!(%device, "store device joins the Raft group as a learner");
            self.raft
                .add_learner(id, BasicNode::new(&device), false)
                .await?;
            return Ok(()); // one change per round
        }
        let last = metrics.last_log_index.unwrap_or(0);
        let replication = metrics.replication.clone().unwrap_or_default();
        let caught_up: Vec<NodeId> = membership
            .learner_ids()
            .filter(|id| {
                let matched = replication
                    .get(id)
                    .and_then(|m| m.as_ref().map(|l| l.index()))
                    .unwrap_or(0);
                let seated = members
                    .get(id)
                    .is_some_and(|device| self.seat_of(device).is_some());
                seated && !lost.contains(id) && matched + CAUGHT_UP_LAG_MAX >= last
            })
            .collect();
        match super::voter_parity::voter_step(&voters, metrics.id, &caught_up, VOTERS_MAX) {
            Some(super::voter_parity::VoterStep::Promote(ids)) => {
                tracing::info!(
                    voters = voters.len() + ids.len(),
                    "promoting learners to voters"
                );
                self.raft
                    .change_membership(ChangeMembers::AddVoterIds(ids), false)
                    .await?;
            }
            Some(super::voter_parity::VoterStep::Demote(id)) => {
                tracing::info!(
                    voters = voters.len() - 1,
                    demoted = id,
                    "an even number of voters and no learner to promote: demoting one voter to learner"
                );
                // `retain`: the removed voter stays in the group as a learner.
                self.raft
                    .change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([id])), true)
                    .await?;
            }
            None => {}
        }
        Ok(())
    }

    /// The recorded seat (Raft incarnation) of `device`, as applied here.
    fn seat_of(&self, device: &str) -> Option<u64> {
        self.reader
            .read(|state| state.raft_incarnations.get(device).copied())
    }

    /// Records `device`'s seat as `incarnation` through Raft (on the leader). False when
    /// the seat is pinned to another incarnation (the device lost its Raft state).
    async fn record_seat(&self, device: &str, incarnation: u64) -> anyhow::Result<bool> {
        let command = StoreCommand::RecordRaftIncarnation {
            device_id: device.to_owned(),
            incarnation,
        };
        let (_, response) =
            posmesh_consensus::write(&self.raft, command, DECISION_DEADLINE).await?;
        if let StoreResponse::Refused(refusal) = response {
            tracing::debug!(%device, %refusal, "seat not recorded");
            return Ok(false);
        }
        tracing::info!(%device, incarnation = format!("{incarnation:016x}"), "Raft seat recorded");
        Ok(true)
    }

    /// The change taking a retired device out of the membership, if one is still a member
    /// (never the only voter: openraft refuses an empty membership).
    fn retired_member_change(
        &self,
        members: &BTreeMap<NodeId, String>,
        voters: &BTreeSet<NodeId>,
    ) -> Option<ChangeMembers<NodeId, BasicNode>> {
        let (id, device) = members
            .iter()
            .find(|(_, device)| self.reader.read(|state| state.is_retired(device)))?;
        if voters.contains(id) {
            if voters.len() == 1 {
                return None;
            }
            tracing::info!(%device, "a retired device is still a voter: taking it out of the Raft group");
            Some(ChangeMembers::RemoveVoters(BTreeSet::from([*id])))
        } else {
            tracing::info!(%device, "a retired device is still a learner: taking it out of the Raft group");
            Some(ChangeMembers::RemoveNodes(BTreeSet::from([*id])))
        }
    }

    /// On the leader, while the store follows older rules than this binary's newest
    /// ([`posmesh_consensus::rules`]): asks every other member of the current membership
    /// (voters and learners) which rules it follows, and once every one follows the newest
    /// proposes [`StoreCommand::AdoptRules`] ([`super::rules_adoption`]). Until then the
    /// members it waits for are what `posmesh status` shows. True when it proposed the
    /// adoption (this round's change).
    async fn adopt_newer_rules(&self, members: &BTreeMap<NodeId, String>) -> anyhow::Result<bool> {
        let adopted = self.reader.read(|state| state.rules_version);
        if next_step(adopted, &[]) == RulesStep::UpToDate {
            lock(&self.rules_waiting).clear();
            return Ok(false);
        }
        let mut answers = Vec::new();
        for (id, device) in members {
            if *id != self.id {
                let up_to = self.ask_seat(device).await.rules_up_to();
                answers.push((device.clone(), up_to));
            }
        }
        match next_step(adopted, &answers) {
            RulesStep::UpToDate => Ok(false),
            RulesStep::WaitFor(devices) => {
                let mut waiting = lock(&self.rules_waiting);
                if *waiting != devices {
                    tracing::info!(
                        waiting_for = ?devices,
                        adopted,
                        available = posmesh_consensus::rules::RULES_VERSION_LATEST,
                        "the store keeps its rules version until every member runs a posmesh that supports the newest"
                    );
                    *waiting = devices;
                }
                Ok(false)
            }
            RulesStep::Adopt(version) => {
                lock(&self.rules_waiting).clear();
                let command = StoreCommand::AdoptRules { version };
                let (index, response) =
                    posmesh_consensus::write(&self.raft, command, DECISION_DEADLINE).await?;
                match response {
                    StoreResponse::Refused(refusal) => {
                        tracing::warn!(%refusal, version, "rules version not adopted");
                    }
                    _ => tracing::info!(
                        index,
                        version,
                        "every member supports the newest rules: the store follows them from this entry on"
                    ),
                }
                Ok(true)
            }
        }
    }

    /// Whether `device`, which `answer`ed [`RaftRequest::IncarnationOf`], follows the
    /// store's rules version and may join the Raft group ([`super::rules_adoption`]; an
    /// unanswered device is asked again next round). A device that does not is held
    /// back, WARNed about once and shown in `posmesh status`.
    fn follows_store_rules(&self, device: &str, answer: &SeatAnswer) -> bool {
        let Some(up_to) = answer.rules_up_to() else {
            return true;
        };
        let adopted = self.reader.read(|state| state.rules_version);
        let mut held_back = lock(&self.rules_held_back);
        if may_join(adopted, up_to) {
            held_back.remove(device);
            return true;
        }
        if held_back.insert(device.to_owned(), up_to).is_none() {
            tracing::warn!(
                %device,
                follows_up_to = up_to,
                adopted,
                "not adding this device to the store's Raft group: its posmesh does not follow the store's rules version (upgrade it)"
            );
        }
        false
    }

    /// Asks `device` for its Raft incarnation ([`RaftRequest::IncarnationOf`]).
    async fn ask_seat(&self, device: &str) -> SeatAnswer {
        match self
            .links
            .call(device, &RaftRequest::IncarnationOf, Duration::from_secs(2))
            .await
        {
            Ok(RaftReply::IncarnationIs {
                incarnation,
                empty_log,
                seat_barred,
                rules_up_to,
            }) => SeatAnswer::Answered {
                incarnation,
                empty_log,
                seat_barred,
                rules_up_to: rules_up_to
                    .unwrap_or(posmesh_consensus::rules::RULES_VERSION_ORIGINAL),
            },
            Ok(RaftReply::Failed(why)) if why.contains(super::wire::UNDECODABLE) => {
                SeatAnswer::OlderVersion
            }
            Ok(_) | Err(_) => SeatAnswer::Unanswered,
        }
    }

    /// Whether `device` may join this device's Raft group: it is in no group or in this
    /// one (asked over the mesh; a device that does not answer is asked again next round).
    /// A device of another group is recorded as a conflict and never added.
    async fn in_this_group(&self, device: &str) -> bool {
        if self.links.conflicts().contains_key(device) {
            return false;
        }
        let Some(local) = self.links.group() else {
            return true; // a group founded before groups had identities
        };
        match self
            .links
            .call(device, &RaftRequest::GroupOf, Duration::from_secs(2))
            .await
        {
            Ok(RaftReply::GroupIs(None)) => true,
            Ok(RaftReply::GroupIs(Some(theirs))) if theirs == local => true,
            Ok(RaftReply::GroupIs(Some(theirs))) => {
                self.links.record_conflict(GroupConflict {
                    peer: device.to_owned(),
                    peer_group: theirs,
                    local_group: local,
                });
                false
            }
            // An older version cannot answer `GroupOf`: add it as before.
            Ok(RaftReply::Failed(why)) if why.contains("undecodable") => true,
            Ok(_) | Err(_) => false,
        }
    }

    /// Graceful stop: a leader hands leadership to another voter first, so the store does
    /// not wait out an election timeout; then Raft shuts down.
    pub async fn stop(&self) {
        let metrics = self.raft.metrics().borrow_watched().clone();
        if metrics.state == ServerState::Leader {
            let membership = metrics.membership_config.membership().clone();
            let successor = membership.voter_ids().find(|id| *id != self.id);
            if let Some(to) = successor {
                if let Err(error) = self.raft.trigger().transfer_leader(to).await {
                    tracing::warn!(%error, "leadership hand-over failed");
                } else {
                    // Wait (briefly) until someone else leads, and say what happened.
                    let mut handed_over = false;
                    for _ in 0..20 {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        let leader = self.raft.metrics().borrow_watched().clone().current_leader;
                        if leader.is_some_and(|leader| leader != self.id) {
                            handed_over = true;
                            break;
                        }
                    }
                    if handed_over {
                        tracing::info!(to, "leadership handed over before stopping");
                    } else {
                        tracing::warn!(to, "leadership hand-over not confirmed within 2 s; the others elect after the lease");
                    }
                }
            }
        }
        if let Err(error) = self.raft.shutdown().await {
            tracing::warn!(%error, "raft shutdown");
        }
    }

    /// Every day close applied here, by business date.
    pub fn day_closes(&self) -> BTreeMap<String, crate::report::z_report::CloseCut> {
        self.reader.read(|state| {
            state
                .day_closes
                .iter()
                .map(|(date, close)| {
                    (
                        date.clone(),
                        crate::report::z_report::CloseCut {
                            closed_at_index: close.closed_at_index,
                            cut: close.version_vector.clone(),
                        },
                    )
                })
                .collect()
        })
    }

    /// The close of `business_date` as applied on this device: the cut (device → last seq
    /// included) and the log index of the close; `None` if not closed (or not applied here
    /// yet).
    pub fn day_close(&self, business_date: &str) -> Option<(BTreeMap<String, u64>, u64)> {
        self.reader.read(|state| {
            state
                .day_closes
                .get(business_date)
                .map(|close| (close.version_vector.clone(), close.closed_at_index))
        })
    }

    /// Brings this device's applied state up to the leader's read index
    /// ([`posmesh_consensus::read_index`], asked of the leader by a follower with
    /// [`RaftRequest::ReadIndex`]): every write acknowledged before the call is then
    /// applied here (an operator just created through another device). Without a
    /// reachable leader it waits for one as a write does ([`Self::write`]); then it waits
    /// at most `wait` for the entries to apply here. Returns the index applied up to.
    ///
    /// # Errors
    /// A sentence saying why not: no leader known or reachable, no quorum, or the entries
    /// not applied here in time.
    pub async fn catch_up(&self, wait: Duration) -> Result<u64, String> {
        let index = self.with_leader(|| self.read_index_once()).await?;
        if self.wait_applied(index, wait).await {
            Ok(index)
        } else {
            Err(format!(
                "this device did not apply the store's log up to index {index} within {} ms",
                wait.as_millis()
            ))
        }
    }

    /// The leader's read index: this device's own if it leads, else asked of the leader.
    async fn read_index_once(&self) -> Attempt<u64> {
        match posmesh_consensus::read_index(&self.raft, DECISION_DEADLINE).await {
            Ok(index) => Attempt::Done(Ok(index)),
            Err(ConsensusError::NotLeader { leader }) => {
                let device = match self.reachable_leader(leader) {
                    Ok(device) => device,
                    Err(why) => return Attempt::NotSent(why),
                };
                let request = RaftRequest::ReadIndex;
                // A read changes nothing: asked again (of the next leader) whatever failed.
                match forwarding::call_leader(&self.links, &device, &request, READ_INDEX_CALL_WAIT)
                    .await
                {
                    Ok(RaftReply::ReadIndexIs(index)) => Attempt::Done(Ok(index)),
                    Ok(other) => Attempt::NotSent(format!("the leader answered {other:?}")),
                    Err(why) => Attempt::NotSent(why),
                }
            }
            Err(e) if e.never_proposed() => Attempt::NotSent(e.to_string()),
            Err(e) => Attempt::Done(Err(e.to_string())),
        }
    }

    /// Waits (at most `timeout`) until this device has applied log index `index`: after a
    /// write forwarded to the leader, to read its effect here. False on timeout.
    pub async fn wait_applied(&self, index: u64, timeout: Duration) -> bool {
        self.raft
            .wait(Some(timeout))
            .applied_index_at_least(Some(index), "a forwarded write applied here")
            .await
            .is_ok()
    }

    /// `device_id`'s allotment of the store's offline card budget as applied on this device
    /// (only committed entries are applied, so without quorum this is the last committed
    /// one, never more): (applied log index, allotment in minor units, budget currency).
    pub fn committed_allotment(&self, device_id: &str) -> Option<(u64, i64, String)> {
        let applied = self
            .raft
            .metrics()
            .borrow_watched()
            .clone()
            .last_applied
            .map_or(0, |log_id| log_id.index());
        self.reader.read(|state| {
            let (_, currency) = state.exposure.budget?;
            let allotment = *state.exposure.allotments.get(device_id)?;
            Some((applied, allotment, currency.code().to_owned()))
        })
    }

    /// Runs `read` on the state applied on this device (replicated: possibly a moment
    /// behind the leader; not a linearizable read).
    pub fn read<T>(&self, read: impl FnOnce(&posmesh_consensus::StoreState) -> T) -> T {
        self.reader.read(read)
    }

    /// Whether this device leads the store's Raft group now (as its metrics say): its
    /// applied state then holds every write it acknowledged.
    pub fn leads(&self) -> bool {
        self.raft.metrics().borrow_watched().clone().current_leader == Some(self.id)
    }

    /// This device's id.
    pub fn local_device(&self) -> &str {
        &self.local_device
    }

    /// The applied store state as JSON and the log index it was applied up to (what the
    /// uplink stores at the cloud so a store that loses every device can be restored);
    /// `None` unless something was applied after log index `newer_than`.
    pub fn state_snapshot(&self, newer_than: u64) -> Option<(u64, Vec<u8>)> {
        let index = self.reader.last_applied_index();
        if index == 0 || index <= newer_than {
            return None;
        }
        let json = self.reader.read(serde_json::to_vec).ok()?;
        Some((index, json))
    }

    /// Whether `device_id` is known to the store's consensus: a member (voter or learner),
    /// a device connected over the mesh, or a device already retired.
    pub fn knows_device(&self, device_id: &str) -> bool {
        let id = node_id(device_id);
        let metrics = self.raft.metrics().borrow_watched().clone();
        metrics
            .membership_config
            .membership()
            .get_node(&id)
            .is_some()
            || self.links.devices().iter().any(|d| d == device_id)
            || self.reader.read(|state| state.is_retired(device_id))
    }

    /// The catalog version applied here (0: none yet).
    pub fn catalog_version(&self) -> u64 {
        self.reader
            .read(|state| state.catalog.map_or(0, |c| c.version))
    }

    /// The catalog committed through Raft, `(version, effective_at_ms)`, as applied here
    /// (without copying its content: see [`RaftService::committed_catalog`]).
    pub fn committed_catalog_version(&self) -> Option<(u64, i64)> {
        self.reader.read(|state| {
            let catalog = state.catalog?;
            state
                .catalog_toml
                .as_ref()
                .map(|_| (catalog.version, catalog.effective_at_ms))
        })
    }

    /// The catalog committed through Raft with its content, `(version, effective_at_ms,
    /// toml)`, as applied here (a copy of up to 1 MiB of TOML).
    pub fn committed_catalog(&self) -> Option<(u64, i64, String)> {
        self.reader.read(|state| {
            let catalog = state.catalog?;
            let toml = state.catalog_toml.clone()?;
            Some((catalog.version, catalog.effective_at_ms, toml))
        })
    }

    /// Commits a catalog published at the cloud through the store's Raft group (forwarded
    /// to the leader). A version already applied here is not proposed again.
    ///
    /// # Errors
    /// The catalog is over [`posmesh_consensus::CATALOG_TOML_BYTES_MAX`], does not parse
    /// or is not in `currency` (the store's: its catalog file's; a store never changes
    /// currency, and every device would go on pricing from its file); no quorum; the state
    /// machine refused it.
    pub async fn publish_catalog(
        &self,
        release: &posmesh_proto::cloud::v1::CatalogRelease,
        currency: posmesh_domain::Currency,
    ) -> Result<(), String> {
        if release.version <= self.catalog_version() {
            return Ok(());
        }
        if release.catalog_toml.len() > posmesh_consensus::CATALOG_TOML_BYTES_MAX {
            return Err(format!(
                "catalog {} is {} bytes, over the {} a store's Raft log takes",
                release.version,
                release.catalog_toml.len(),
                posmesh_consensus::CATALOG_TOML_BYTES_MAX
            ));
        }
        let catalog = crate::catalog_file::parse_catalog(&release.catalog_toml)
            .map_err(|e| format!("catalog {} is invalid: {e}", release.version))?;
        if catalog.currency() != currency {
            return Err(format!(
                "catalog {} is priced in {}, the store in {}: not committed (publish one in {})",
                release.version,
                catalog.currency().code(),
                currency.code(),
                currency.code()
            ));
        }
        let command = StoreCommand::PublishCatalog {
            version: release.version,
            effective_at_ms: release.effective_at_ms,
            catalog_toml: release.catalog_toml.clone(),
        };
        match self.write(command).await? {
            (_, StoreResponse::Refused(refusal)) => Err(format!("{refusal:?}")),
            _ => Ok(()),
        }
    }
}

/// A duration in whole milliseconds (saturating).
fn millis(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}

/// Locks `mutex`, taking its value over from a panicked holder (the data is a plain
/// record, whole at every moment).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
