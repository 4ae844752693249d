//! The receive side of a leader's full snapshot: install it, unless this device's log already
//! holds the snapshot's last entry (Raft paper §7, InstallSnapshot receiver rule 6: "If
//! existing log entry has same index and term as snapshot's last included entry, retain log
//! entries following it and reply"). The node's RPC receive path and the Raft simulation
//! call [`install_full_snapshot_unless_held`] alike.
//!
//! Why not always hand it to openraft: openraft 0.10.0-alpha.37 installs such a snapshot
//! (it skips only one at or below the *committed* index) and then records the snapshot's
//! last log id as the follower's submitted log I/O — *below* the entries it had already
//! stored (its debug assertions on these cursors are off in the builds it ships, see the
//! workspace `Cargo.toml`). A follower applies only up to its submitted log I/O
//! (`Engine::next_progress_driven_command`), and heartbeats do not move it (an AppendEntries
//! without new entries is no I/O), so the follower's state machine stopped short of its
//! commit index until the next write reached the store: in a quiet store, for good. The
//! Raft simulation's 5-device sweep caught it (`raft-liveness`, one follower applied one to
//! three entries behind its commit index 30 s after the heal); with this rule the leader is
//! told the snapshot is in place, and the follower's own log entries, already stored, are
//! applied as its commit index advances.
//!
//! Safe: a log entry with the same log id (term, leader, index) as the last entry a leader's
//! snapshot covers is committed (a snapshot holds applied entries only), so by Log Matching
//! (§5.3) this device's log equals the leader's up to it and the state machine reaches the
//! snapshot's state by applying it. The check and the answer use this device's vote as the
//! Raft core holds it (`Raft::with_raft_state`): only a snapshot from the leader this device
//! already follows is answered here; anything else (another vote, a log id this log does not
//! hold, a snapshot at or below the commit index) goes to openraft unchanged.
//!
//! The report for upstream: `docs/upstream/openraft-0.10.0-alpha.37.md`.

use crate::TypeConfig;
use openraft::error::Fatal;
use openraft::raft::SnapshotResponse;
use openraft::storage::RaftStateMachine;
use openraft::type_config::alias::{SnapshotOf, VoteOf};
use openraft::Raft;

/// What became of a leader's snapshot.
#[derive(Clone, Debug)]
pub enum SnapshotReceived {
    /// openraft installed it (or skipped it as at or below the commit index); its answer.
    Installed(SnapshotResponse<TypeConfig>),
    /// This device's log already held its last entry: not installed, answered with this
    /// device's vote (Raft §7 rule 6).
    AlreadyHeld(SnapshotResponse<TypeConfig>),
}

impl SnapshotReceived {
    /// The answer for the leader.
    pub fn response(self) -> SnapshotResponse<TypeConfig> {
        match self {
            Self::Installed(response) | Self::AlreadyHeld(response) => response,
        }
    }
}

/// Installs `snapshot` from the leader holding `vote`, or answers it as already held when
/// this device's log has the snapshot's last entry (see the module docs).
///
/// # Errors
/// openraft's [`Fatal`] when the Raft core has stopped.
pub async fn install_full_snapshot_unless_held<SM>(
    raft: &Raft<TypeConfig, SM>,
    vote: VoteOf<TypeConfig>,
    snapshot: SnapshotOf<TypeConfig, SM::SnapshotData>,
) -> Result<SnapshotReceived, Fatal<TypeConfig>>
where
    SM: RaftStateMachine<TypeConfig>,
{
    if let Some(held) = already_held(raft, vote, &snapshot).await? {
        return Ok(SnapshotReceived::AlreadyHeld(held));
    }
    raft.install_full_snapshot(vote, snapshot)
        .await
        .map(SnapshotReceived::Installed)
}

/// `Some(answer)` when this device follows the leader of `vote` and its log holds the log id
/// of `snapshot`'s last entry above its commit index; `None`: give it to openraft.
async fn already_held<SM>(
    raft: &Raft<TypeConfig, SM>,
    vote: VoteOf<TypeConfig>,
    snapshot: &SnapshotOf<TypeConfig, SM::SnapshotData>,
) -> Result<Option<SnapshotResponse<TypeConfig>>, Fatal<TypeConfig>>
where
    SM: RaftStateMachine<TypeConfig>,
{
    let Some(last) = snapshot.meta.last_log_id else {
        return Ok(None);
    };
    raft.with_raft_state(move |state| {
        let follows_sender = *state.vote_ref() == vote && vote.committed;
        let above_commit = state.local_committed() < Some(&last);
        let held = state.log_ids.get(last.index()) == Some(last);
        (follows_sender && above_commit && held).then(|| SnapshotResponse::new(*state.vote_ref()))
    })
    .await
}
