//! Operators (who may do what at the tills) and shifts in the replicated state.
//!
//! An operator has a role — cashier, supervisor, manager or admin, in increasing authority
//! — and a PIN stored only as an Argon2id hash in the PHC string format (RFC 9106; PHC
//! string format spec): the node hashes a PIN before the command enters the log, so no
//! clear PIN is ever in the log, a snapshot or a replica. A shift is opened on one device
//! by one operator with an opening float (cash in the drawer, minor units) and closed once.

use crate::command::{Outcome, Refusal};
use crate::state::check_id;
use posmesh_domain::money::Currency;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Longest accepted PIN hash (PHC string), bytes.
pub const PIN_HASH_BYTES_MAX: usize = 256;
/// Longest operator display name, bytes.
pub const NAME_BYTES_MAX: usize = 128;

/// What an operator may do, in increasing authority: each role may do what the roles
/// before it may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Sells, takes payments.
    Cashier,
    /// Also voids and refunds, overrides prices.
    Supervisor,
    /// Also closes shifts and days, removes devices, manages operators.
    Manager,
    /// Also configures the store (tax, exposure budget) and recovers it.
    Admin,
}

impl Role {
    /// The role's name as in the API and the provisioning file.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Cashier => "cashier",
            Role::Supervisor => "supervisor",
            Role::Manager => "manager",
            Role::Admin => "admin",
        }
    }

    /// The role's name after its indefinite article, for sentences: "a cashier", "an
    /// admin".
    pub fn with_article(self) -> &'static str {
        match self {
            Role::Cashier => "a cashier",
            Role::Supervisor => "a supervisor",
            Role::Manager => "a manager",
            Role::Admin => "an admin",
        }
    }
}

/// An operator of the store's tills.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operator {
    /// Display name (printed on receipts).
    pub name: String,
    /// The role.
    pub role: Role,
    /// Argon2id hash of the PIN, PHC string (`$argon2id$v=19$…`).
    pub pin_hash: String,
    /// Log index of the last change.
    pub set_at_index: u64,
}

/// A shift of one operator on one device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shift {
    /// The device.
    pub device_id: String,
    /// The operator.
    pub operator_id: String,
    /// Cash in the drawer at the opening, minor units of `currency`; ≥ 0.
    pub opening_float_minor: i64,
    /// Currency of the float.
    pub currency: Currency,
    /// When it opened, ms since the Unix epoch (the opening device's clock).
    pub opened_at_ms: i64,
    /// Log index of the opening.
    pub opened_at_index: u64,
    /// When it closed (ms) and the log index of the close; `None` while open.
    pub closed: Option<(i64, u64)>,
    /// Why it closed, when not by a `CloseShift` of its own (`None`: open, or closed by
    /// `CloseShift`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_because: Option<ShiftCloseReason>,
}

/// Why a shift closed other than by its own `CloseShift`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShiftCloseReason {
    /// Its operator was disabled (`DisableOperator`), which closes their open shifts in
    /// the same entry.
    OperatorDisabled,
}

/// Operators and shifts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Staff {
    /// Operators by operator id.
    pub operators: BTreeMap<String, Operator>,
    /// Shifts by shift id.
    pub shifts: BTreeMap<String, Shift>,
    /// Tombstones: operator ids disabled for good, each with the log index of its
    /// disable. A disabled id is never set again nor given a shift
    /// ([`Refusal::OperatorDisabled`]). Sorted (B-tree), so a state's bytes are
    /// deterministic; carried by snapshots with the rest of the state.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub disabled: BTreeMap<String, u64>,
}

impl Staff {
    /// The open shift of `device_id`, if any: `(shift id, shift)`.
    pub fn open_shift_of(&self, device_id: &str) -> Option<(&String, &Shift)> {
        self.shifts
            .iter()
            .find(|(_, s)| s.device_id == device_id && s.closed.is_none())
    }

    /// Refuses an operator id that was disabled for good.
    ///
    /// # Errors
    /// [`Refusal::OperatorDisabled`] with the index of the disable.
    pub fn check_not_disabled(&self, operator_id: &str) -> Result<(), Refusal> {
        match self.disabled.get(operator_id) {
            Some(index) => Err(Refusal::OperatorDisabled {
                operator_id: operator_id.to_owned(),
                disabled_at_index: *index,
            }),
            None => Ok(()),
        }
    }

    /// Applies `SetOperator` (adds, or replaces name, role and PIN hash).
    pub(crate) fn set_operator(
        &mut self,
        index: u64,
        operator_id: &str,
        name: &str,
        role: Role,
        pin_hash: &str,
    ) -> Result<Outcome, Refusal> {
        check_id("operator_id", operator_id)?;
        self.check_not_disabled(operator_id)?;
        if name.trim().is_empty()
            || name.len() > NAME_BYTES_MAX
            || name.chars().any(char::is_control)
        {
            return Err(Refusal::InvalidId {
                field: "name".into(),
                rule: format!(
                    "must be 1–{NAME_BYTES_MAX} bytes of printable text, not only spaces"
                ),
            });
        }
        if !pin_hash.starts_with("$argon2id$") || pin_hash.len() > PIN_HASH_BYTES_MAX {
            return Err(Refusal::InvalidPinHash {
                rule: format!(
                    "an Argon2id PHC string (`$argon2id$…`) of at most {PIN_HASH_BYTES_MAX} bytes, never a clear PIN"
                ),
            });
        }
        self.operators.insert(
            operator_id.to_owned(),
            Operator {
                name: name.to_owned(),
                role,
                pin_hash: pin_hash.to_owned(),
                set_at_index: index,
            },
        );
        Ok(Outcome::OperatorSet {
            operator_id: operator_id.to_owned(),
            role,
            set_at_index: index,
        })
    }

    /// Whether the operator `authorised_by` may set `operator_id` to `role`, by the role
    /// rules (checked by the API before it proposes, and again by the state machine when
    /// the change applies):
    /// - `None` (no authorising operator): only while the store has no operator, and only
    ///   for an admin — the first operator bootstraps the store once; anyone else would
    ///   leave nobody able to appoint managers or admins.
    /// - An operator may change their own name and PIN, keeping their role.
    /// - Managers and admins manage cashiers and supervisors; only an admin creates or
    ///   changes a manager or an admin (also demoting one); nobody gives a role above
    ///   their own.
    /// - The store keeps at least one admin: the only admin's role cannot be changed (not
    ///   even by themselves) until another admin is appointed.
    ///
    /// # Errors
    /// [`Refusal::AuthorisationRequired`] without an authorising operator once the store
    /// has operators, or for an unknown one; [`Refusal::RoleInsufficient`] when the role
    /// rules forbid the change; [`Refusal::LastAdmin`] for a change of the only admin's
    /// role that the role rules allow.
    pub fn may_set_operator(
        &self,
        authorised_by: Option<&str>,
        operator_id: &str,
        role: Role,
    ) -> Result<(), Refusal> {
        let insufficient = |rule: String| Refusal::RoleInsufficient {
            authorised_by: authorised_by.map(str::to_owned),
            rule,
        };
        let Some(by) = authorised_by else {
            if !self.operators.is_empty() {
                return Err(Refusal::AuthorisationRequired {
                    why: "the store has operators: a change to them needs an authorising operator's id and PIN (only the first operator is set without)".into(),
                });
            }
            if role != Role::Admin {
                return Err(insufficient(format!(
                    "the store's first operator must be an admin, not {}: only an admin can appoint managers and admins",
                    role.with_article()
                )));
            }
            return Ok(());
        };
        let Some(authoriser) = self.operators.get(by) else {
            return Err(Refusal::AuthorisationRequired {
                why: format!("the authorising operator {by:?} is not an operator of the store"),
            });
        };
        let current = self.operators.get(operator_id).map(|o| o.role);
        if by == operator_id && current == Some(role) {
            return Ok(()); // one's own name or PIN, same role
        }
        if authoriser.role < Role::Manager {
            return Err(insufficient(format!(
                "{by:?} is {}: only a manager or admin manages operators",
                authoriser.role.with_article()
            )));
        }
        if role > authoriser.role {
            return Err(insufficient(format!(
                "{by:?} is {} and cannot make anyone {}",
                authoriser.role.with_article(),
                role.with_article()
            )));
        }
        let touches_management =
            role >= Role::Manager || current.is_some_and(|r| r >= Role::Manager);
        if touches_management && authoriser.role != Role::Admin {
            return Err(insufficient(format!(
                "{by:?} is {}: only an admin creates or changes a manager or an admin ({operator_id:?} {})",
                authoriser.role.with_article(),
                match current {
                    Some(r) => format!("is {}", r.with_article()),
                    None => format!("would be {}", role.with_article()),
                }
            )));
        }
        let admins = self
            .operators
            .values()
            .filter(|o| o.role == Role::Admin)
            .count();
        if current == Some(Role::Admin) && role != Role::Admin && admins == 1 {
            return Err(Refusal::LastAdmin {
                operator_id: operator_id.to_owned(),
            });
        }
        Ok(())
    }

    /// Whether `operator_id` may be disabled on this state (what [`Staff::disable_operator`]
    /// checks before it changes anything; the API asks it before proposing).
    ///
    /// # Errors
    /// [`Refusal::OperatorDisabled`] for an id disabled already;
    /// [`Refusal::UnknownOperator`]; [`Refusal::LastAdmin`] for the store's only admin.
    pub fn check_disable(&self, operator_id: &str) -> Result<(), Refusal> {
        self.check_not_disabled(operator_id)?;
        let Some(operator) = self.operators.get(operator_id) else {
            return Err(Refusal::UnknownOperator {
                operator_id: operator_id.to_owned(),
            });
        };
        let admins = self
            .operators
            .values()
            .filter(|o| o.role == Role::Admin)
            .count();
        if operator.role == Role::Admin && admins == 1 {
            return Err(Refusal::LastAdmin {
                operator_id: operator_id.to_owned(),
            });
        }
        Ok(())
    }

    /// Applies `DisableOperator` (the role rules are checked by the enclosing
    /// `Authorised`, see [`crate::roles`]): removes the operator, keeps a tombstone of
    /// the id, and closes their open shifts at `disabled_at_ms` (or at a shift's opening
    /// time, if later by the other device's clock) marked
    /// [`ShiftCloseReason::OperatorDisabled`].
    ///
    /// # Errors
    /// Those of [`Staff::check_disable`]; nothing changes then.
    pub(crate) fn disable_operator(
        &mut self,
        index: u64,
        operator_id: &str,
        disabled_at_ms: i64,
    ) -> Result<Outcome, Refusal> {
        self.check_disable(operator_id)?;
        self.operators.remove(operator_id);
        self.disabled.insert(operator_id.to_owned(), index);
        let mut shifts_closed = Vec::new();
        for (shift_id, shift) in &mut self.shifts {
            if shift.operator_id == operator_id && shift.closed.is_none() {
                shift.closed = Some((disabled_at_ms.max(shift.opened_at_ms), index));
                shift.closed_because = Some(ShiftCloseReason::OperatorDisabled);
                shifts_closed.push(shift_id.clone());
            }
        }
        Ok(Outcome::OperatorDisabled {
            operator_id: operator_id.to_owned(),
            disabled_at_index: index,
            shifts_closed,
        })
    }

    /// What `OpenShift` checks before it changes anything: valid ids, a float ≥ 0, an
    /// operator not disabled and known, a shift id never used, no open shift on the
    /// device.
    pub(crate) fn check_open_shift(
        &self,
        shift_id: &str,
        device_id: &str,
        operator_id: &str,
        opening_float_minor: i64,
    ) -> Result<(), Refusal> {
        check_id("shift_id", shift_id)?;
        check_id("device_id", device_id)?;
        check_id("operator_id", operator_id)?;
        if opening_float_minor < 0 {
            return Err(Refusal::InvalidAmount {
                amount_minor: opening_float_minor,
                rule: "an opening float must be ≥ 0".into(),
            });
        }
        self.check_not_disabled(operator_id)?;
        if !self.operators.contains_key(operator_id) {
            return Err(Refusal::UnknownOperator {
                operator_id: operator_id.to_owned(),
            });
        }
        if self.shifts.contains_key(shift_id) {
            return Err(Refusal::ShiftExists {
                shift_id: shift_id.to_owned(),
            });
        }
        if let Some((open, _)) = self.open_shift_of(device_id) {
            return Err(Refusal::ShiftAlreadyOpen {
                device_id: device_id.to_owned(),
                shift_id: open.clone(),
            });
        }
        Ok(())
    }

    /// What `CloseShift` checks before it changes anything: a valid id, a known shift not
    /// closed yet, a closing time not before its opening.
    pub(crate) fn check_close_shift(
        &self,
        shift_id: &str,
        closed_at_ms: i64,
    ) -> Result<(), Refusal> {
        check_id("shift_id", shift_id)?;
        let Some(shift) = self.shifts.get(shift_id) else {
            return Err(Refusal::UnknownShift {
                shift_id: shift_id.to_owned(),
            });
        };
        if let Some((_, closed_at_index)) = shift.closed {
            return Err(Refusal::ShiftAlreadyClosed {
                shift_id: shift_id.to_owned(),
                closed_at_index,
            });
        }
        if closed_at_ms < shift.opened_at_ms {
            return Err(Refusal::InvalidTime {
                rule: format!(
                    "a shift cannot close ({closed_at_ms} ms) before it opened ({} ms)",
                    shift.opened_at_ms
                ),
            });
        }
        Ok(())
    }

    /// Applies `OpenShift`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn open_shift(
        &mut self,
        index: u64,
        shift_id: &str,
        device_id: &str,
        operator_id: &str,
        opening_float_minor: i64,
        currency: Currency,
        opened_at_ms: i64,
    ) -> Result<Outcome, Refusal> {
        self.check_open_shift(shift_id, device_id, operator_id, opening_float_minor)?;
        self.shifts.insert(
            shift_id.to_owned(),
            Shift {
                device_id: device_id.to_owned(),
                operator_id: operator_id.to_owned(),
                opening_float_minor,
                currency,
                opened_at_ms,
                opened_at_index: index,
                closed: None,
                closed_because: None,
            },
        );
        Ok(Outcome::ShiftOpened {
            shift_id: shift_id.to_owned(),
            opened_at_index: index,
        })
    }

    /// Applies `CloseShift`.
    pub(crate) fn close_shift(
        &mut self,
        index: u64,
        shift_id: &str,
        closed_at_ms: i64,
    ) -> Result<Outcome, Refusal> {
        self.check_close_shift(shift_id, closed_at_ms)?;
        let Some(shift) = self.shifts.get_mut(shift_id) else {
            return Err(Refusal::UnknownShift {
                shift_id: shift_id.to_owned(),
            });
        };
        shift.closed = Some((closed_at_ms, index));
        Ok(Outcome::ShiftClosed {
            shift_id: shift_id.to_owned(),
            closed_at_index: index,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Role;
    use crate::command::{Outcome, Refusal, StoreCommand, StoreResponse};
    use crate::state::StoreState;
    use posmesh_domain::money::Currency;

    const HASH: &str = crate::test_fixtures::PIN_HASH;

    fn gbp() -> Currency {
        Currency::from_code("GBP").expect("GBP")
    }

    fn operator(id: &str, role: Role, pin_hash: &str) -> StoreCommand {
        StoreCommand::SetOperator {
            operator_id: id.into(),
            name: "Alice".into(),
            role,
            pin_hash: pin_hash.into(),
        }
    }

    fn open(shift: &str, device: &str, operator: &str, float: i64) -> StoreCommand {
        StoreCommand::OpenShift {
            shift_id: shift.into(),
            device_id: device.into(),
            operator_id: operator.into(),
            opening_float_minor: float,
            currency: gbp(),
            opened_at_ms: 1_000,
        }
    }

    fn refused(state: &mut StoreState, index: u64, command: &StoreCommand) -> Refusal {
        let before = state.clone();
        match state.apply(index, command) {
            StoreResponse::Refused(refusal) => {
                assert_eq!(*state, before, "a refusal changes nothing");
                refusal
            }
            other => panic!("{command:?} not refused: {other:?}"),
        }
    }

    fn authorised(by: Option<&str>, id: &str, role: Role) -> StoreCommand {
        StoreCommand::SetOperatorAuthorised {
            authorised_by: by.map(str::to_owned),
            operator_id: id.into(),
            name: id.into(),
            role,
            pin_hash: HASH.into(),
        }
    }

    fn applied(state: &mut StoreState, index: u64, command: &StoreCommand) {
        let answer = state.apply(index, command);
        assert!(
            matches!(answer, StoreResponse::Applied(Outcome::OperatorSet { .. })),
            "{command}: {answer:?}"
        );
    }

    #[test]
    fn the_first_operator_is_an_admin_set_once_without_authorisation() {
        let mut state = StoreState::default();
        assert!(matches!(
            refused(&mut state, 1, &authorised(None, "mia", Role::Manager)),
            Refusal::RoleInsufficient {
                authorised_by: None,
                ..
            }
        ));
        applied(&mut state, 2, &authorised(None, "ada", Role::Admin));
        for role in [Role::Cashier, Role::Admin] {
            assert!(matches!(
                refused(&mut state, 3, &authorised(None, "eve", role)),
                Refusal::AuthorisationRequired { .. }
            ));
        }
        // Nor to change the first one again.
        assert!(matches!(
            refused(&mut state, 3, &authorised(None, "ada", Role::Admin)),
            Refusal::AuthorisationRequired { .. }
        ));
        assert!(matches!(
            refused(
                &mut state,
                3,
                &authorised(Some("zed"), "eve", Role::Cashier)
            ),
            Refusal::AuthorisationRequired { .. }
        ));
    }

    #[test]
    fn roles_decide_who_manages_whom() {
        let mut state = StoreState::default();
        applied(&mut state, 1, &authorised(None, "ada", Role::Admin));
        applied(
            &mut state,
            2,
            &authorised(Some("ada"), "mia", Role::Manager),
        );
        applied(
            &mut state,
            3,
            &authorised(Some("mia"), "bob", Role::Cashier),
        );
        applied(
            &mut state,
            4,
            &authorised(Some("mia"), "sue", Role::Supervisor),
        );
        applied(
            &mut state,
            5,
            &authorised(Some("mia"), "bob", Role::Supervisor),
        );
        applied(&mut state, 6, &authorised(Some("ada"), "ann", Role::Admin));
        // One's own PIN and name, same role: anyone.
        applied(
            &mut state,
            7,
            &authorised(Some("bob"), "bob", Role::Supervisor),
        );
        applied(
            &mut state,
            8,
            &authorised(Some("mia"), "mia", Role::Manager),
        );
        let cases = [
            (Some("bob"), "bob", Role::Manager, "only a manager or admin"),
            (Some("bob"), "eve", Role::Cashier, "only a manager or admin"),
            (Some("sue"), "bob", Role::Cashier, "only a manager or admin"),
            (
                Some("mia"),
                "mia",
                Role::Admin,
                "cannot make anyone an admin",
            ),
            (Some("mia"), "eve", Role::Manager, "only an admin"),
            (Some("mia"), "ada", Role::Cashier, "only an admin"),
            (Some("mia"), "ann", Role::Manager, "only an admin"),
        ];
        for (by, id, role, why) in cases {
            let refusal = refused(&mut state, 9, &authorised(by, id, role));
            assert!(
                matches!(&refusal, Refusal::RoleInsufficient { rule, .. } if rule.contains(why)),
                "{by:?} sets {id} {role:?}: {refusal}"
            );
        }
        // An admin may demote a manager.
        applied(
            &mut state,
            9,
            &authorised(Some("ada"), "mia", Role::Cashier),
        );
        assert_eq!(state.staff.operators["mia"].role, Role::Cashier);
        // ...whose authority is the one at the entry: mia can no longer add anyone.
        assert!(matches!(
            refused(
                &mut state,
                10,
                &authorised(Some("mia"), "eve", Role::Cashier)
            ),
            Refusal::RoleInsufficient { .. }
        ));
    }

    #[test]
    fn the_only_admin_keeps_the_role_until_another_is_appointed() {
        let mut state = StoreState::default();
        applied(&mut state, 1, &authorised(None, "ada", Role::Admin));
        for role in [Role::Manager, Role::Cashier] {
            let refusal = refused(&mut state, 2, &authorised(Some("ada"), "ada", role));
            assert!(
                matches!(&refusal, Refusal::LastAdmin { operator_id } if operator_id == "ada"),
                "{refusal}"
            );
            assert!(refusal.to_string().contains("appoint another admin first"));
        }
        assert_eq!(state.staff.operators["ada"].role, Role::Admin, "unchanged");
        // Keeping the role (a new PIN) is fine.
        applied(&mut state, 2, &authorised(Some("ada"), "ada", Role::Admin));
        // With a second admin, either may be demoted — but not then the other.
        applied(&mut state, 3, &authorised(Some("ada"), "ann", Role::Admin));
        applied(
            &mut state,
            4,
            &authorised(Some("ann"), "ada", Role::Manager),
        );
        assert_eq!(state.staff.operators["ada"].role, Role::Manager);
        assert!(matches!(
            refused(
                &mut state,
                5,
                &authorised(Some("ann"), "ann", Role::Cashier)
            ),
            Refusal::LastAdmin { .. }
        ));
    }

    #[test]
    fn operators_need_an_argon2id_hash_never_a_clear_pin() {
        let mut state = StoreState::default();
        assert!(matches!(
            refused(&mut state, 1, &operator("alice", Role::Manager, "2468")),
            Refusal::InvalidPinHash { .. }
        ));
        assert!(matches!(
            refused(&mut state, 1, &operator("", Role::Manager, HASH)),
            Refusal::InvalidId { .. }
        ));
        assert_eq!(
            state.apply(2, &operator("alice", Role::Cashier, HASH)),
            StoreResponse::Applied(Outcome::OperatorSet {
                operator_id: "alice".into(),
                role: Role::Cashier,
                set_at_index: 2,
            })
        );
        state.apply(3, &operator("alice", Role::Manager, HASH));
        assert_eq!(state.staff.operators["alice"].role, Role::Manager);
        assert!(Role::Cashier < Role::Supervisor && Role::Manager < Role::Admin);
    }

    /// A disabled id is a tombstone: never set again (by provisioning or by an admin),
    /// never given a shift, never disabled twice; it survives a snapshot's serde round
    /// trip, in sorted order.
    #[test]
    fn a_disabled_operator_id_is_never_set_again() {
        let mut state = StoreState::default();
        for (index, id) in ["zoe", "bob", "ada"].into_iter().enumerate() {
            let role = if id == "ada" {
                Role::Admin
            } else {
                Role::Cashier
            };
            state.apply(index as u64 + 1, &operator(id, role, HASH));
        }
        let disable = |id: &str| StoreCommand::DisableOperator {
            operator_id: id.into(),
            disabled_at_ms: 5_000,
        };
        for (index, id) in [(4, "zoe"), (5, "bob")] {
            assert!(matches!(
                state.apply(index, &disable(id)),
                StoreResponse::Applied(Outcome::OperatorDisabled { .. })
            ));
        }
        let gone = |index| Refusal::OperatorDisabled {
            operator_id: "bob".into(),
            disabled_at_index: index,
        };
        assert_eq!(
            refused(&mut state, 6, &operator("bob", Role::Cashier, HASH)),
            gone(5)
        );
        assert_eq!(
            refused(
                &mut state,
                6,
                &authorised(Some("ada"), "bob", Role::Cashier)
            ),
            gone(5)
        );
        assert_eq!(refused(&mut state, 6, &disable("bob")), gone(5));
        assert_eq!(
            refused(&mut state, 6, &open("s1", "till-1", "bob", 0)),
            gone(5)
        );
        assert!(!state.staff.operators.contains_key("bob"));
        let text = serde_json::to_string(&state).expect("json");
        let bob = text.find("\"bob\":5").expect("bob's tombstone");
        let zoe = text.find("\"zoe\":4").expect("zoe's tombstone");
        assert!(bob < zoe, "sorted by id: {text}");
        let back: StoreState = serde_json::from_str(&text).expect("decodes");
        assert_eq!(back, state);
        // A state from before tombstones decodes with none (and a state without any
        // serialises as it did).
        let plain = serde_json::to_string(&StoreState::default()).expect("json");
        assert!(!plain.contains("disabled"), "{plain}");
    }

    /// Disabling an operator closes their open shifts in the same entry, marked why, at
    /// the disable's time (or the opening's, if later by the other device's clock); their
    /// closed shifts and other operators' shifts are untouched.
    #[test]
    fn disabling_an_operator_closes_their_open_shifts() {
        let mut state = StoreState::default();
        state.apply(1, &operator("ada", Role::Admin, HASH));
        state.apply(2, &operator("cat", Role::Cashier, HASH));
        state.apply(3, &operator("cal", Role::Cashier, HASH));
        state.apply(4, &open("s-old", "till-1", "cat", 0));
        state.apply(
            5,
            &StoreCommand::CloseShift {
                shift_id: "s-old".into(),
                closed_at_ms: 1_500,
            },
        );
        state.apply(6, &open("s-1", "till-1", "cat", 0));
        let mut late = open("s-2", "till-2", "cat", 0);
        if let StoreCommand::OpenShift { opened_at_ms, .. } = &mut late {
            *opened_at_ms = 9_000;
        }
        state.apply(7, &late);
        state.apply(8, &open("s-3", "till-3", "cal", 0));
        assert_eq!(
            state.apply(
                9,
                &StoreCommand::DisableOperator {
                    operator_id: "cat".into(),
                    disabled_at_ms: 5_000,
                }
            ),
            StoreResponse::Applied(Outcome::OperatorDisabled {
                operator_id: "cat".into(),
                disabled_at_index: 9,
                shifts_closed: vec!["s-1".into(), "s-2".into()],
            })
        );
        let shifts = &state.staff.shifts;
        assert_eq!(shifts["s-old"].closed, Some((1_500, 5)));
        assert_eq!(shifts["s-old"].closed_because, None);
        assert_eq!(shifts["s-1"].closed, Some((5_000, 9)));
        assert_eq!(
            shifts["s-2"].closed,
            Some((9_000, 9)),
            "not before it opened"
        );
        for id in ["s-1", "s-2"] {
            assert_eq!(
                shifts[id].closed_because,
                Some(super::ShiftCloseReason::OperatorDisabled)
            );
        }
        assert_eq!(shifts["s-3"].closed, None, "cal's shift stays open");
        assert!(state.staff.open_shift_of("till-1").is_none());
        let text = serde_json::to_string(&shifts["s-1"]).expect("json");
        assert!(
            text.contains("\"closed_because\":\"operator_disabled\""),
            "{text}"
        );
        // The till can open a shift for someone else at once.
        assert!(matches!(
            state.apply(10, &open("s-4", "till-1", "cal", 0)),
            StoreResponse::Applied(_)
        ));
    }

    #[test]
    fn one_open_shift_per_device_closed_once() {
        let mut state = StoreState::default();
        assert_eq!(
            refused(&mut state, 1, &open("s1", "till-1", "bob", 5000)),
            Refusal::UnknownOperator {
                operator_id: "bob".into()
            }
        );
        state.apply(2, &operator("bob", Role::Cashier, HASH));
        assert!(matches!(
            refused(&mut state, 3, &open("s1", "till-1", "bob", -1)),
            Refusal::InvalidAmount { .. }
        ));
        assert!(matches!(
            state.apply(4, &open("s1", "till-1", "bob", 5000)),
            StoreResponse::Applied(Outcome::ShiftOpened { .. })
        ));
        assert_eq!(
            refused(&mut state, 5, &open("s2", "till-1", "bob", 0)),
            Refusal::ShiftAlreadyOpen {
                device_id: "till-1".into(),
                shift_id: "s1".into()
            }
        );
        assert!(matches!(
            refused(&mut state, 5, &open("s1", "till-2", "bob", 0)),
            Refusal::ShiftExists { .. }
        ));
        let close = |at| StoreCommand::CloseShift {
            shift_id: "s1".into(),
            closed_at_ms: at,
        };
        assert!(matches!(
            refused(&mut state, 6, &close(999)),
            Refusal::InvalidTime { .. }
        ));
        assert!(matches!(
            state.apply(7, &close(2_000)),
            StoreResponse::Applied(Outcome::ShiftClosed {
                closed_at_index: 7,
                ..
            })
        ));
        assert_eq!(
            refused(&mut state, 8, &close(3_000)),
            Refusal::ShiftAlreadyClosed {
                shift_id: "s1".into(),
                closed_at_index: 7
            }
        );
        assert!(state.staff.open_shift_of("till-1").is_none());
        assert!(matches!(
            state.apply(9, &open("s2", "till-1", "bob", 0)),
            StoreResponse::Applied(_)
        ));
        assert!(matches!(
            refused(
                &mut state,
                10,
                &StoreCommand::CloseShift {
                    shift_id: "nope".into(),
                    closed_at_ms: 0
                }
            ),
            Refusal::UnknownShift { .. }
        ));
    }
}
