//! The local HTTP/JSON API for POS apps (loopback by default).
//!
//! - [`sales`]: create, get, list, void and refund sales.
//! - [`orders`]: shared orders (open tabs): create, edit, close.
//! - [`alerts`]: manager alerts (close conflicts, refunds and voids that clash on merge).
//! - [`card_sales`]: card tenders with card data (online authorization, offline limits),
//!   the offline card budget and the store-and-forward queue.
//! - [`gift_cards`]: gift cards through the store's Raft group.
//! - [`days`]: day close (a consistent cut through Raft) and the Z-report.
//! - [`staff`]: operators (roles, Argon2id PINs), shifts and tax rates through Raft.
//! - [`pin_unlock`]: PIN checks under the device's lockout; a manager's unlock.
//! - [`operator_auth`]: who may change the operators (authorising operator and PIN).
//! - [`store_devices`]: manager commands on the store's membership (remove a device).
//! - [`revocations`]: revoke a device certificate by serial through Raft (the mesh
//!   refuses it from the committed point on).
//! - [`write_bar`]: a device removed from the store (403 `device_retired`) or whose id has
//!   history elsewhere that it does not hold (wiped and restarted under its old id: 409
//!   `device_identity_conflict`) refuses every write.
//! - [`catalog`]: catalog lookup.
//! - [`reports`]: takings per business date.
//! - [`health`]: liveness, Prometheus metrics, the OpenAPI document.
//! - [`body`]: parsing JSON bodies and the Idempotency-Key header.
//! - [`query`]: query strings: a parameter an operation does not take is refused, a
//!   malformed one named.
//! - [`dto`]: the JSON shapes.
//! - [`error`]: the JSON error answer.
//! - [`openapi`]: the OpenAPI 3 document, generated from the handlers.

pub mod alerts;
pub mod body;
pub mod card_sales;
pub mod catalog;
pub mod days;
pub mod dto;
pub mod error;
pub mod gift_cards;
pub mod health;
pub mod openapi;
pub mod operator_auth;
pub mod orders;
pub mod pin_unlock;
pub mod query;
pub mod reports;
pub mod revocations;
pub mod sales;
pub mod staff;
pub mod store_devices;
pub mod write_bar;

use crate::runtime::NodeContext;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, patch, post, put};
use axum::Router;
use std::sync::Arc;

/// The sales API's routes.
pub fn router(node: Arc<NodeContext>) -> Router {
    Router::new()
        .route("/v1/sales", post(sales::create_sale).get(sales::list_sales))
        .route("/v1/sales/{device}/{seq}", get(sales::get_sale))
        .route("/v1/sales/{device}/{seq}/void", post(sales::void_sale))
        .route("/v1/sales/{device}/{seq}/refunds", post(sales::refund_sale))
        .route("/v1/journal", get(sales::list_journal))
        .route("/v1/devices", get(sales::list_devices))
        .route(
            "/v1/orders",
            post(orders::create_order).get(orders::list_orders),
        )
        .route(
            "/v1/orders/{order}",
            get(orders::get_order).patch(orders::update_order),
        )
        .route("/v1/orders/{order}/lines", post(orders::add_line))
        .route(
            "/v1/orders/{order}/lines/{line}",
            patch(orders::set_quantity).delete(orders::remove_line),
        )
        .route("/v1/orders/{order}/close", post(orders::close_order))
        .route("/v1/alerts", get(alerts::list_alerts))
        .route("/v1/days/{date}/close", post(days::close_day))
        .route("/v1/reports/z/{date}", get(days::z))
        .route(
            "/v1/store/devices/{device}/remove",
            post(store_devices::remove_device),
        )
        .route(
            "/v1/store/certificates/{serial}/revoke",
            post(revocations::revoke_certificate),
        )
        .route("/v1/gift-cards", post(gift_cards::issue))
        .route("/v1/gift-cards/{card}", get(gift_cards::balance))
        .route(
            "/v1/gift-cards/{card}/redemptions",
            post(gift_cards::redeem),
        )
        .route(
            "/v1/operators",
            post(staff::set_operator).get(staff::list_operators),
        )
        .route("/v1/operators/{id}/verify-pin", post(staff::verify_pin))
        .route("/v1/operators/{id}/unlock", post(pin_unlock::unlock))
        .route("/v1/operators/{id}/disable", post(staff::disable_operator))
        .route(
            "/v1/shifts",
            post(staff::open_shift).get(staff::list_shifts),
        )
        .route("/v1/shifts/{id}/close", post(staff::close_shift))
        .route(
            "/v1/tax-rates",
            post(staff::set_tax_rates).get(staff::list_tax_rates),
        )
        .route("/v1/catalog", get(catalog::get_catalog))
        .route(
            "/v1/payments/exposure-budget",
            put(card_sales::set_exposure_budget),
        )
        .route(
            "/v1/payments/exposure-allotments/{device}",
            put(card_sales::set_exposure_allotment),
        )
        .route("/v1/payments/queue", get(card_sales::queue))
        .route("/v1/payments/qr", post(card_sales::create_qr))
        .route("/v1/payments/qr/{id}/confirm", post(card_sales::confirm_qr))
        .route("/v1/catalog/{sku}", get(catalog::get_item))
        .route("/v1/reports/days", get(reports::day_totals))
        .route("/health", get(health::health))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(openapi::document))
        .route_layer(axum::middleware::from_fn(query::refuse_unknown_parameters))
        .fallback(health::not_found)
        .method_not_allowed_fallback(health::method_not_allowed)
        .layer(DefaultBodyLimit::max(body::REQUEST_BODY_BYTES_MAX))
        .layer(axum::middleware::from_fn_with_state(
            node.clone(),
            write_bar::refuse_writes_when_barred,
        ))
        .with_state(node)
}
