//! Manager commands on the store's membership: `POST /v1/store/devices/{device}/remove`
//! retires a device for good (destroyed or replaced till — a replacement gets a new id)
//! and takes it out of the store's Raft group. Its certificate should also be revoked
//! (`posmesh ca revoke`) so the mesh refuses it. A removed device that is still running
//! finds out and refuses writes ([`crate::consensus::retirement`]).

use super::error::{ApiError, ErrorBody};
use crate::config::validate_id;
use crate::consensus::service::RemoveError;
use crate::runtime::NodeContext;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use posmesh_consensus::staff::Role;
use std::sync::Arc;

/// Removes a device from the store, on the authority of a manager or admin
/// (`X-Operator-Id` / `X-Operator-Pin`; none needed while the store has no operator).
/// 409 `last_voter` (permanent, nothing changed) when the
/// device is the store's only voter: promote another device first, or force a membership.
#[utoipa::path(post, path = "/v1/store/devices/{device}/remove", params(("X-Operator-Id" = Option<String>, Header, description = "the authorising operator (omit both headers only while the store has no operator)"), ("X-Operator-Pin" = Option<String>, Header, description = "their PIN"), ("device" = String, Path)),
    responses((status = 200, description = "retired and removed"), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody, description = "`operator_required`, `pin_mismatch`"),
              (status = 403, body = ErrorBody, description = "`role_forbidden`: not a manager or admin"),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 503, body = ErrorBody),
              (status = 429, body = ErrorBody, description = "`pin_locked`: the authorising operator is locked out on this device")))]
pub async fn remove_device(
    State(node): State<Arc<NodeContext>>,
    Path(device): Path<String>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let by = super::operator_auth::operator_for(&node, &headers, "remove a device").await?;
    super::operator_auth::require_role(&node, by.as_deref(), Role::Manager, "remove a device")?;
    validate_id("device id", &device)
        .map_err(|e| ApiError::bad_request("invalid_device_id", e.to_string(), Some("device")))?;
    let raft = node.raft.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "consensus_unavailable",
            "this device runs without the store mesh (no --identity-dir)",
            None,
        )
    })?;
    if device == node.identity.device_id {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "remove_self",
            "a device cannot remove itself: ask another device of the store",
            Some("device"),
        ));
    }
    // A typo must not ban an id for good: only a device known to the store's consensus
    // (member, connected or retired) or whose entries this device holds can be removed.
    let seen = node
        .store
        .devices()
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "storage",
                e.to_string(),
                None,
            )
        })?
        .contains(&device);
    if !seen && !raft.knows_device(&device) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_device",
            format!(
                "{device} is not a member of this store's Raft group and has recorded nothing here: check the id (`posmesh status` lists the members); to shut out an enrolled device that never joined, revoke its certificate (`posmesh ca revoke`)"
            ),
            Some("device"),
        ));
    }
    raft.remove_device(&device, by)
        .await
        .map_err(|error| match error {
            RemoveError::LastVoter { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "last_voter",
                error.to_string(),
                Some("device"),
            ),
            // 503 `no_quorum`, or `outcome_unknown` when the removal may have taken effect.
            RemoveError::Unavailable(why) => super::gift_cards::no_quorum(why),
        })?;
    Ok(Json(serde_json::json!({"removed": device})))
}
