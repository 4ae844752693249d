//! An in-process store cluster: Raft nodes with their RocksDB storage in temporary
//! directories, joined by an in-memory network (tokio channels implementing openraft's
//! network v2) that can lose a node or cut one off.
//!
//! One test walks the store's life: initialise 3 voters, elect a leader, issue a gift card,
//! two devices redeem its full balance at once (exactly one succeeds), stop the leader (a
//! new one is elected, committed data intact), add a 4th node as a learner (it must get a
//! snapshot: the leader has purged its log) and promote it, then cut the leader off: the
//! minority cannot commit (`ConsensusError::Unconfirmed`), the majority can, and after the
//! partition heals the old leader drops its uncommitted entry and converges.
//!
//! Timings: the store's own [`RaftTimings::STORE`] (heartbeat 250 ms, election 1.5–3 s), so
//! the test also shows they elect and fail over. Only the snapshot policy is smaller (a
//! snapshot every 10 entries, no log kept behind it) so a learner needs a snapshot.

use openraft::async_runtime::watch::WatchReceiver;
use openraft::error::{RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::v2::RaftNetworkV2;
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::type_config::alias::{SnapshotOf, VoteOf};
use openraft::{BasicNode, OptionalSend, RaftMetrics, RaftNetworkFactory, ServerState};
use openraft::{Config, SnapshotPolicy};
use posmesh_consensus::storage::SnapshotData;
use posmesh_consensus::{
    ConsensusError, NodeId, Outcome, RaftTimings, Refusal, StoreCommand, StoreRaft, StoreReader,
    StoreResponse, StoreState, TypeConfig,
};
use posmesh_domain::money::Currency;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

type Reply<T> = oneshot::Sender<Result<T, String>>;

/// One Raft RPC on its way to a node, with the channel for its reply.
enum Rpc {
    Append(
        AppendEntriesRequest<TypeConfig>,
        Reply<AppendEntriesResponse<TypeConfig>>,
    ),
    Vote(VoteRequest<TypeConfig>, Reply<VoteResponse<TypeConfig>>),
    PreVote(VoteRequest<TypeConfig>, Reply<VoteResponse<TypeConfig>>),
    Snapshot(
        VoteOf<TypeConfig>,
        SnapshotOf<TypeConfig, SnapshotData>,
        Reply<SnapshotResponse<TypeConfig>>,
    ),
}

#[derive(Default)]
struct RouterInner {
    endpoints: BTreeMap<NodeId, mpsc::UnboundedSender<Rpc>>,
    /// Nodes cut off from the rest: messages cross only between two nodes on the same side.
    isolated: BTreeSet<NodeId>,
}

/// The in-memory network: one channel per live node.
#[derive(Clone, Default)]
struct Router {
    inner: Arc<Mutex<RouterInner>>,
}

impl Router {
    fn lock(&self) -> std::sync::MutexGuard<'_, RouterInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn call<T>(
        &self,
        from: NodeId,
        to: NodeId,
        ttl: Duration,
        rpc: impl FnOnce(Reply<T>) -> Rpc,
    ) -> Result<T, Unreachable<TypeConfig>> {
        let endpoint = {
            let inner = self.lock();
            if inner.isolated.contains(&from) != inner.isolated.contains(&to) {
                return Err(Unreachable::from_string(format!(
                    "{from} -> {to}: partitioned"
                )));
            }
            inner
                .endpoints
                .get(&to)
                .cloned()
                .ok_or_else(|| Unreachable::from_string(format!("{from} -> {to}: node down")))?
        };
        let (reply, response) = oneshot::channel();
        endpoint
            .send(rpc(reply))
            .map_err(|_| Unreachable::from_string(format!("{from} -> {to}: node down")))?;
        match tokio::time::timeout(ttl, response).await {
            Err(_) => Err(Unreachable::from_string(format!("{from} -> {to}: timeout"))),
            Ok(Err(_)) => Err(Unreachable::from_string(format!("{from} -> {to}: dropped"))),
            Ok(Ok(Err(remote))) => Err(Unreachable::from_string(format!(
                "{from} -> {to}: {remote}"
            ))),
            Ok(Ok(Ok(value))) => Ok(value),
        }
    }
}

/// A node's network factory: connections from `from`.
struct Network {
    router: Router,
    from: NodeId,
}

struct Connection {
    router: Router,
    from: NodeId,
    to: NodeId,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> Connection {
        Connection {
            router: self.router.clone(),
            from: self.from,
            to: target,
        }
    }
}

impl RaftNetworkV2<TypeConfig> for Connection {
    type SnapshotData = SnapshotData;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.router
            .call(self.from, self.to, option.soft_ttl(), |r| {
                Rpc::Append(rpc, r)
            })
            .await
            .map_err(RPCError::Unreachable)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.router
            .call(self.from, self.to, option.soft_ttl(), |r| Rpc::Vote(rpc, r))
            .await
            .map_err(RPCError::Unreachable)
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.router
            .call(self.from, self.to, option.soft_ttl(), |r| {
                Rpc::PreVote(rpc, r)
            })
            .await
            .map_err(RPCError::Unreachable)
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<TypeConfig>,
        snapshot: SnapshotOf<TypeConfig, SnapshotData>,
        _cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        self.router
            .call(self.from, self.to, option.hard_ttl(), |r| {
                Rpc::Snapshot(vote, snapshot, r)
            })
            .await
            .map_err(StreamingError::Unreachable)
    }
}

/// Hands the RPCs arriving for one node to its Raft, each in its own task (a snapshot
/// being installed must not hold up heartbeats).
async fn serve(raft: StoreRaft, mut inbox: mpsc::UnboundedReceiver<Rpc>) {
    while let Some(rpc) = inbox.recv().await {
        let raft = raft.clone();
        tokio::spawn(async move {
            match rpc {
                Rpc::Append(req, reply) => {
                    let _ = reply.send(raft.append_entries(req).await.map_err(|e| e.to_string()));
                }
                Rpc::Vote(req, reply) => {
                    let _ = reply.send(raft.vote(req).await.map_err(|e| e.to_string()));
                }
                Rpc::PreVote(req, reply) => {
                    let _ = reply.send(raft.pre_vote(req).await.map_err(|e| e.to_string()));
                }
                Rpc::Snapshot(vote, snapshot, reply) => {
                    // The node's receive path (Raft §7 rule 6 before openraft).
                    let result =
                        posmesh_consensus::install_full_snapshot_unless_held(&raft, vote, snapshot)
                            .await
                            .map(posmesh_consensus::SnapshotReceived::response)
                            .map_err(|e| e.to_string());
                    let _ = reply.send(result);
                }
            }
        });
    }
}

struct Node {
    raft: StoreRaft,
    reader: StoreReader,
    _dir: tempfile::TempDir,
}

fn config() -> Arc<Config> {
    let mut config = posmesh_consensus::raft_config("test-store", RaftTimings::STORE)
        .expect("store timings are valid");
    // Small snapshots so the learner must be sent one (see the module doc).
    config.snapshot_policy = SnapshotPolicy::LogsSinceLast(10);
    config.max_in_snapshot_log_to_keep = 0;
    config.purge_batch_size = 1;
    Arc::new(config.validate().expect("valid config"))
}

async fn start(router: &Router, id: NodeId) -> Node {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (log, sm) = posmesh_consensus::open(&dir.path().join("raft")).expect("open raft db");
    let reader = sm.reader();
    let network = Network {
        router: router.clone(),
        from: id,
    };
    let raft = StoreRaft::new(id, config(), network, log, sm)
        .await
        .expect("raft starts");
    let (endpoint, inbox) = mpsc::unbounded_channel();
    router.lock().endpoints.insert(id, endpoint);
    tokio::spawn(serve(raft.clone(), inbox));
    Node {
        raft,
        reader,
        _dir: dir,
    }
}

fn metrics(node: &Node) -> RaftMetrics<TypeConfig> {
    // Clone at once: holding the borrow can block openraft (DEPENDENCIES.md).
    node.raft.metrics().borrow_watched().clone()
}

/// Waits until one of `nodes` (other than `exclude`) is leader and the others that are
/// reachable agree; returns its id.
async fn wait_leader(nodes: &BTreeMap<NodeId, Node>, exclude: &[NodeId]) -> NodeId {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for (id, node) in nodes {
            if exclude.contains(id) {
                continue;
            }
            let m = metrics(node);
            if m.state == ServerState::Leader && m.current_leader == Some(*id) {
                return *id;
            }
        }
        assert!(Instant::now() < deadline, "no leader elected within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const WRITE_DEADLINE: Duration = Duration::from_secs(10);

/// Writes `command` through node `via`, forwarding to the leader as a device would.
async fn write_via(
    nodes: &BTreeMap<NodeId, Node>,
    via: NodeId,
    command: StoreCommand,
) -> Result<StoreResponse, ConsensusError> {
    let mut target = via;
    for _ in 0..5 {
        match posmesh_consensus::write(&nodes[&target].raft, command.clone(), WRITE_DEADLINE).await
        {
            Err(ConsensusError::NotLeader { leader }) => target = leader,
            other => return other.map(|(_, response)| response),
        }
    }
    panic!("no leader after 5 forwards");
}

fn eur() -> Currency {
    Currency::from_code("EUR").expect("EUR")
}

fn state_of(node: &Node) -> StoreState {
    node.reader.read(StoreState::clone)
}

async fn wait_applied(node: &Node, index: u64, what: &str) {
    node.raft
        .wait(Some(Duration::from_secs(30)))
        .applied_index_at_least(Some(index), what)
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consensus_cluster_store_life() {
    let started = Instant::now();
    let router = Router::default();
    let mut nodes = BTreeMap::new();
    for id in 1..=3 {
        nodes.insert(id, start(&router, id).await);
    }
    let members: BTreeMap<NodeId, BasicNode> = (1..=3)
        .map(|id| (id, BasicNode::new(format!("mem:{id}"))))
        .collect();
    nodes[&1]
        .raft
        .initialize(members)
        .await
        .expect("initialize");
    let leader = wait_leader(&nodes, &[]).await;
    println!("leader {leader} elected after {:?}", started.elapsed());

    // --- A gift card; two devices redeem its full balance at once: exactly one succeeds.
    let issued = write_via(
        &nodes,
        leader,
        StoreCommand::IssueGiftCard {
            card_id: "card-A".into(),
            amount_minor: 5_000,
            currency: eur(),
        },
    )
    .await
    .expect("issue");
    assert!(matches!(
        issued,
        StoreResponse::Applied(Outcome::GiftCardIssued { .. })
    ));
    let followers: Vec<NodeId> = nodes.keys().copied().filter(|id| *id != leader).collect();
    let redeem = |device: NodeId| StoreCommand::RedeemGiftCard {
        card_id: "card-A".into(),
        amount_minor: 5_000,
        redemption_id: format!("device-{device}/receipt-1"),
    };
    let (first, second) = tokio::join!(
        write_via(&nodes, followers[0], redeem(followers[0])),
        write_via(&nodes, followers[1], redeem(followers[1])),
    );
    let outcomes = [first.expect("redeem 1"), second.expect("redeem 2")];
    let succeeded = outcomes
        .iter()
        .filter(|r| matches!(r, StoreResponse::Applied(Outcome::GiftCardRedeemed { .. })))
        .count();
    let refused = outcomes
        .iter()
        .filter(|r| {
            matches!(
                r,
                StoreResponse::Refused(Refusal::InsufficientBalance {
                    balance_minor: 0,
                    ..
                })
            )
        })
        .count();
    assert_eq!((succeeded, refused), (1, 1), "{outcomes:?}");
    let balance = posmesh_consensus::read_linearizable(
        &nodes[&leader].raft,
        &nodes[&leader].reader,
        WRITE_DEADLINE,
        |s| s.gift_card_balance("card-A"),
    )
    .await
    .expect("linearizable read");
    assert_eq!(balance, Some((0, eur())));

    // --- More decisions, then a snapshot on the leader, which purges its log.
    for version in 1..=12_u64 {
        let response = write_via(
            &nodes,
            leader,
            StoreCommand::SetCatalogVersion {
                version,
                effective_at_ms: 1_700_000_000_000 + i64::try_from(version).expect("small"),
            },
        )
        .await
        .expect("catalog version");
        assert!(
            matches!(response, StoreResponse::Applied(_)),
            "{response:?}"
        );
    }
    let committed_state = state_of(&nodes[&leader]);
    assert_eq!(committed_state.catalog.map(|c| c.version), Some(12));

    // --- Stop the leader: drop its Raft and its network endpoint.
    let old_leader = leader;
    router.lock().endpoints.remove(&old_leader);
    let stopped = nodes.remove(&old_leader).expect("leader node");
    stopped.raft.shutdown().await.expect("shutdown");
    drop(stopped);
    let stop_at = Instant::now();
    let leader = wait_leader(&nodes, &[]).await;
    println!("new leader {leader} after {:?}", stop_at.elapsed());
    assert_ne!(leader, old_leader);
    let after_failover = posmesh_consensus::read_linearizable(
        &nodes[&leader].raft,
        &nodes[&leader].reader,
        WRITE_DEADLINE,
        StoreState::clone,
    )
    .await
    .expect("linearizable read on the new leader");
    assert_eq!(after_failover.gift_cards, committed_state.gift_cards);
    assert_eq!(after_failover.redemptions, committed_state.redemptions);
    assert_eq!(after_failover.catalog.map(|c| c.version), Some(12));
    let response = write_via(
        &nodes,
        leader,
        StoreCommand::CloseDay {
            business_date: "2016-10-30".into(),
            version_vector: BTreeMap::from([("device-1".to_owned(), 41)]),
        },
    )
    .await
    .expect("write after failover");
    assert!(matches!(
        response,
        StoreResponse::Applied(Outcome::DayClosed { .. })
    ));

    // --- A 4th node joins as a learner. The leader snapshots and purges its log first, so
    // the learner can only catch up from a snapshot.
    nodes[&leader]
        .raft
        .trigger()
        .snapshot()
        .await
        .expect("trigger snapshot");
    let leader_metrics = nodes[&leader]
        .raft
        .wait(Some(Duration::from_secs(30)))
        .metrics(
            |m| m.purged.is_some() && m.snapshot.is_some(),
            "leader snapshot and purge",
        )
        .await
        .expect("leader snapshots and purges");
    let purged = leader_metrics.purged.expect("purged").index;
    assert!(purged > 1, "purged up to {purged}");
    nodes.insert(4, start(&router, 4).await);
    nodes[&leader]
        .raft
        .add_learner(4, BasicNode::new("mem:4"), true)
        .await
        .expect("add learner");
    let leader_applied = metrics(&nodes[&leader])
        .last_applied
        .expect("leader applied")
        .index;
    wait_applied(&nodes[&4], leader_applied, "learner catches up").await;
    let learner = metrics(&nodes[&4]);
    assert!(
        learner.snapshot.is_some_and(|s| s.index >= purged),
        "the learner installed a snapshot covering the purged log: {learner:?}"
    );
    assert_eq!(state_of(&nodes[&4]), state_of(&nodes[&leader]));

    // Promote it: voters are the two survivors and node 4 (the stopped node's id is retired,
    // never reused).
    let voters: BTreeSet<NodeId> = nodes.keys().copied().collect();
    nodes[&leader]
        .raft
        .change_membership(voters, false)
        .await
        .expect("promote learner");

    // --- Partition: cut the leader off (a minority of 1 of 3).
    let minority = leader;
    router.lock().isolated.insert(minority);
    let cut_at = Instant::now();
    let minority_write = posmesh_consensus::write(
        &nodes[&minority].raft,
        StoreCommand::IssueGiftCard {
            card_id: "minority-card".into(),
            amount_minor: 100,
            currency: eur(),
        },
        Duration::from_secs(5),
    )
    .await;
    assert!(
        matches!(
            minority_write,
            Err(ConsensusError::Unconfirmed { .. } | ConsensusError::NoLeader)
        ),
        "{minority_write:?}"
    );
    println!(
        "minority write refused after {:?}: {minority_write:?}",
        cut_at.elapsed()
    );
    let majority_leader = wait_leader(&nodes, &[minority]).await;
    let majority_write = posmesh_consensus::write(
        &nodes[&majority_leader].raft,
        StoreCommand::IssueGiftCard {
            card_id: "majority-card".into(),
            amount_minor: 100,
            currency: eur(),
        },
        WRITE_DEADLINE,
    )
    .await
    .expect("the majority commits");
    assert!(matches!(majority_write.1, StoreResponse::Applied(_)));
    assert!(!state_of(&nodes[&minority])
        .gift_cards
        .contains_key("majority-card"));
    // Its leader lease has run out by now: the cut-off leader refuses at once instead of
    // letting the write hang ("forward to no one", mapped to NoLeader: nothing proposed).
    let refused_at = Instant::now();
    let late_minority_write = posmesh_consensus::write(
        &nodes[&minority].raft,
        StoreCommand::RevokeCertificate {
            serial: "minority-serial".into(),
            cut: None,
        },
        Duration::from_secs(5),
    )
    .await;
    assert!(
        matches!(late_minority_write, Err(ConsensusError::NoLeader)),
        "{late_minority_write:?}"
    );
    assert!(
        refused_at.elapsed() < Duration::from_secs(2),
        "refused without waiting for the deadline: {:?}",
        refused_at.elapsed()
    );

    // --- Heal: the old leader follows the new one, drops its uncommitted entry, converges.
    router.lock().isolated.clear();
    wait_applied(&nodes[&minority], majority_write.0, "old leader catches up").await;
    let healed = state_of(&nodes[&minority]);
    assert!(!healed.gift_cards.contains_key("minority-card"));
    assert!(healed.gift_cards.contains_key("majority-card"));
    for node in nodes.values() {
        wait_applied(node, majority_write.0, "all converge").await;
        assert_eq!(state_of(node), state_of(&nodes[&majority_leader]));
    }

    for node in nodes.values() {
        node.raft.shutdown().await.expect("shutdown");
    }
    println!("store life took {:?}", started.elapsed());
}

/// Opens node `id` on an existing directory (a restart).
async fn restart(router: &Router, id: NodeId, dir: tempfile::TempDir) -> Node {
    // The previous instance's threads let go of the RocksDB lock shortly after shutdown.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (log, sm) = loop {
        match posmesh_consensus::open(&dir.path().join("raft")) {
            Ok(stores) => break stores,
            Err(posmesh_consensus::OpenError::InUse(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("reopen: {e}"),
        }
    };
    let reader = sm.reader();
    let network = Network {
        router: router.clone(),
        from: id,
    };
    let raft = StoreRaft::new(id, config(), network, log, sm)
        .await
        .expect("raft restarts");
    let (endpoint, inbox) = mpsc::unbounded_channel();
    router.lock().endpoints.insert(id, endpoint);
    tokio::spawn(serve(raft.clone(), inbox));
    Node {
        raft,
        reader,
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consensus_single_node_restart_keeps_state_and_dedup() {
    let router = Router::default();
    let node = start(&router, 1).await;
    node.raft
        .initialize(BTreeMap::from([(1, BasicNode::new("mem:1"))]))
        .await
        .expect("initialize");
    let mut nodes = BTreeMap::from([(1, node)]);
    wait_leader(&nodes, &[]).await;
    let redeem = StoreCommand::RedeemGiftCard {
        card_id: "card-R".into(),
        amount_minor: 700,
        redemption_id: "till-1/9".into(),
    };
    write_via(
        &nodes,
        1,
        StoreCommand::IssueGiftCard {
            card_id: "card-R".into(),
            amount_minor: 1_000,
            currency: eur(),
        },
    )
    .await
    .expect("issue");
    write_via(&nodes, 1, redeem.clone()).await.expect("redeem");
    // More entries than one checkpoint interval: the restart below finds a checkpoint of
    // the applied state and re-applies the log after it.
    let extra = posmesh_consensus::storage::CHECKPOINT_EVERY_ENTRIES + 20;
    for n in 0..extra {
        write_via(
            &nodes,
            1,
            StoreCommand::RedeemGiftCard {
                card_id: "card-R".into(),
                amount_minor: 1,
                redemption_id: format!("till-2/{n}"),
            },
        )
        .await
        .expect("small redemption");
    }
    let before = state_of(&nodes[&1]);
    let balance_before = 300 - i64::try_from(extra).expect("small");
    assert_eq!(
        before.gift_card_balance("card-R"),
        Some((balance_before, eur()))
    );

    // Restart: shut down, drop everything, reopen the same directory.
    router.lock().endpoints.remove(&1);
    let node = nodes.remove(&1).expect("node");
    node.raft.shutdown().await.expect("shutdown");
    let Node { raft, reader, _dir } = node;
    drop((raft, reader));
    let node = restart(&router, 1, _dir).await;
    assert_eq!(
        state_of(&node),
        before,
        "the applied state is back (checkpoint + committed log re-applied)"
    );
    nodes.insert(1, node);
    wait_leader(&nodes, &[]).await;

    // The redemption's dedup record survived: a retry takes nothing.
    let retry = write_via(&nodes, 1, redeem).await.expect("retry");
    assert!(
        matches!(
            retry,
            StoreResponse::Applied(Outcome::GiftCardRedeemed {
                replayed: true,
                balance_after_minor: 300,
                ..
            })
        ),
        "{retry:?}"
    );
    assert_eq!(
        state_of(&nodes[&1]).gift_card_balance("card-R"),
        Some((balance_before, eur()))
    );
    nodes[&1].raft.shutdown().await.expect("shutdown");
}
