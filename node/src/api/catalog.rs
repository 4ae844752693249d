//! Catalog lookup.

use super::error::{ApiError, ErrorBody};
use crate::runtime::NodeContext;
use axum::extract::{Path, State};
use axum::Json;
use posmesh_domain::{CatalogItem, TaxClass};
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;

/// The catalog in force.
#[derive(Serialize, ToSchema)]
pub struct CatalogView {
    /// Catalog version (recorded on every sale priced with it).
    pub version: u64,
    /// ISO 4217 currency of all prices.
    pub currency: String,
    /// Cash rounding increment, minor units, if the store rounds cash payments.
    pub cash_rounding_increment_minor: Option<i64>,
    /// Tax classes.
    #[schema(value_type = Vec<Object>)]
    pub tax_classes: Vec<TaxClass>,
    /// Items in SKU order; `price_minor` is tax-inclusive.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<CatalogItem>,
}

/// The whole catalog.
#[utoipa::path(get, tag = "Catalog", path = "/v1/catalog", responses((status = 200, body = CatalogView)))]
pub async fn get_catalog(State(node): State<Arc<NodeContext>>) -> Json<CatalogView> {
    let catalog = node.catalog_now();
    let mut tax_classes: Vec<TaxClass> = catalog
        .items()
        .filter_map(|item| catalog.tax_class(&item.tax_class).cloned())
        .collect();
    tax_classes.sort_by(|a, b| a.id.cmp(&b.id));
    tax_classes.dedup_by(|a, b| a.id == b.id);
    Json(CatalogView {
        version: catalog.version(),
        currency: catalog.currency().code().to_owned(),
        cash_rounding_increment_minor: catalog.cash_rounding_increment_minor(),
        tax_classes,
        items: catalog.items().cloned().collect(),
    })
}

/// One catalog item.
#[utoipa::path(get, tag = "Catalog", path = "/v1/catalog/{sku}", params(("sku" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub async fn get_item(
    State(node): State<Arc<NodeContext>>,
    Path(sku): Path<String>,
) -> Result<Json<CatalogItem>, ApiError> {
    node.catalog_now()
        .item(&sku)
        .cloned()
        .map(Json)
        .ok_or_else(|| {
            ApiError::not_found(
                "unknown_sku",
                format!("no catalog item with SKU {sku:?}"),
                Some("sku"),
            )
        })
}
