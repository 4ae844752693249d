//! Takings per business date.

use super::error::ApiError;
use crate::report::day_totals::DayTotals;
use crate::runtime::NodeContext;
use axum::extract::State;
use axum::Json;
use std::sync::Arc;

/// Totals per business date of every entry in this node's journal.
#[utoipa::path(get, tag = "Reports", path = "/v1/reports/days",
    responses((status = 200, body = Vec<DayTotals>)))]
pub async fn day_totals(
    State(node): State<Arc<NodeContext>>,
) -> Result<Json<Vec<DayTotals>>, ApiError> {
    let totals =
        tokio::task::spawn_blocking(move || crate::report::journal_day_totals(&node.store))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?;
    Ok(Json(totals))
}
