//! `GET /v1/alerts`: what a manager must look at — orders closed on two devices, refunds
//! and voids that clash once a partition heals, a peer in another Raft group, this device
//! removed from the store, two keys claiming one device id, a device that lost its Raft
//! state, a revoked certificate (this device's or the cloud's), offline card payments that
//! the forwarder cannot forward (no `--acquirer`).

use super::error::ApiError;
use crate::runtime::NodeContext;
use axum::extract::State;
use axum::Json;
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;

/// One alert.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertDto {
    /// `order_close_conflict`, `over_refund`, `double_void`, `refund_of_voided_sale`,
    /// `void_of_refunded_sale`, `raft_group_mismatch` (a peer in another Raft group),
    /// `device_retired` (this device was removed from the store), `device_key_conflict`
    /// (a second chain-head key claimed for the device named in `subject`, refused) or
    /// `device_identity_conflict` (this device's id has history it does not hold: wiped
    /// and restarted under its old id; it takes no sales), `raft_state_lost` (this device
    /// lost its Raft state: it refuses its old seat in the store's Raft group) or
    /// `raft_member_lost` (the device named in `subject` lost its Raft state: it no longer
    /// counts, and the leader takes it out of the Raft group), `certificate_revoked` (this
    /// device's certificate was revoked store-wide: it takes no writes and stops its uplink;
    /// `subject` is this device; the message names the serial; it stays under a new
    /// certificate for the same id — the till is enrolled again under a new id, with an
    /// empty data directory) or
    /// `cloud_certificate_revoked` (the cloud presents a certificate the store revoked: the
    /// uplink refuses it; `subject` is the cloud's identity), or
    /// `saf_forwarding_stalled` (this device is the store's forwarder — the Raft leader —
    /// and offline card payments are queued, but it runs without `--acquirer`, so none is
    /// forwarded; `subject` is this device; cleared when the queue empties, another device
    /// leads or it restarts with `--acquirer`), `saf_declined` (an offline card payment
    /// was declined by the acquirer after forwarding: collect the money another way;
    /// `subject` is `device/seq#tender`) or `saf_expiry_<N>h` (an offline card payment
    /// still unforwarded nears the acquirer's N-hour store-and-forward limit; see the
    /// payments configuration).
    pub kind: String,
    /// The order id or sale ("device/seq") concerned.
    pub subject: String,
    /// What happened and what was done.
    pub message: String,
    /// When this device raised it, ms since the Unix epoch.
    pub raised_at_ms: i64,
}

/// `GET /v1/alerts` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertList {
    /// Alerts by kind, then subject.
    pub alerts: Vec<AlertDto>,
}

/// Every alert this device holds.
#[utoipa::path(get, tag = "Alerts", path = "/v1/alerts", responses((status = 200, body = AlertList)))]
pub async fn list_alerts(
    State(node): State<Arc<NodeContext>>,
) -> Result<Json<AlertList>, ApiError> {
    let alerts = tokio::task::spawn_blocking(move || node.store.alerts())
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(Json(AlertList {
        alerts: alerts
            .into_iter()
            .map(|a| AlertDto {
                kind: a.kind,
                subject: a.subject,
                message: a.message,
                raised_at_ms: a.raised_at_ms,
            })
            .collect(),
    }))
}
