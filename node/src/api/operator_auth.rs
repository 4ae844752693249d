//! Who authorises a guarded operation: the request names an authorising operator and
//! their PIN in the headers [`OPERATOR_ID_HEADER`] and [`OPERATOR_PIN_HEADER`] — the same
//! for a change to the operators (`POST /v1/operators`, role rules of
//! [`Staff::may_set_operator`](posmesh_consensus::staff::Staff::may_set_operator)) and for
//! the store-wide operations of the role matrix ([`posmesh_consensus::roles`]). The PIN
//! is checked first ([`operator_for`]), by the same check and lockout as PIN entry at a
//! till ([`super::pin_unlock::authenticate`]: an unknown id is answered as a wrong PIN),
//! then the rules on this device's applied state, together with the refusals the state
//! alone decides ([`posmesh_consensus::StoreState::precheck`]: nothing is proposed for
//! them); the state machine checks everything again when the command applies, so a role
//! changed in between, or two first operators at once, cannot slip through.
//!
//! Without both headers, an operation runs only while the store has no operator (setup:
//! the first operator, an admin, is set so; `posmesh init --provisioning` can list
//! operators instead).
//!
//! Answers, the same for every guarded operation: 401 `operator_required` (no
//! authorising operator once the store has one, or only one of the headers), 400
//! `invalid_header`, 401 `pin_mismatch`, 429 `pin_locked`, 403 `role_forbidden`.

use super::error::ApiError;
use crate::runtime::NodeContext;
use axum::http::{HeaderMap, StatusCode};
use posmesh_consensus::staff::Role;
use posmesh_consensus::StoreCommand;
use std::sync::Arc;

/// Header naming the operator who authorises a change to the operators.
pub const OPERATOR_ID_HEADER: &str = "X-Operator-Id";
/// Header carrying that operator's PIN (never logged, never stored).
pub const OPERATOR_PIN_HEADER: &str = "X-Operator-Pin";

/// The authorising operator named by `headers`: `None` if neither header is sent,
/// `(id, PIN)` if both are.
///
/// # Errors
/// 401 `operator_required` if only one is sent (or one is empty), 400 `invalid_header`
/// for a value that is not visible ASCII.
pub fn authorising_operator(headers: &HeaderMap) -> Result<Option<(String, String)>, ApiError> {
    let value = |name: &'static str| -> Result<Option<String>, ApiError> {
        let Some(value) = headers.get(name) else {
            return Ok(None);
        };
        let text = value
            .to_str()
            .ok()
            .filter(|v| v.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_header",
                    format!("{name} must be visible ASCII characters"),
                    Some(name),
                )
            })?;
        Ok(Some(text.to_owned()).filter(|t| !t.is_empty()))
    };
    match (value(OPERATOR_ID_HEADER)?, value(OPERATOR_PIN_HEADER)?) {
        (None, None) => Ok(None),
        (Some(id), Some(pin)) => Ok(Some((id, pin))),
        (Some(_), None) => Err(one_header_missing(OPERATOR_PIN_HEADER)),
        (None, Some(_)) => Err(one_header_missing(OPERATOR_ID_HEADER)),
    }
}

fn one_header_missing(missing: &'static str) -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "operator_required",
        format!(
            "an authorising operator needs both {OPERATOR_ID_HEADER} and {OPERATOR_PIN_HEADER} (their id and PIN): {missing} is missing or empty"
        ),
        Some(missing),
    )
}

/// Whether `authorised_by` may set `operator_id` to `role` by the role rules, on this
/// device's applied state, and whether the id was disabled for good (the state machine
/// checks both again when the change applies). Asked before the PIN is hashed, so a
/// refused change costs no Argon2id hash and no Raft entry.
///
/// # Errors
/// 401 `operator_required` (no authorising operator once the store has operators), 403
/// `role_forbidden`, 409 `last_admin`, 409 `operator_disabled`; 503 without consensus.
pub fn check_roles(
    node: &NodeContext,
    authorised_by: Option<&str>,
    operator_id: &str,
    role: Role,
) -> Result<(), ApiError> {
    let raft = node
        .raft
        .as_ref()
        .ok_or_else(super::gift_cards::no_consensus)?;
    raft.read(|state| {
        state
            .staff
            .may_set_operator(authorised_by, operator_id, role)
            .and_then(|()| state.staff.check_not_disabled(operator_id))
    })
    .map_err(|refusal| super::gift_cards::refused(&refusal))
}

/// The operator authorising a guarded operation — a store-wide operation of the role
/// matrix ([`posmesh_consensus::roles`]: shifts, day close, tax rates, gift-card issue,
/// exposure, device removal, certificate revocation, disabling an operator) or a change
/// to the operators — PIN verified by [`super::pin_unlock::authenticate`] (one check and
/// lockout for all). `None` only while the store has no operator: a store in setup,
/// before its first admin is set, runs these without one.
///
/// # Errors
/// Those of [`authorising_operator`]; 401 `operator_required` without the headers once
/// the store has operators (naming `operation`); 401 `pin_mismatch`, 429 `pin_locked`;
/// 503 without consensus.
pub async fn operator_for(
    node: &Arc<NodeContext>,
    headers: &HeaderMap,
    operation: &str,
) -> Result<Option<String>, ApiError> {
    let raft = node
        .raft
        .as_ref()
        .ok_or_else(super::gift_cards::no_consensus)?;
    match authorising_operator(headers)? {
        None if raft.read(|state| state.staff.operators.is_empty()) => Ok(None),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "operator_required",
            format!(
                "to {operation}, send {OPERATOR_ID_HEADER} and {OPERATOR_PIN_HEADER}: the id and PIN of an operator whose role allows it (only a store with no operator yet runs it without)"
            ),
            Some(OPERATOR_ID_HEADER),
        )),
        Some((id, pin)) => {
            super::pin_unlock::authenticate(node, &id, pin, OPERATOR_PIN_HEADER).await?;
            Ok(Some(id))
        }
    }
}

/// `command` as proposed on the authority of `by` (from [`operator_for`]): wrapped in
/// [`StoreCommand::Authorised`] (so the state machine checks the role matrix again when
/// it applies) and pre-checked on this device's applied state
/// ([`posmesh_consensus::StoreState::precheck`]): the role matrix, and the refusals the
/// state alone decides (an unknown or disabled operator, the only admin, a day closed
/// already, a certificate revoked already, an Idempotency-Key used for another request)
/// are answered here, without a Raft entry (on a follower, only those that hold for good
/// and the role rules: see [`answer_here`]). `None` (a store in setup) proposes `command`
/// bare, pre-checked the same way.
///
/// # Errors
/// 403 `role_forbidden` naming the role needed; 401 `operator_required` for an operator
/// removed meanwhile; the pre-check's refusal with the code the committed refusal would
/// get ([`super::gift_cards::refused`]); 503 without consensus.
pub fn authorised(
    node: &NodeContext,
    by: Option<String>,
    command: StoreCommand,
) -> Result<StoreCommand, ApiError> {
    let command = match by {
        Some(by) => StoreCommand::Authorised {
            authorised_by: by,
            command: Box::new(command),
        },
        None => command,
    };
    let raft = node
        .raft
        .as_ref()
        .ok_or_else(super::gift_cards::no_consensus)?;
    raft.read(|state| state.precheck(&command))
        .or_else(|refusal| answer_here(raft, refusal))?;
    Ok(command)
}

/// A pre-check's refusal answered on this device (`Err`), or `Ok` to propose anyway and
/// let the log decide: a refusal that a newer entry could lift (an unknown operator, the
/// only admin: [`posmesh_consensus::Refusal::holds_for_good`]) is settled only by the
/// leader's state — a follower may be a moment behind a write the client just made
/// through it. The role rules are answered here in any case: the authorising operator is
/// judged on this device's state, as their PIN is.
fn answer_here(
    raft: &crate::consensus::RaftService,
    refusal: posmesh_consensus::Refusal,
) -> Result<(), ApiError> {
    use posmesh_consensus::Refusal as R;
    let authoriser = matches!(
        refusal,
        R::RoleForbidden { .. } | R::RoleInsufficient { .. } | R::AuthorisationRequired { .. }
    );
    if refusal.holds_for_good() || authoriser || raft.leads() {
        return Err(super::gift_cards::refused(&refusal));
    }
    tracing::debug!(%refusal, "pre-check refusal left to the leader's state");
    Ok(())
}

/// Whether operator `by` (from [`operator_for`]) has at least `role`, for a read or an
/// action that is not a store command (the operators' list, a device's removal checked
/// here before it is forwarded). `None`: a store in setup.
///
/// # Errors
/// 403 `role_forbidden` naming `role`; 401 `operator_required` for an operator removed
/// meanwhile; 503 without consensus.
pub fn require_role(
    node: &NodeContext,
    by: Option<&str>,
    role: Role,
    operation: &str,
) -> Result<(), ApiError> {
    let Some(by) = by else {
        return Ok(());
    };
    let raft = node
        .raft
        .as_ref()
        .ok_or_else(super::gift_cards::no_consensus)?;
    let has = raft.read(|state| state.staff.operators.get(by).map(|o| o.role));
    match has {
        None => Err(super::gift_cards::refused(
            &posmesh_consensus::Refusal::AuthorisationRequired {
                why: format!("the authorising operator {by:?} is not an operator of the store"),
            },
        )),
        Some(has) if has < role => Err(super::gift_cards::refused(
            &posmesh_consensus::Refusal::RoleForbidden {
                authorised_by: by.to_owned(),
                role: has,
                needed: role,
                operation: operation.to_owned(),
            },
        )),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_bytes(value).expect("header value"));
        }
        map
    }

    fn code(result: Result<Option<(String, String)>, ApiError>) -> (u16, &'static str) {
        let error = result.expect_err("refused");
        (error.status.as_u16(), error.code)
    }

    #[test]
    fn both_headers_or_none() {
        assert_eq!(authorising_operator(&HeaderMap::new()).ok(), Some(None));
        assert_eq!(
            authorising_operator(&headers(&[
                (OPERATOR_ID_HEADER, b"mia"),
                (OPERATOR_PIN_HEADER, b"2468")
            ]))
            .ok(),
            Some(Some(("mia".to_owned(), "2468".to_owned())))
        );
        for pairs in [
            &[(OPERATOR_ID_HEADER, &b"mia"[..])][..],
            &[(OPERATOR_PIN_HEADER, &b"2468"[..])][..],
            &[
                (OPERATOR_ID_HEADER, &b"mia"[..]),
                (OPERATOR_PIN_HEADER, &b""[..]),
            ][..],
        ] {
            assert_eq!(
                code(authorising_operator(&headers(pairs))),
                (401, "operator_required")
            );
        }
        assert_eq!(
            code(authorising_operator(&headers(&[
                (OPERATOR_ID_HEADER, "mïa".as_bytes()),
                (OPERATOR_PIN_HEADER, b"2468")
            ]))),
            (400, "invalid_header")
        );
    }
}
