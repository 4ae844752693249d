//! Members of the store's Raft group found to have lost their Raft state
//! ([`super::seat`]): recorded on the device that found out (an ERROR and the lasting
//! alert [`MEMBER_LOST_CODE`] naming the device), shown in `posmesh status` (never as
//! "0 entries behind"), and taken out of the group by the leader ([`lost_member_step`]).
//!
//! Taking a lost voter out is safe and keeps the store deciding: it already answers no
//! call, so the live voters are the same before and after, and the change (joint
//! consensus, Raft §6) commits with them. The leader proposes it only when the voters it
//! reaches, the lost one left out, are a majority of the voters both before and after the
//! change (otherwise the change could not commit and would hold the group in a joint
//! configuration); it never removes itself or the last voter. The odd voter count is then
//! restored by [`super::voter_parity`] (a caught-up learner promoted, or one voter
//! demoted), one change per round. A lost learner is simply removed. A lost device is
//! never added back: its seat stays pinned to the old incarnation.

use posmesh_consensus::NodeId;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, OnceLock};

/// Code of the alert and log line on a device that found a member lost.
pub const MEMBER_LOST_CODE: &str = "raft_member_lost";

/// A member found to have lost its Raft state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LostMember {
    /// The device.
    pub device_id: String,
    /// The incarnation its seat is recorded under, if known here.
    pub seat: Option<u64>,
    /// The incarnation it answers as now, if it said.
    pub answering_as: Option<u64>,
}

impl std::fmt::Display for LostMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hex = |i: Option<u64>| i.map_or_else(|| "unknown".to_owned(), |i| format!("{i:016x}"));
        write!(
            f,
            "{} lost its Raft state or refuses its seat (it answers as Raft incarnation \
             {}, its seat in the store's Raft group is incarnation {}; a device whose id is \
             in device_identity_conflict refuses its seat too): it no longer votes or counts \
             towards a commit, and the leader takes it out of the Raft group. Run `posmesh \
             store remove-device {}` and enrol the till again as a new device with a new id",
            self.device_id,
            hex(self.answering_as),
            hex(self.seat),
            self.device_id
        )
    }
}

/// Told once per device found lost (raises the alert).
pub type LostMemberListener = Arc<dyn Fn(&LostMember) + Send + Sync>;

/// The members found lost here, by device id.
#[derive(Default)]
pub struct LostMembers {
    lost: Mutex<BTreeMap<String, LostMember>>,
    listener: OnceLock<LostMemberListener>,
}

impl LostMembers {
    /// Sets who is told of a lost member (once).
    pub fn on_lost(&self, listener: LostMemberListener) {
        let _ = self.listener.set(listener);
    }

    /// Records `member` as lost: the first time for its device it is logged at ERROR and
    /// passed to the listener. True when this was the first.
    pub fn record(&self, member: LostMember) -> bool {
        {
            let mut lost = self
                .lost
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if lost.contains_key(&member.device_id) {
                return false;
            }
            lost.insert(member.device_id.clone(), member.clone());
        }
        tracing::error!(code = MEMBER_LOST_CODE, device = %member.device_id, "{member}");
        if let Some(listener) = self.listener.get() {
            listener(&member);
        }
        true
    }

    /// Whether `device_id` was found lost.
    pub fn contains(&self, device_id: &str) -> bool {
        self.all().contains_key(device_id)
    }

    /// Every member found lost, by device id.
    pub fn all(&self) -> BTreeMap<String, LostMember> {
        self.lost
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

/// One membership change taking a lost member out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LostStep {
    /// Remove this learner from the group.
    RemoveLearner(NodeId),
    /// Remove this voter from the group.
    RemoveVoter(NodeId),
}

/// The change to make, if any, for the `lost` members of a group of `voters` and
/// `learners` led by `leader`, which reaches the members in `reachable` (see the module
/// docs): lost learners first, then a lost voter only while the reachable voters other
/// than it are a majority both of the voters now and of the voters after.
pub fn lost_member_step(
    voters: &BTreeSet<NodeId>,
    learners: &BTreeSet<NodeId>,
    leader: NodeId,
    lost: &BTreeSet<NodeId>,
    reachable: &BTreeSet<NodeId>,
) -> Option<LostStep> {
    if let Some(id) = learners.iter().find(|id| lost.contains(id)) {
        return Some(LostStep::RemoveLearner(*id));
    }
    let lost_voter = voters
        .iter()
        .copied()
        .find(|id| *id != leader && lost.contains(id))?;
    let after: BTreeSet<NodeId> = voters
        .iter()
        .copied()
        .filter(|v| *v != lost_voter)
        .collect();
    let live = after
        .iter()
        .filter(|v| **v == leader || (reachable.contains(v) && !lost.contains(v)))
        .count();
    let majority_of = |n: usize| live * 2 > n;
    (!after.is_empty() && majority_of(voters.len()) && majority_of(after.len()))
        .then_some(LostStep::RemoveVoter(lost_voter))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[NodeId]) -> BTreeSet<NodeId> {
        ids.iter().copied().collect()
    }

    #[test]
    fn a_lost_voter_goes_when_the_others_still_make_a_majority() {
        // 3 voters, 3 lost: 1 and 2 reachable: 2 of 3 before, 2 of 2 after.
        assert_eq!(
            lost_member_step(&set(&[1, 2, 3]), &set(&[]), 1, &set(&[3]), &set(&[2, 3])),
            Some(LostStep::RemoveVoter(3))
        );
        // 5 voters, one lost, 3 others reachable: 4 of 5 before (with the leader), 4 of 4.
        assert_eq!(
            lost_member_step(
                &set(&[1, 2, 3, 4, 5]),
                &set(&[]),
                1,
                &set(&[4]),
                &set(&[2, 3, 5])
            ),
            Some(LostStep::RemoveVoter(4))
        );
    }

    #[test]
    fn a_lost_voter_stays_while_the_change_could_not_commit() {
        // 3 voters, 3 lost and 2 down: the leader alone is no majority of {1, 2, 3} —
        // no write commits now, nor would the change.
        assert_eq!(
            lost_member_step(&set(&[1, 2, 3]), &set(&[]), 1, &set(&[3]), &set(&[3])),
            None
        );
        // 5 voters, 5 lost, 4 down: 1, 2, 3 are 3 of 5 before, 3 of 4 after: goes.
        assert_eq!(
            lost_member_step(
                &set(&[1, 2, 3, 4, 5]),
                &set(&[]),
                1,
                &set(&[5]),
                &set(&[2, 3])
            ),
            Some(LostStep::RemoveVoter(5))
        );
        // Two lost of 5 and one down: 1, 2 are 2 of 5: nothing.
        assert_eq!(
            lost_member_step(
                &set(&[1, 2, 3, 4, 5]),
                &set(&[]),
                1,
                &set(&[4, 5]),
                &set(&[2, 4, 5])
            ),
            None
        );
    }

    #[test]
    fn the_leader_is_never_removed_and_learners_go_first() {
        assert_eq!(
            lost_member_step(&set(&[1]), &set(&[2]), 1, &set(&[1, 2]), &set(&[2])),
            Some(LostStep::RemoveLearner(2))
        );
        assert_eq!(
            lost_member_step(&set(&[1]), &set(&[]), 1, &set(&[1]), &set(&[])),
            None
        );
        assert_eq!(
            lost_member_step(&set(&[1, 2, 3]), &set(&[4]), 1, &set(&[]), &set(&[2, 3, 4])),
            None,
            "nothing lost, nothing to do"
        );
    }

    #[test]
    fn a_lost_member_is_told_once_and_says_what_to_do() {
        let members = LostMembers::default();
        let member = LostMember {
            device_id: "till-3".into(),
            seat: Some(1),
            answering_as: Some(2),
        };
        assert!(members.record(member.clone()));
        assert!(!members.record(member));
        assert!(members.contains("till-3") && !members.contains("till-2"));
        let text = members.all()["till-3"].to_string();
        assert!(text.contains("remove-device till-3"), "{text}");
        assert!(text.contains("0000000000000002"), "{text}");
    }
}
