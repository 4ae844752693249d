//! Whether a forwarded write whose answer never came may be sent again, to the next
//! leader, within the write's bounded wait for a leader
//! ([`posmesh_consensus::RaftTimings::leader_wait_ms`]).
//!
//! A follower that forwarded a write to a leader which then became unreachable (the
//! connection was lost, the call timed out — a SIGKILLed leader's connection lives on for
//! seconds —, or the leader answered that leadership changed while proposing) does not
//! know whether the write committed ([`posmesh_consensus::client::OUTCOME_UNKNOWN`]). When
//! applying the command a second time is a no-op replay, sending it again is safe and
//! turns that unknown into the committed answer. Every other command keeps the answer
//! `outcome_unknown`: its second application would be refused ("already exists", "version
//! not newer", "already closed"), and the person at the till would be told a committed
//! write failed.

use posmesh_consensus::client::OUTCOME_UNKNOWN;
use posmesh_consensus::StoreCommand;

/// Whether applying `command` once more after it committed changes nothing and answers
/// as the first time did: deduplicated by an id the state machine records, or idempotent
/// by nature ("set X to V").
///
/// - [`StoreCommand::Idempotent`]: a client's Idempotency-Key, replayed
///   ([`posmesh_consensus::idempotency`]).
/// - [`StoreCommand::RedeemGiftCard`]: deduplicated by `redemption_id`.
/// - [`StoreCommand::RecordRaftIncarnation`]: the same incarnation again is answered
///   unchanged.
/// - [`StoreCommand::AdoptRules`]: the current rules version again is answered unchanged.
/// - [`StoreCommand::RetireDevice`]: retiring a retired device is answered again,
///   unchanged.
/// - [`StoreCommand::SetExposureBudget`], [`StoreCommand::SetExposureAllotment`]: set a
///   value (the same checks pass again, the outcome is the same).
///
/// Not, bare: issuing a gift card, catalog and tax versions (refused when not newer),
/// closing a day or a shift, opening a shift, revoking a certificate (refused when done),
/// setting an operator (the authorisation is checked again against the state at the
/// second entry, which the first may have changed, and the change is stamped with its
/// index), disabling an operator, and a command under an operator's authority
/// ([`StoreCommand::Authorised`]) without an Idempotency-Key: its authorisation is checked
/// again at the second entry, and an operator disabled or demoted in between would turn
/// the replay into a refusal. Under a key they are resent: the state machine answers a
/// key's replay before the role check. And every guarded write is sent under a key: the
/// client's, or one the device assigns before the first send
/// ([`super::assigned_key`]) — so every guarded write is resent, whatever its kind.
pub fn replay_is_noop(command: &StoreCommand) -> bool {
    match command {
        StoreCommand::Authorised { command, .. } => {
            matches!(**command, StoreCommand::Idempotent { .. })
        }
        StoreCommand::Idempotent { .. }
        | StoreCommand::RedeemGiftCard { .. }
        | StoreCommand::RetireDevice { .. }
        | StoreCommand::SetExposureBudget { .. }
        | StoreCommand::SetExposureAllotment { .. }
        | StoreCommand::RecordRaftIncarnation { .. }
        | StoreCommand::AdoptRules { .. } => true,
        StoreCommand::IssueGiftCard { .. }
        | StoreCommand::SetCatalogVersion { .. }
        | StoreCommand::CloseDay { .. }
        | StoreCommand::RevokeCertificate { .. }
        | StoreCommand::PublishCatalog { .. }
        | StoreCommand::SetTaxRates { .. }
        | StoreCommand::SetOperator { .. }
        | StoreCommand::OpenShift { .. }
        | StoreCommand::CloseShift { .. }
        | StoreCommand::SetOperatorAuthorised { .. }
        | StoreCommand::DisableOperator { .. } => false,
    }
}

/// Whether a forwarded `command` that failed with `why` (a sentence of
/// [`super::forwarding`]) may be sent again to the next leader: its outcome is unknown
/// because the leader became unreachable or changed (every
/// [`OUTCOME_UNKNOWN`] sentence: answer lost, call timed out, leadership changed while
/// proposing, proposed and not confirmed), and a second application is a no-op replay
/// ([`replay_is_noop`]). A refusal, a retired device or any other answer is final.
pub fn may_resend(command: &StoreCommand, why: &str) -> bool {
    why.starts_with(OUTCOME_UNKNOWN) && replay_is_noop(command)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::retirement::DEVICE_RETIRED;
    use posmesh_consensus::ConsensusError;
    use posmesh_domain::money::Currency;

    fn gbp() -> Currency {
        Currency::from_code("GBP").expect("GBP")
    }

    fn redeem() -> StoreCommand {
        StoreCommand::RedeemGiftCard {
            card_id: "GC-1".into(),
            amount_minor: 250,
            redemption_id: "r-1".into(),
        }
    }

    fn issue() -> StoreCommand {
        StoreCommand::IssueGiftCard {
            card_id: "GC-1".into(),
            amount_minor: 1_000,
            currency: gbp(),
        }
    }

    const LOST: &str = "outcome unknown: the write reached the leader till-1 but its answer \
                        was lost (till-1: stream read: connection lost); it may have been \
                        committed: retry with the same Idempotency-Key";

    #[test]
    fn only_commands_replayed_as_a_no_op_are_resent() {
        let keyed = StoreCommand::Idempotent {
            idempotency_key: "k-1".into(),
            request_hash: "a".repeat(64),
            command: Box::new(issue()),
        };
        for command in [
            keyed,
            redeem(),
            StoreCommand::RetireDevice {
                device_id: "till-3".into(),
                up_to_seq: None,
            },
            StoreCommand::SetExposureBudget {
                amount_minor: 10_000,
                currency: gbp(),
            },
            StoreCommand::SetExposureAllotment {
                device_id: "till-2".into(),
                amount_minor: 500,
            },
            StoreCommand::Authorised {
                authorised_by: "mgr-1".into(),
                command: Box::new(StoreCommand::Idempotent {
                    idempotency_key: "k-close".into(),
                    request_hash: "c".repeat(64),
                    command: Box::new(StoreCommand::CloseDay {
                        business_date: "2026-01-02".into(),
                        version_vector: std::collections::BTreeMap::new(),
                    }),
                }),
            },
        ] {
            assert!(may_resend(&command, LOST), "{command:?}");
        }
        for command in [
            issue(),
            StoreCommand::RevokeCertificate {
                serial: "0a".into(),
                cut: None,
            },
            StoreCommand::SetCatalogVersion {
                version: 3,
                effective_at_ms: 0,
            },
            StoreCommand::Authorised {
                authorised_by: "mgr-1".into(),
                command: Box::new(StoreCommand::RetireDevice {
                    device_id: "till-3".into(),
                    up_to_seq: None,
                }),
            },
        ] {
            assert!(!may_resend(&command, LOST), "{command:?}");
        }
    }

    /// Each kind of guarded write a client may send without a key, as the device sends it
    /// (keyed by [`super::super::assigned_key`]): resent; as the client sent it: not.
    #[test]
    fn every_guarded_write_is_resent_as_the_device_sends_it() {
        let by = |command: StoreCommand| StoreCommand::Authorised {
            authorised_by: "mgr-1".into(),
            command: Box::new(command),
        };
        for command in [
            by(StoreCommand::RetireDevice {
                device_id: "till-3".into(),
                up_to_seq: None,
            }),
            by(StoreCommand::SetExposureBudget {
                amount_minor: 10_000,
                currency: gbp(),
            }),
            by(StoreCommand::SetExposureAllotment {
                device_id: "till-2".into(),
                amount_minor: 500,
            }),
            by(StoreCommand::DisableOperator {
                operator_id: "csh-1".into(),
                disabled_at_ms: 0,
            }),
            by(StoreCommand::RevokeCertificate {
                serial: "0a".into(),
                cut: None,
            }),
            StoreCommand::SetOperatorAuthorised {
                authorised_by: Some("adm-1".into()),
                operator_id: "csh-2".into(),
                name: "Cass".into(),
                role: posmesh_consensus::staff::Role::Cashier,
                pin_hash: "h".into(),
            },
            // A store in setup (no operator yet): bare.
            StoreCommand::RevokeCertificate {
                serial: "0b".into(),
                cut: None,
            },
        ] {
            assert!(!may_resend(&command, LOST), "unkeyed: {command:?}");
            let (sent, assigned) = crate::consensus::assigned_key::assign("till-1", 42, command);
            assert!(assigned, "{sent:?}");
            assert!(may_resend(&sent, LOST), "as sent: {sent:?}");
        }
    }

    #[test]
    fn the_second_application_of_a_resent_command_changes_nothing() {
        // What makes a resend safe, checked on the state machine itself.
        let mut state = posmesh_consensus::StoreState::default();
        state.apply(1, &issue());
        for command in [
            redeem(),
            StoreCommand::Idempotent {
                idempotency_key: "k-2".into(),
                request_hash: "b".repeat(64),
                command: Box::new(StoreCommand::RedeemGiftCard {
                    card_id: "GC-1".into(),
                    amount_minor: 100,
                    redemption_id: "r-2".into(),
                }),
            },
        ] {
            assert!(replay_is_noop(&command));
            state.apply(2, &command);
            let once = state.gift_card_balance("GC-1");
            state.apply(3, &command);
            assert_eq!(state.gift_card_balance("GC-1"), once, "{command:?}");
        }
        assert_eq!(state.gift_card_balance("GC-1").map(|(b, _)| b), Some(650));
    }

    #[test]
    fn only_an_unknown_outcome_is_resent() {
        let unknown = [
            LOST.to_owned(),
            format!(
                "{} (at the leader till-1)",
                ConsensusError::LeaderChanged { leader: Some(2) }
            ),
            format!(
                "{} (at the leader till-1)",
                ConsensusError::Unconfirmed { waited_ms: 8_000 }
            ),
        ];
        for why in &unknown {
            assert!(may_resend(&redeem(), why), "{why}");
        }
        for why in [
            "the leader till-1 could not: card GC-1 would go below zero".to_owned(),
            format!("{DEVICE_RETIRED}: till-3 retired at index 12"),
            "no quorum: the leader till-1 cannot be reached (no connection)".to_owned(),
        ] {
            assert!(!may_resend(&redeem(), &why), "{why}");
        }
    }
}
