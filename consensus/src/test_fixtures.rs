//! Fixtures shared by the crate's unit tests: a store state with operators set.

use crate::command::StoreCommand;
use crate::staff::Role;
use crate::state::StoreState;

/// A well-formed Argon2id PHC string (the state machine stores PIN hashes, never checks
/// them).
pub(crate) const PIN_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";

/// A state with `operators` (id, role) set in order at log indexes 1, 2, …; each
/// operator's name is its id.
pub(crate) fn state_with_operators(operators: &[(&str, Role)]) -> StoreState {
    let mut state = StoreState::default();
    for (index, (id, role)) in (1u64..).zip(operators) {
        state.apply(
            index,
            &StoreCommand::SetOperator {
                operator_id: (*id).into(),
                name: (*id).into(),
                role: *role,
                pin_hash: PIN_HASH.into(),
            },
        );
        assert!(state.staff.operators.contains_key(*id), "{id} set");
    }
    state
}
