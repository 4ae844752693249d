//! Writing commands and reading the state through a node's Raft, with openraft's errors
//! mapped to [`ConsensusError`].

use crate::command::{StoreCommand, StoreResponse};
use crate::state::StoreState;
use crate::storage::StoreReader;
use crate::{NodeId, StoreRaft, TypeConfig};
use openraft::error::{ClientWriteError, ForwardToLeader, LinearizableReadError, RaftError};
use openraft::ReadPolicy;
use std::time::Duration;

/// Start of the text of every error after which a write's fate is unknown — it was
/// proposed (or sent to the leader) and may still commit: [`ConsensusError::Unconfirmed`],
/// [`ConsensusError::LeaderChanged`], and a forwarded write whose answer was lost. The API
/// answers these 503 `outcome_unknown` ("retry with the same Idempotency-Key"), never
/// `no_quorum`, so a till does not take another tender for a payment that may have gone
/// through.
pub const OUTCOME_UNKNOWN: &str = "outcome unknown";

/// Why a store-wide decision could not be made (or confirmed) through this node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsensusError {
    /// A linearizable read could not be confirmed: this node could not reach a majority of
    /// the store's voters within the deadline (a partitioned minority, or no leader).
    #[error("no quorum: the store's voters could not confirm this read within {waited_ms} ms (this node is cut off from a majority, or there is no leader)")]
    NoQuorum {
        /// How long the read waited, ms.
        waited_ms: u64,
    },
    /// The command was proposed and not committed within the deadline (this node, the
    /// leader, lost its majority after it accepted the proposal). The entry may still commit
    /// later, once the partition heals, or be discarded: retry with the same ids (the same
    /// Idempotency-Key / `redemption_id`), which the state machine deduplicates.
    #[error("{OUTCOME_UNKNOWN}: proposed but not committed within {waited_ms} ms (this node may be cut off from most of the store's voters); it may still commit when the store heals: retry with the same ids")]
    Unconfirmed {
        /// How long the write waited, ms.
        waited_ms: u64,
    },
    /// This node is not the leader; send the command to `leader`. Nothing was proposed.
    #[error("not the leader: forward to node {leader}; {NOT_PROPOSED}")]
    NotLeader {
        /// The leader this node knows of.
        leader: NodeId,
    },
    /// The entry was appended on this node, then discarded when it followed a new leader: it
    /// may or may not have committed through that leader. Retry with the same ids.
    #[error("{OUTCOME_UNKNOWN}: leadership changed while proposing (new leader: {leader:?}); it may have committed: retry with the same ids")]
    LeaderChanged {
        /// The new leader, if known.
        leader: Option<NodeId>,
    },
    /// The Raft node stopped (shut down, or a storage error made it stop).
    #[error("raft node stopped: {0}")]
    Stopped(String),
    /// Any other openraft error (a bug of ours if it happens).
    #[error("raft: {0}")]
    Raft(String),
    /// This node knows no leader to send the command to (an election is under way, or it
    /// is cut off from most of the store), or it is a leader whose lease ran out (openraft
    /// answers "forward to no one"). Nothing was proposed: unlike
    /// [`ConsensusError::NoQuorum`] after a timeout, the command can be sent again as it
    /// is, once a leader is known.
    #[error("no quorum: this node knows no leader now (an election may be under way, or it is cut off from most of the store); {NOT_PROPOSED}")]
    NoLeader,
}

/// Part of the text of every [`ConsensusError`] for a command that was never proposed
/// ([`ConsensusError::NotLeader`], [`ConsensusError::NoLeader`]), also when the text
/// crossed the mesh in a forwarded write's answer: such a write may be sent again.
pub const NOT_PROPOSED: &str = "nothing was proposed";

impl ConsensusError {
    /// Whether the command was certainly not proposed (so sending it again cannot apply it
    /// twice).
    pub fn never_proposed(&self) -> bool {
        matches!(
            self,
            ConsensusError::NotLeader { .. } | ConsensusError::NoLeader
        )
    }
}

fn forward(forward: &ForwardToLeader<TypeConfig>) -> ConsensusError {
    match forward.leader_id {
        Some(leader) => ConsensusError::NotLeader { leader },
        None => ConsensusError::NoLeader,
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Proposes `command` through `raft` and waits at most `deadline` for it to be committed
/// and applied. Returns the log index it was applied at and the state machine's response
/// (which may be a [`StoreResponse::Refused`]: refusals are committed decisions too).
///
/// # Errors
/// [`ConsensusError::Unconfirmed`] when not committed in time (it may still commit),
/// [`ConsensusError::NoLeader`] when refused for lack of a known leader (nothing proposed),
/// [`ConsensusError::NotLeader`] on a follower, others as documented there.
pub async fn write(
    raft: &StoreRaft,
    command: StoreCommand,
    deadline: Duration,
) -> Result<(u64, StoreResponse), ConsensusError> {
    match tokio::time::timeout(deadline, raft.client_write(command)).await {
        Err(_elapsed) => Err(ConsensusError::Unconfirmed {
            waited_ms: millis(deadline),
        }),
        Ok(Ok(response)) => Ok((response.log_id.index, response.data)),
        Ok(Err(RaftError::APIError(error))) => Err(match error {
            ClientWriteError::ForwardToLeader(f) => forward(&f),
            ClientWriteError::LogEntryDiscarded(f) => ConsensusError::LeaderChanged {
                leader: f.leader_id,
            },
            other => ConsensusError::Raft(other.to_string()),
        }),
        Ok(Err(RaftError::Fatal(fatal))) => Err(ConsensusError::Stopped(fatal.to_string())),
    }
}

/// Reads the applied state linearizably (Raft paper §8: the leader confirms it is still
/// the leader with a heartbeat round to a quorum — openraft's `ReadIndex` — and the state
/// machine has applied up to the commit index seen at that moment), then runs `read` on it.
///
/// Must run on the leader; a follower gets [`ConsensusError::NotLeader`].
///
/// # Errors
/// [`ConsensusError::NoQuorum`] if leadership cannot be confirmed within `deadline`.
pub async fn read_linearizable<T>(
    raft: &StoreRaft,
    reader: &StoreReader,
    deadline: Duration,
    read: impl FnOnce(&StoreState) -> T,
) -> Result<T, ConsensusError> {
    read_index(raft, deadline).await?;
    Ok(reader.read(read))
}

/// The read index (Raft paper §8, openraft's `ReadIndex`): the leader confirms it is still
/// the leader with a heartbeat round to a quorum, waits until its state machine has
/// applied up to the commit index seen at that moment, and returns that log index. A
/// follower that applies up to it holds every write acknowledged before the call.
///
/// Must run on the leader; a follower gets [`ConsensusError::NotLeader`].
///
/// # Errors
/// [`ConsensusError::NoQuorum`] if leadership cannot be confirmed within `deadline`.
pub async fn read_index(raft: &StoreRaft, deadline: Duration) -> Result<u64, ConsensusError> {
    let confirmed =
        tokio::time::timeout(deadline, raft.ensure_linearizable(ReadPolicy::ReadIndex)).await;
    match confirmed {
        Err(_elapsed) => Err(ConsensusError::NoQuorum {
            waited_ms: millis(deadline),
        }),
        Ok(Ok(read_log_id)) => Ok(read_log_id.index()),
        Ok(Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(f)))) => Err(forward(&f)),
        Ok(Err(RaftError::APIError(LinearizableReadError::QuorumNotEnough(_)))) => {
            Err(ConsensusError::NoQuorum {
                waited_ms: millis(deadline),
            })
        }
        Ok(Err(RaftError::Fatal(fatal))) => Err(ConsensusError::Stopped(fatal.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_commands_never_proposed_say_so_and_may_be_sent_again() {
        let never = [
            ConsensusError::NotLeader { leader: 2 },
            ConsensusError::NoLeader,
        ];
        for error in never {
            assert!(error.never_proposed(), "{error}");
            assert!(error.to_string().contains(NOT_PROPOSED), "{error}");
        }
        let maybe = [
            ConsensusError::Unconfirmed { waited_ms: 8_000 },
            ConsensusError::LeaderChanged { leader: Some(2) },
            ConsensusError::Stopped("storage".into()),
            ConsensusError::Raft("bug".into()),
        ];
        for error in maybe {
            assert!(!error.never_proposed(), "{error}");
            assert!(!error.to_string().contains(NOT_PROPOSED), "{error}");
        }
        // The node's API maps both to `no_quorum` by this start.
        assert!(ConsensusError::NoLeader
            .to_string()
            .starts_with("no quorum"));
    }

    #[test]
    fn a_write_that_may_still_commit_says_outcome_unknown_first() {
        // The node's API answers `outcome_unknown` by this start, so a till retries with the
        // same key instead of taking another tender (a write proposed on a leader that then
        // lost its majority committed after the till had been told "no quorum").
        for error in [
            ConsensusError::Unconfirmed { waited_ms: 8_000 },
            ConsensusError::LeaderChanged { leader: None },
        ] {
            assert!(error.to_string().starts_with(OUTCOME_UNKNOWN), "{error}");
        }
        for error in [
            ConsensusError::NoQuorum { waited_ms: 8_000 },
            ConsensusError::NoLeader,
            ConsensusError::NotLeader { leader: 2 },
        ] {
            assert!(!error.to_string().starts_with(OUTCOME_UNKNOWN), "{error}");
        }
    }
}
