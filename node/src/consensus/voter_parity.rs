//! How many voters the store's Raft group should have: the leader promotes caught-up
//! learners while there are fewer than [`super::service::VOTERS_MAX`] voters, keeping the
//! count odd where it can, and demotes one voter to learner when a removal left an even
//! count with no learner to promote (5 → 4 voters: a quorum of 3 out of 4 tolerates one
//! failure, as 3 out of 3 does not… but 4 voters tolerate no more failures than 3 and
//! need one more acknowledgement per write; Raft thesis §4.2.2 / etcd's FAQ recommend an
//! odd size). Sans-IO: the caller applies the step with openraft's `change_membership`.

use posmesh_consensus::NodeId;
use std::collections::BTreeSet;

/// One membership change towards an odd number of voters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VoterStep {
    /// Promote these learners to voters.
    Promote(BTreeSet<NodeId>),
    /// Turn this voter into a learner (it keeps replicating, and is promoted back once
    /// there is another caught-up learner to promote with it).
    Demote(NodeId),
}

/// The change to make, if any: `voters` of the membership, `leader` (never demoted),
/// `caught_up` learners (in preference order), at most `voters_max` voters.
///
/// - Promote as many caught-up learners as fit under `voters_max`, one fewer if that would
///   make the count even.
/// - With nothing to promote and an even count of at least 2, demote the voter with the
///   highest node id other than the leader (deterministic: every leader makes the same
///   choice).
pub fn voter_step(
    voters: &BTreeSet<NodeId>,
    leader: NodeId,
    caught_up: &[NodeId],
    voters_max: usize,
) -> Option<VoterStep> {
    let count = voters.len();
    let mut promote = caught_up.len().min(voters_max.saturating_sub(count));
    if (count + promote).is_multiple_of(2) {
        promote = promote.saturating_sub(1);
    }
    if promote > 0 {
        return Some(VoterStep::Promote(
            caught_up.iter().copied().take(promote).collect(),
        ));
    }
    if count >= 2 && count.is_multiple_of(2) {
        return voters
            .iter()
            .rev()
            .find(|id| **id != leader)
            .map(|id| VoterStep::Demote(*id));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[NodeId]) -> BTreeSet<NodeId> {
        ids.iter().copied().collect()
    }

    #[test]
    fn a_removal_that_leaves_four_voters_demotes_one_not_the_leader() {
        // 5 voters, one removed: 4 left, no learner.
        assert_eq!(
            voter_step(&set(&[1, 2, 3, 4]), 4, &[], 5),
            Some(VoterStep::Demote(3)),
            "the highest id that is not the leader"
        );
        assert_eq!(
            voter_step(&set(&[1, 2, 3, 4]), 1, &[], 5),
            Some(VoterStep::Demote(4))
        );
        // 3 voters, one removed: 2 left → 1 voter and 1 learner, as a 2-device store.
        assert_eq!(
            voter_step(&set(&[7, 9]), 9, &[], 5),
            Some(VoterStep::Demote(7))
        );
    }

    #[test]
    fn a_caught_up_learner_is_promoted_instead_of_a_demotion() {
        assert_eq!(
            voter_step(&set(&[1, 2, 3, 4]), 1, &[5], 5),
            Some(VoterStep::Promote(set(&[5])))
        );
        assert_eq!(
            voter_step(&set(&[1, 2]), 1, &[3, 4], 5),
            Some(VoterStep::Promote(set(&[3])))
        );
    }

    #[test]
    fn odd_counts_are_left_alone_and_never_made_even() {
        assert_eq!(voter_step(&set(&[1]), 1, &[], 5), None);
        assert_eq!(voter_step(&set(&[1]), 1, &[2], 5), None, "1 + 1 is even");
        assert_eq!(voter_step(&set(&[1, 2, 3]), 1, &[4], 5), None);
        assert_eq!(
            voter_step(&set(&[1, 2, 3]), 1, &[4, 5, 6], 5),
            Some(VoterStep::Promote(set(&[4, 5])))
        );
        assert_eq!(voter_step(&set(&[1, 2, 3, 4, 5]), 1, &[6], 5), None);
        // A demoted voter that is caught up is not promoted back alone.
        assert_eq!(voter_step(&set(&[1, 2, 4]), 4, &[3], 5), None);
    }
}
