//! The OpenAPI 3 document of the local API, generated from the handlers' annotations.

use axum::Json;
use utoipa::OpenApi;

/// The API's OpenAPI description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "posmesh device API",
        description = "Local sales API of a posmesh node. \
        Amounts are integer minor units of an ISO 4217 currency. Writes need an \
        Idempotency-Key header and are answered once durable."
    ),
    paths(
        super::sales::create_sale,
        super::sales::get_sale,
        super::sales::list_sales,
        super::sales::list_journal,
        super::sales::list_devices,
        super::sales::void_sale,
        super::sales::refund_sale,
        super::orders::create_order,
        super::orders::list_orders,
        super::orders::get_order,
        super::orders::add_line,
        super::orders::set_quantity,
        super::orders::remove_line,
        super::orders::update_order,
        super::orders::close_order,
        super::alerts::list_alerts,
        super::store_devices::remove_device,
        super::revocations::revoke_certificate,
        super::days::close_day,
        super::days::z,
        super::gift_cards::issue,
        super::gift_cards::redeem,
        super::gift_cards::balance,
        super::catalog::get_catalog,
        super::catalog::get_item,
        super::reports::day_totals,
        super::health::health,
        super::health::metrics,
        super::staff::set_operator,
        super::staff::list_operators,
        super::staff::disable_operator,
        super::staff::verify_pin,
        super::staff::open_shift,
        super::staff::close_shift,
        super::staff::list_shifts,
        super::staff::set_tax_rates,
        super::staff::list_tax_rates,
        super::card_sales::set_exposure_budget,
        super::card_sales::set_exposure_allotment,
        super::card_sales::queue,
        super::card_sales::create_qr,
        super::card_sales::confirm_qr,
        super::pin_unlock::unlock,
    )
)]
pub struct ApiDoc;

/// `GET /openapi.json`.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
