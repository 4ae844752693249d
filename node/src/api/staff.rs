//! Operators, PINs, shifts and tax rates — store-wide through the Raft group:
//! - `POST /v1/operators`: add or change an operator; the PIN is hashed (Argon2id) here,
//!   before the command enters the log. The change needs an authorising operator's id and
//!   PIN in `X-Operator-Id` / `X-Operator-Pin`, whose role allows it (see
//!   [`super::operator_auth`]); only the store's first operator, an admin, is set without.
//!   `GET /v1/operators`: the list (no hashes).
//! - `POST /v1/operators/{id}/verify-pin`: checks a PIN against the operator's hash.
//! - `POST /v1/shifts`: opens a shift of an operator on this device with an opening float;
//!   `POST /v1/shifts/{id}/close` closes it; `GET /v1/shifts` lists them (a manager's,
//!   like `GET /v1/operators`).
//! - `POST /v1/tax-rates`: a new version of the tax rates from an effective time (they
//!   price sales from then on, see [`crate::tax_in_force`]); `GET /v1/tax-rates`: every
//!   version.
//!
//! Shift opening and close and tax rates need an `Idempotency-Key`, recorded store-wide in
//! the Raft state with the outcome (the sales API's convention: a retry answers the first
//! outcome, 200 `Idempotent-Replayed: true`). Operator set and disable take one
//! optionally (the device keys the write itself without); an operator's request hash
//! leaves the clear PIN out, which must not enter the replicated state.
//!
//! Reads come from this device's applied state (replicated, possibly a moment behind the
//! leader). Every bad body is refused here with a precise code before anything is
//! proposed; refusals of the state machine (unknown operator, shift already open, …) are
//! committed answers that change nothing.

use super::body::{idempotency_key, optional_idempotency_key, parse_json, request_hash};
use super::error::{ApiError, ErrorBody};
use super::gift_cards::{decide, idempotent, idempotent_if_keyed};
use super::sales::parse_currency;
use crate::runtime::NodeContext;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use posmesh_consensus::staff::Role;
use posmesh_consensus::tax::TaxSchedule;
use posmesh_consensus::StoreCommand;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::ToSchema;

/// `POST /v1/operators` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetOperatorBody {
    /// The operator's id (e.g. a staff number), typed at tills and used in URLs: the device
    /// id rule, 1–63 bytes of lowercase letters `a-z`, digits `0-9` and `-`, not starting or
    /// ending with `-`; else 422 `invalid_operator_id`.
    #[schema(
        min_length = 1,
        max_length = 63,
        pattern = "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$",
        example = "csh-1"
    )]
    pub operator_id: String,
    /// Display name.
    pub name: String,
    /// `cashier`, `supervisor`, `manager` or `admin`.
    #[schema(value_type = String)]
    pub role: Role,
    /// 4–12 digits; hashed on this device, never stored or replicated in clear.
    pub pin: String,
}

/// `POST /v1/operators/{id}/verify-pin` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyPinBody {
    /// The PIN typed.
    pub pin: String,
}

/// An operator as listed (never the PIN hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct OperatorView {
    /// The id.
    pub operator_id: String,
    /// Display name.
    pub name: String,
    /// The role.
    pub role: String,
}

/// `POST /v1/shifts` body.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenShiftBody {
    /// The shift's id, chosen by the POS app (unique store-wide).
    pub shift_id: String,
    /// The operator opening it.
    pub operator_id: String,
    /// Cash in the drawer at the opening, minor units, ≥ 0.
    pub opening_float_minor: i64,
    /// ISO 4217 code: the store's currency.
    pub currency: String,
}

/// `POST /v1/tax-rates` body.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetTaxRatesBody {
    /// The version, greater than the current one.
    pub version: u64,
    /// From when the rates apply, RFC 3339 (e.g. `2026-01-01T00:00:00Z`).
    pub effective_at: String,
    /// Rate per tax class of the catalog, basis points (2000 = 20 %), 0–10 000; 1–64 keys.
    /// A key `cold_food` sets the class's rate both ways, `cold_food:eat_in` /
    /// `cold_food:take_away` one way only (and wins over the plain key). Classes not named
    /// keep the catalog's rates.
    pub rates_bps: BTreeMap<String, u32>,
}

/// Adds or changes an operator, on the authority of the operator named in `X-Operator-Id`
/// with their PIN in `X-Operator-Pin` (checked under this device's PIN lockout; an
/// unknown id is answered as a wrong PIN). Managers and admins manage cashiers and
/// supervisors; only admins create or change managers and admins; nobody gives a role
/// above their own; anyone may change their own name and PIN keeping their role. The
/// store's first operator (none committed yet) is set without the headers and must be an
/// admin, and the store's only admin keeps the role until another is appointed (409
/// `last_admin`); an id disabled for good is never set again (409 `operator_disabled`).
/// Order of checks: authorising PIN, body, role rules (on this device's applied state,
/// before anything is proposed); every refusal changes nothing. The codes are those of
/// every guarded operation: 401 `operator_required`, 403 `role_forbidden`. With an
/// `Idempotency-Key`, a retry under the same key and the same operator id, name and role
/// answers the first outcome (200, `Idempotent-Replayed: true`; the PIN is left out of the
/// comparison, so its hash in the replicated state gives nothing away), the key used for
/// another request 409 `idempotency_key_reused`.
#[utoipa::path(post, tag = "Staff", path = "/v1/operators", request_body = SetOperatorBody,
    params(
        ("X-Operator-Id" = Option<String>, Header, description = "the authorising operator (omit both headers only for the store's first operator)"),
        ("X-Operator-Pin" = Option<String>, Header, description = "the authorising operator's PIN"),
        ("Idempotency-Key" = Option<String>, Header, description = "optional, unique per attempt store-wide: a retry with the same key and the same operator id, name and role answers the first outcome (the PIN is not compared); without it the device keys the write itself"),
    ),
    responses((status = 201, description = "set (the committed outcome)"),
              (status = 200, description = "replay of an earlier request with this key (`Idempotent-Replayed: true`)"),
              (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody, description = "`operator_required`: no authorising operator (the store has operators) or one header missing; `pin_mismatch`: unknown authorising operator or wrong PIN (the same answer; counts against the operator's lockout)"),
              (status = 403, body = ErrorBody, description = "`role_forbidden`: the authorising operator's role may not make this change (or a first operator that is not an admin)"),
              (status = 409, body = ErrorBody, description = "`last_admin`: the change would take the admin role from the store's only admin (appoint another admin first); `operator_disabled`: the id was disabled for good (give the person a new id); `idempotency_key_reused`: the key was used for another request"),
              (status = 422, body = ErrorBody),
              (status = 429, body = ErrorBody, description = "`pin_locked`: the authorising operator is locked out on this device"),
              (status = 503, body = ErrorBody)))]
pub async fn set_operator(
    State(node): State<Arc<NodeContext>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    // Who asks, before anything about the body is told.
    let authorised_by =
        super::operator_auth::operator_for(&node, &headers, "change the operators").await?;
    let key = optional_idempotency_key(&headers)?;
    let body: SetOperatorBody = parse_json(&headers, body)?;
    // Not the PIN: a hash of a few digits in the replicated state would give them away.
    let hash = request_hash(
        "set_operator",
        &body.operator_id,
        &serde_json::json!({"name": body.name, "role": body.role.as_str()}),
    );
    check_operator_id(&body.operator_id)?;
    check_text("name", &body.name)?;
    super::operator_auth::check_roles(
        &node,
        authorised_by.as_deref(),
        &body.operator_id,
        body.role,
    )?;
    let pin = body.pin;
    let pin_hash = tokio::task::spawn_blocking(move || crate::pin::hash_pin(&pin))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_pin",
                e.to_string(),
                Some("pin"),
            )
        })?;
    let command = StoreCommand::SetOperatorAuthorised {
        authorised_by,
        operator_id: body.operator_id,
        name: body.name,
        role: body.role,
        pin_hash,
    };
    decide(&node, idempotent_if_keyed(key, &hash, command)).await
}

/// The store's operators, for a manager or admin (`X-Operator-Id` / `X-Operator-Pin`;
/// a store with no operator yet answers the empty list without).
#[utoipa::path(get, tag = "Staff", path = "/v1/operators",
    params(
        ("X-Operator-Id" = Option<String>, Header, description = "a manager or admin"),
        ("X-Operator-Pin" = Option<String>, Header, description = "their PIN"),
    ),
    responses((status = 200, body = [OperatorView]),
              (status = 401, body = ErrorBody, description = "`operator_required`, `pin_mismatch`"),
              (status = 403, body = ErrorBody, description = "`role_forbidden`: not a manager or admin"),
              (status = 503, body = ErrorBody),
              (status = 400, body = ErrorBody, description = "`invalid_header`: X-Operator-Id / X-Operator-Pin not visible ASCII; a malformed request"),
              (status = 429, body = ErrorBody, description = "`pin_locked`: the authorising operator is locked out on this device")))]
pub async fn list_operators(
    State(node): State<Arc<NodeContext>>,
    headers: HeaderMap,
) -> Result<Json<Vec<OperatorView>>, ApiError> {
    let by = super::operator_auth::operator_for(&node, &headers, "list the operators").await?;
    super::operator_auth::require_role(&node, by.as_deref(), Role::Manager, "list the operators")?;
    let raft = node
        .raft
        .as_ref()
        .ok_or_else(super::gift_cards::no_consensus)?;
    Ok(Json(raft.read(|state| {
        state
            .staff
            .operators
            .iter()
            .map(|(id, o)| OperatorView {
                operator_id: id.clone(),
                name: o.name.clone(),
                role: o.role.as_str().to_owned(),
            })
            .collect()
    })))
}

/// Checks an operator's PIN: 200 with the role if it matches, 401 `pin_mismatch` if not,
/// 429 `pin_locked` for 5 minutes after 5 wrong PINs in a row on this device
/// ([`crate::pin_lockout`]; a manager lifts it with `POST /v1/operators/{id}/unlock`). An
/// id naming no operator gets the same answers — 401 `pin_mismatch` after a hash check of
/// the same cost, 429 after 5 guesses — so ids cannot be enumerated
/// ([`super::pin_unlock::authenticate`]).
#[utoipa::path(post, tag = "Staff", path = "/v1/operators/{id}/verify-pin", request_body = VerifyPinBody,
    params(("id" = String, Path)),
    responses((status = 200, body = OperatorView),
              (status = 401, body = ErrorBody, description = "`pin_mismatch`: wrong PIN or unknown operator (the same answer)"),
              (status = 429, body = ErrorBody, description = "`pin_locked`: 5 wrong PINs in a row for this id on this device")))]
pub async fn verify_pin(
    State(node): State<Arc<NodeContext>>,
    Path(operator_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<OperatorView>, ApiError> {
    let body: VerifyPinBody = parse_json(&headers, body)?;
    let operator = super::pin_unlock::authenticate(&node, &operator_id, body.pin, "pin").await?;
    Ok(Json(OperatorView {
        operator_id,
        name: operator.name,
        role: operator.role.as_str().to_owned(),
    }))
}

/// Opens a shift on this device, once per Idempotency-Key: a retry with the same key and
/// body (on this device) answers the first opening again (200, `Idempotent-Replayed:
/// true`), the key with another body or device 409 `idempotency_key_reused`.
#[utoipa::path(post, tag = "Staff", path = "/v1/shifts", request_body = OpenShiftBody,
    params(("X-Operator-Id" = Option<String>, Header, description = "the authorising operator (omit both headers only while the store has no operator)"), ("X-Operator-Pin" = Option<String>, Header, description = "their PIN"), ("Idempotency-Key" = String, Header, description = "unique per opening attempt, store-wide")),
    responses((status = 201, description = "opened (the committed outcome)"),
              (status = 200, description = "replay of an earlier request with this key (`Idempotent-Replayed: true`)"),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 401, body = ErrorBody, description = "`operator_required` (no X-Operator-Id / X-Operator-Pin once the store has operators), `pin_mismatch`"),
              (status = 403, body = ErrorBody, description = "`role_forbidden`: the operator's role may not (see the README's role matrix)"),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
              (status = 429, body = ErrorBody, description = "`pin_locked`: the authorising operator is locked out on this device")))]
pub async fn open_shift(
    State(node): State<Arc<NodeContext>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let by = super::operator_auth::operator_for(&node, &headers, "open a shift").await?;
    let key = idempotency_key(&headers)?;
    let body: OpenShiftBody = parse_json(&headers, body)?;
    // The shift opens on this device: the same body on another device is another request.
    let hash = request_hash("open_shift", &node.identity.device_id, &body);
    check_text("shift_id", &body.shift_id)?;
    check_text("operator_id", &body.operator_id)?;
    let currency = parse_currency(&body.currency)?;
    if currency != node.catalog.currency() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "currency_mismatch",
            format!(
                "the store counts cash in {}, not {}",
                node.catalog.currency().code(),
                currency.code()
            ),
            Some("currency"),
        ));
    }
    if !(0..=posmesh_domain::TENDER_AMOUNT_MAX_MINOR).contains(&body.opening_float_minor) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_amount",
            format!(
                "opening_float_minor must be 0 to {} minor units",
                posmesh_domain::TENDER_AMOUNT_MAX_MINOR
            ),
            Some("opening_float_minor"),
        ));
    }
    let (now_ms, _) = node.dated(None)?;
    let command = StoreCommand::OpenShift {
        shift_id: body.shift_id,
        device_id: node.identity.device_id.clone(),
        operator_id: body.operator_id,
        opening_float_minor: body.opening_float_minor,
        currency,
        opened_at_ms: now_ms,
    };
    let command = super::operator_auth::authorised(&node, by, idempotent(key, &hash, command))?;
    decide(&node, command).await
}

/// Closes a shift, once per Idempotency-Key: a retry with the same key answers the first
/// close again (200, `Idempotent-Replayed: true`); the key used for another request 409
/// `idempotency_key_reused`; a second close under a new key 409 `shift_already_closed`.
#[utoipa::path(post, tag = "Staff", path = "/v1/shifts/{id}/close",
    params(("X-Operator-Id" = Option<String>, Header, description = "the authorising operator (omit both headers only while the store has no operator)"), ("X-Operator-Pin" = Option<String>, Header, description = "their PIN"), ("id" = String, Path), ("Idempotency-Key" = String, Header, description = "unique per close attempt, store-wide")),
    responses((status = 201, description = "closed (the committed outcome)"),
              (status = 200, description = "replay of an earlier request with this key (`Idempotent-Replayed: true`)"),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 401, body = ErrorBody, description = "`operator_required` (no X-Operator-Id / X-Operator-Pin once the store has operators), `pin_mismatch`"),
              (status = 403, body = ErrorBody, description = "`role_forbidden`: the operator's role may not (see the README's role matrix)"),
              (status = 409, body = ErrorBody), (status = 503, body = ErrorBody),
              (status = 422, body = ErrorBody),
              (status = 429, body = ErrorBody, description = "`pin_locked`: the authorising operator is locked out on this device")))]
pub async fn close_shift(
    State(node): State<Arc<NodeContext>>,
    Path(shift_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let by = super::operator_auth::operator_for(&node, &headers, "close a shift").await?;
    let key = idempotency_key(&headers)?;
    check_text("shift_id", &shift_id)?;
    let hash = request_hash("close_shift", &shift_id, &serde_json::Value::Null);
    let (now_ms, _) = node.dated(None)?;
    let command = StoreCommand::CloseShift {
        shift_id,
        closed_at_ms: now_ms,
    };
    let command = super::operator_auth::authorised(&node, by, idempotent(key, &hash, command))?;
    decide(&node, command).await
}

/// The store's shifts, by id, for a manager or admin (`X-Operator-Id` /
/// `X-Operator-Pin`; a store with no operator yet answers without) — as the operators'
/// list: every shift names its operator, whose ids `verify-pin` does not tell apart from
/// unknown ones, and the cash float of a till.
#[utoipa::path(get, tag = "Staff", path = "/v1/shifts",
    params(
        ("X-Operator-Id" = Option<String>, Header, description = "a manager or admin"),
        ("X-Operator-Pin" = Option<String>, Header, description = "their PIN"),
    ),
    responses((status = 200, description = "shifts by id: device, operator, opening float and currency, when it opened and closed (ms, log index), `closed_because`"),
              (status = 401, body = ErrorBody, description = "`operator_required`, `pin_mismatch`"),
              (status = 403, body = ErrorBody, description = "`role_forbidden`: not a manager or admin"),
              (status = 503, body = ErrorBody),
              (status = 400, body = ErrorBody, description = "`invalid_header`: X-Operator-Id / X-Operator-Pin not visible ASCII; a malformed request"),
              (status = 429, body = ErrorBody, description = "`pin_locked`: the authorising operator is locked out on this device")))]
pub async fn list_shifts(
    State(node): State<Arc<NodeContext>>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let by = super::operator_auth::operator_for(&node, &headers, "list the shifts").await?;
    super::operator_auth::require_role(&node, by.as_deref(), Role::Manager, "list the shifts")?;
    let raft = node
        .raft
        .as_ref()
        .ok_or_else(super::gift_cards::no_consensus)?;
    let shifts = raft.read(|state| serde_json::to_value(&state.staff.shifts));
    Ok(Json(shifts.map_err(ApiError::internal)?))
}

/// Sets a new version of the tax rates: sales from `effective_at` on are taxed at them
/// (each device prices with the versions it has applied; see `crate::tax_in_force`).
/// 422 `unknown_tax_class` for a key naming no tax class of the catalog in force.
/// Once per Idempotency-Key: a retry with the same key and body answers the first outcome
/// (200, `Idempotent-Replayed: true`), the key with another body 409 `idempotency_key_reused`.
#[utoipa::path(post, tag = "Staff", path = "/v1/tax-rates", request_body = SetTaxRatesBody,
    params(("X-Operator-Id" = Option<String>, Header, description = "the authorising operator (omit both headers only while the store has no operator)"), ("X-Operator-Pin" = Option<String>, Header, description = "their PIN"), ("Idempotency-Key" = String, Header, description = "unique per attempt, store-wide")),
    responses((status = 201, description = "set (the committed outcome)"),
              (status = 200, description = "replay of an earlier request with this key (`Idempotent-Replayed: true`)"),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody, description = "`operator_required` (no X-Operator-Id / X-Operator-Pin once the store has operators), `pin_mismatch`"),
              (status = 403, body = ErrorBody, description = "`role_forbidden`: the operator's role may not (see the README's role matrix)"),
              (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
              (status = 429, body = ErrorBody, description = "`pin_locked`: the authorising operator is locked out on this device")))]
pub async fn set_tax_rates(
    State(node): State<Arc<NodeContext>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let by = super::operator_auth::operator_for(&node, &headers, "set tax rates").await?;
    let key = idempotency_key(&headers)?;
    let body: SetTaxRatesBody = parse_json(&headers, body)?;
    let hash = request_hash("set_tax_rates", "", &body);
    let effective = chrono::DateTime::parse_from_rfc3339(&body.effective_at).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_time",
            format!("effective_at: {e} (expected RFC 3339, e.g. 2026-01-01T00:00:00Z)"),
            Some("effective_at"),
        )
    })?;
    let catalog = node.catalog_now();
    let unknown = crate::tax_in_force::unknown_classes(&catalog, body.rates_bps.keys());
    if !unknown.is_empty() {
        let known: Vec<&str> = catalog.tax_classes().map(|c| c.id.as_str()).collect();
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_tax_class",
            format!(
                "rates_bps names no tax class of catalog version {} for {unknown:?}: use one of {known:?}, optionally suffixed :eat_in or :take_away",
                catalog.version()
            ),
            Some("rates_bps"),
        ));
    }
    let command = StoreCommand::SetTaxRates {
        version: body.version,
        effective_at_ms: effective.timestamp_millis(),
        rates_bps: body.rates_bps,
    };
    let command = super::operator_auth::authorised(&node, by, idempotent(key, &hash, command))?;
    decide(&node, command).await
}

/// Every version of the store's tax rates, oldest first.
#[utoipa::path(get, tag = "Staff", path = "/v1/tax-rates", responses((status = 200, description = "the schedules"), (status = 503, body = ErrorBody)))]
pub async fn list_tax_rates(
    State(node): State<Arc<NodeContext>>,
) -> Result<Json<Vec<TaxSchedule>>, ApiError> {
    let raft = node
        .raft
        .as_ref()
        .ok_or_else(super::gift_cards::no_consensus)?;
    Ok(Json(raft.read(|state| state.tax.schedules.clone())))
}

/// Disables an operator for good (`posmesh operator disable`): on the authority of the
/// operator in `X-Operator-Id` / `X-Operator-Pin` — a manager disables cashiers and
/// supervisors, only an admin managers and admins; the store's only admin cannot be
/// disabled (409 `last_admin`). The operator's PIN opens nothing from then on and their
/// id can never be set again (a tombstone; a second disable is 409 `operator_disabled`);
/// their open shifts close in the same entry (`closed_because: operator_disabled` in
/// `GET /v1/shifts`, their ids in the outcome's `shifts_closed`); all their shifts stay on
/// record. An unknown operator (404), the only admin or a disabled one (409) is answered
/// from this device's applied state without a Raft entry. With an `Idempotency-Key`, a
/// retry under the same key answers the first disable (200, `Idempotent-Replayed: true`),
/// the key used for another request 409 `idempotency_key_reused`.
#[utoipa::path(post, tag = "Staff", path = "/v1/operators/{id}/disable",
    params(("id" = String, Path),
        ("X-Operator-Id" = String, Header, description = "the authorising manager or admin"),
        ("X-Operator-Pin" = String, Header, description = "their PIN"),
        ("Idempotency-Key" = Option<String>, Header, description = "optional, unique per attempt store-wide: a retry with the same key answers the first outcome; without it the device keys the write itself")),
    responses((status = 201, description = "disabled (the committed outcome)"),
              (status = 200, description = "replay of an earlier request with this key (`Idempotent-Replayed: true`)"),
              (status = 401, body = ErrorBody, description = "`operator_required`, `pin_mismatch`"),
              (status = 403, body = ErrorBody, description = "`role_forbidden`"),
              (status = 404, body = ErrorBody, description = "`operator_not_found`"),
              (status = 409, body = ErrorBody, description = "`last_admin`; `operator_disabled`: disabled already (under another key, or none); `idempotency_key_reused`: the key was used for another request"),
              (status = 422, body = ErrorBody),
              (status = 429, body = ErrorBody, description = "`pin_locked`: the authorising operator is locked out on this device"), (status = 503, body = ErrorBody),
              (status = 400, body = ErrorBody, description = "`invalid_header`: X-Operator-Id / X-Operator-Pin not visible ASCII; a malformed request")))]
pub async fn disable_operator(
    State(node): State<Arc<NodeContext>>,
    Path(operator_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let by = super::operator_auth::operator_for(&node, &headers, "disable an operator").await?;
    let key = optional_idempotency_key(&headers)?;
    check_operator_id(&operator_id)?;
    let hash = request_hash("disable_operator", &operator_id, &serde_json::Value::Null);
    let (now_ms, _) = node.dated(None)?;
    let command = StoreCommand::DisableOperator {
        operator_id,
        disabled_at_ms: now_ms,
    };
    // A replay of the client's key passes the pre-check: the log answers the first outcome.
    let command = idempotent_if_keyed(key, &hash, command);
    // Unknown, disabled or the only admin: answered from this device's state, no entry.
    let decided = match super::operator_auth::authorised(&node, by, command) {
        Ok(command) => decide(&node, command).await,
        Err(refusal) => Err(refusal),
    };
    decided.map_err(the_only_admin_is_the_path_operator)
}

/// A disable request has no `role`: the only admin's refusal (`last_admin`, whose field is
/// `role` for a change of role) names the operator of the path, `operator_id`.
fn the_only_admin_is_the_path_operator(mut error: ApiError) -> ApiError {
    if error.code == "last_admin" {
        error.field = Some("operator_id".to_owned());
    }
    error
}

/// An operator id is typed at tills and used in URLs: the device id rules (lowercase
/// letters, digits and `-`, at most 63 bytes) apply — when an operator is set, and to the
/// `operator_id` a sale records ([`super::sales::sale_operator_id`]).
///
/// # Errors
/// 422 `invalid_operator_id` naming `operator_id`.
pub(super) fn check_operator_id(value: &str) -> Result<(), ApiError> {
    crate::config::validate_id("operator_id", value).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_operator_id",
            e.to_string(),
            Some("operator_id"),
        )
    })
}

/// Ids and names: 1–128 bytes, no control characters, not only spaces (checked here so a
/// bad request never reaches the Raft log).
fn check_text(field: &'static str, value: &str) -> Result<(), ApiError> {
    if value.trim().is_empty() || value.len() > 128 || value.chars().any(char::is_control) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_id",
            format!("{field} must be 1 to 128 bytes without control characters"),
            Some(field),
        ));
    }
    Ok(())
}
