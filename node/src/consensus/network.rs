//! openraft's network over the store mesh: [`RaftLinks`] keeps the current mesh connection
//! of every peer device (a [`ConnectionObserver`]) and serves the peer's Raft calls on it;
//! [`MeshRaftNetwork`] makes openraft's RPCs into calls on those connections.

use super::append_budget::{fit_append, APPEND_CALL_BYTES_MAX};
use super::lost_member::{LostMember, LostMembers};
use super::own_revocation::OwnRevocationNotice;
use super::retirement::{Retirement, RetirementNotice};
use super::seat::{SeatLoss, SeatLossNotice};
use super::snapshot_transfer::chunks;
use super::wire::{decode_envelope, encode_envelope, CallHeader, RaftReply, RaftRequest};
use crate::peers::ConnectionObserver;
use openraft::error::{RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::v2::RaftNetworkV2;
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::type_config::alias::{SnapshotOf, VoteOf};
use openraft::{BasicNode, OptionalSend, RaftNetworkFactory};
use posmesh_consensus::group::{GroupConflict, GroupIdentity};
use posmesh_consensus::storage::SnapshotData;
use posmesh_consensus::{NodeId, TypeConfig};
use posmesh_mesh::transport::{MeshConnection, RpcHandler, StreamPurpose};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Start of [`RaftLinks::call`]'s error when there is no connection to the device (nothing
/// was sent).
pub const NO_CONNECTION: &str = "no mesh connection to";

/// Serves one decoded request from a peer device, with the header the peer sent (its Raft
/// group and incarnations; the [`super::RaftService`]).
pub type RequestHandler = Arc<
    dyn Fn(
            String,
            Option<CallHeader>,
            RaftRequest,
        ) -> std::pin::Pin<Box<dyn Future<Output = RaftReply> + Send>>
        + Send
        + Sync,
>;

/// Told once per peer found in another Raft group (raises the manager's alert).
pub type ConflictListener = Arc<dyn Fn(&GroupConflict) + Send + Sync>;

/// The recorded seat (Raft incarnation) of a device, as applied on this device.
pub type SeatLookup = Arc<dyn Fn(&str) -> Option<u64> + Send + Sync>;

/// Whether this device must not use its Raft seat for another reason than a known loss
/// (its id is in `device_identity_conflict`).
pub type SeatBar = Arc<dyn Fn() -> bool + Send + Sync>;

/// This device's Raft incarnation and where the peers' seats are looked up.
struct LocalSeat {
    device_id: String,
    incarnation: u64,
    seat_of: SeatLookup,
}

/// The current mesh connection of each peer device, for Raft; this device's Raft group
/// and incarnation (sent with every call, with the receiver's recorded seat), the peers
/// found in another group, and the seats found lost ([`super::seat`]).
#[derive(Default)]
pub struct RaftLinks {
    connections: Mutex<BTreeMap<String, (u64, Arc<MeshConnection>)>>,
    handler: OnceLock<RequestHandler>,
    group: Mutex<Option<GroupIdentity>>,
    conflicts: Mutex<BTreeMap<String, GroupConflict>>,
    conflict_listener: OnceLock<ConflictListener>,
    retirement: RetirementNotice,
    local_seat: OnceLock<LocalSeat>,
    seat_bar: OnceLock<SeatBar>,
    seat_loss: SeatLossNotice,
    lost_members: LostMembers,
    own_revocation: OwnRevocationNotice,
    ledger_positions: OnceLock<Arc<dyn super::ledger_cut::LedgerPositions>>,
}

impl RaftLinks {
    /// Sets where the leader reads devices' ledger positions to fill a ledger cut
    /// ([`super::ledger_cut`]; once, when the mesh starts).
    pub fn set_ledger_positions(&self, positions: Arc<dyn super::ledger_cut::LedgerPositions>) {
        let _ = self.ledger_positions.set(positions);
    }

    /// Where devices' ledger positions are read, once set.
    pub fn ledger_positions(&self) -> Option<&Arc<dyn super::ledger_cut::LedgerPositions>> {
        self.ledger_positions.get()
    }

    /// This device's Raft group, if it is in one.
    pub fn group(&self) -> Option<GroupIdentity> {
        lock(&self.group).clone()
    }

    /// Sets this device's Raft group (founded or adopted here).
    pub fn set_group(&self, group: GroupIdentity) {
        *lock(&self.group) = Some(group);
    }

    /// Sets who is told of a peer in another group (once).
    pub fn on_conflict(&self, listener: ConflictListener) {
        let _ = self.conflict_listener.set(listener);
    }

    /// Records that a peer is in another Raft group: logged and passed to the listener the
    /// first time (or when the peer's group changed), kept for `posmesh status`.
    pub fn record_conflict(&self, conflict: GroupConflict) {
        let new = lock(&self.conflicts).get(&conflict.peer) != Some(&conflict);
        if !new {
            return;
        }
        tracing::error!(code = GroupConflict::CODE, peer = %conflict.peer, "{conflict}");
        lock(&self.conflicts).insert(conflict.peer.clone(), conflict.clone());
        if let Some(listener) = self.conflict_listener.get() {
            listener(&conflict);
        }
    }

    /// Peers found in another Raft group, by device id.
    pub fn conflicts(&self) -> BTreeMap<String, GroupConflict> {
        lock(&self.conflicts).clone()
    }

    /// Whether this device was retired from the store (learned from a peer's refusal or
    /// from the applied state), and who is told when it is.
    pub fn retirement(&self) -> &RetirementNotice {
        &self.retirement
    }

    /// This device's certificate serial and whether it was revoked store-wide
    /// ([`super::own_revocation`]), and who is told when it is.
    pub fn own_revocation(&self) -> &OwnRevocationNotice {
        &self.own_revocation
    }

    /// Sets this device's id and Raft incarnation, and where the peers' recorded seats are
    /// looked up (once, when Raft starts).
    pub fn set_local_seat(&self, device_id: &str, incarnation: u64, seat_of: SeatLookup) {
        let _ = self.local_seat.set(LocalSeat {
            device_id: device_id.to_owned(),
            incarnation,
            seat_of,
        });
    }

    /// This device's Raft incarnation, once Raft started.
    pub fn incarnation(&self) -> Option<u64> {
        self.local_seat.get().map(|seat| seat.incarnation)
    }

    /// Sets what else bars this device's seat (its identity conflict; once).
    pub fn bar_seat_when(&self, bar: SeatBar) {
        let _ = self.seat_bar.set(bar);
    }

    /// Whether this device must refuse the Raft calls of its seat: it knows its Raft state
    /// lost, or its seat is barred ([`RaftLinks::bar_seat_when`]).
    pub fn seat_barred(&self) -> bool {
        self.seat_loss.get().is_some() || self.seat_bar.get().is_some_and(|bar| bar())
    }

    /// Whether this device learned its Raft state was lost, and who is told when it does.
    pub fn seat_loss(&self) -> &SeatLossNotice {
        &self.seat_loss
    }

    /// The members found to have lost their Raft state, and who is told of one.
    pub fn lost_members(&self) -> &LostMembers {
        &self.lost_members
    }

    /// Sets who answers the peers' calls (once).
    pub fn serve_with(&self, handler: RequestHandler) {
        let _ = self.handler.set(handler);
    }

    /// The connection to `device_id`, if one is up.
    pub fn connection(&self, device_id: &str) -> Option<Arc<MeshConnection>> {
        self.lock().get(device_id).map(|(_, c)| c.clone())
    }

    /// Devices with a connection, in order.
    pub fn devices(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Sends `request` to `device_id` and waits at most `timeout` for its reply.
    ///
    /// # Errors
    /// A description when there is no connection, the call fails or the reply is garbage.
    pub async fn call(
        &self,
        device_id: &str,
        request: &RaftRequest,
        timeout: Duration,
    ) -> Result<RaftReply, String> {
        let bytes = self.encode(device_id, request)?;
        self.call_encoded(device_id, &bytes, timeout).await
    }

    /// The bytes of `request` to `device_id` as [`RaftLinks::call`] sends it: with this
    /// device's group and Raft incarnation, and the incarnation recorded for the seat of
    /// `device_id` ([`CallHeader`]).
    ///
    /// # Errors
    /// serde_json's, as a sentence (not expected for these types).
    pub fn encode(&self, device_id: &str, request: &RaftRequest) -> Result<Vec<u8>, String> {
        let header = self.group().map(|group| CallHeader {
            group,
            from_incarnation: self.incarnation(),
            to_incarnation: self
                .local_seat
                .get()
                .and_then(|seat| (seat.seat_of)(device_id)),
        });
        encode_envelope(header.as_ref(), request).map_err(|e| e.to_string())
    }

    /// [`RaftLinks::call`] with the request already encoded ([`RaftLinks::encode`]).
    ///
    /// # Errors
    /// As [`RaftLinks::call`].
    pub async fn call_encoded(
        &self,
        device_id: &str,
        bytes: &[u8],
        timeout: Duration,
    ) -> Result<RaftReply, String> {
        let connection = self
            .connection(device_id)
            .ok_or_else(|| format!("{NO_CONNECTION} {device_id}"))?;
        let answer = connection
            .call(StreamPurpose::Raft, bytes, timeout)
            .await
            .map_err(|e| format!("{device_id}: {e}"))?;
        let reply =
            serde_json::from_slice(&answer).map_err(|e| format!("{device_id}: bad reply: {e}"))?;
        if let RaftReply::Retired {
            device_id: retired,
            retired_at_index,
        } = &reply
        {
            self.retirement.record(Retirement {
                device_id: retired.clone(),
                retired_at_index: *retired_at_index,
                learned_from: format!("refused by {device_id}"),
            });
        }
        if let RaftReply::SeatLost {
            device_id: lost,
            seat,
            answering_as,
        } = &reply
        {
            self.record_lost(lost, *seat, *answering_as, device_id);
        }
        if let RaftReply::WrongGroup(refusal) = &reply {
            // The peer's view, turned round: the peer is in `local_group`.
            self.record_conflict(GroupConflict {
                peer: device_id.to_owned(),
                peer_group: refusal.local_group.clone(),
                local_group: refusal.peer_group.clone(),
            });
        }
        Ok(reply)
    }

    /// Records that `device_id` lost its Raft state, as `peer` showed: this device's own
    /// loss, or a member's.
    pub fn record_lost(
        &self,
        device_id: &str,
        seat: Option<u64>,
        answering_as: Option<u64>,
        peer: &str,
    ) {
        let Some(local) = self.local_seat.get() else {
            return;
        };
        if device_id == local.device_id {
            self.seat_loss.record(SeatLoss {
                device_id: device_id.to_owned(),
                incarnation: local.incarnation,
                seat,
                learned_from: format!("refused by {peer}"),
            });
        } else {
            self.lost_members.record(LostMember {
                device_id: device_id.to_owned(),
                seat: seat.or_else(|| (local.seat_of)(device_id)),
                answering_as,
            });
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, (u64, Arc<MeshConnection>)>> {
        lock(&self.connections)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ConnectionObserver for RaftLinks {
    fn connected(
        self: Arc<Self>,
        device_id: &str,
        connection_id: u64,
        connection: Arc<MeshConnection>,
    ) {
        self.lock()
            .insert(device_id.to_owned(), (connection_id, connection.clone()));
        let Some(handler) = self.handler.get().cloned() else {
            return;
        };
        let peer = device_id.to_owned();
        let rpc: RpcHandler = Arc::new(move |bytes: Vec<u8>| {
            let handler = handler.clone();
            let peer = peer.clone();
            Box::pin(async move {
                let reply = match decode_envelope(&bytes) {
                    Ok((group, request)) => handler(peer, group, request).await,
                    Err(error) => RaftReply::Failed(error.to_string()),
                };
                serde_json::to_vec(&reply).unwrap_or_default()
            })
        });
        let device = device_id.to_owned();
        tokio::spawn(async move {
            let stopped = connection.serve_calls(StreamPurpose::Raft, rpc).await;
            tracing::debug!(peer = %device, reason = %stopped, "raft calls no longer served");
        });
    }

    fn closed(self: Arc<Self>, device_id: &str, connection_id: u64) {
        let mut connections = self.lock();
        if connections
            .get(device_id)
            .is_some_and(|(id, _)| *id == connection_id)
        {
            connections.remove(device_id);
        }
    }
}

/// openraft's network factory: a client per target, addressed by the device id kept as the
/// member's [`BasicNode`] address.
pub struct MeshRaftNetwork {
    /// The peers' connections.
    pub links: Arc<RaftLinks>,
}

/// Calls to one target device.
pub struct MeshRaftClient {
    links: Arc<RaftLinks>,
    device: String,
}

impl RaftNetworkFactory<TypeConfig> for MeshRaftNetwork {
    type Network = MeshRaftClient;

    async fn new_client(&mut self, _target: NodeId, node: &BasicNode) -> MeshRaftClient {
        MeshRaftClient {
            links: self.links.clone(),
            device: node.addr.clone(),
        }
    }
}

impl MeshRaftClient {
    async fn call(
        &self,
        request: RaftRequest,
        ttl: Duration,
    ) -> Result<RaftReply, Unreachable<TypeConfig>> {
        let bytes = self
            .links
            .encode(&self.device, &request)
            .map_err(Unreachable::from_string)?;
        self.call_encoded(&bytes, ttl).await
    }

    async fn call_encoded(
        &self,
        bytes: &[u8],
        ttl: Duration,
    ) -> Result<RaftReply, Unreachable<TypeConfig>> {
        match self.links.call_encoded(&self.device, bytes, ttl).await {
            Ok(RaftReply::Failed(why)) => {
                Err(Unreachable::from_string(format!("{}: {why}", self.device)))
            }
            Ok(RaftReply::WrongGroup(refusal)) => Err(Unreachable::from_string(format!(
                "{}: {}: {refusal}",
                self.device,
                GroupConflict::CODE
            ))),
            // Recorded by `RaftLinks::call`; never counted as an answer of the seat.
            Ok(RaftReply::SeatLost { device_id, .. }) => Err(Unreachable::from_string(format!(
                "{}: {}: {device_id} lost its Raft state",
                self.device,
                super::seat::SEAT_LOST_CODE
            ))),
            Ok(reply) => Ok(reply),
            Err(why) => Err(Unreachable::from_string(why)),
        }
    }
}

fn unexpected(device: &str, reply: &RaftReply) -> Unreachable<TypeConfig> {
    Unreachable::from_string(format!("{device}: unexpected reply {reply:?}"))
}

impl RaftNetworkV2<TypeConfig> for MeshRaftClient {
    type SnapshotData = SnapshotData;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        // A call too large for one mesh frame goes with the entries that fit; the rest in
        // openraft's next call ([`append_budget`]).
        let request = RaftRequest::Append(rpc);
        let unreachable = |e: String| RPCError::Unreachable(Unreachable::from_string(e));
        let bytes = self
            .links
            .encode(&self.device, &request)
            .map_err(unreachable)?;
        let (bytes, cut_at) = match request {
            RaftRequest::Append(rpc) if bytes.len() > APPEND_CALL_BYTES_MAX => {
                let (fitted, cut_at) =
                    fit_append(rpc, bytes.len(), APPEND_CALL_BYTES_MAX, |entry| {
                        serde_json::to_vec(entry).map_or(0, |json| json.len())
                    });
                let bytes = self
                    .links
                    .encode(&self.device, &RaftRequest::Append(fitted))
                    .map_err(unreachable)?;
                (bytes, cut_at)
            }
            _ => (bytes, None),
        };
        match self.call_encoded(&bytes, option.soft_ttl()).await {
            Ok(RaftReply::Append(AppendEntriesResponse::Success)) if cut_at.is_some() => {
                Ok(AppendEntriesResponse::PartialSuccess(cut_at))
            }
            Ok(RaftReply::Append(response)) => Ok(response),
            Ok(other) => Err(RPCError::Unreachable(unexpected(&self.device, &other))),
            Err(e) => Err(RPCError::Unreachable(e)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.call(RaftRequest::Vote(rpc), option.soft_ttl()).await {
            Ok(RaftReply::Vote(response)) => Ok(response),
            Ok(other) => Err(RPCError::Unreachable(unexpected(&self.device, &other))),
            Err(e) => Err(RPCError::Unreachable(e)),
        }
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self
            .call(RaftRequest::PreVote(rpc), option.soft_ttl())
            .await
        {
            Ok(RaftReply::Vote(response)) => Ok(response),
            Ok(other) => Err(RPCError::Unreachable(unexpected(&self.device, &other))),
            Err(e) => Err(RPCError::Unreachable(e)),
        }
    }

    async fn transfer_leader(
        &mut self,
        rpc: openraft::raft::TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<openraft::raft::TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self
            .call(RaftRequest::TransferLeader(rpc), option.soft_ttl())
            .await
        {
            Ok(RaftReply::TransferLeader(None)) => Ok(Ok(())),
            Ok(RaftReply::TransferLeader(Some(why))) => Err(RPCError::Unreachable(
                Unreachable::from_string(format!("{}: transfer rejected: {why}", self.device)),
            )),
            Ok(other) => Err(RPCError::Unreachable(unexpected(&self.device, &other))),
            Err(e) => Err(RPCError::Unreachable(e)),
        }
    }

    /// Sends the snapshot in chunks ([`super::snapshot_transfer`]), one call each, in order,
    /// each waiting for the previous one's answer; stops when openraft cancels the
    /// replication. The whole transfer is bounded by the hard TTL (the configured
    /// `install_snapshot_timeout`).
    async fn full_snapshot(
        &mut self,
        vote: VoteOf<TypeConfig>,
        snapshot: SnapshotOf<TypeConfig, SnapshotData>,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let deadline = tokio::time::Instant::now() + option.hard_ttl();
        let meta = snapshot.meta;
        let data = snapshot.snapshot.into_inner();
        let total_bytes = data.len() as u64;
        let send_all = async {
            let mut pieces = chunks(&data).into_iter().peekable();
            while let Some(piece) = pieces.next() {
                let request = RaftRequest::SnapshotChunk {
                    vote,
                    meta: meta.clone(),
                    offset: piece.offset,
                    total_bytes,
                    data: piece.data.to_vec(),
                };
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                let reply = self.call(request, left).await?;
                match (reply, pieces.peek()) {
                    (RaftReply::Snapshot(response), None) => return Ok(response),
                    (RaftReply::SnapshotChunkTaken { next_offset }, Some(next))
                        if next_offset == next.offset => {}
                    (other, _) => return Err(unexpected(&self.device, &other)),
                }
            }
            Err(Unreachable::from_string(format!(
                "{}: snapshot sent without an answer to its last chunk",
                self.device
            )))
        };
        tokio::select! {
            sent = send_all => sent.map_err(StreamingError::Unreachable),
            closed = cancel => Err(StreamingError::Closed(closed)),
        }
    }
}
