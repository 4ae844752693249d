//! Gift cards: issue, redeem, balance — decided through the store's Raft group, so two
//! devices redeeming the same card at once can never both take its balance (no double
//! spend), and a balance read is linearizable. Without a quorum (this device is cut off
//! from most of the store) these answer 503 `no_quorum`; sales go on regardless.

use super::body::{idempotency_key, parse_json, request_hash, IDEMPOTENCY_KEY_HEADER};
use super::error::{ApiError, ErrorBody};
use super::sales::parse_currency;
use crate::runtime::NodeContext;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use posmesh_consensus::{Outcome, StoreCommand, StoreResponse};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

/// `POST /v1/gift-cards` body.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueGiftCardBody {
    /// The card's id (its barcode).
    pub card_id: String,
    /// Initial balance, minor units, > 0.
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
}

/// `POST /v1/gift-cards/{card}/redemptions` body (the `Idempotency-Key` header is the
/// redemption's id: a retry takes nothing twice).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemGiftCardBody {
    /// Amount to take, minor units, > 0.
    pub amount_minor: i64,
}

/// A card's balance.
#[derive(Debug, Serialize, ToSchema)]
pub struct GiftCardBalance {
    /// The card.
    pub card_id: String,
    /// Balance, minor units.
    pub balance_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
}

/// Issues a gift card, once per Idempotency-Key: a retry with the same key and body answers
/// the first outcome again (200, `Idempotent-Replayed: true`), the key with another body
/// 409 `idempotency_key_reused`.
#[utoipa::path(post, tag = "Gift cards", path = "/v1/gift-cards", request_body = IssueGiftCardBody,
    params(("X-Operator-Id" = Option<String>, Header, description = "the authorising operator (omit both headers only while the store has no operator)"), ("X-Operator-Pin" = Option<String>, Header, description = "their PIN"), ("Idempotency-Key" = String, Header, description = "unique per issue attempt, store-wide")),
    responses((status = 201, description = "issued (the committed outcome)"),
              (status = 200, description = "replay of an earlier request with this key (`Idempotent-Replayed: true`)"),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody, description = "`operator_required` (no X-Operator-Id / X-Operator-Pin once the store has operators), `pin_mismatch`"),
              (status = 403, body = ErrorBody, description = "`role_forbidden`: the operator's role may not (see the README's role matrix)"),
              (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
              (status = 429, body = ErrorBody, description = "`pin_locked`: the authorising operator is locked out on this device")))]
pub async fn issue(
    State(node): State<Arc<NodeContext>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let by = super::operator_auth::operator_for(&node, &headers, "issue a gift card").await?;
    let key = idempotency_key(&headers)?;
    let body: IssueGiftCardBody = parse_json(&headers, body)?;
    let hash = request_hash("issue_gift_card", "", &body);
    let currency = parse_currency(&body.currency)?;
    if currency != node.catalog.currency() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "currency_mismatch",
            format!(
                "the store sells in {}, not {}",
                node.catalog.currency().code(),
                currency.code()
            ),
            Some("currency"),
        ));
    }
    check_card_id(&body.card_id)?;
    check_amount(body.amount_minor)?;
    let command = StoreCommand::IssueGiftCard {
        card_id: body.card_id,
        amount_minor: body.amount_minor,
        currency,
    };
    let command = super::operator_auth::authorised(&node, by, idempotent(key, &hash, command))?;
    decide(&node, command).await
}

/// Redeems an amount from a gift card, exactly once per Idempotency-Key (the redemption's
/// id, store-wide): a retry with the same card and amount answers the first outcome again
/// (200, `Idempotent-Replayed: true`, `replayed: true`), the key with another card or
/// amount 409 `idempotency_key_reused`.
#[utoipa::path(post, tag = "Gift cards", path = "/v1/gift-cards/{card}/redemptions", request_body = RedeemGiftCardBody,
    params(("card" = String, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 201, description = "redeemed (the committed outcome)"),
              (status = 200, description = "replay of an earlier redemption with this key (`Idempotent-Replayed: true`)"),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
pub async fn redeem(
    State(node): State<Arc<NodeContext>>,
    Path(card_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    if key.starts_with(super::card_sales::SALE_REDEMPTION_PREFIX) {
        return Err(ApiError::bad_request(
            "invalid_idempotency_key",
            format!(
                "an Idempotency-Key starting with {:?} is reserved for the gift-card tenders of sales",
                super::card_sales::SALE_REDEMPTION_PREFIX
            ),
            Some("Idempotency-Key"),
        ));
    }
    let body: RedeemGiftCardBody = parse_json(&headers, body)?;
    check_card_id(&card_id)?;
    check_amount(body.amount_minor)?;
    // The key is the redemption's id store-wide: a retry through another till is the same
    // redemption, never a second one.
    decide(
        &node,
        StoreCommand::RedeemGiftCard {
            card_id,
            amount_minor: body.amount_minor,
            redemption_id: key,
        },
    )
    .await
}

/// A card's balance, read linearizably through the leader.
#[utoipa::path(get, tag = "Gift cards", path = "/v1/gift-cards/{card}", params(("card" = String, Path)),
    responses((status = 200, body = GiftCardBalance), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn balance(
    State(node): State<Arc<NodeContext>>,
    Path(card_id): Path<String>,
) -> Result<Json<GiftCardBalance>, ApiError> {
    let raft = node.raft.as_ref().ok_or_else(no_consensus)?;
    match raft.gift_card(&card_id).await.map_err(no_quorum)? {
        Some((balance_minor, currency)) => Ok(Json(GiftCardBalance {
            card_id,
            balance_minor,
            currency,
        })),
        None => Err(ApiError::not_found(
            "gift_card_not_found",
            format!("gift card {card_id:?} was never issued"),
            None,
        )),
    }
}

/// Proposes `command` through the store's Raft group and answers 201 with the committed
/// outcome, or the refusal's precise code.
pub(super) async fn decide(
    node: &NodeContext,
    command: StoreCommand,
) -> Result<Response, ApiError> {
    let raft = node.raft.as_ref().ok_or_else(no_consensus)?;
    let (index, response) = raft.write(command).await.map_err(no_quorum)?;
    match response {
        // A retried redemption: the redemption id is its idempotency key.
        StoreResponse::Applied(
            outcome @ Outcome::GiftCardRedeemed {
                replayed: true,
                applied_at_index,
                ..
            },
        ) => Ok(replayed(Json(
            serde_json::json!({"log_index": applied_at_index, "outcome": outcome}),
        ))),
        StoreResponse::Applied(outcome) => Ok((
            StatusCode::CREATED,
            Json(serde_json::json!({"log_index": index, "outcome": outcome})),
        )
            .into_response()),
        StoreResponse::Replayed {
            applied_at_index,
            outcome,
        } => Ok(replayed(Json(
            serde_json::json!({"log_index": applied_at_index, "outcome": outcome}),
        ))),
        StoreResponse::Refused(refusal) => Err(refused(&refusal)),
        StoreResponse::None => Err(ApiError::internal(
            "the store's state machine gave no answer",
        )),
    }
}

/// `command` under the client's Idempotency-Key `key` and the hash of its request (see
/// [`super::body::request_hash`]): decided once store-wide, a retry replays the outcome.
pub(super) fn idempotent(key: String, hash: &[u8; 32], command: StoreCommand) -> StoreCommand {
    StoreCommand::Idempotent {
        idempotency_key: key,
        request_hash: hex::encode(hash),
        command: Box::new(command),
    }
}

/// `command` under the client's Idempotency-Key when it sent one ([`idempotent`]);
/// otherwise `command` as it is, keyed by the device when it is written
/// ([`crate::consensus::assigned_key`]).
pub(super) fn idempotent_if_keyed(
    key: Option<String>,
    hash: &[u8; 32],
    command: StoreCommand,
) -> StoreCommand {
    match key {
        Some(key) => idempotent(key, hash, command),
        None => command,
    }
}

/// 200 with `Idempotent-Replayed: true`: the answer to a retry of an applied request (the
/// sales API's convention, see [`super::sales`]).
pub(super) fn replayed(body: impl IntoResponse) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        "Idempotent-Replayed",
        axum::http::HeaderValue::from_static("true"),
    );
    response
}

/// The answer to a committed (or pre-checked) refusal: a precise code and status per
/// reason — every [`posmesh_consensus::Refusal`] has its own arm (no catch-all), so a new
/// reason cannot fall back to a vague code.
pub(super) fn refused(refusal: &posmesh_consensus::Refusal) -> ApiError {
    use posmesh_consensus::Refusal as R;
    let (status, code, field) = match refusal {
        R::UnknownGiftCard { .. } => (StatusCode::NOT_FOUND, "gift_card_not_found", None),
        R::GiftCardExists { .. } => (StatusCode::CONFLICT, "gift_card_exists", Some("card_id")),
        R::InsufficientBalance { .. } => (
            StatusCode::CONFLICT,
            "insufficient_balance",
            Some("amount_minor"),
        ),
        R::InvalidAmount { .. } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_amount",
            Some("amount_minor"),
        ),
        R::InvalidId { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_id", None),
        R::InvalidTaxClasses { .. } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_tax_classes",
            Some("rates_bps"),
        ),
        R::InvalidTaxRate { .. } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_tax_rate",
            Some("rates_bps"),
        ),
        R::TaxVersionNotNewer { .. } => (
            StatusCode::CONFLICT,
            "tax_version_not_newer",
            Some("version"),
        ),
        R::InvalidPinHash { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_pin", Some("pin")),
        R::UnknownOperator { .. } => (
            StatusCode::NOT_FOUND,
            "operator_not_found",
            Some("operator_id"),
        ),
        R::ShiftExists { .. } => (StatusCode::CONFLICT, "shift_exists", Some("shift_id")),
        R::ShiftAlreadyOpen { .. } => (StatusCode::CONFLICT, "shift_already_open", None),
        R::UnknownShift { .. } => (StatusCode::NOT_FOUND, "shift_not_found", None),
        R::ShiftAlreadyClosed { .. } => (StatusCode::CONFLICT, "shift_already_closed", None),
        R::InvalidTime { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_time", None),
        R::IdempotencyKeyReused { .. } | R::RedemptionIdReused { .. } => (
            StatusCode::CONFLICT,
            "idempotency_key_reused",
            Some(IDEMPOTENCY_KEY_HEADER),
        ),
        R::DayAlreadyClosed { .. } => (StatusCode::CONFLICT, "day_already_closed", None),
        R::InvalidBusinessDate { .. } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_date",
            Some("date"),
        ),
        R::AuthorisationRequired { .. } => (
            StatusCode::UNAUTHORIZED,
            "operator_required",
            Some(super::operator_auth::OPERATOR_ID_HEADER),
        ),
        R::RoleInsufficient {
            authorised_by: None,
            ..
        } => (StatusCode::FORBIDDEN, "role_forbidden", Some("role")),
        R::RoleInsufficient { .. } => (
            StatusCode::FORBIDDEN,
            "role_forbidden",
            Some(super::operator_auth::OPERATOR_ID_HEADER),
        ),
        R::LastAdmin { .. } => (StatusCode::CONFLICT, "last_admin", Some("role")),
        R::RoleForbidden { .. } => (
            StatusCode::FORBIDDEN,
            "role_forbidden",
            Some(super::operator_auth::OPERATOR_ID_HEADER),
        ),
        R::OperatorRequired { .. } => (
            StatusCode::UNAUTHORIZED,
            "operator_required",
            Some(super::operator_auth::OPERATOR_ID_HEADER),
        ),
        R::OperatorDisabled { .. } => (
            StatusCode::CONFLICT,
            "operator_disabled",
            Some("operator_id"),
        ),
        R::AlreadyRevoked { .. } => (StatusCode::CONFLICT, "already_revoked", Some("serial")),
        R::DeviceRetired { .. } => (StatusCode::CONFLICT, "device_retired", Some("device")),
        R::NoExposureBudget => (StatusCode::CONFLICT, "no_exposure_budget", None),
        R::ExposureBudgetExceeded { .. } => (
            StatusCode::CONFLICT,
            "exposure_budget_exceeded",
            Some("amount_minor"),
        ),
        R::CurrencyMismatch { .. } => (StatusCode::CONFLICT, "currency_mismatch", Some("currency")),
        R::Overflow => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_amount",
            Some("amount_minor"),
        ),
        R::CatalogVersionNotNewer { .. } => (
            StatusCode::CONFLICT,
            "catalog_version_not_newer",
            Some("version"),
        ),
        // Rules versions are adopted by the leader, never through the API; mapped for
        // completeness.
        R::RulesVersionNotNewer { .. } => (
            StatusCode::CONFLICT,
            "rules_version_not_newer",
            Some("version"),
        ),
        R::RulesVersionUnknown { .. } => (
            StatusCode::CONFLICT,
            "rules_version_unknown",
            Some("version"),
        ),
    };
    ApiError::new(status, code, refusal.to_string(), field)
}

/// Card ids: 1–64 printable characters (checked here, so a bad request never reaches the
/// Raft log).
fn check_card_id(card_id: &str) -> Result<(), ApiError> {
    if card_id.is_empty() || card_id.chars().count() > 64 || card_id.chars().any(char::is_control) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_card_id",
            "card_id must be 1 to 64 characters without control characters",
            Some("card_id"),
        ));
    }
    Ok(())
}

/// Amounts: 1 ..= the largest tender (`TENDER_AMOUNT_MAX_MINOR`), minor units.
fn check_amount(amount_minor: i64) -> Result<(), ApiError> {
    if !(1..=posmesh_domain::TENDER_AMOUNT_MAX_MINOR).contains(&amount_minor) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_amount",
            format!(
                "amount_minor must be 1 to {} minor units",
                posmesh_domain::TENDER_AMOUNT_MAX_MINOR
            ),
            Some("amount_minor"),
        ));
    }
    Ok(())
}

pub(super) fn no_consensus() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "consensus_unavailable",
        "this device runs without the store mesh (no --identity-dir): store-wide decisions need it",
        None,
    )
}

/// 503 for a store-wide write that could not be made: `no_quorum`, or `outcome_unknown`
/// when a forwarded write's answer was lost after it was sent; 403 `device_retired` when
/// this device was removed from the store.
pub(super) fn no_quorum(why: String) -> ApiError {
    // Learned while this request was on its way: the device was removed from the store.
    if why.starts_with(crate::consensus::retirement::DEVICE_RETIRED) {
        return super::write_bar::retired_refusal(why);
    }
    // A forwarded write whose answer was lost may have been committed: its own code, so a
    // till retries with the same key instead of taking another tender.
    let code = if why.starts_with(crate::consensus::forwarding::OUTCOME_UNKNOWN) {
        "outcome_unknown"
    } else {
        "no_quorum"
    };
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, why, None)
}

#[cfg(test)]
mod tests {
    use super::refused;
    use posmesh_consensus::Refusal;

    /// A catalog that does not go forward is refused with its own code, naming the
    /// version in force — not a generic `refused`.
    #[test]
    fn a_catalog_version_not_newer_has_its_own_code() {
        let error = refused(&Refusal::CatalogVersionNotNewer {
            current_version: 7,
            current_effective_at_ms: 1_000,
            requested_version: 7,
            requested_effective_at_ms: 2_000,
        });
        assert_eq!(
            (error.status.as_u16(), error.code, error.field.as_deref()),
            (409, "catalog_version_not_newer", Some("version"))
        );
        assert!(error.message.contains("current 7"), "{}", error.message);
    }
}
