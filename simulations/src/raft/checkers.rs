//! The Raft run's checkers, over the clients' history, the leaderships observed and every
//! device's final disk:
//! - `raft-election-safety` (Raft paper §5.2, Figure 3 "Election Safety"): at most one
//!   leader per term.
//! - `raft-state-machine-safety` (§5.4.3, Figure 3): no two devices applied different
//!   commands at the same log index.
//! - `raft-rules-version`: no two devices followed different rules versions
//!   ([`posmesh_consensus::rules`]) after applying the same log index (the run adopts the
//!   newest version halfway through its faults).
//! - `raft-committed-kept` (§5.4, Figure 3 "Leader Completeness"): every write acknowledged
//!   to a client is, after the heal, in every device's applied state with the outcome the
//!   client was told (no committed entry lost).
//! - `gift-card-no-double-spend`: the card's final balance is its issue minus exactly the
//!   redemptions applied, never below zero, on every device; acknowledged redemptions never
//!   sum above the issue.
//! - `day-close-identical`: every device holds the same closes (date → cut and log index):
//!   the Z-report, a function of the cut and the replicated ledger, is the same everywhere;
//!   an acknowledged close holds the cut the client proposed.
//! - `raft-convergence`: after the heal every device's store state is identical.

use super::storage::DiskState;
use crate::sim::Violation;
use posmesh_consensus::{NodeId, Outcome, StoreCommand, StoreResponse};
use std::collections::{BTreeMap, BTreeSet};

/// What the observers saw during the run.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// Leaders seen per term.
    pub leaders: BTreeMap<u64, BTreeSet<NodeId>>,
    /// Devices whose Raft could not start.
    pub start_failures: Vec<String>,
}

/// One client write and what the client learnt.
#[derive(Clone, Debug)]
pub struct ClientOp {
    /// The command.
    pub command: StoreCommand,
    /// The log index it was committed at, if acknowledged.
    pub index: Option<u64>,
    /// The state machine's answer, if acknowledged.
    pub response: Option<StoreResponse>,
}

impl ClientOp {
    /// An acknowledged write.
    pub fn acked(command: &StoreCommand, index: u64, response: StoreResponse) -> Self {
        Self {
            command: command.clone(),
            index: Some(index),
            response: Some(response),
        }
    }

    /// A write without an answer (it may or may not have committed).
    pub fn unknown(command: &StoreCommand) -> Self {
        Self {
            command: command.clone(),
            index: None,
            response: None,
        }
    }

    /// A gift-card redemption.
    pub fn is_redemption(&self) -> bool {
        matches!(self.command, StoreCommand::RedeemGiftCard { .. })
    }

    /// A day close.
    pub fn is_close(&self) -> bool {
        matches!(self.command, StoreCommand::CloseDay { .. })
    }

    /// Acknowledged as applied.
    pub fn applied(&self) -> bool {
        matches!(self.response, Some(StoreResponse::Applied(_)))
    }

    /// Acknowledged as refused.
    pub fn refused(&self) -> bool {
        matches!(self.response, Some(StoreResponse::Refused(_)))
    }
}

/// Runs every checker.
pub fn check_all(
    history: &[ClientOp],
    observed: &Observed,
    disks: &BTreeMap<NodeId, DiskState>,
    card_balance_minor: i64,
) -> Vec<Violation> {
    let mut out = Vec::new();
    for failure in &observed.start_failures {
        out.push(violation("raft-start", None, failure.clone()));
    }
    election_safety(observed, &mut out);
    state_machine_safety(disks, &mut out);
    rules_version_alike(disks, &mut out);
    committed_kept(history, disks, &mut out);
    no_double_spend(history, disks, card_balance_minor, &mut out);
    day_close_identical(history, disks, &mut out);
    convergence(disks, &mut out);
    out
}

fn election_safety(observed: &Observed, out: &mut Vec<Violation>) {
    for (term, leaders) in &observed.leaders {
        if leaders.len() > 1 {
            out.push(violation(
                "raft-election-safety",
                None,
                format!("term {term} had {} leaders: {leaders:?}", leaders.len()),
            ));
        }
    }
}

fn state_machine_safety(disks: &BTreeMap<NodeId, DiskState>, out: &mut Vec<Violation>) {
    let mut by_index: BTreeMap<u64, (NodeId, &String)> = BTreeMap::new();
    for (id, disk) in disks {
        for (index, command) in &disk.applied {
            match by_index.get(index) {
                Some((other, seen)) if *seen != command => out.push(violation(
                    "raft-state-machine-safety",
                    Some(format!("d{id}")),
                    format!("index {index}: applied {command} but d{other} applied {seen}"),
                )),
                Some(_) => {}
                None => {
                    by_index.insert(*index, (*id, command));
                }
            }
        }
    }
}

fn rules_version_alike(disks: &BTreeMap<NodeId, DiskState>, out: &mut Vec<Violation>) {
    let mut by_index: BTreeMap<u64, (NodeId, u32)> = BTreeMap::new();
    for (id, disk) in disks {
        for (index, rules) in &disk.rules_at {
            match by_index.get(index) {
                Some((other, seen)) if seen != rules => out.push(violation(
                    "raft-rules-version",
                    Some(format!("d{id}")),
                    format!(
                        "after index {index}: rules version {rules} but d{other} followed {seen}"
                    ),
                )),
                Some(_) => {}
                None => {
                    by_index.insert(*index, (*id, *rules));
                }
            }
        }
    }
}

fn committed_kept(
    history: &[ClientOp],
    disks: &BTreeMap<NodeId, DiskState>,
    out: &mut Vec<Violation>,
) {
    for op in history {
        let (Some(index), Some(response)) = (op.index, &op.response) else {
            continue;
        };
        let Ok(json) = serde_json::to_string(&op.command) else {
            continue;
        };
        for (id, disk) in disks {
            let device = Some(format!("d{id}"));
            let applied_index = disk.last_applied.as_ref().map_or(0, |l| l.index());
            if applied_index < index {
                out.push(violation(
                    "raft-committed-kept",
                    device,
                    format!("acknowledged entry {index} ({}) is beyond the applied index {applied_index}", op.command),
                ));
                continue;
            }
            if let Some(applied) = disk.applied.get(&index) {
                if *applied != json {
                    out.push(violation(
                        "raft-committed-kept",
                        device,
                        format!(
                            "acknowledged entry {index} was {json} but {applied} is applied there"
                        ),
                    ));
                    continue;
                }
            }
            // Whether applied one by one or installed in a snapshot, the effect is there.
            let present = match (&op.command, response) {
                (
                    StoreCommand::RedeemGiftCard {
                        redemption_id,
                        amount_minor,
                        ..
                    },
                    StoreResponse::Applied(_),
                ) => disk.state.redemptions.get(redemption_id).is_some_and(|r| {
                    r.amount_minor == *amount_minor && r.applied_at_index == index
                }),
                (StoreCommand::CloseDay { business_date, .. }, StoreResponse::Applied(_)) => disk
                    .state
                    .day_closes
                    .get(business_date)
                    .is_some_and(|c| c.closed_at_index == index),
                (StoreCommand::IssueGiftCard { card_id, .. }, StoreResponse::Applied(_)) => disk
                    .state
                    .gift_cards
                    .get(card_id)
                    .is_some_and(|c| c.issued_at_index == index),
                _ => true,
            };
            if !present {
                out.push(violation(
                    "raft-committed-kept",
                    device,
                    format!(
                        "acknowledged {} at index {index} is missing from the state",
                        op.command
                    ),
                ));
            }
        }
    }
}

fn no_double_spend(
    history: &[ClientOp],
    disks: &BTreeMap<NodeId, DiskState>,
    issued: i64,
    out: &mut Vec<Violation>,
) {
    let acked: i64 = history
        .iter()
        .filter(|op| op.is_redemption() && op.applied())
        .filter_map(|op| match &op.response {
            Some(StoreResponse::Applied(Outcome::GiftCardRedeemed { amount_minor, .. })) => {
                Some(*amount_minor)
            }
            _ => None,
        })
        .sum();
    if acked > issued {
        out.push(violation(
            "gift-card-no-double-spend",
            None,
            format!(
                "clients were told {acked} minor was redeemed from a card issued with {issued}"
            ),
        ));
    }
    for (id, disk) in disks {
        let Some(card) = disk.state.gift_cards.get(super::run::CARD) else {
            continue;
        };
        let redeemed: i64 = disk
            .state
            .redemptions
            .values()
            .filter(|r| r.card_id == super::run::CARD)
            .map(|r| r.amount_minor)
            .sum();
        if card.balance_minor < 0 || card.balance_minor != issued - redeemed {
            out.push(violation(
                "gift-card-no-double-spend",
                Some(format!("d{id}")),
                format!(
                    "balance {} after redemptions of {redeemed} from {issued}",
                    card.balance_minor
                ),
            ));
        }
    }
}

fn day_close_identical(
    history: &[ClientOp],
    disks: &BTreeMap<NodeId, DiskState>,
    out: &mut Vec<Violation>,
) {
    let mut first: Option<(NodeId, String)> = None;
    for (id, disk) in disks {
        let closes = serde_json::to_string(&disk.state.day_closes).unwrap_or_default();
        match &first {
            None => first = Some((*id, closes)),
            Some((other, seen)) if *seen != closes => out.push(violation(
                "day-close-identical",
                Some(format!("d{id}")),
                format!("day closes differ from d{other}: {closes} vs {seen}"),
            )),
            Some(_) => {}
        }
    }
    for op in history.iter().filter(|op| op.is_close() && op.applied()) {
        let StoreCommand::CloseDay {
            business_date,
            version_vector,
        } = &op.command
        else {
            continue;
        };
        for (id, disk) in disks {
            if disk
                .state
                .day_closes
                .get(business_date)
                .is_none_or(|c| c.version_vector != *version_vector)
            {
                out.push(violation(
                    "day-close-identical",
                    Some(format!("d{id}")),
                    format!("the acknowledged close of {business_date} with cut {version_vector:?} is not the one held"),
                ));
            }
        }
    }
}

fn convergence(disks: &BTreeMap<NodeId, DiskState>, out: &mut Vec<Violation>) {
    let mut states = disks.iter();
    if let Some((first_id, first)) = states.next() {
        for (id, disk) in states {
            if disk.state != first.state {
                out.push(violation(
                    "raft-convergence",
                    Some(format!("d{id}")),
                    format!("store state differs from d{first_id}'s after the heal"),
                ));
            }
        }
    }
}

/// A violation of `checker`, on `device` if one.
pub fn violation(checker: &'static str, device: Option<String>, message: String) -> Violation {
    Violation {
        checker,
        device,
        seq: None,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_that_followed_other_rules_after_the_same_index_are_caught() {
        let disk = |rules: &[(u64, u32)]| DiskState {
            rules_at: rules.iter().copied().collect(),
            ..DiskState::default()
        };
        let alike = BTreeMap::from([(1, disk(&[(4, 1), (5, 2)])), (2, disk(&[(5, 2), (6, 2)]))]);
        let mut out = Vec::new();
        rules_version_alike(&alike, &mut out);
        assert!(out.is_empty(), "{out:?}");
        let apart = BTreeMap::from([(1, disk(&[(4, 1), (5, 2)])), (2, disk(&[(5, 1)]))]);
        rules_version_alike(&apart, &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].checker, "raft-rules-version");
        assert_eq!(out[0].device.as_deref(), Some("d2"));
    }
}
