//! The simulated store network for Raft: every RPC is a call into the target device's Raft
//! after a seeded latency, unless the link is cut (partition), the message is lost, or the
//! target is down. Faults change [`NetState`]; draws come from the run's seeded RNG.
//!
//! Messages on one directed link are delivered in the order they were sent (an ordered
//! stream per peer). With independent per-message latency instead — messages overtaking
//! each other — openraft 0.10.0-alpha.37 trips its own debug assertion on a follower
//! (`io_progress.rs`: "expect submitted … < new_submitted …", an AppendEntries older than
//! one already submitted); the node's mesh network sends each Raft RPC on its own QUIC
//! stream, where such overtaking is possible too (noted for the node, see README).

use super::SimRaft as StoreRaft;
use crate::sim::rng::SimRng;
use openraft::error::{RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::v2::RaftNetworkV2;
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::type_config::alias::{SnapshotOf, VoteOf};
use openraft::{BasicNode, OptionalSend, RaftNetworkFactory};
use posmesh_consensus::{NodeId, NudgeHandle, TypeConfig};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The network's state: who is up, which links are cut, loss and latency.
pub struct NetState {
    /// The Raft of every running device.
    pub up: BTreeMap<NodeId, StoreRaft>,
    /// Every device's failover nudge (the production one), told when the device answers an
    /// AppendEntries or installs a snapshot, as the node's RPC receive path does.
    pub nudges: BTreeMap<NodeId, NudgeHandle>,
    /// Cut links (both directions are listed when a link is cut both ways).
    pub cut: BTreeSet<(NodeId, NodeId)>,
    /// Chance a message (request or reply) is lost, per mille.
    pub loss_per_mille: u64,
    /// One-way latency, ms: uniform in this range.
    pub latency_ms: (u64, u64),
    /// The run's RNG stream for the network.
    pub rng: SimRng,
    /// Messages lost so far.
    pub lost: u64,
    /// Per directed link, when its last message is delivered: a message never overtakes an
    /// earlier one on the same link (one ordered stream per peer, as openraft expects of a
    /// follower's connection; see the module docs).
    pub last_delivery: BTreeMap<(NodeId, NodeId), tokio::time::Instant>,
}

/// The shared network.
#[derive(Clone)]
pub struct SimNet {
    inner: Arc<Mutex<NetState>>,
}

impl SimNet {
    /// A network with nobody up and no faults.
    pub fn new(rng: SimRng) -> Self {
        Self {
            inner: Arc::new(Mutex::new(NetState {
                up: BTreeMap::new(),
                nudges: BTreeMap::new(),
                cut: BTreeSet::new(),
                loss_per_mille: 0,
                latency_ms: (1, 5),
                rng,
                lost: 0,
                last_delivery: BTreeMap::new(),
            })),
        }
    }

    /// Locks the state.
    pub fn lock(&self) -> MutexGuard<'_, NetState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a message `from → to` gets through now, and its latency.
    fn route(&self, from: NodeId, to: NodeId) -> Result<(StoreRaft, tokio::time::Instant), String> {
        let mut net = self.lock();
        if net.cut.contains(&(from, to)) {
            return Err(format!("{from} -> {to}: partitioned"));
        }
        let loss = net.loss_per_mille;
        if net.rng.chance(loss) {
            net.lost += 1;
            return Err(format!("{from} -> {to}: lost"));
        }
        let (lo, hi) = net.latency_ms;
        let latency = Duration::from_millis(net.rng.between(lo, hi));
        let raft = net
            .up
            .get(&to)
            .cloned()
            .ok_or_else(|| format!("{from} -> {to}: down"))?;
        let mut at = tokio::time::Instant::now() + latency;
        if let Some(last) = net.last_delivery.get(&(from, to)) {
            at = at.max(*last + Duration::from_millis(1));
        }
        net.last_delivery.insert((from, to), at);
        Ok((raft, at))
    }

    /// One RPC: latency, the call on the target, latency back (and a check that the reply
    /// link is still open and the caller still up).
    async fn call<T, F, Fut>(
        &self,
        from: NodeId,
        to: NodeId,
        ttl: Duration,
        rpc: F,
    ) -> Result<T, String>
    where
        F: FnOnce(StoreRaft) -> Fut,
        Fut: Future<Output = Result<T, String>>,
    {
        let work = async {
            let (raft, at) = self.route(from, to)?;
            tokio::time::sleep_until(at).await;
            let answer = rpc(raft).await?;
            let (_, back) = self.route(to, from)?;
            tokio::time::sleep_until(back).await;
            Ok(answer)
        };
        match tokio::time::timeout(ttl, work).await {
            Ok(result) => result,
            Err(_) => Err(format!("{from} -> {to}: timeout")),
        }
    }
}

/// A device's network factory.
pub struct SimNetwork {
    /// The network.
    pub net: SimNet,
    /// This device.
    pub from: NodeId,
}

/// A connection to one peer.
pub struct SimConnection {
    net: SimNet,
    from: NodeId,
    to: NodeId,
}

impl RaftNetworkFactory<TypeConfig> for SimNetwork {
    type Network = SimConnection;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> SimConnection {
        SimConnection {
            net: self.net.clone(),
            from: self.from,
            to: target,
        }
    }
}

fn unreachable(why: String) -> RPCError<TypeConfig> {
    RPCError::Unreachable(Unreachable::from_string(why))
}

impl RaftNetworkV2<TypeConfig> for SimConnection {
    type SnapshotData = std::io::Cursor<Vec<u8>>;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        let nudge = self.net.lock().nudges.get(&self.to).cloned();
        self.net
            .call(self.from, self.to, option.soft_ttl(), |raft| async move {
                let response = raft.append_entries(rpc).await.map_err(|e| e.to_string())?;
                if let Some(nudge) = nudge {
                    nudge.append_answered(&response);
                }
                Ok(response)
            })
            .await
            .map_err(unreachable)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        let nudge = self.net.lock().nudges.get(&self.to).cloned();
        self.net
            .call(self.from, self.to, option.soft_ttl(), |raft| async move {
                let response = raft.vote(rpc).await.map_err(|e| e.to_string())?;
                if let Some(nudge) = nudge {
                    nudge.vote_answered(&response);
                }
                Ok(response)
            })
            .await
            .map_err(unreachable)
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.net
            .call(self.from, self.to, option.soft_ttl(), |raft| async move {
                raft.pre_vote(rpc).await.map_err(|e| e.to_string())
            })
            .await
            .map_err(unreachable)
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<TypeConfig>,
        snapshot: SnapshotOf<TypeConfig, std::io::Cursor<Vec<u8>>>,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let nudge = self.net.lock().nudges.get(&self.to).cloned();
        self.net
            .call(self.from, self.to, option.hard_ttl(), |raft| async move {
                // The production receive path (Raft §7 rule 6 before openraft).
                let response =
                    posmesh_consensus::install_full_snapshot_unless_held(&raft, vote, snapshot)
                        .await
                        .map_err(|e| e.to_string())?
                        .response();
                if let Some(nudge) = nudge {
                    nudge.heard_from_leader();
                }
                Ok(response)
            })
            .await
            .map_err(|why| StreamingError::Unreachable(Unreachable::from_string(why)))
    }
}
