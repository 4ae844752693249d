//! Forced membership after a permanent quorum loss (like etcd's `--force-new-cluster`):
//! on a **stopped** survivor, a new membership entry is written at the end of its Raft log
//! with a term above everything it has seen, so that when it starts again its effective
//! membership is only the devices kept.
//!
//! Why this works with openraft 0.10: a node's effective membership is the last membership
//! entry in its log, committed or not (Raft dissertation §4.1: "a server always uses the
//! latest configuration in its log, regardless of whether the entry is committed"). With
//! the survivor as the only voter it elects itself, commits a blank entry of its new term,
//! and with it every entry of its log up to the forced membership (Raft paper §5.4.2).
//!
//! What may be lost (the price of skipping the quorum, which [`plan`] lists before anything
//! is written):
//! - entries that the lost devices committed but that never reached this survivor (a
//!   majority of the old voters without it could have committed them);
//! - nothing of this survivor's own log: its entries after its known commit index, which may
//!   or may not have committed before, become committed now.
//!
//! Run it on the survivor with the longest log; kept devices other than the survivor must
//! not have been forced themselves (they follow the survivor, and entries of theirs that
//! the survivor lacks are overwritten).

use crate::storage::{self, LogStore, OpenError, StateMachineStore};
use crate::{NodeId, TypeConfig};
use openraft::entry::RaftEntry;
use openraft::storage::{RaftLogReader, RaftLogStorage, RaftStateMachine};
use openraft::type_config::alias::{EntryOf, LeaderIdOf, LogIdOf, VoteOf};
use openraft::vote::{RaftLeaderId, RaftVote};
use openraft::{BasicNode, EntryPayload, Membership};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Why a membership cannot be forced.
#[derive(Debug, thiserror::Error)]
pub enum ForceError {
    /// The Raft database cannot be opened (in use: stop the device first).
    #[error(transparent)]
    Open(#[from] OpenError),
    /// Reading or writing the Raft database failed.
    #[error("raft database: {0}")]
    Io(#[from] std::io::Error),
    /// This device's Raft log is empty: it was never a member of a store.
    #[error("this device's Raft group was never initialised: there is nothing to recover (use `posmesh init` on a new store)")]
    NotInitialised,
    /// The kept devices do not include the survivor itself.
    #[error("the kept devices must include this device ({survivor}): the forced membership starts from it")]
    SurvivorNotKept {
        /// The survivor's device id.
        survivor: String,
    },
    /// A kept device that is not in the current membership (voter or learner).
    #[error(
        "{device} is not a member of the store's current Raft membership (members: {members})"
    )]
    NotAMember {
        /// The device id.
        device: String,
        /// The current members' device ids, comma-separated.
        members: String,
    },
    /// No device to keep.
    #[error("name at least one device to keep (--keep)")]
    NothingKept,
}

/// One entry of the survivor's log that may not have been committed before (it becomes
/// committed by the forced membership).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PendingEntry {
    /// Its log index.
    pub index: u64,
    /// What it holds, for a person (a command, `blank`, or `membership`).
    pub what: String,
}

/// What forcing the membership would do (and, once applied, did) on this survivor.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ForcePlan {
    /// Voters before (device ids).
    pub voters_before: Vec<String>,
    /// Learners before (device ids).
    pub learners_before: Vec<String>,
    /// Voters after: the kept devices.
    pub voters_after: Vec<String>,
    /// Highest log index this survivor knows to be committed (may lag: it is stored
    /// unsynced; entries up to it are certainly kept).
    pub known_committed_index: Option<u64>,
    /// Last log index this survivor holds. Entries the lost devices may have committed
    /// after it are lost.
    pub last_log_index: u64,
    /// Term of the survivor's vote before (the highest term it has seen).
    pub term_before: u64,
    /// Term of the forced membership entry (above every term seen).
    pub forced_term: u64,
    /// Index of the forced membership entry.
    pub forced_index: u64,
    /// Entries after the known commit index: possibly uncommitted before, committed after.
    pub pending: Vec<PendingEntry>,
}

impl ForcePlan {
    /// The warning a manager must read before confirming: what may be lost, in sentences.
    pub fn warning(&self) -> String {
        let mut text = format!(
            "This replaces the store's Raft membership (voters {:?}, learners {:?}) by {:?}, \
             without the agreement of the lost voters.\n\
             - MAY BE LOST: any store decision (gift-card redemption, day close, …) that the lost \
             devices committed after log index {} — this device's last entry. Decisions this \
             device never received are gone for good.\n\
             - Kept: every entry up to index {} on this device",
            self.voters_before,
            self.learners_before,
            self.voters_after,
            self.last_log_index,
            self.last_log_index,
        );
        match self.known_committed_index {
            Some(committed) if committed < self.last_log_index => text.push_str(&format!(
                "; the {} entries after index {committed} (the last known committed) may not \
                 have been committed before and become committed now: {}.",
                self.pending.len(),
                self.pending
                    .iter()
                    .map(|p| format!("#{} {}", p.index, p.what))
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
            _ => text.push('.'),
        }
        text.push_str(
            "\n- Devices removed by this are never members again under their old ids: give a \
             rebuilt till a new device id.\n- Never start the lost devices again with their old \
             data: they could elect a second leader of the old membership.",
        );
        text
    }
}

/// Reads the survivor's Raft database in `dir` and works out the forced membership that
/// keeps `keep` (device ids; must include `survivor`, this device). Writes nothing.
///
/// `node_id` maps a device id to its Raft node id.
///
/// # Errors
/// [`ForceError`]: database in use or unreadable, never initialised, bad `keep`.
pub async fn plan(
    dir: &Path,
    survivor: &str,
    keep: &BTreeSet<String>,
    node_id: impl Fn(&str) -> NodeId,
) -> Result<ForcePlan, ForceError> {
    let (mut log, mut sm) = storage::open(dir)?;
    Ok(plan_open(&mut log, &mut sm, survivor, keep, &node_id)
        .await?
        .0)
}

/// [`plan`], then writes the forced membership entry and a vote of its term in one synced
/// batch. The device then starts with only `keep` as voters.
///
/// # Errors
/// As [`plan`], and write errors (nothing is written then).
pub async fn force(
    dir: &Path,
    survivor: &str,
    keep: &BTreeSet<String>,
    node_id: impl Fn(&str) -> NodeId,
) -> Result<ForcePlan, ForceError> {
    let (mut log, mut sm) = storage::open(dir)?;
    let (plan, entry, vote) = plan_open(&mut log, &mut sm, survivor, keep, &node_id).await?;
    log.write_forced(&entry, &vote)?;
    tracing::warn!(
        index = plan.forced_index,
        term = plan.forced_term,
        voters = ?plan.voters_after,
        "forced a new Raft membership on this survivor"
    );
    Ok(plan)
}

async fn plan_open(
    log: &mut LogStore,
    sm: &mut StateMachineStore,
    survivor: &str,
    keep: &BTreeSet<String>,
    node_id: &impl Fn(&str) -> NodeId,
) -> Result<(ForcePlan, EntryOf<TypeConfig>, VoteOf<TypeConfig>), ForceError> {
    if keep.is_empty() {
        return Err(ForceError::NothingKept);
    }
    if !keep.contains(survivor) {
        return Err(ForceError::SurvivorNotKept {
            survivor: survivor.to_owned(),
        });
    }
    let state = log.get_log_state().await?;
    let Some(last_log_id) = state.last_log_id else {
        return Err(ForceError::NotInitialised);
    };
    let mut reader = log.get_log_reader().await;
    let vote = reader.read_vote().await?;
    let committed = log.read_committed().await?;
    let (last_applied, applied_membership) = sm.applied_state().await?;
    // The effective membership: the last membership entry of the log, else the applied one.
    let from = state
        .last_purged_log_id
        .as_ref()
        .map_or(0, |id| id.index() + 1);
    let entries = reader.try_get_log_entries(from..).await?;
    let mut membership: Membership<NodeId, BasicNode> = applied_membership.membership().clone();
    for entry in &entries {
        if let Some(m) = entry.get_membership() {
            membership = m;
        }
    }
    let name = |id: &NodeId| {
        membership
            .get_node(id)
            .map_or_else(|| id.to_string(), |node| node.addr.clone())
    };
    let voters_before: Vec<String> = membership.voter_ids().map(|id| name(&id)).collect();
    let learners_before: Vec<String> = membership.learner_ids().map(|id| name(&id)).collect();
    let members: BTreeSet<NodeId> = membership.nodes().map(|(id, _)| *id).collect();
    let mut nodes = BTreeMap::new();
    for device in keep {
        let id = node_id(device);
        if !members.contains(&id) {
            let mut all: Vec<String> = voters_before.clone();
            all.extend(learners_before.iter().cloned());
            return Err(ForceError::NotAMember {
                device: device.clone(),
                members: all.join(", "),
            });
        }
        nodes.insert(id, BasicNode::new(device));
    }
    let voter_ids: BTreeSet<NodeId> = nodes.keys().copied().collect();
    let forced_membership = Membership::new(vec![voter_ids], nodes)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    // Known committed: the stored committed id, or at least what the state machine applied.
    let known_committed = match (committed, last_applied) {
        (Some(c), Some(a)) => Some(c.index().max(a.index())),
        (c, a) => c.or(a).map(|id| id.index()),
    };
    let pending = entries
        .iter()
        .filter(|e| known_committed.is_none_or(|c| e.index() > c))
        .map(|e| PendingEntry {
            index: e.index(),
            what: match &e.payload {
                EntryPayload::Blank => "blank".to_owned(),
                EntryPayload::Normal(command) => command.to_string(),
                EntryPayload::Membership(m) => format!("membership {m}"),
            },
        })
        .collect();
    let last_log_term = last_log_id.committed_leader_id().term;
    let term_before = vote.as_ref().map_or(0, |v| v.leader_id().term);
    let forced_term = term_before.max(last_log_term) + 1;
    let forced_index = last_log_id.index() + 1;
    let survivor_id = node_id(survivor);
    let leader = <LeaderIdOf<TypeConfig> as RaftLeaderId>::new(forced_term, survivor_id);
    let entry = EntryOf::<TypeConfig>::new_membership(
        LogIdOf::<TypeConfig>::new(leader.to_committed(), forced_index),
        forced_membership,
    );
    // Not committed: on start the survivor runs an election of a higher term with itself as
    // the only voter, as a node does after any restart.
    let new_vote = VoteOf::<TypeConfig>::from_leader_id(leader, false);
    let plan = ForcePlan {
        voters_before,
        learners_before,
        voters_after: keep.iter().cloned().collect(),
        known_committed_index: known_committed,
        last_log_index: last_log_id.index(),
        term_before,
        forced_term,
        forced_index,
        pending,
    };
    Ok((plan, entry, new_vote))
}
