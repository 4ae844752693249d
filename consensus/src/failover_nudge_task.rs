//! The IO around [`FailoverNudge`]: a [`NudgeHandle`] the RPC receive path tells when a
//! leader was heard, and [`run_failover_nudge`], the task that polls the nudge and asks
//! openraft for a pre-vote when it is due. The node runs it over the mesh, the Raft
//! simulation over its simulated network, with the same code.

use crate::failover_nudge::{FailoverNudge, NudgeRole};
use crate::TypeConfig;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::raft::{AppendEntriesResponse, VoteResponse};
use openraft::storage::RaftStateMachine;
use openraft::{Raft, ServerState};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// How often the task polls the nudge: adds at most this much to a failover.
pub const NUDGE_POLL: Duration = Duration::from_millis(25);

/// Largest voter count the nudge runs with. With 5 voters, 4 survivors nudge within the
/// same 0–300 ms window and two campaigns in one term both won now and then in the Raft
/// simulation (legal with openraft's `(term, node)` leader ids, but a leadership churn
/// and a breach of its one-leader-per-term checker); such stores keep openraft's own
/// election timer until a rank-based delay is designed. 3-voter stores (2 survivors) did
/// not show it.
pub const NUDGE_VOTERS_MAX: usize = 3;

/// Shared between the RPC receive path and the nudge task; clones share one nudge.
#[derive(Clone)]
pub struct NudgeHandle {
    origin: Instant,
    nudge: Arc<Mutex<FailoverNudge>>,
}

impl NudgeHandle {
    /// A disarmed nudge for `node_id`; `lease_ms` is openraft's follower lease, its
    /// `election_timeout_max` (ms).
    pub fn new(node_id: u64, lease_ms: u64) -> Self {
        Self {
            origin: Instant::now(),
            nudge: Arc::new(Mutex::new(FailoverNudge::new(node_id, lease_ms))),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FailoverNudge> {
        self.nudge.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Call after openraft answered an AppendEntries (heartbeats included): any answer but
    /// `HigherVote` means the sender is this device's current leader and renewed its lease.
    pub fn append_answered(&self, response: &AppendEntriesResponse<TypeConfig>) {
        if !matches!(response, AppendEntriesResponse::HigherVote(_)) {
            self.heard_from_leader();
        }
    }

    /// Call after openraft answered a (real) vote request, granted or not: a device passed
    /// its pre-vote and is campaigning, so this device's silence starts again instead of it
    /// campaigning at the same time (openraft's leader ids are `(term, node)`: two campaigns in one term can
    /// both win, one after the other, and churn leadership; the Raft simulation's
    /// one-leader-per-term checker caught exactly that on 5-device stores).
    pub fn vote_answered(&self, _response: &VoteResponse<TypeConfig>) {
        self.heard_from_leader();
    }

    /// This device heard from its leader now (e.g. a snapshot from it was installed).
    pub fn heard_from_leader(&self) {
        let now = self.now_ms();
        self.lock().heard_from_leader(now);
    }

    /// Polls the nudge at the current time for a device in `state`; `follows_leader`: its
    /// vote is a committed one (it follows an elected leader, has not voted for a
    /// candidate since).
    fn poll(&self, state: ServerState, follows_leader: bool) -> bool {
        let role = match state {
            ServerState::Follower if follows_leader => NudgeRole::Follower,
            _ => NudgeRole::Other,
        };
        let now = self.now_ms();
        self.lock().poll(now, role)
    }
}

/// Polls `handle` every [`NUDGE_POLL`] and starts a pre-vote on `raft` when the nudge is
/// due; returns when `raft` shuts down.
pub async fn run_failover_nudge<SM>(raft: Raft<TypeConfig, SM>, handle: NudgeHandle)
where
    SM: RaftStateMachine<TypeConfig>,
{
    let metrics = raft.metrics();
    loop {
        tokio::time::sleep(NUDGE_POLL).await;
        let (state, follows_leader) = {
            let current = metrics.borrow_watched();
            if current.running_state.is_err() {
                return;
            }
            let voters = current.membership_config.membership().voter_ids().count();
            (
                current.state,
                current.vote.committed && voters <= NUDGE_VOTERS_MAX,
            )
        };
        if state == ServerState::Shutdown {
            return;
        }
        if handle.poll(state, follows_leader) {
            tracing::info!(
                "no word from the leader since its lease ended: starting a pre-vote (failover nudge)"
            );
            if raft.trigger().elect(true).await.is_err() {
                return;
            }
        }
    }
}
