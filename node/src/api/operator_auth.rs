//! Who may change the store's operators (`POST /v1/operators`): the request names an
//! authorising operator and their PIN in the headers [`OPERATOR_ID_HEADER`] and
//! [`OPERATOR_PIN_HEADER`]. The PIN is checked first, by the same check and lockout as
//! PIN entry at a till ([`super::pin_unlock::authenticate`]: an unknown id is answered as
//! a wrong PIN), then the role rules of
//! [`Staff::may_set_operator`](posmesh_consensus::staff::Staff::may_set_operator) on this
//! device's applied state; the state machine checks the rules again when the change
//! applies, so a role changed in between, or two first operators at once, cannot slip
//! through.
//!
//! Without both headers, a change is accepted only as the store's first operator (an
//! admin, while no operator is committed): the bootstrap of a store not provisioned with
//! operators (`posmesh init --provisioning` can list them instead).
//!
//! Answers: 401 `pin_required` (no authorising operator, or only one of the headers),
//! 400 `invalid_header`, 401 `pin_mismatch`, 429 `pin_locked`, 403 `role_insufficient`.

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
/// 401 `pin_required` if only one is sent (or one is empty), 400 `invalid_header` for a
/// value that is not visible ASCII.
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
        (Some(_), None) => Err(pin_required(OPERATOR_PIN_HEADER)),
        (None, Some(_)) => Err(pin_required(OPERATOR_ID_HEADER)),
    }
}

fn pin_required(missing: &'static str) -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "pin_required",
        format!(
            "a change to the operators needs both {OPERATOR_ID_HEADER} and {OPERATOR_PIN_HEADER} (the authorising operator's id and PIN): {missing} is missing or empty"
        ),
        Some(missing),
    )
}

/// The authorising operator of the request, PIN verified (`None`: neither header sent,
/// and the store has no operator yet: the first operator's bootstrap).
///
/// # Errors
/// Those of [`authorising_operator`]; 401 `pin_required` without the headers once the
/// store has operators; 401 `pin_mismatch`, 429 `pin_locked` (see
/// [`super::pin_unlock::authenticate`]); 503 without consensus.
pub async fn authenticated_authoriser(
    node: &Arc<NodeContext>,
    headers: &HeaderMap,
) -> Result<Option<String>, ApiError> {
    let raft = node
        .raft
        .as_ref()
        .ok_or_else(super::gift_cards::no_consensus)?;
    match authorising_operator(headers)? {
        None if raft.read(|state| !state.staff.operators.is_empty()) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "pin_required",
            format!(
                "the store has operators: a change to them needs {OPERATOR_ID_HEADER} and {OPERATOR_PIN_HEADER} (an authorising operator's id and PIN); only the first operator is set without"
            ),
            Some(OPERATOR_ID_HEADER),
        )),
        None => Ok(None),
        Some((id, pin)) => {
            super::pin_unlock::authenticate(node, &id, pin, OPERATOR_PIN_HEADER).await?;
            Ok(Some(id))
        }
    }
}

/// Whether `authorised_by` may set `operator_id` to `role` by the role rules, on this
/// device's applied state (the state machine checks again when the change applies).
///
/// # Errors
/// 401 `pin_required` (no authorising operator once the store has operators), 403
/// `role_insufficient`; 503 without consensus.
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
    })
    .map_err(|refusal| super::gift_cards::refused(&refusal))
}

/// The operator authorising a guarded store-wide operation (the role matrix of
/// [`posmesh_consensus::roles`]: shifts, day close, tax rates, gift-card issue, exposure,
/// device removal), PIN verified by [`super::pin_unlock::authenticate`] (same check and
/// lockout as the operators' changes). `None` only while the store has no operator: a
/// store in setup, before its first admin is set, runs these without one.
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
                "to {operation}, send {OPERATOR_ID_HEADER} and {OPERATOR_PIN_HEADER}: the id and PIN of an operator whose role allows it"
            ),
            Some(OPERATOR_ID_HEADER),
        )),
        Some((id, pin)) => {
            super::pin_unlock::authenticate(node, &id, pin, OPERATOR_PIN_HEADER).await?;
            Ok(Some(id))
        }
    }
}

/// `command` as proposed on the authority of `by` (from [`operator_for`]): checked
/// against the role matrix on this device's applied state and wrapped in
/// [`StoreCommand::Authorised`], so the state machine checks it again when it applies.
/// `None` (a store in setup) proposes `command` bare.
///
/// # Errors
/// 403 `role_forbidden` naming the role needed; 401 `pin_required` for an operator
/// removed meanwhile; 503 without consensus.
pub fn authorised(
    node: &NodeContext,
    by: Option<String>,
    command: StoreCommand,
) -> Result<StoreCommand, ApiError> {
    let Some(by) = by else {
        return Ok(command);
    };
    let raft = node
        .raft
        .as_ref()
        .ok_or_else(super::gift_cards::no_consensus)?;
    raft.read(|state| state.staff.may_run(&by, &command))
        .map_err(|refusal| super::gift_cards::refused(&refusal))?;
    Ok(StoreCommand::Authorised {
        authorised_by: by,
        command: Box::new(command),
    })
}

/// Whether operator `by` (from [`operator_for`]) has at least `role`, for a read or an
/// action that is not a store command (the operators' list, a device's removal checked
/// here before it is forwarded). `None`: a store in setup.
///
/// # Errors
/// 403 `role_forbidden` naming `role`; 401 `pin_required` for an operator removed
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
                (401, "pin_required")
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
