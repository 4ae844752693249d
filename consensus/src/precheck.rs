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
    /// and an Idempotency-Key used for another request. Other commands pass (`Ok`): the
    /// state machine decides them when they apply.
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
                self.staff.may_run(authorised_by, command)?;
                self.precheck(command)
            }
            StoreCommand::DisableOperator { operator_id, .. } => {
                self.staff.check_disable(operator_id)
            }
            StoreCommand::CloseDay {
                business_date,
                version_vector,
            } => self.check_close_day(business_date, version_vector),
            StoreCommand::RevokeCertificate { serial } => self.check_revoke_certificate(serial),
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
            _ => Ok(()),
        }
    }
}

impl Refusal {
    /// Whether this refusal, once a state gives it, holds on every later state of the
    /// store: what it rests on is never undone (a day close, a revocation, a disabled
    /// operator's tombstone, a recorded Idempotency-Key) or is the command's own input (a
    /// malformed id, date, amount or hash). A device may answer such a refusal from a
    /// state a moment behind the leader's; others (an unknown operator, the only admin)
    /// a newer entry can lift, so only the leader's state settles them.
    pub fn holds_for_good(&self) -> bool {
        matches!(
            self,
            Refusal::DayAlreadyClosed { .. }
                | Refusal::AlreadyRevoked { .. }
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
            by("ada", StoreCommand::RevokeCertificate { serial: "".into() }),
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
}
