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
use axum::response::{IntoResponse, Response};
use axum::Json;
use posmesh_consensus::staff::Role;
use posmesh_consensus::{Outcome, StoreResponse};
use std::sync::Arc;

/// Whether this device's ledger holds entries of `device` (a device the store has seen,
/// even if it never joined the Raft group).
///
/// # Errors
/// 500 `storage` when the ledger cannot be read.
pub(crate) fn holds_entries_of(node: &NodeContext, device: &str) -> Result<bool, ApiError> {
    let devices = node.store.devices().map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "storage",
            e.to_string(),
            None,
        )
    })?;
    Ok(devices.iter().any(|d| d == device))
}

/// The answer to a removal: `{removed, log_index, outcome, retired_at_index,
/// already_removed}`. `log_index`: the index of this removal's retirement entry (of the
/// first send's, for a replay); `retired_at_index`: the index the device was first retired
/// at. They differ when the device had been removed before this removal — by another
/// request, under another key or none — and `already_removed` says so: the entry changed
/// nothing (a retirement is never undone, never redone). A replay under the key of the
/// removal that retired it says `false` again, as the first answer did.
/// `certificates_revoked`: the device's certificates this device knows revoked through the
/// store's Raft, `[{serial, effective_index}]` (empty when none is known).
pub fn removal_body(
    device: &str,
    log_index: u64,
    outcome: &Outcome,
    certificates_revoked: &[(String, u64)],
) -> serde_json::Value {
    let retired_at_index = match outcome {
        Outcome::DeviceRetired {
            retired_at_index, ..
        } => Some(*retired_at_index),
        _ => None,
    };
    serde_json::json!({
        "removed": device,
        "log_index": log_index,
        "outcome": outcome,
        "retired_at_index": retired_at_index,
        "already_removed": retired_at_index.is_some_and(|at| at != log_index),
        "certificates_revoked": certificates_revoked
            .iter()
            .map(|(serial, at)| serde_json::json!({"serial": serial, "effective_index": at}))
            .collect::<Vec<_>>(),
    })
}

/// Removes a device from the store, on the authority of a manager or admin
/// (`X-Operator-Id` / `X-Operator-Pin`; none needed while the store has no operator).
/// 200 [`removal_body`]: the retirement's log index and outcome (`device_retired`, with
/// `retired_at_index`), and `already_removed: true` when the device had been removed
/// before (nothing changed; `retired_at_index` says when). Before the retirement, the
/// device's offline card allotment, if any, is set to 0 through the store's log, so it
/// stops counting against the exposure budget
/// ([`crate::consensus::RaftService::remove_device`]). With an `Idempotency-Key`, a retry under the same key answers the
/// first removal again (200, `Idempotent-Replayed: true`, the same index and outcome;
/// nothing applied twice, even if the operator was disabled in between); the same key for
/// another removal or another request is 409 `idempotency_key_reused` and changes nothing.
/// Without the header the device keys the removal itself. 409 `last_voter` (permanent,
/// nothing changed) when the device is the store's only voter: promote another device
/// first, or force a membership.
#[utoipa::path(post, tag = "Store", path = "/v1/store/devices/{device}/remove", params(("X-Operator-Id" = Option<String>, Header, description = "the authorising operator (omit both headers only while the store has no operator)"), ("X-Operator-Pin" = Option<String>, Header, description = "their PIN"),
        ("Idempotency-Key" = Option<String>, Header, description = "optional, unique per attempt store-wide: a retry with the same key answers the first removal; without it the device keys the write itself"),
        ("device" = String, Path)),
    responses((status = 200, description = "retired and removed: `{removed, log_index, outcome, retired_at_index, already_removed, certificates_revoked}`; `certificates_revoked`: the device's certificates known here to be revoked through Raft (`[{serial, effective_index}]`); `already_removed: true` (and `retired_at_index` below `log_index`): the device had been removed before, nothing changed; with `Idempotent-Replayed: true`, the replay of an earlier request with this key (its first answer again). The device's offline card allotment is released first (set to 0 through Raft)"),
              (status = 400, body = ErrorBody, description = "`invalid_device_id`, `invalid_idempotency_key`"),
              (status = 401, body = ErrorBody, description = "`operator_required`, `pin_mismatch`"),
              (status = 403, body = ErrorBody, description = "`role_forbidden`: not a manager or admin"),
              (status = 404, body = ErrorBody, description = "`unknown_device`"),
              (status = 409, body = ErrorBody, description = "`last_voter`, `remove_self`; `idempotency_key_reused`: the key was used for another request"),
              (status = 503, body = ErrorBody),
              (status = 429, body = ErrorBody, description = "`pin_locked`: the authorising operator is locked out on this device")))]
pub async fn remove_device(
    State(node): State<Arc<NodeContext>>,
    Path(device): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let by = super::operator_auth::operator_for(&node, &headers, "remove a device").await?;
    super::operator_auth::require_role(&node, by.as_deref(), Role::Manager, "remove a device")?;
    let key = super::body::optional_idempotency_key(&headers)?;
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
    if !holds_entries_of(&node, &device)? && !raft.knows_device(&device) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_device",
            format!(
                "{device} is not a member of this store's Raft group and has recorded nothing here: check the id (`posmesh status` lists the members); to shut out an enrolled device that never joined, revoke its certificate (`posmesh ca revoke`)"
            ),
            Some("device"),
        ));
    }
    let (index, response) =
        raft.remove_device(&device, by, key)
            .await
            .map_err(|error| match error {
                RemoveError::LastVoter { .. } => ApiError::new(
                    StatusCode::CONFLICT,
                    "last_voter",
                    error.to_string(),
                    Some("device"),
                ),
                // 503 `no_quorum`, or `outcome_unknown` when the removal may have taken
                // effect.
                RemoveError::Unavailable(why) => super::gift_cards::no_quorum(why),
            })?;
    let revoked = raft.revoked_certificates_of(&device);
    let body = |log_index: u64, outcome: &Outcome| {
        Json(removal_body(&device, log_index, outcome, &revoked))
    };
    match response {
        StoreResponse::Applied(outcome @ Outcome::DeviceRetired { .. }) => {
            Ok(body(index, &outcome).into_response())
        }
        StoreResponse::Replayed {
            applied_at_index,
            outcome: outcome @ Outcome::DeviceRetired { .. },
        } => Ok(super::gift_cards::replayed(body(
            applied_at_index,
            &outcome,
        ))),
        StoreResponse::Refused(refusal) => Err(super::gift_cards::refused(&refusal)),
        other => Err(ApiError::internal(format!(
            "the store's state machine answered a removal with {other:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::removal_body;
    use posmesh_consensus::Outcome;

    fn retired(at: u64) -> Outcome {
        Outcome::DeviceRetired {
            device_id: "till-3".into(),
            retired_at_index: at,
        }
    }

    /// A removal that retired the device says so; one of a device retired before says it
    /// was already removed, and when.
    #[test]
    fn a_removal_says_whether_it_retired_the_device() {
        let first = removal_body("till-3", 12, &retired(12), &[]);
        assert_eq!(first["already_removed"], false, "{first}");
        assert_eq!(first["retired_at_index"], 12, "{first}");
        let again = removal_body("till-3", 20, &retired(12), &[("0c".into(), 9)]);
        assert_eq!(again["already_removed"], true, "{again}");
        assert_eq!(again["retired_at_index"], 12, "{again}");
        assert_eq!(again["log_index"], 20, "{again}");
        assert_eq!(
            first["certificates_revoked"],
            serde_json::json!([]),
            "{first}"
        );
        assert_eq!(
            again["certificates_revoked"],
            serde_json::json!([{"serial": "0c", "effective_index": 9}]),
            "{again}"
        );
    }
}
