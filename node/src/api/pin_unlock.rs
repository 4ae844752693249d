//! PIN checks under this device's lockout ([`crate::pin_lockout`]) and a manager's unlock:
//! - [`check_pin`]: refuses a locked-out operator (429 `pin_locked`), checks the PIN
//!   against its Argon2id hash, stores the new wrong-PIN count (synced) and answers 401
//!   `pin_mismatch` for a wrong PIN. Used by `verify-pin` and by [`authenticate`].
//! - [`authenticate`]: an operator who acts on others (the manager of an unlock, the
//!   authorising operator of a change to the operators, see [`super::operator_auth`]),
//!   by id and PIN: an unknown id is answered exactly as a wrong PIN, so nobody learns
//!   which ids exist or what their roles are before giving a right PIN.
//! - `POST /v1/operators/{id}/unlock`: a manager or admin, identified by id and PIN as the
//!   authorising operator of every guarded command (`X-Operator-Id` / `X-Operator-Pin`),
//!   lifts an operator's lockout on this device (`posmesh operator unlock --as`). The PIN is needed
//!   so that whoever is locked out at a till cannot lift it alone; a wrong manager PIN
//!   counts against the manager's own lockout. The PIN is checked first, then the
//!   manager's role, then the operator to unlock.

use super::error::{ApiError, ErrorBody};
use crate::runtime::NodeContext;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use posmesh_consensus::staff::{Operator, Role};
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;

/// `POST /v1/operators/{id}/unlock` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnlockView {
    /// The operator unlocked.
    pub operator_id: String,
    /// Whether the operator was locked out (else only a count of wrong PINs, if any, was
    /// cleared).
    pub was_locked: bool,
    /// Wrong PINs in a row forgotten.
    pub failures_cleared: u32,
    /// The manager (or admin) who unlocked.
    pub unlocked_by: String,
}

/// The operator `operator_id` of the store, or 404 `code` naming `field`.
pub(super) fn operator(
    node: &NodeContext,
    operator_id: &str,
    code: &'static str,
    field: Option<&str>,
) -> Result<Operator, ApiError> {
    let raft = node
        .raft
        .as_ref()
        .ok_or_else(super::gift_cards::no_consensus)?;
    raft.read(|state| state.staff.operators.get(operator_id).cloned())
        .ok_or_else(|| ApiError::not_found(code, format!("no operator {operator_id:?}"), field))
}

/// Checks `pin` against `operator`'s hash under this device's lockout; the error names
/// `field` (429 `pin_locked`, 401 `pin_mismatch`, 500 `storage` if the count cannot be
/// stored).
pub(super) async fn check_pin(
    node: &Arc<NodeContext>,
    operator_id: &str,
    operator: &Operator,
    pin: String,
    field: &'static str,
) -> Result<(), ApiError> {
    let _turn = node.pin_lockout.one_check_at_a_time().await;
    let now_ms = crate::clock::wall_clock_ms();
    node.pin_lockout
        .check(operator_id, now_ms)
        .map_err(|secs| pin_locked(operator_id, secs, field))?;
    let hash = operator.pin_hash.clone();
    let matches = tokio::task::spawn_blocking(move || crate::pin::verify_pin(&pin, &hash))
        .await
        .map_err(ApiError::internal)?;
    let ctx = node.clone();
    let id = operator_id.to_owned();
    let locked = tokio::task::spawn_blocking(move || {
        ctx.pin_lockout
            .record(&id, matches, now_ms, |op, attempts| {
                ctx.store.put_pin_attempts(op, attempts)
            })
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(storage)?;
    if locked {
        tracing::warn!(operator = %operator_id, "operator locked out after {} wrong PINs", crate::pin_lockout::PIN_FAILURES_MAX);
        metrics::counter!("posmesh_pin_lockouts_total").increment(1);
    }
    if !matches {
        return Err(pin_mismatch(field));
    }
    Ok(())
}

/// Longest wait for this device to catch up with the leader ([`crate::consensus::RaftService::catch_up`])
/// when an operator id is unknown here.
pub const CATCH_UP_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// The operator `operator_id`, once `pin` is verified as theirs by [`check_pin`] (the
/// lockout applies). An id unknown on this device is judged only once the device has
/// caught up with the leader ([`crate::consensus::RaftService::catch_up`], at most
/// [`CATCH_UP_WAIT`]): an operator created through another device a moment ago is
/// known then, and their right PIN accepted. If the device cannot catch up (no leader
/// reachable), the answer is 503 `operator_not_confirmed` and nothing is counted. An
/// `operator_id` still unknown is answered like a wrong PIN — 401
/// `pin_mismatch` naming `field`, after a hash check of the same cost, and 429
/// `pin_locked` after as many wrong guesses — so the answer does not tell which ids
/// exist. Unknown ids are counted in memory only, a bounded number of them
/// ([`crate::pin_lockout::PinLockout::record_unknown`]): counting them in storage would
/// let anyone fill this device's disk.
///
/// # Errors
/// 401 `pin_mismatch`, 429 `pin_locked`, 503 without consensus or
/// `operator_not_confirmed`, 500 `storage`.
pub(super) async fn authenticate(
    node: &Arc<NodeContext>,
    operator_id: &str,
    pin: String,
    field: &'static str,
) -> Result<Operator, ApiError> {
    let raft = node
        .raft
        .as_ref()
        .ok_or_else(super::gift_cards::no_consensus)?;
    let mut known = raft.read(|state| state.staff.operators.get(operator_id).cloned());
    if known.is_none() {
        // Created a moment ago through another device, maybe: this device catches up with
        // the leader before it judges the id (never a wrong PIN for a right one).
        raft.catch_up(CATCH_UP_WAIT)
            .await
            .map_err(|why| not_confirmed(operator_id, &why, field))?;
        known = raft.read(|state| state.staff.operators.get(operator_id).cloned());
    }
    match known {
        Some(operator) => {
            check_pin(node, operator_id, &operator, pin, field).await?;
            Ok(operator)
        }
        None => {
            let _turn = node.pin_lockout.one_check_at_a_time().await;
            let now_ms = crate::clock::wall_clock_ms();
            node.pin_lockout
                .check_unknown(operator_id, now_ms)
                .map_err(|secs| pin_locked(operator_id, secs, field))?;
            tokio::task::spawn_blocking(move || crate::pin::verify_against_nobody(&pin))
                .await
                .map_err(ApiError::internal)?;
            if node.pin_lockout.record_unknown(operator_id, now_ms) {
                tracing::warn!(operator = %operator_id, "unknown operator id locked out after {} wrong PINs", crate::pin_lockout::PIN_FAILURES_MAX);
                metrics::counter!("posmesh_pin_lockouts_total").increment(1);
            }
            Err(pin_mismatch(field))
        }
    }
}

/// Whether an operator of role `unlocker` may lift the lockout of one of role `locked`: a
/// role strictly above it, or an admin for an admin (someone must be able to unlock
/// one). Never a peer or a superior: the lockout is what bounds guessing a PIN.
pub fn may_unlock(unlocker: Role, locked: Role) -> bool {
    unlocker > locked || (unlocker == Role::Admin && locked == Role::Admin)
}

fn pin_mismatch(field: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "pin_mismatch",
        "the operator id and PIN do not match",
        Some(field),
    )
}

/// 503 `operator_not_confirmed`: `operator_id` is unknown on this device and the device
/// could not catch up with the leader to tell whether it was just created (`why`). No PIN
/// was checked, nothing counted.
fn not_confirmed(operator_id: &str, why: &str, field: &str) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "operator_not_confirmed",
        format!(
            "operator {operator_id:?} is not known on this device, and it could not catch up with the store's leader to tell whether it was just created ({why}); nothing was checked or counted: try again in a moment"
        ),
        Some(field),
    )
}

fn pin_locked(operator_id: &str, secs: u64, field: &str) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "pin_locked",
        format!(
            "operator {operator_id:?} is locked out on this device after {} wrong PINs: try again in {secs} s, or ask a manager to unlock it (`posmesh operator unlock`)",
            crate::pin_lockout::PIN_FAILURES_MAX
        ),
        Some(field),
    )
}

fn storage(error: crate::storage::StorageError) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "storage",
        error.to_string(),
        None,
    )
}

/// Lifts an operator's PIN lockout on this device, on the authority of a manager or admin
/// named in `X-Operator-Id` / `X-Operator-Pin` — the authorising operator of every guarded
/// command ([`super::operator_auth`]). Their PIN is checked first (an unknown id is
/// answered as a wrong PIN: 401 `pin_mismatch`; without the headers 401
/// `operator_required`), then their role (403 `role_forbidden`), then the operator to
/// unlock (404 `operator_not_found`), whose role must be below theirs (403
/// `role_forbidden`; an admin may unlock an admin): nothing about roles or operators is
/// told to someone without a right PIN. The request has no body (credentials in a body,
/// `manager_id` / `manager_pin`, are no longer read: 401 `operator_required`).
#[utoipa::path(post, tag = "Staff", path = "/v1/operators/{id}/unlock",
    params(("id" = String, Path, description = "the locked-out operator"),
        ("X-Operator-Id" = String, Header, description = "the unlocking manager or admin"),
        ("X-Operator-Pin" = String, Header, description = "their PIN")),
    responses((status = 200, body = UnlockView),
              (status = 400, body = ErrorBody, description = "`invalid_header`: X-Operator-Id / X-Operator-Pin not visible ASCII"),
              (status = 401, body = ErrorBody, description = "`operator_required`: no X-Operator-Id / X-Operator-Pin; `pin_mismatch`: unknown operator or wrong PIN (the same answer; a wrong PIN counts against that operator)"),
              (status = 403, body = ErrorBody, description = "`role_forbidden`: the authorising operator (PIN verified) is not a manager or admin, or the operator to unlock is not below their role (an admin may unlock an admin)"),
              (status = 404, body = ErrorBody, description = "`operator_not_found`: unknown operator to unlock (told only after the authorising operator is verified)"),
              (status = 429, body = ErrorBody, description = "`pin_locked`: the authorising operator is locked out on this device"),
              (status = 503, body = ErrorBody)))]
pub async fn unlock(
    State(node): State<Arc<NodeContext>>,
    Path(operator_id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<UnlockView>, ApiError> {
    let operation = "unlock an operator";
    let by = super::operator_auth::operator_for(&node, &headers, operation)
        .await?
        .ok_or_else(|| {
            // A store with no operator has nobody to unlock, nor anyone to unlock them.
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "operator_required",
                format!(
                    "to {operation}, send {} and {}: the id and PIN of a manager or admin",
                    super::operator_auth::OPERATOR_ID_HEADER,
                    super::operator_auth::OPERATOR_PIN_HEADER
                ),
                Some(super::operator_auth::OPERATOR_ID_HEADER),
            )
        })?;
    super::operator_auth::require_role(&node, Some(&by), Role::Manager, operation)?;
    let manager = operator(&node, &by, "operator_not_found", None)?;
    let locked_out = operator(&node, &operator_id, "operator_not_found", None)?;
    // Unlocking lifts the limit on guessing that operator's PIN: a manager who could
    // unlock a peer or a superior could guess their PIN 5 at a time and act as them.
    if !may_unlock(manager.role, locked_out.role) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "role_forbidden",
            format!(
                "{by:?} is {} and cannot unlock {operator_id:?}, {}: only a role above it can (an admin for an admin)",
                manager.role.with_article(),
                locked_out.role.with_article()
            ),
            Some(super::operator_auth::OPERATOR_ID_HEADER),
        ));
    }
    let now_ms = crate::clock::wall_clock_ms();
    let ctx = node.clone();
    let id = operator_id.clone();
    let had = tokio::task::spawn_blocking(move || {
        ctx.pin_lockout
            .unlock(&id, |op, attempts| ctx.store.put_pin_attempts(op, attempts))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(storage)?;
    tracing::info!(operator = %operator_id, manager = %by, ?had, "PIN lockout lifted");
    Ok(Json(UnlockView {
        operator_id,
        was_locked: had.is_some_and(|a| a.locked_at(now_ms)),
        failures_cleared: had.map_or(0, |a| a.failures),
        unlocked_by: by,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_role_above_unlocks_and_an_admin_unlocks_an_admin() {
        use Role::{Admin, Cashier, Manager, Supervisor};
        assert!(!may_unlock(Cashier, Cashier));
        assert!(may_unlock(Manager, Cashier));
        assert!(may_unlock(Manager, Supervisor));
        assert!(
            !may_unlock(Manager, Manager),
            "a manager cannot unlock a peer"
        );
        assert!(!may_unlock(Manager, Admin), "nor a superior");
        assert!(may_unlock(Admin, Manager));
        assert!(may_unlock(Admin, Admin));
    }
}
