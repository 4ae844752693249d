//! Day close and the Z-report: `POST /v1/days/{date}/close` (with an `Idempotency-Key`)
//! commits the close through the store's Raft group with this device's ledger version
//! vector as the cut;
//! `GET /v1/reports/z/{date}` computes the Z-report over exactly that cut (identical on
//! every device that holds the entries, see [`crate::report::z_report`]).

use super::body::{idempotency_key, request_hash};
use super::error::{ApiError, ErrorBody};
use super::gift_cards::{idempotent, refused, replayed};
use crate::report::z_report::{z_report, ZReport};
use crate::runtime::NodeContext;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use posmesh_consensus::{StoreCommand, StoreResponse};
use std::sync::Arc;
use std::time::Duration;

/// Closes a business day for the whole store, once per Idempotency-Key: a retry with the
/// same key answers the first close again (200, `Idempotent-Replayed: true`, the same cut),
/// the key used for another request 409 `idempotency_key_reused`; a close of a closed day
/// under a new key 409 `day_already_closed`.
#[utoipa::path(post, tag = "Reports", path = "/v1/days/{date}/close", params(("X-Operator-Id" = Option<String>, Header, description = "the authorising operator (omit both headers only while the store has no operator)"), ("X-Operator-Pin" = Option<String>, Header, description = "their PIN"), ("date" = String, Path, description = "YYYY-MM-DD"),
        ("Idempotency-Key" = String, Header, description = "unique per close attempt, store-wide")),
    responses((status = 201, description = "closed: the log index and the cut"),
              (status = 200, description = "replay of an earlier close with this key (`Idempotent-Replayed: true`)"),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody, description = "`operator_required` (no X-Operator-Id / X-Operator-Pin once the store has operators), `pin_mismatch`"),
              (status = 403, body = ErrorBody, description = "`role_forbidden`: the operator's role may not (see the README's role matrix)"),
              (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
              (status = 429, body = ErrorBody, description = "`pin_locked`: the authorising operator is locked out on this device")))]
pub async fn close_day(
    State(node): State<Arc<NodeContext>>,
    Path(date): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // The date first: a bad one is refused alike with and without the store mesh.
    check_date(&date)?;
    check_not_before_sales(&node, &date)?;
    let by = super::operator_auth::operator_for(&node, &headers, "close the day").await?;
    let key = idempotency_key(&headers)?;
    let hash = request_hash("close_day", &date, &serde_json::Value::Null);
    let (_, today) = node.dated(None)?;
    if date > today {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "day_not_over",
            format!("{date} is after today's business date {today}: only a day that has begun can be closed"),
            Some("date"),
        ));
    }
    let raft = node.raft.as_ref().ok_or_else(no_consensus)?;
    let store = node.store.clone();
    let cut = tokio::task::spawn_blocking(move || store.stored_version_vector())
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let command = StoreCommand::CloseDay {
        business_date: date.clone(),
        version_vector: cut.clone(),
    };
    let command = super::operator_auth::authorised(&node, by, idempotent(key, &hash, command))?;
    let (index, response) = raft
        .write(command)
        .await
        .map_err(super::gift_cards::no_quorum)?;
    match response {
        StoreResponse::Applied(_) => Ok((
            StatusCode::CREATED,
            Json(serde_json::json!({"business_date": date, "closed_at_index": index, "cut": cut})),
        )
            .into_response()),
        StoreResponse::Replayed {
            applied_at_index, ..
        } => {
            // The first close's cut, as recorded (this request's own cut may be newer);
            // a follower applies the entry a moment after the leader answered.
            raft.wait_applied(index, Duration::from_secs(2)).await;
            let (cut, _) = raft.day_close(&date).ok_or_else(|| {
                ApiError::internal(format!("the close of {date} replayed but is not recorded"))
            })?;
            Ok(replayed(Json(serde_json::json!({
                "business_date": date, "closed_at_index": applied_at_index, "cut": cut
            }))))
        }
        StoreResponse::Refused(refusal) => Err(refused(&refusal)),
        StoreResponse::None => Err(ApiError::internal(
            "the store's state machine gave no answer",
        )),
    }
}

/// The Z-report of a closed day.
#[utoipa::path(get, tag = "Reports", path = "/v1/reports/z/{date}", params(("date" = String, Path, description = "YYYY-MM-DD")),
    responses((status = 200, body = ZReport), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn z(
    State(node): State<Arc<NodeContext>>,
    Path(date): Path<String>,
) -> Result<Json<ZReport>, ApiError> {
    check_date(&date)?;
    let raft = node.raft.as_ref().ok_or_else(no_consensus)?;
    raft.day_close(&date).ok_or_else(|| {
        ApiError::not_found(
            "day_not_closed",
            format!("{date} is not closed (or its close has not reached this device yet)"),
            None,
        )
    })?;
    let store = node.store.clone();
    let closes = raft.day_closes();
    let report = tokio::task::spawn_blocking(move || z_report(&store, &date, &closes))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(Json(report))
}

fn check_date(date: &str) -> Result<(), ApiError> {
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map(|_| ())
        .map_err(|e| {
            ApiError::bad_request(
                "invalid_date",
                format!("{date:?} is not YYYY-MM-DD: {e}"),
                Some("date"),
            )
        })
}

/// Refuses a date before the earliest business date any sale can carry (the business date
/// of [`super::sales::OCCURRED_AT_MIN_MS`], 2000-01-01 UTC, in the store's calendar): such a
/// day cannot hold a sale, and closing it is a typo (`1970-01-01`) that would stay in the
/// store's Raft log for good.
fn check_not_before_sales(node: &NodeContext, date: &str) -> Result<(), ApiError> {
    let earliest = node
        .calendar
        .business_date(super::sales::OCCURRED_AT_MIN_MS)
        .map_err(ApiError::internal)?
        .to_string();
    if date < earliest.as_str() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "date_too_old",
            format!("{date} is before {earliest}, the earliest business date a sale can carry: check the date"),
            Some("date"),
        ));
    }
    Ok(())
}

fn no_consensus() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "consensus_unavailable",
        "this device runs without the store mesh (no --identity-dir): closing a day needs the store's Raft group",
        None,
    )
}
