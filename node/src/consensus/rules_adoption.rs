//! When the store's Raft leader adopts a newer rules version
//! ([`posmesh_consensus::rules`]), and which devices it lets join: sans-IO, decided from
//! what the members answered ([`super::wire::RaftRequest::IncarnationOf`]).
//!
//! - The leader adopts [`RULES_VERSION_LATEST`] only once every member of the current
//!   membership (voters and learners, itself included) follows it: a member of an older
//!   version could not decode the entry (an AppendEntries call carrying it is
//!   undecodable there, and it would never receive another entry) and would apply later
//!   entries under its old rules. A member that did not answer may be of an older version:
//!   it is waited for too.
//! - Once a version is adopted, a device that does not follow it never joins as a learner.

use posmesh_consensus::rules::RULES_VERSION_LATEST;

/// What the leader does about the store's rules version this round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RulesStep {
    /// The store follows the newest rules this binary knows: nothing to do.
    UpToDate,
    /// Propose [`posmesh_consensus::StoreCommand::AdoptRules`] with this version.
    Adopt(u32),
    /// Keep the rules: these members (in membership order) do not follow the newest yet,
    /// or did not answer.
    WaitFor(Vec<String>),
}

/// The step for a store at rules `adopted` whose other members answered `follows_up_to`
/// (per device, the newest version it follows; `None`: no answer).
pub fn next_step(adopted: u32, members: &[(String, Option<u32>)]) -> RulesStep {
    if adopted >= RULES_VERSION_LATEST {
        return RulesStep::UpToDate;
    }
    let behind: Vec<String> = members
        .iter()
        .filter(|(_, up_to)| up_to.is_none_or(|up_to| up_to < RULES_VERSION_LATEST))
        .map(|(device, _)| device.clone())
        .collect();
    if behind.is_empty() {
        RulesStep::Adopt(RULES_VERSION_LATEST)
    } else {
        RulesStep::WaitFor(behind)
    }
}

/// Whether a device that follows rules up to `follows_up_to` may join a store at rules
/// `adopted`.
pub fn may_join(adopted: u32, follows_up_to: u32) -> bool {
    follows_up_to >= adopted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(answers: &[(&str, Option<u32>)]) -> Vec<(String, Option<u32>)> {
        answers
            .iter()
            .map(|(device, up_to)| ((*device).to_owned(), *up_to))
            .collect()
    }

    #[test]
    fn the_newest_rules_are_adopted_once_every_member_follows_them() {
        let latest = RULES_VERSION_LATEST;
        // A store alone (its leader only), or every member upgraded.
        assert_eq!(next_step(1, &[]), RulesStep::Adopt(latest));
        assert_eq!(
            next_step(
                1,
                &members(&[("till-2", Some(latest)), ("till-3", Some(latest))])
            ),
            RulesStep::Adopt(latest)
        );
        // One member of an older version (it says 1, or nothing) or not answering.
        assert_eq!(
            next_step(
                1,
                &members(&[
                    ("till-2", Some(latest)),
                    ("till-3", Some(1)),
                    ("till-4", None)
                ])
            ),
            RulesStep::WaitFor(vec!["till-3".into(), "till-4".into()])
        );
        // Adopted already: nothing asked of anyone matters.
        assert_eq!(
            next_step(latest, &members(&[("till-3", Some(1))])),
            RulesStep::UpToDate
        );
    }

    #[test]
    fn a_device_behind_the_stores_rules_does_not_join() {
        assert!(may_join(1, 1));
        assert!(may_join(1, RULES_VERSION_LATEST));
        assert!(may_join(RULES_VERSION_LATEST, RULES_VERSION_LATEST));
        assert!(!may_join(RULES_VERSION_LATEST, 1));
    }
}
