//! A device whose id the store holds history of that its journal does not (a wiped till
//! restarted under its old id, [`crate::replication::identity_conflict`]) takes no writes:
//! every request but `GET`/`HEAD` is refused with 409 `device_identity_conflict` saying
//! what to do (enrol the till as a new device with a new id). Reads still answer.

use super::error::ApiError;
use crate::replication::identity_conflict::IDENTITY_CONFLICT_CODE;
use crate::runtime::NodeContext;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Middleware: refuses every request but `GET`/`HEAD` once this device learned of an
/// identity conflict: 409 `device_identity_conflict`, nothing changed.
pub async fn refuse_writes_on_identity_conflict(
    State(node): State<Arc<NodeContext>>,
    request: Request,
    next: Next,
) -> Response {
    let reads = request.method() == Method::GET || request.method() == Method::HEAD;
    if !reads {
        if let Some(conflict) = node
            .replication
            .as_ref()
            .and_then(|replication| replication.identity_conflict())
        {
            return ApiError::new(
                StatusCode::CONFLICT,
                IDENTITY_CONFLICT_CODE,
                conflict.to_string(),
                None,
            )
            .into_response();
        }
    }
    next.run(request).await
}
