//! The role matrix: which role a store-wide operation needs, checked by the API before it
//! proposes and again by the state machine when a [`StoreCommand::Authorised`] entry
//! applies (so a role changed in between, or a forged forwarded command, cannot slip
//! through).
//!
//! | operation                                          | cashier | supervisor | manager | admin |
//! |----------------------------------------------------|---------|------------|---------|-------|
//! | open / close one's own shift                       | yes     | yes        | yes     | yes   |
//! | open / close another operator's shift              |         | yes        | yes     | yes   |
//! | close the day, tax rates, catalog, gift-card issue |         |            | yes     | yes   |
//! | exposure budget and allotments, device removal     |         |            | yes     | yes   |
//! | disable a cashier or supervisor                    |         |            | yes     | yes   |
//! | disable a manager or admin (never the only admin)  |         |            |         | yes   |
//! | certificate revocation                             |         |            |         | yes   |
//!
//! Operators themselves follow [`Staff::may_set_operator`]. Sales and gift-card
//! redemptions are not in the matrix and are checked against neither operators nor
//! shifts: an Argon2id check per sale would cost tens of milliseconds each, and a sale
//! never waits on Raft (see README, "Roles on store-wide operations").
//!
//! Once an [`StoreCommand::Authorised`] entry has applied, the store enforces roles: a
//! guarded command proposed bare (without its authorising operator) is refused
//! ([`Refusal::OperatorRequired`]). Before that — a store with no operators, in setup, or
//! a log of an older version — bare commands apply as they always did, so replaying an
//! old log gives the same state.

use crate::command::{Refusal, StoreCommand};
use crate::staff::{Role, Staff};

/// What a guarded operation needs: the lowest role allowed and the operation's name (for
/// a person: "close the day").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Needed {
    /// The lowest role allowed.
    pub role: Role,
    /// The operation, in words.
    pub operation: &'static str,
}

/// The role `command` needs when operator `by` asks for it (`by` matters for shifts: one's
/// own or another's), or `None` for a command outside the matrix (sales-path redemptions,
/// operator changes with their own rules, the cloud's catalog publication).
/// [`StoreCommand::Idempotent`] is looked through.
pub fn needed(staff: &Staff, by: Option<&str>, command: &StoreCommand) -> Option<Needed> {
    let need = |role, operation| Some(Needed { role, operation });
    match command {
        StoreCommand::Idempotent { command, .. } => needed(staff, by, command),
        StoreCommand::OpenShift { operator_id, .. } => {
            if by == Some(operator_id.as_str()) {
                need(Role::Cashier, "open one's own shift")
            } else {
                need(Role::Supervisor, "open another operator's shift")
            }
        }
        StoreCommand::CloseShift { shift_id, .. } => {
            let owner = staff.shifts.get(shift_id).map(|s| s.operator_id.as_str());
            if by.is_some() && owner == by {
                need(Role::Cashier, "close one's own shift")
            } else if owner.is_none() && by.is_some() {
                // Unknown shift: refused as such when it applies; nothing to guard.
                need(Role::Cashier, "close one's own shift")
            } else {
                need(Role::Supervisor, "close another operator's shift")
            }
        }
        StoreCommand::CloseDay { .. } => need(Role::Manager, "close the day"),
        StoreCommand::SetTaxRates { .. } => need(Role::Manager, "set tax rates"),
        StoreCommand::SetCatalogVersion { .. } => need(Role::Manager, "set the catalog version"),
        StoreCommand::IssueGiftCard { .. } => need(Role::Manager, "issue a gift card"),
        StoreCommand::SetExposureBudget { .. } => {
            need(Role::Manager, "set the offline card exposure budget")
        }
        StoreCommand::SetExposureAllotment { .. } => need(
            Role::Manager,
            "set a device's offline card exposure allotment",
        ),
        StoreCommand::RetireDevice { .. } => need(Role::Manager, "remove a device"),
        StoreCommand::RevokeCertificate { .. } => need(Role::Admin, "revoke a certificate"),
        StoreCommand::DisableOperator { operator_id, .. } => {
            match staff.operators.get(operator_id).map(|o| o.role) {
                Some(role) if role >= Role::Manager => {
                    need(Role::Admin, "disable a manager or an admin")
                }
                _ => need(Role::Manager, "disable an operator"),
            }
        }
        StoreCommand::RedeemGiftCard { .. }
        | StoreCommand::RecordRaftIncarnation { .. }
        | StoreCommand::AdoptRules { .. }
        | StoreCommand::PublishCatalog { .. }
        | StoreCommand::SetOperator { .. }
        | StoreCommand::SetOperatorAuthorised { .. }
        | StoreCommand::Authorised { .. } => None,
    }
}

impl Staff {
    /// Whether operator `by` may have `command` applied, by the role matrix
    /// ([`needed`]), on this state.
    ///
    /// # Errors
    /// [`Refusal::AuthorisationRequired`] for an unknown operator;
    /// [`Refusal::RoleForbidden`] naming the role needed; [`Refusal::InvalidId`] for a
    /// command the matrix does not cover (an operator change has its own command, a
    /// wrapper cannot wrap itself).
    pub fn may_run(&self, by: &str, command: &StoreCommand) -> Result<(), Refusal> {
        let Some(operator) = self.operators.get(by) else {
            return Err(Refusal::AuthorisationRequired {
                why: format!("the authorising operator {by:?} is not an operator of the store"),
            });
        };
        let Some(needed) = needed(self, Some(by), command) else {
            return Err(Refusal::InvalidId {
                field: "command".into(),
                rule: format!("{command} is not authorised by an operator this way"),
            });
        };
        if operator.role < needed.role {
            return Err(Refusal::RoleForbidden {
                authorised_by: by.to_owned(),
                role: operator.role,
                needed: needed.role,
                operation: needed.operation.to_owned(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::command::{Outcome, Refusal, StoreCommand, StoreResponse};
    use crate::staff::Role;
    use crate::state::StoreState;
    use crate::test_fixtures::state_with_operators;
    use posmesh_domain::money::Currency;
    use std::collections::BTreeMap;

    const HASH: &str = crate::test_fixtures::PIN_HASH;

    fn gbp() -> Currency {
        Currency::from_code("GBP").expect("GBP")
    }

    /// A store with one operator per role: cat (cashier), sam (supervisor), mia (manager),
    /// ada (admin), and a shift of cat's open on till-1.
    fn store() -> StoreState {
        let mut state = state_with_operators(&[
            ("cat", Role::Cashier),
            ("sam", Role::Supervisor),
            ("mia", Role::Manager),
            ("ada", Role::Admin),
        ]);
        state.apply(5, &open("s-cat", "till-1", "cat"));
        assert!(state.staff.open_shift_of("till-1").is_some());
        state
    }

    fn open(shift: &str, device: &str, operator: &str) -> StoreCommand {
        StoreCommand::OpenShift {
            shift_id: shift.into(),
            device_id: device.into(),
            operator_id: operator.into(),
            opening_float_minor: 0,
            currency: gbp(),
            opened_at_ms: 1_000,
        }
    }

    fn by(operator: &str, command: StoreCommand) -> StoreCommand {
        StoreCommand::Authorised {
            authorised_by: operator.into(),
            command: Box::new(command),
        }
    }

    fn close_day(date: &str) -> StoreCommand {
        StoreCommand::CloseDay {
            business_date: date.into(),
            version_vector: BTreeMap::new(),
        }
    }

    /// Applies `command` and says whether it applied; a refusal must change nothing.
    fn applies(state: &mut StoreState, index: u64, command: &StoreCommand) -> Result<(), Refusal> {
        let before = state.clone();
        match state.apply(index, command) {
            StoreResponse::Applied(_) | StoreResponse::Replayed { .. } => Ok(()),
            StoreResponse::Refused(refusal) => {
                assert_eq!(*state, before, "a refusal changes nothing: {command}");
                Err(refusal)
            }
            StoreResponse::None => panic!("no answer to {command}"),
        }
    }

    /// A key's replay answers its first outcome after the operator was disabled (what a
    /// follower's resend after a leader's death relies on); a new key of theirs is refused.
    #[test]
    fn a_replay_under_a_key_answers_its_first_outcome_after_the_operator_is_disabled() {
        let mut state = store();
        let keyed = |key: &str| StoreCommand::Idempotent {
            idempotency_key: key.into(),
            request_hash: "c".repeat(64),
            command: Box::new(close_day("2026-01-02")),
        };
        let first = state.apply(6, &by("mia", keyed("k-close")));
        let StoreResponse::Applied(outcome) = first else {
            panic!("mia closes the day: {first:?}");
        };
        let disabled = state.apply(
            7,
            &by(
                "ada",
                StoreCommand::DisableOperator {
                    operator_id: "mia".into(),
                    disabled_at_ms: 0,
                },
            ),
        );
        assert!(
            matches!(disabled, StoreResponse::Applied(_)),
            "{disabled:?}"
        );
        let before = state.clone();
        assert_eq!(
            state.apply(8, &by("mia", keyed("k-close"))),
            StoreResponse::Replayed {
                applied_at_index: 6,
                outcome
            }
        );
        assert_eq!(state, before, "a replay changes nothing");
        assert!(matches!(
            state.apply(9, &by("mia", keyed("k-other"))),
            StoreResponse::Refused(_)
        ));
    }

    #[test]
    fn the_matrix_by_role() {
        // (operation, lowest role allowed)
        let operations: Vec<(StoreCommand, Role)> = vec![
            (close_day("2026-01-02"), Role::Manager),
            (
                StoreCommand::SetTaxRates {
                    version: 1,
                    effective_at_ms: 0,
                    rates_bps: BTreeMap::from([("std".to_owned(), 2000)]),
                },
                Role::Manager,
            ),
            (
                StoreCommand::IssueGiftCard {
                    card_id: "g1".into(),
                    amount_minor: 500,
                    currency: gbp(),
                },
                Role::Manager,
            ),
            (
                StoreCommand::SetExposureBudget {
                    amount_minor: 10_000,
                    currency: gbp(),
                },
                Role::Manager,
            ),
            (
                StoreCommand::RetireDevice {
                    device_id: "till-9".into(),
                    up_to_seq: None,
                },
                Role::Manager,
            ),
            (
                StoreCommand::SetCatalogVersion {
                    version: 2,
                    effective_at_ms: 0,
                },
                Role::Manager,
            ),
            (
                StoreCommand::RevokeCertificate {
                    serial: "0a".into(),
                    cut: None,
                },
                Role::Admin,
            ),
            (open("s-x", "till-2", "sam"), Role::Supervisor),
            (
                StoreCommand::CloseShift {
                    shift_id: "s-cat".into(),
                    closed_at_ms: 2_000,
                },
                Role::Supervisor,
            ),
        ];
        for (command, lowest) in operations {
            for (operator, role) in [
                ("cat", Role::Cashier),
                ("sam", Role::Supervisor),
                ("mia", Role::Manager),
                ("ada", Role::Admin),
            ] {
                let mut state = store();
                // sam's shift opening and cat's shift close are their owners' own (allowed
                // to a cashier): the owner is the exception of those rows.
                let own_shift = match &command {
                    StoreCommand::OpenShift { operator_id, .. } => operator_id == operator,
                    StoreCommand::CloseShift { .. } => operator == "cat",
                    _ => false,
                };
                let result = applies(&mut state, 10, &by(operator, command.clone()));
                if role >= lowest || own_shift {
                    assert_eq!(result, Ok(()), "{operator} ({role:?}): {command}");
                } else {
                    match result {
                        Err(Refusal::RoleForbidden {
                            needed,
                            authorised_by,
                            ..
                        }) => {
                            assert_eq!(needed, lowest, "{command}");
                            assert_eq!(authorised_by, operator);
                        }
                        other => panic!("{operator} ({role:?}) {command}: {other:?}"),
                    }
                }
            }
        }
    }

    #[test]
    fn a_cashier_opens_and_closes_their_own_shift_only() {
        let mut state = store();
        let close_own = StoreCommand::CloseShift {
            shift_id: "s-cat".into(),
            closed_at_ms: 2_000,
        };
        assert_eq!(
            applies(&mut state, 10, &by("cat", close_own.clone())),
            Ok(())
        );
        assert_eq!(
            applies(&mut state, 11, &by("cat", open("s-2", "till-1", "cat"))),
            Ok(())
        );
        let refusal = applies(&mut state, 12, &by("cat", open("s-3", "till-2", "sam")))
            .expect_err("a cashier opens no shift for another");
        assert!(
            refusal.to_string().contains("supervisor"),
            "names the role needed: {refusal}"
        );
    }

    #[test]
    fn once_roles_are_enforced_a_bare_guarded_command_is_refused() {
        let mut state = store();
        // Setup (and old logs): bare commands apply.
        assert_eq!(applies(&mut state, 10, &close_day("2026-01-01")), Ok(()));
        assert_eq!(state.roles_enforced_from, None);
        // A refused authorised command does not start enforcement.
        assert!(applies(&mut state, 11, &by("cat", close_day("2026-01-02"))).is_err());
        assert_eq!(state.roles_enforced_from, None);
        assert_eq!(
            applies(&mut state, 12, &by("mia", close_day("2026-01-02"))),
            Ok(())
        );
        assert_eq!(state.roles_enforced_from, Some(12));
        let refusal =
            applies(&mut state, 13, &close_day("2026-01-03")).expect_err("a forged bare close");
        assert!(
            matches!(
                &refusal,
                Refusal::OperatorRequired {
                    needed: Role::Manager,
                    ..
                }
            ),
            "{refusal}"
        );
        // Under an Idempotency-Key too; redemptions (the per-sale path) are not guarded.
        let keyed = StoreCommand::Idempotent {
            idempotency_key: "k1".into(),
            request_hash: "0".repeat(64),
            command: Box::new(close_day("2026-01-03")),
        };
        assert!(matches!(
            applies(&mut state, 13, &keyed),
            Err(Refusal::OperatorRequired { .. })
        ));
        assert_eq!(applies(&mut state, 13, &by("ada", keyed.clone())), Ok(()));
        assert!(matches!(
            state.apply(14, &by("ada", keyed)),
            StoreResponse::Replayed { .. }
        ));
        assert!(matches!(
            state.apply(
                15,
                &StoreCommand::RedeemGiftCard {
                    card_id: "none".into(),
                    amount_minor: 1,
                    redemption_id: "r1".into(),
                }
            ),
            StoreResponse::Refused(Refusal::UnknownGiftCard { .. })
        ));
    }

    #[test]
    fn unknown_operators_and_odd_wrappers_are_refused() {
        let mut state = store();
        assert!(matches!(
            applies(&mut state, 10, &by("zed", close_day("2026-01-02"))),
            Err(Refusal::AuthorisationRequired { .. })
        ));
        assert!(matches!(
            applies(
                &mut state,
                10,
                &by("ada", by("ada", close_day("2026-01-02")))
            ),
            Err(Refusal::InvalidId { .. })
        ));
        assert!(matches!(
            applies(
                &mut state,
                10,
                &by(
                    "ada",
                    StoreCommand::SetOperator {
                        operator_id: "eve".into(),
                        name: "Eve".into(),
                        role: Role::Admin,
                        pin_hash: HASH.into(),
                    }
                )
            ),
            Err(Refusal::InvalidId { .. })
        ));
        assert!(matches!(
            state.apply(11, &by("mia", close_day("2026-01-02"))),
            StoreResponse::Applied(Outcome::DayClosed { .. })
        ));
    }
}

#[cfg(test)]
mod disable_tests {
    use crate::command::{Outcome, Refusal, StoreCommand, StoreResponse};
    use crate::staff::Role;
    use crate::state::StoreState;

    const HASH: &str = crate::test_fixtures::PIN_HASH;

    fn by(operator: &str, id: &str) -> StoreCommand {
        StoreCommand::Authorised {
            authorised_by: operator.into(),
            command: Box::new(StoreCommand::DisableOperator {
                operator_id: id.into(),
                disabled_at_ms: 5_000,
            }),
        }
    }

    fn refused(state: &mut StoreState, command: &StoreCommand) -> Refusal {
        let before = state.clone();
        match state.apply(20, command) {
            StoreResponse::Refused(refusal) => {
                assert_eq!(*state, before, "a refusal changes nothing");
                refusal
            }
            other => panic!("{command}: {other:?}"),
        }
    }

    #[test]
    fn managers_disable_cashiers_admins_disable_managers_never_the_last_admin() {
        let mut state = StoreState::default();
        for (index, (id, role)) in [
            ("cat", Role::Cashier),
            ("cal", Role::Cashier),
            ("mia", Role::Manager),
            ("max", Role::Manager),
            ("ada", Role::Admin),
        ]
        .into_iter()
        .enumerate()
        {
            state.apply(
                index as u64 + 1,
                &StoreCommand::SetOperator {
                    operator_id: id.into(),
                    name: id.into(),
                    role,
                    pin_hash: HASH.into(),
                },
            );
        }
        assert!(matches!(
            refused(&mut state, &by("cat", "cal")),
            Refusal::RoleForbidden {
                needed: Role::Manager,
                ..
            }
        ));
        assert!(matches!(
            refused(&mut state, &by("mia", "max")),
            Refusal::RoleForbidden {
                needed: Role::Admin,
                ..
            }
        ));
        assert!(matches!(
            refused(&mut state, &by("ada", "ada")),
            Refusal::LastAdmin { .. }
        ));
        assert!(matches!(
            refused(&mut state, &by("mia", "nobody")),
            Refusal::UnknownOperator { .. }
        ));
        assert!(matches!(
            state.apply(21, &by("mia", "cal")),
            StoreResponse::Applied(Outcome::OperatorDisabled { .. })
        ));
        assert!(matches!(
            state.apply(22, &by("ada", "max")),
            StoreResponse::Applied(Outcome::OperatorDisabled { .. })
        ));
        assert!(!state.staff.operators.contains_key("cal"));
        // A disabled operator authorises nothing any more.
        assert!(matches!(
            refused(&mut state, &by("max", "cat")),
            Refusal::AuthorisationRequired { .. }
        ));
        // Bare, once roles are enforced: refused.
        assert!(matches!(
            refused(
                &mut state,
                &StoreCommand::DisableOperator {
                    operator_id: "cat".into(),
                    disabled_at_ms: 5_000,
                }
            ),
            Refusal::OperatorRequired { .. }
        ));
    }
}
