//! The management API (loopback by default): what `posmesh status` shows. Later
//! milestones add peers, Raft and uplink state here.

use crate::runtime::NodeContext;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// `GET /v1/status` answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Store id.
    pub store_id: String,
    /// Store name.
    pub store_name: String,
    /// Device id.
    pub device_id: String,
    /// Device incarnation.
    pub device_incarnation: u64,
    /// posmesh version.
    pub version: String,
    /// Seconds since the node started.
    pub uptime_s: u64,
    /// Operating-system process id.
    pub pid: u32,
    /// The local journal.
    pub journal: JournalStatus,
    /// Mesh peers (the mesh milestone fills this).
    pub peers: Vec<serde_json::Value>,
}

/// The local journal's head and writer counters.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JournalStatus {
    /// Last sequence number.
    pub last_seq: u64,
    /// Last receipt number.
    pub last_receipt_no: u64,
    /// Chain hash of the last entry, hex.
    pub head_hash: String,
    /// Synced group commits since start.
    pub group_commits: u64,
    /// Entries appended since start.
    pub entries_appended: u64,
}

/// The management routes.
pub fn router(node: Arc<NodeContext>) -> Router {
    Router::new()
        .route("/v1/status", get(status))
        .with_state(node)
}

async fn status(
    State(node): State<Arc<NodeContext>>,
) -> Result<Json<NodeStatus>, crate::api::error::ApiError> {
    let head = node
        .store
        .head()
        .map_err(crate::api::error::ApiError::internal)?;
    let stats = node.writer.stats();
    Ok(Json(NodeStatus {
        store_id: node.identity.store_id.clone(),
        store_name: node.store_name.clone(),
        device_id: node.identity.device_id.clone(),
        device_incarnation: node.identity.device_incarnation,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        uptime_s: node.started.elapsed().as_secs(),
        pid: std::process::id(),
        journal: JournalStatus {
            last_seq: head.last_seq,
            last_receipt_no: head.last_receipt_no,
            head_hash: hex::encode(&head.head_hash),
            group_commits: stats.group_commits.load(Ordering::Relaxed),
            entries_appended: stats.entries_appended.load(Ordering::Relaxed),
        },
        peers: Vec::new(),
    }))
}
