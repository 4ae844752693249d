//! A retired device takes no writes: once this device learned it was removed from the
//! store ([`crate::consensus::retirement`]), every request that would write — sales,
//! voids, refunds, orders, card payments, gift cards, staff, day close, membership — is
//! refused with 403 `device_retired` saying what to do (enrol the till again as a new
//! device). Reads (`GET`, `HEAD`) still answer, so a manager can see what it holds.

use super::error::ApiError;
use crate::consensus::retirement::RETIRED_CODE;
use crate::runtime::NodeContext;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// The refusal of a write on a retired device: 403 `device_retired`, nothing changed.
pub fn retired_refusal(message: String) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, RETIRED_CODE, message, None)
}

/// Middleware: refuses every request but `GET`/`HEAD` once this device is retired.
pub async fn refuse_writes_when_retired(
    State(node): State<Arc<NodeContext>>,
    request: Request,
    next: Next,
) -> Response {
    let reads = request.method() == Method::GET || request.method() == Method::HEAD;
    if !reads {
        if let Some(retirement) = node.raft.as_ref().and_then(|raft| raft.retirement()) {
            return retired_refusal(retirement.to_string()).into_response();
        }
    }
    next.run(request).await
}
