//! Liveness and metrics.

use super::error::ApiError;
use crate::runtime::NodeContext;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;

/// `GET /health` answer.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok` when the node takes sales.
    pub status: &'static str,
    /// Store id.
    pub store_id: String,
    /// Device id.
    pub device_id: String,
}

/// Liveness: answers while the node takes sales.
#[utoipa::path(get, tag = "Health", path = "/health", responses((status = 200, body = Health)))]
pub async fn health(State(node): State<Arc<NodeContext>>) -> Json<Health> {
    Json(Health {
        status: "ok",
        store_id: node.identity.store_id.clone(),
        device_id: node.identity.device_id.clone(),
    })
}

/// Prometheus text exposition of the node's metrics.
#[utoipa::path(get, tag = "Health", path = "/metrics", responses((status = 200, body = String)))]
pub async fn metrics(State(node): State<Arc<NodeContext>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        node.metrics.render(),
    )
}

/// Unknown path: a JSON 404 like every other error.
pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_such_endpoint",
        "no such endpoint; see /openapi.json",
        None,
    )
}

/// Known path, wrong method: a JSON 405 like every other error.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that HTTP method; see /openapi.json",
        None,
    )
}
