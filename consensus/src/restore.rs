//! A store that lost every device, restored from the cloud's copy of its Raft state
//! (DESIGN: "snapshots also uploaded to the cloud so a lost store can be restored"): the
//! state the store had applied up to log index `N` is installed as the snapshot of a new,
//! empty Raft database, the log starts after `N`, and the membership is forced to the one
//! new device ([`crate::forced_membership`]), which then leads alone; new devices join it
//! as usual.

use crate::forced_membership::{self, ForceError, ForcePlan};
use crate::storage::{self, Applied, OpenError};
use crate::{NodeId, StoreState, TypeConfig};
use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::type_config::alias::{LeaderIdOf, LogIdOf, SnapshotMetaOf, StoredMembershipOf};
use openraft::vote::RaftLeaderId;
use openraft::{BasicNode, Membership};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Why a Raft state cannot be restored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// The snapshot's state does not parse as the store's state.
    #[error("the store's Raft snapshot is corrupt: {0}")]
    CorruptSnapshot(String),
    /// The snapshot covers no log entry.
    #[error("the store's Raft snapshot covers no log entry (raft_log_index 0)")]
    EmptySnapshot,
    /// The Raft database to restore into already holds a log or a state.
    #[error("{0} already holds a Raft group: restore only into an empty data directory")]
    NotEmpty(String),
    /// Opening the database failed.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// Forcing the membership failed.
    #[error(transparent)]
    Force(#[from] ForceError),
    /// Writing failed.
    #[error("cannot write the restored Raft state: {0}")]
    Io(#[from] std::io::Error),
}

/// Parses the store state JSON the cloud keeps (`StoreState`).
///
/// # Errors
/// [`RestoreError::CorruptSnapshot`].
pub fn parse_state(state_json: &[u8]) -> Result<StoreState, RestoreError> {
    serde_json::from_slice(state_json).map_err(|e| RestoreError::CorruptSnapshot(e.to_string()))
}

/// Writes into the empty Raft database `dir` the store `state` applied up to log index
/// `raft_log_index`, as a snapshot whose membership is `device` alone, with the log
/// purged up to it, then forces the membership to `device` (a new entry and vote of a
/// higher term, synced). `node_id` maps a device id to its Raft node id.
///
/// # Errors
/// [`RestoreError`]; a database that is not empty is refused before anything is written.
pub async fn restore_state(
    dir: &Path,
    state: StoreState,
    raft_log_index: u64,
    device: &str,
    node_id: impl Fn(&str) -> NodeId,
) -> Result<ForcePlan, RestoreError> {
    if raft_log_index == 0 {
        return Err(RestoreError::EmptySnapshot);
    }
    let id = node_id(device);
    // Every device of the old group lost its Raft state: no seat stays pinned to an old
    // incarnation (the restored device's is recorded when it first leads).
    let mut state = state;
    state.raft_incarnations.clear();
    {
        let (mut log, mut sm) = storage::open(dir)?;
        let log_state = log.get_log_state().await?;
        let (applied, _) = sm.applied_state().await?;
        if log_state.last_log_id.is_some() || applied.is_some() {
            return Err(RestoreError::NotEmpty(dir.display().to_string()));
        }
        // Term 1 led by the new device: the old group's terms are unknown and do not matter,
        // it is a new group (its old devices are refused by its group identity).
        let leader = <LeaderIdOf<TypeConfig> as RaftLeaderId>::new(1, id);
        let log_id = LogIdOf::<TypeConfig>::new(leader.to_committed(), raft_log_index);
        let membership = Membership::new(
            vec![BTreeSet::from([id])],
            BTreeMap::from([(id, BasicNode::new(device))]),
        )
        .map_err(|e| std::io::Error::other(e.to_string()))?;
        let last_membership = StoredMembershipOf::<TypeConfig>::new(Some(log_id), membership);
        let applied = Applied {
            last_applied: Some(log_id),
            last_membership: last_membership.clone(),
            state,
            unsaved_redemptions: Vec::new(),
        };
        let data = serde_json::to_vec(&applied).map_err(std::io::Error::other)?;
        let meta = SnapshotMetaOf::<TypeConfig> {
            last_log_id: Some(log_id),
            last_membership,
        };
        sm.install_snapshot(&meta, std::io::Cursor::new(data))
            .await?;
        log.purge(log_id).await?;
    }
    let keep = BTreeSet::from([device.to_owned()]);
    Ok(forced_membership::force(dir, device, &keep, node_id).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::StoreCommand;

    fn node_id(device: &str) -> NodeId {
        device.bytes().map(u64::from).sum()
    }

    #[tokio::test]
    async fn a_state_is_restored_as_a_one_member_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut state = StoreState::default();
        state.apply(
            3,
            &StoreCommand::IssueGiftCard {
                card_id: "GC-1".into(),
                amount_minor: 2500,
                currency: posmesh_domain::Currency::from_code("GBP").expect("GBP"),
            },
        );
        state.apply(
            4,
            &StoreCommand::RecordRaftIncarnation {
                device_id: "till-1".into(),
                incarnation: 5,
            },
        );
        let json = serde_json::to_vec(&state).expect("JSON");
        let parsed = parse_state(&json).expect("parses");
        let plan = restore_state(dir.path(), parsed, 40, "till-9", node_id)
            .await
            .expect("restored");
        assert_eq!(plan.voters_after, vec!["till-9".to_owned()]);
        assert_eq!(plan.forced_index, 41);
        assert_eq!(plan.last_log_index, 40);
        let (_, mut sm) = storage::open(dir.path()).expect("opens");
        let (applied, membership) = sm.applied_state().await.expect("applied");
        assert_eq!(applied.map(|l| l.index()), Some(40));
        assert_eq!(
            membership.membership().voter_ids().collect::<Vec<_>>(),
            vec![node_id("till-9")]
        );
        let balance = sm
            .reader()
            .read(|s| s.gift_card_balance("GC-1").map(|(b, _)| b));
        assert_eq!(balance, Some(2500));
        let seats = sm.reader().read(|s| s.raft_incarnations.len());
        assert_eq!(
            seats, 0,
            "no seat pinned to an incarnation of the lost group"
        );
    }

    #[tokio::test]
    async fn bad_input_is_refused_and_writes_nothing_more() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            parse_state(b"{\"gift_cards\": 12"),
            Err(RestoreError::CorruptSnapshot(_))
        ));
        assert!(matches!(
            restore_state(dir.path(), StoreState::default(), 0, "till-9", node_id).await,
            Err(RestoreError::EmptySnapshot)
        ));
        restore_state(dir.path(), StoreState::default(), 5, "till-9", node_id)
            .await
            .expect("first restore");
        let again = restore_state(dir.path(), StoreState::default(), 9, "till-9", node_id).await;
        assert!(matches!(again, Err(RestoreError::NotEmpty(_))), "{again:?}");
    }
}
