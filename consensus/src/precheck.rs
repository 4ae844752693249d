//! Refusals decided by the state alone, asked before a command is proposed: the API runs
//! [`StoreState::precheck`] on the state applied on its device and answers a refusal
//! without taking a Raft entry (a refused proposal still costs a log entry on every
//! voter's disk and a round trip to the leader).
//!
//! The state machine keeps every check ([`StoreState::apply`] runs the same functions),
//! so a race — the state changed between the pre-check and the commit, or the device was
//! a moment behind the leader — ends in the same refusal, committed. A pre-check that
//! passes proves nothing; one that fails gives exactly the refusal `apply` would give on
//! this state (the check functions are shared, never copied).

use crate::command::{Refusal, StoreCommand};
use crate::state::StoreState;

impl StoreState {
    /// The refusal `command` would get if it applied on this state, for the refusals
    /// that depend on the state alone and are stable while it does not change: an
    /// unknown, disabled or only-admin operator to disable, a day closed already, a
    /// certificate revoked already, a disabled operator set again, the role rules of an
    /// [`StoreCommand::Authorised`] or [`StoreCommand::SetOperatorAuthorised`] wrapper,
    /// an Idempotency-Key used for another request, a gift card issued already, a
    /// redemption of an unknown card (or beyond its balance, or under a redemption id
    /// used for another), a shift opened by an unknown or disabled operator (or under a
    /// used shift id, or on a device with an open shift), a shift closed already or
    /// unknown, a catalog version not above the one in force. Other commands pass (`Ok`): the state machine decides them when they
    /// apply.
    ///
    /// A key already recorded for the same request passes: the log answers its replay.
    ///
    /// # Errors
    /// The [`Refusal`] `apply` would answer on this state.
    pub fn precheck(&self, command: &StoreCommand) -> Result<(), Refusal> {
        match command {
            StoreCommand::Idempotent {
                idempotency_key,
                request_hash,
                command,
            } => match self.idempotent_writes.get(idempotency_key) {
                Some(done) if done.request_hash == *request_hash => Ok(()),
                Some(done) => Err(Refusal::IdempotencyKeyReused {
                    idempotency_key: idempotency_key.clone(),
                    applied_at_index: done.applied_at_index,
                }),
                None => self.precheck(command),
            },
            StoreCommand::Authorised {
                authorised_by,
                command,
            } => {
                // As `apply`: a replay of a recorded request answers its first outcome,
                // whatever the operator's role is now.
                if self.replay_of(command).is_some() {
                    return Ok(());
                }
                self.staff.may_run(authorised_by, command)?;
                self.precheck(command)
            }
            StoreCommand::IssueGiftCard {
                card_id,
                amount_minor,
                ..
            } => self.check_issue_gift_card(card_id, *amount_minor),
            StoreCommand::RedeemGiftCard {
                card_id,
                amount_minor,
                redemption_id,
            } => self
                .check_redeem_gift_card(card_id, *amount_minor, redemption_id)
                .map(|_replay| ()),
            StoreCommand::OpenShift {
                shift_id,
                device_id,
                operator_id,
                opening_float_minor,
                ..
            } => {
                self.staff
                    .check_open_shift(shift_id, device_id, operator_id, *opening_float_minor)
            }
            StoreCommand::CloseShift {
                shift_id,
                closed_at_ms,
            } => self.staff.check_close_shift(shift_id, *closed_at_ms),
            StoreCommand::DisableOperator { operator_id, .. } => {
                self.staff.check_disable(operator_id)
            }
            StoreCommand::CloseDay {
                business_date,
                version_vector,
            } => self.check_close_day(business_date, version_vector),
            StoreCommand::RevokeCertificate { serial, .. } => self.check_revoke_certificate(serial),
            StoreCommand::SetOperatorAuthorised {
                authorised_by,
                operator_id,
                role,
                ..
            } => {
                self.staff
                    .may_set_operator(authorised_by.as_deref(), operator_id, *role)?;
                self.staff.check_not_disabled(operator_id)
            }
            StoreCommand::SetOperator { operator_id, .. } => {
                self.staff.check_not_disabled(operator_id)
            }
            StoreCommand::SetExposureAllotment {
                device_id,
                amount_minor,
            } => self.check_exposure_allotment(device_id, *amount_minor),
            StoreCommand::SetCatalogVersion {
                version,
                effective_at_ms,
            }
            | StoreCommand::PublishCatalog {
                version,
                effective_at_ms,
                ..
            } => self.check_catalog_version(*version, *effective_at_ms),
            _ => Ok(()),
        }
    }
}

impl Refusal {
    /// Whether this refusal, once a state gives it, holds on every later state of the
    /// store: what it rests on is never undone (a day close, a revocation, a retirement, a
    /// disabled operator's tombstone, a recorded Idempotency-Key — kept for the last
    /// [`crate::idempotency::IDEMPOTENT_KEYS_MAX`] keyed writes: a device a moment behind
    /// may still refuse the reuse of a key the leader has just dropped, as it was refused
    /// a moment before) or is the command's own input (a
    /// malformed id, date, amount or hash), or never goes back (a gift card issued, a
    /// redemption id recorded, a shift id used or closed: none is ever removed; a card's
    /// balance only goes down; the catalog version and its effective time only go up). A device may answer such a refusal from a state a moment
    /// behind the leader's; others (an unknown operator, card or shift, the only admin, a
    /// device's open shift) a newer entry can lift, so only the leader's state settles
    /// them.
    pub fn holds_for_good(&self) -> bool {
        matches!(
            self,
            Refusal::DayAlreadyClosed { .. }
                | Refusal::GiftCardExists { .. }
                | Refusal::RedemptionIdReused { .. }
                | Refusal::InsufficientBalance { .. }
                | Refusal::ShiftExists { .. }
                | Refusal::ShiftAlreadyClosed { .. }
                | Refusal::AlreadyRevoked { .. }
                | Refusal::DeviceRetired { .. }
                | Refusal::CatalogVersionNotNewer { .. }
                | Refusal::RulesVersionNotNewer { .. }
                | Refusal::OperatorDisabled { .. }
                | Refusal::IdempotencyKeyReused { .. }
                | Refusal::InvalidId { .. }
                | Refusal::InvalidBusinessDate { .. }
                | Refusal::InvalidAmount { .. }
                | Refusal::InvalidPinHash { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::command::{Refusal, StoreCommand, StoreResponse};
    use crate::staff::Role;
    use crate::state::StoreState;
    use crate::test_fixtures::state_with_operators;
    use std::collections::BTreeMap;

    const HASH: &str = crate::test_fixtures::PIN_HASH;

    fn by(operator: &str, command: StoreCommand) -> StoreCommand {
        StoreCommand::Authorised {
            authorised_by: operator.into(),
            command: Box::new(command),
        }
    }

    fn disable(id: &str) -> StoreCommand {
        StoreCommand::DisableOperator {
            operator_id: id.into(),
            disabled_at_ms: 9_000,
        }
    }

    fn close_day(date: &str) -> StoreCommand {
        StoreCommand::CloseDay {
            business_date: date.into(),
            version_vector: BTreeMap::new(),
        }
    }

    fn keyed(key: &str, hash: char, command: StoreCommand) -> StoreCommand {
        StoreCommand::Idempotent {
            idempotency_key: key.into(),
            request_hash: hash.to_string().repeat(64),
            command: Box::new(command),
        }
    }

    /// ada (admin), mia (manager), cat (cashier).
    fn store() -> StoreState {
        state_with_operators(&[
            ("ada", Role::Admin),
            ("mia", Role::Manager),
            ("cat", Role::Cashier),
        ])
    }

    /// Every pre-check refusal is exactly what `apply` answers on the same state, and a
    /// refusal found by the pre-check changes nothing.
    #[test]
    fn a_precheck_refusal_is_the_state_machines_refusal() {
        let mut state = store();
        assert!(matches!(
            state.apply(
                4,
                &by("mia", keyed("k-close", 'a', close_day("2026-01-02")))
            ),
            StoreResponse::Applied(_)
        ));
        assert!(matches!(
            state.apply(5, &by("mia", disable("cat"))),
            StoreResponse::Applied(_)
        ));
        let refused = [
            by("ada", disable("ada")),
            by("mia", disable("nobody")),
            by("mia", disable("cat")),
            by("cat", close_day("2026-01-03")),
            by("zed", close_day("2026-01-03")),
            by("mia", keyed("k-2", 'b', close_day("2026-01-02"))),
            by("mia", keyed("k-close", 'b', close_day("2026-01-04"))),
            by(
                "ada",
                StoreCommand::RevokeCertificate {
                    serial: "".into(),
                    cut: None,
                },
            ),
            StoreCommand::SetOperatorAuthorised {
                authorised_by: Some("mia".into()),
                operator_id: "cat".into(),
                name: "Cat".into(),
                role: Role::Cashier,
                pin_hash: HASH.into(),
            },
            StoreCommand::SetOperatorAuthorised {
                authorised_by: Some("cat".into()),
                operator_id: "eve".into(),
                name: "Eve".into(),
                role: Role::Cashier,
                pin_hash: HASH.into(),
            },
        ];
        for command in refused {
            let precheck = state.precheck(&command).expect_err("refused");
            let before = state.clone();
            assert_eq!(
                state.clone().apply(6, &command),
                StoreResponse::Refused(precheck.clone()),
                "{command}"
            );
            assert_eq!(state, before);
        }
        // Passes: a replay of the recorded request, a day not closed, a new revocation.
        for command in [
            by("mia", keyed("k-close", 'a', close_day("2026-01-02"))),
            by("mia", close_day("2026-01-03")),
            by(
                "ada",
                StoreCommand::RevokeCertificate {
                    serial: "0a".into(),
                    cut: None,
                },
            ),
            by("ada", disable("mia")),
        ] {
            assert_eq!(state.precheck(&command), Ok(()), "{command}");
            assert!(
                !matches!(state.clone().apply(6, &command), StoreResponse::Refused(_)),
                "{command}"
            );
        }
        let disabled = state.precheck(&by("mia", disable("cat")));
        assert!(
            matches!(
                &disabled,
                Err(Refusal::OperatorDisabled {
                    disabled_at_index: 5,
                    ..
                })
            ),
            "{disabled:?}"
        );
        assert!(disabled.is_err_and(|r| r.holds_for_good()));
    }

    /// A refusal a later entry can lift does not hold for good: appointing a second admin
    /// lifts "the only admin", adding the operator lifts "unknown operator".
    #[test]
    fn refusals_a_later_entry_lifts_do_not_hold_for_good() {
        let mut state = store();
        let last_admin = state
            .precheck(&by("ada", disable("ada")))
            .expect_err("only admin");
        let unknown = state
            .precheck(&by("mia", disable("eve")))
            .expect_err("unknown");
        assert!(!last_admin.holds_for_good() && !unknown.holds_for_good());
        for (index, (id, role)) in [("ann", Role::Admin), ("eve", Role::Cashier)]
            .into_iter()
            .enumerate()
        {
            state.apply(
                index as u64 + 10,
                &StoreCommand::SetOperator {
                    operator_id: id.into(),
                    name: id.into(),
                    role,
                    pin_hash: HASH.into(),
                },
            );
        }
        assert_eq!(state.precheck(&by("ada", disable("ada"))), Ok(()));
        assert_eq!(state.precheck(&by("mia", disable("eve"))), Ok(()));
    }

    fn gbp() -> posmesh_domain::money::Currency {
        posmesh_domain::money::Currency::from_code("GBP").expect("GBP")
    }

    fn issue(card: &str, amount_minor: i64) -> StoreCommand {
        StoreCommand::IssueGiftCard {
            card_id: card.into(),
            amount_minor,
            currency: gbp(),
        }
    }

    fn redeem(card: &str, amount_minor: i64, redemption: &str) -> StoreCommand {
        StoreCommand::RedeemGiftCard {
            card_id: card.into(),
            amount_minor,
            redemption_id: redemption.into(),
        }
    }

    fn open_shift(shift: &str, device: &str, operator: &str) -> StoreCommand {
        StoreCommand::OpenShift {
            shift_id: shift.into(),
            device_id: device.into(),
            operator_id: operator.into(),
            opening_float_minor: 500,
            currency: gbp(),
            opened_at_ms: 1_000,
        }
    }

    fn close_shift(shift: &str) -> StoreCommand {
        StoreCommand::CloseShift {
            shift_id: shift.into(),
            closed_at_ms: 2_000,
        }
    }

    /// Gift cards and shifts: an unknown card redeemed, a card issued twice, a
    /// redemption beyond the balance or under another redemption's id, a shift of a
    /// disabled or unknown operator, a shift closed twice or never opened are refused by
    /// the pre-check exactly as `apply` refuses them; a retried redemption passes (the
    /// log replays it); what a later entry can lift does not hold for good.
    #[test]
    fn gift_card_and_shift_refusals_are_found_before_proposing() {
        let mut state = store();
        for (index, command) in [
            issue("GC-1", 1_000),
            redeem("GC-1", 300, "r-1"),
            open_shift("sh-1", "till-1", "cat"),
            close_shift("sh-1"),
            open_shift("sh-2", "till-2", "mia"),
            disable("cat"),
        ]
        .iter()
        .enumerate()
        {
            let response = state.apply(index as u64 + 10, command);
            assert!(
                matches!(response, StoreResponse::Applied(_)),
                "{command}: {response:?}"
            );
        }
        let refused = [
            (redeem("GC-404", 100, "r-2"), false),
            (issue("GC-1", 500), true),
            (redeem("GC-1", 800, "r-3"), true),
            (redeem("GC-1", 100, "r-1"), true),
            (redeem("GC-1", 0, "r-4"), true),
            (open_shift("sh-3", "till-3", "cat"), true),
            (open_shift("sh-3", "till-3", "zed"), false),
            (open_shift("sh-1", "till-3", "mia"), true),
            (open_shift("sh-3", "till-2", "mia"), false),
            (close_shift("sh-1"), true),
            (close_shift("sh-404"), false),
        ];
        for (command, for_good) in refused {
            let precheck = state.precheck(&command).expect_err("refused");
            assert_eq!(
                state.clone().apply(30, &command),
                StoreResponse::Refused(precheck.clone()),
                "{command}"
            );
            assert_eq!(precheck.holds_for_good(), for_good, "{command}: {precheck}");
        }
        for command in [
            redeem("GC-1", 300, "r-1"),
            redeem("GC-1", 700, "r-5"),
            issue("GC-2", 100),
            open_shift("sh-3", "till-3", "mia"),
            close_shift("sh-2"),
        ] {
            assert_eq!(state.precheck(&command), Ok(()), "{command}");
            assert!(
                !matches!(state.clone().apply(30, &command), StoreResponse::Refused(_)),
                "{command}"
            );
        }
        // Issuing the card lifts "unknown card": the leader's state settles it.
        state.apply(31, &issue("GC-404", 200));
        assert_eq!(state.precheck(&redeem("GC-404", 100, "r-2")), Ok(()));
    }

    /// A catalog version not above the one in force (or effective before it) is refused
    /// by the pre-check exactly as `apply` refuses it, naming the version in force, for
    /// good (versions only go up); a newer one passes.
    #[test]
    fn a_catalog_version_not_newer_is_found_before_proposing() {
        let mut state = store();
        let set = |version, effective_at_ms| StoreCommand::SetCatalogVersion {
            version,
            effective_at_ms,
        };
        let publish = |version, effective_at_ms| StoreCommand::PublishCatalog {
            version,
            effective_at_ms,
            catalog_toml: String::new(),
        };
        assert!(matches!(
            state.apply(10, &set(3, 1_000)),
            StoreResponse::Applied(_)
        ));
        for command in [
            set(3, 2_000),
            set(2, 1_000),
            publish(3, 1_000),
            publish(4, 999),
        ] {
            let precheck = state.precheck(&command).expect_err("refused");
            assert!(
                matches!(
                    precheck,
                    Refusal::CatalogVersionNotNewer {
                        current_version: 3,
                        current_effective_at_ms: 1_000,
                        ..
                    }
                ),
                "{command}: {precheck:?}"
            );
            assert!(precheck.holds_for_good(), "{precheck}");
            assert_eq!(
                state.clone().apply(11, &command),
                StoreResponse::Refused(precheck),
                "{command}"
            );
        }
        for command in [set(4, 1_000), publish(4, 1_000)] {
            assert_eq!(state.precheck(&command), Ok(()), "{command}");
        }
    }

    /// A retry of a request recorded under its Idempotency-Key passes the pre-check even
    /// when its operator's role no longer allows it, as `apply` replays it: a follower
    /// resending a committed write must not get a refusal.
    #[test]
    fn a_replay_passes_whatever_the_operators_role_is_now() {
        let mut state = store();
        let close = by("mia", keyed("k-close", 'a', close_day("2026-01-02")));
        assert!(matches!(state.apply(4, &close), StoreResponse::Applied(_)));
        state.apply(
            5,
            &StoreCommand::SetOperator {
                operator_id: "mia".into(),
                name: "mia".into(),
                role: Role::Cashier,
                pin_hash: HASH.into(),
            },
        );
        assert_eq!(state.precheck(&close), Ok(()));
        assert!(matches!(
            state.clone().apply(6, &close),
            StoreResponse::Replayed { .. }
        ));
        let other = by("mia", keyed("k-other", 'a', close_day("2026-01-03")));
        assert!(matches!(
            state.precheck(&other),
            Err(Refusal::RoleForbidden { .. })
        ));
    }
}
