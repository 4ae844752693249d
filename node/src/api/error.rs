//! The API's error answer: every refusal is a 4xx/5xx JSON body
//! `{"error": {"code": "...", "message": "...", "field": "..."}}` with a stable `code`, a
//! message a person can act on, and the JSON path or header that is wrong (or null).

use crate::storage::writer::AppendError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use posmesh_domain::SaleError;
use serde::Serialize;
use utoipa::ToSchema;

/// A refused request.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code (snake_case).
    pub code: &'static str,
    /// What is wrong, for a person.
    pub message: String,
    /// JSON path (`lines[2].quantity`) or header name of the offending input.
    pub field: Option<String>,
}

/// JSON shape of an error answer.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The error itself.
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable code, e.g. `unknown_sku`, `tenders_short`, `malformed_json`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// Offending field (JSON path) or header, if one.
    pub field: Option<String>,
}

impl ApiError {
    /// A refusal with the given status, code, message and field.
    pub fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
        field: Option<&str>,
    ) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: field.map(str::to_owned),
        }
    }

    /// 400 Bad Request.
    pub fn bad_request(
        code: &'static str,
        message: impl Into<String>,
        field: Option<&str>,
    ) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message, field)
    }

    /// 404 Not Found.
    pub fn not_found(code: &'static str, message: impl Into<String>, field: Option<&str>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message, field)
    }

    /// 500, for storage reads that failed (logged).
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "request failed inside the node");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            error.to_string(),
            None,
        )
    }
}

impl From<SaleError> for ApiError {
    fn from(error: SaleError) -> Self {
        let field = error.field();
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: error.code(),
            message: error.to_string(),
            field: Some(field),
        }
    }
}

impl From<AppendError> for ApiError {
    fn from(error: AppendError) -> Self {
        let message = error.to_string();
        match error {
            AppendError::IdempotencyConflict { .. } => Self::new(
                StatusCode::CONFLICT,
                "idempotency_key_reused",
                message,
                Some("Idempotency-Key"),
            ),
            AppendError::UnknownSale(_) => {
                Self::new(StatusCode::NOT_FOUND, "sale_not_found", message, None)
            }
            AppendError::NotASale(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "not_a_sale",
                message,
                None,
            ),
            AppendError::SaleVoided(_) => {
                Self::new(StatusCode::CONFLICT, "sale_voided", message, None)
            }
            AppendError::SaleHasRefunds(_) => {
                Self::new(StatusCode::CONFLICT, "sale_has_refunds", message, None)
            }
            AppendError::OrderClosed { .. } => {
                Self::new(StatusCode::CONFLICT, "order_closed", message, None)
            }
            AppendError::Refund(sale_error) => sale_error.into(),
            AppendError::Storage(_) => {
                tracing::error!(%message, "journal write refused");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    format!("{message}; nothing was recorded, retry with the same Idempotency-Key"),
                    None,
                )
            }
            _ => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                message,
                None,
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        metrics::counter!("posmesh_api_errors_total", "code" => self.code).increment(1);
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                field: self.field,
            },
        };
        (self.status, Json(body)).into_response()
    }
}
