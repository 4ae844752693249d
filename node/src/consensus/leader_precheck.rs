//! The pre-check ([`posmesh_consensus::StoreState::precheck`]) on the leader, before it
//! proposes a command — its own API's or one forwarded by a follower — so that a refusal
//! the state alone decides never takes a Raft entry (fsynced on every voter).
//!
//! A refusal that holds for good ([`posmesh_consensus::Refusal::holds_for_good`]) is
//! answered from the state applied here at once: no later entry can lift it. Any other
//! (an unknown gift card, operator or shift, the only admin…) could be lifted by an entry
//! still in flight, or by a leader elected meanwhile; it is answered only once the
//! state is settled: this device has applied every entry its log held when asked, then
//! confirmed it still leads with a heartbeat round to a quorum and applied up to that
//! read index ([`posmesh_consensus::read_index`], Raft paper §8), and the refusal holds
//! on that state. Every write acknowledged before the request is then in the state, so
//! the refusal is linearizable. If the state cannot be settled in time (no quorum,
//! leadership lost), the command is proposed and the state machine decides, as before.

use openraft::async_runtime::watch::WatchReceiver;
use posmesh_consensus::{Refusal, StoreCommand, StoreRaft, StoreReader};
use std::time::Duration;

/// Longest wait for the leader's state to settle (its log applied, its leadership
/// confirmed) before a refusal that a newer entry could lift is answered without an
/// entry; after it, the command is proposed and the state machine decides.
pub const SETTLE_WAIT: Duration = Duration::from_secs(2);

/// The refusal `command` gets on the leader's settled state, with the log index of the
/// state it was decided on (applied at least up to it), or `Ok` to propose it. Run only
/// on the leader (on a follower the settling fails and it passes).
pub async fn precheck(
    raft: &StoreRaft,
    reader: &StoreReader,
    command: &StoreCommand,
) -> Result<(), (u64, Refusal)> {
    let refusal = match reader.read(|state| state.precheck(command)) {
        Ok(()) => return Ok(()),
        Err(refusal) if refusal.holds_for_good() => {
            return Err((applied_index(raft), refusal));
        }
        Err(refusal) => refusal,
    };
    if !settle(raft).await {
        tracing::debug!(%refusal, "leader state not settled in time: proposed, the log decides");
        return Ok(());
    }
    reader
        .read(|state| state.precheck(command))
        .map_err(|refusal| (applied_index(raft), refusal))
}

/// Waits (at most [`SETTLE_WAIT`]) until this device has applied every entry its log
/// holds now and has confirmed its leadership (read index applied). False on timeout or
/// if it does not lead.
async fn settle(raft: &StoreRaft) -> bool {
    let started = std::time::Instant::now();
    let last_log_index = raft
        .metrics()
        .borrow_watched()
        .clone()
        .last_log_index
        .unwrap_or(0);
    let applied = raft
        .wait(Some(SETTLE_WAIT))
        .applied_index_at_least(Some(last_log_index), "the leader's log applied")
        .await
        .is_ok();
    let left = SETTLE_WAIT.saturating_sub(started.elapsed());
    applied && posmesh_consensus::read_index(raft, left).await.is_ok()
}

/// The last log index applied on this device (0: none).
fn applied_index(raft: &StoreRaft) -> u64 {
    raft.metrics()
        .borrow_watched()
        .clone()
        .last_applied
        .map_or(0, |log_id| log_id.index())
}
