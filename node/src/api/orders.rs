//! Shared order (open tab) endpoints: create, list, get, add / change / remove lines, assign
//! table or customer, close.
//!
//! Orders live in Automerge documents replicated to every device of the store
//! ([`crate::orders`]); any device may edit any open order, and concurrent edits merge.
//! Every edit is durable on this device before it is answered. Creating an order or adding
//! a line needs an Idempotency-Key: the order or line id is derived from it, so a retry
//! answers the same order or line (200) instead of making a second one. Closing records
//! one sale carrying the order id (201, the sale's entry), under the same Idempotency-Key
//! rules as `POST /v1/sales`.

use super::body::{idempotency_key, parse_json, request_hash};
use super::dto::{CreateSaleBody, LineBody, TenderBody};
use super::error::{ApiError, ErrorBody};
use super::query::StrictQuery;
use super::sales::{
    answered_before, record_sale, sale_operator_id, sale_request, written, SaleToRecord,
};
use crate::orders::OrdersError;
use crate::runtime::NodeContext;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use posmesh_domain::{Consumption, Discount};
use posmesh_sync::orders::order_id::derived_id;
use posmesh_sync::orders::{OrderEdit, OrderError, OrderView};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

/// `POST /v1/orders` body.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrderBody {
    /// Table, e.g. "12" (at most 100 characters).
    #[serde(default)]
    pub table: Option<String>,
    /// Customer name or reference (at most 100 characters).
    #[serde(default)]
    pub customer: Option<String>,
    /// First lines, at most 500.
    #[serde(default)]
    pub lines: Vec<OrderLineBody>,
}

/// A line to add: `POST /v1/orders/{id}/lines` body, and the lines of a new order.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderLineBody {
    /// Catalog SKU.
    pub sku: String,
    /// Units, 1..=100000.
    pub quantity: i64,
}

/// `PATCH /v1/orders/{id}/lines/{line}` body.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetQuantityBody {
    /// New units, 1..=100000.
    pub quantity: i64,
}

/// `PATCH /v1/orders/{id}` body: each field given is set; `""` clears it.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrderBody {
    /// Table ("" clears).
    #[serde(default)]
    pub table: Option<String>,
    /// Customer ("" clears).
    #[serde(default)]
    pub customer: Option<String>,
}

/// `POST /v1/orders/{id}/close` body: how the order is paid.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseOrderBody {
    /// ISO 4217 code; must be the catalog's currency.
    pub currency: String,
    /// `take_away` (default) or `eat_in`.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "eat_in")]
    pub consumption: Option<Consumption>,
    /// Sale discount: `{"amount_minor": 50}` or `{"percent_bp": 1000}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub discount: Option<Discount>,
    /// Tenders, as for `POST /v1/sales`.
    pub tenders: Vec<TenderBody>,
    /// Operator who closes the order, recorded as the sale's `operator_id`: the same rule
    /// as `POST /v1/sales` (an operator id's shape, else 422 `invalid_operator_id`; not
    /// checked against the store's operators).
    #[serde(default)]
    pub operator_id: Option<String>,
}

/// `GET /v1/orders` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OrderListQuery {
    /// `open` (default), `closed` or `all`.
    #[serde(default)]
    pub status: Option<String>,
}

/// An order as answered.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderDto {
    /// Store-unique id.
    pub order_id: String,
    /// `open`, or `closed` once a sale closed it.
    pub status: &'static str,
    /// Closing sales as "device/seq" (more than one: a close conflict, see the alerts).
    pub closed_by: Vec<String>,
    /// Device that created the order.
    pub created_by: String,
    /// Creation time, ms since the Unix epoch.
    pub created_at_ms: i64,
    /// Table, if assigned.
    pub table: Option<String>,
    /// Customer, if assigned.
    pub customer: Option<String>,
    /// Lines in the order they were added.
    pub lines: Vec<OrderLineDto>,
}

/// One line of an order.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderLineDto {
    /// Store-unique line id (for changes and removal).
    pub line_id: String,
    /// Catalog SKU.
    pub sku: String,
    /// Catalog name ("" when the SKU left the catalog).
    pub name: String,
    /// Units.
    pub quantity: i64,
    /// Device that added it.
    pub added_by: String,
}

/// `GET /v1/orders` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderList {
    /// Orders by id.
    pub orders: Vec<OrderDto>,
}

/// Creates an order.
#[utoipa::path(post, tag = "Orders", path = "/v1/orders", request_body = CreateOrderBody,
    params(("Idempotency-Key" = String, Header, description = "unique per order")),
    responses((status = 201, body = OrderDto), (status = 200, body = OrderDto, description = "retry: the order made with this key"),
              (status = 400, body = ErrorBody), (status = 422, body = ErrorBody, description = "`unknown_sku`; `quantity_out_of_range`: a quantity outside 1..=100000 (one that is not an integer is 400 `invalid_field`); `too_many_lines`; `invalid_text`")))]
pub async fn create_order(
    State(node): State<Arc<NodeContext>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let body: CreateOrderBody = parse_json(&headers, body)?;
    if body.lines.len() > posmesh_sync::orders::order_doc::ORDER_LINES_MAX {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_many_lines",
            "an order holds at most 500 lines",
            Some("lines"),
        ));
    }
    for (index, line) in body.lines.iter().enumerate() {
        check_line(&node, line, &format!("lines[{index}]"))?;
    }
    let device = node.identity.device_id.clone();
    let order_id = derived_id("order", &device, &key);
    let lines: Vec<OrderEdit> = body
        .lines
        .iter()
        .enumerate()
        .map(|(index, line)| OrderEdit::AddLine {
            line_id: derived_id("line", &device, &format!("{key}#{index}")),
            sku: line.sku.clone(),
            quantity: line.quantity,
        })
        .collect();
    let (at_ms, _) = node.dated(None)?;
    let worker = node.clone();
    let (view, created) = blocking(move || {
        worker.orders.create(
            &order_id,
            at_ms,
            body.table.as_deref().filter(|t| !t.is_empty()),
            body.customer.as_deref().filter(|c| !c.is_empty()),
            &lines,
        )
    })
    .await?;
    let status = if created {
        metrics::counter!("posmesh_orders_created_total").increment(1);
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(dto(&node, view)?)).into_response())
}

/// Lists orders.
#[utoipa::path(get, tag = "Orders", path = "/v1/orders", params(OrderListQuery),
    responses((status = 200, body = OrderList), (status = 400, body = ErrorBody)))]
pub async fn list_orders(
    State(node): State<Arc<NodeContext>>,
    StrictQuery(query): StrictQuery<OrderListQuery>,
) -> Result<Json<OrderList>, ApiError> {
    let wanted = match query.status.as_deref().unwrap_or("open") {
        "open" => Some("open"),
        "closed" => Some("closed"),
        "all" => None,
        other => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("status {other:?} is not open, closed or all"),
                Some("status"),
            ))
        }
    };
    let worker = node.clone();
    let orders = tokio::task::spawn_blocking(move || -> Result<Vec<OrderDto>, ApiError> {
        worker
            .orders
            .views()
            .into_iter()
            .map(|view| dto(&worker, view))
            .filter(|o| !matches!((wanted, o), (Some(w), Ok(o)) if o.status != w))
            .collect()
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(Json(OrderList { orders }))
}

/// One order.
#[utoipa::path(get, tag = "Orders", path = "/v1/orders/{order}", params(("order" = String, Path)),
    responses((status = 200, body = OrderDto), (status = 404, body = ErrorBody)))]
pub async fn get_order(
    State(node): State<Arc<NodeContext>>,
    Path(order_id): Path<String>,
) -> Result<Json<OrderDto>, ApiError> {
    let view = node
        .orders
        .view(&order_id)
        .map_err(|e| orders_error(OrdersError::Order(e)))?
        .ok_or_else(|| orders_error(OrdersError::Order(OrderError::NotFound(order_id))))?;
    Ok(Json(dto(&node, view)?))
}

/// Adds a line to an open order.
#[utoipa::path(post, tag = "Orders", path = "/v1/orders/{order}/lines", request_body = OrderLineBody,
    params(("order" = String, Path), ("Idempotency-Key" = String, Header, description = "unique per line")),
    responses((status = 201, body = OrderDto), (status = 200, body = OrderDto, description = "retry: the line exists"),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody, description = "`unknown_sku`; `quantity_out_of_range`: a quantity outside 1..=100000 (one that is not an integer is 400 `invalid_field`)")))]
pub async fn add_line(
    State(node): State<Arc<NodeContext>>,
    Path(order_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let body: OrderLineBody = parse_json(&headers, body)?;
    check_line(&node, &body, "")?;
    let line_id = derived_id("line", &node.identity.device_id, &key);
    let edit = OrderEdit::AddLine {
        line_id: line_id.clone(),
        sku: body.sku.clone(),
        quantity: body.quantity,
    };
    match edit_order(&node, order_id.clone(), edit).await {
        Ok(view) => Ok((StatusCode::CREATED, Json(dto(&node, view)?)).into_response()),
        Err(error) if error.code == "line_exists" => {
            let view = node.orders.view(&order_id).map_err(ApiError::internal)?;
            let view = view.ok_or_else(|| ApiError::internal("order vanished"))?;
            // A retry answers the line it added; the same key for another item is a conflict
            // (its quantity may have been changed since, so only the item is compared).
            let same_item = view
                .lines
                .iter()
                .find(|line| line.line_id == line_id)
                .is_none_or(|line| line.sku == body.sku);
            if !same_item {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "idempotency_key_reused",
                    format!(
                        "Idempotency-Key {key:?} already added another item to order {order_id}"
                    ),
                    Some("Idempotency-Key"),
                ));
            }
            Ok((StatusCode::OK, Json(dto(&node, view)?)).into_response())
        }
        Err(error) => Err(error),
    }
}

/// Changes a line's quantity.
#[utoipa::path(patch, tag = "Orders", path = "/v1/orders/{order}/lines/{line}", request_body = SetQuantityBody,
    params(("order" = String, Path), ("line" = String, Path)),
    responses((status = 200, body = OrderDto), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody, description = "`quantity_out_of_range`: a quantity outside 1..=100000 (one that is not an integer is 400 `invalid_field`)")))]
pub async fn set_quantity(
    State(node): State<Arc<NodeContext>>,
    Path((order_id, line_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<OrderDto>, ApiError> {
    let body: SetQuantityBody = parse_json(&headers, body)?;
    let edit = OrderEdit::SetQuantity {
        line_id,
        quantity: body.quantity,
    };
    let view = edit_order(&node, order_id, edit).await?;
    Ok(Json(dto(&node, view)?))
}

/// Removes a line.
#[utoipa::path(delete, tag = "Orders", path = "/v1/orders/{order}/lines/{line}",
    params(("order" = String, Path), ("line" = String, Path)),
    responses((status = 200, body = OrderDto), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn remove_line(
    State(node): State<Arc<NodeContext>>,
    Path((order_id, line_id)): Path<(String, String)>,
) -> Result<Json<OrderDto>, ApiError> {
    let view = edit_order(&node, order_id, OrderEdit::RemoveLine { line_id }).await?;
    Ok(Json(dto(&node, view)?))
}

/// Assigns table and/or customer.
#[utoipa::path(patch, tag = "Orders", path = "/v1/orders/{order}", request_body = UpdateOrderBody,
    params(("order" = String, Path)),
    responses((status = 200, body = OrderDto), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_order(
    State(node): State<Arc<NodeContext>>,
    Path(order_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<OrderDto>, ApiError> {
    let body: UpdateOrderBody = parse_json(&headers, body)?;
    let cleared = |text: String| (!text.is_empty()).then_some(text);
    let mut edits = Vec::new();
    if let Some(table) = body.table {
        edits.push(OrderEdit::SetTable(cleared(table)));
    }
    if let Some(customer) = body.customer {
        edits.push(OrderEdit::SetCustomer(cleared(customer)));
    }
    if edits.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "nothing_to_change",
            "give table and/or customer",
            None,
        ));
    }
    // Check both before changing either.
    for edit in &edits {
        if let OrderEdit::SetTable(Some(text)) | OrderEdit::SetCustomer(Some(text)) = edit {
            let field = if matches!(edit, OrderEdit::SetTable(_)) {
                "table"
            } else {
                "customer"
            };
            if text.chars().count() > posmesh_sync::orders::order_doc::ORDER_TEXT_LEN_MAX
                || text.chars().any(char::is_control)
            {
                return Err(orders_error(OrdersError::Order(OrderError::InvalidText {
                    field,
                })));
            }
        }
    }
    let mut view = None;
    for edit in edits {
        view = Some(edit_order(&node, order_id.clone(), edit).await?);
    }
    let view = view.ok_or_else(|| ApiError::internal("no edit applied"))?;
    Ok(Json(dto(&node, view)?))
}

/// Closes an order: records one sale of its lines (201, the sale's entry).
#[utoipa::path(post, tag = "Orders", path = "/v1/orders/{order}/close", request_body = CloseOrderBody,
    params(("order" = String, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 201, body = super::dto::EntryView), (status = 200, body = super::dto::EntryView, description = "replay"),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn close_order(
    State(node): State<Arc<NodeContext>>,
    Path(order_id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let body: CloseOrderBody = parse_json(&headers, body)?;
    let hash = request_hash("close_order", &order_id, &body);
    if let Some(earlier) = answered_before(&node, &key, &hash)? {
        return Ok(earlier);
    }
    let operator_id = sale_operator_id(body.operator_id.as_deref())?;
    let view = node
        .orders
        .view(&order_id)
        .map_err(|e| orders_error(OrdersError::Order(e)))?
        .ok_or_else(|| orders_error(OrdersError::Order(OrderError::NotFound(order_id.clone()))))?;
    if view.lines.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "empty_order",
            format!("order {order_id} has no lines to sell"),
            None,
        ));
    }
    let sale = CreateSaleBody {
        currency: body.currency.clone(),
        consumption: body.consumption,
        lines: view
            .lines
            .iter()
            .map(|line| LineBody {
                sku: line.sku.clone(),
                quantity: line.quantity,
                unit_price_override_minor: None,
                discount: None,
                consumption: None,
            })
            .collect(),
        discount: body.discount,
        tenders: body.tenders.clone(),
        occurred_at: None,
        operator_id: None,
    };
    let request = sale_request(&sale)?;
    let sale = SaleToRecord {
        key,
        hash,
        operator_id,
        dated: node.dated(None)?,
        order_id: Some(order_id),
    };
    let committed = record_sale(&node, sale, &request).await?;
    if !committed.replayed {
        metrics::counter!("posmesh_orders_closed_total").increment(1);
    }
    Ok(written(committed))
}

/// Applies one edit off the async threads (it syncs to disk).
async fn edit_order(
    node: &Arc<NodeContext>,
    order_id: String,
    edit: OrderEdit,
) -> Result<OrderView, ApiError> {
    let (at_ms, _) = node.dated(None)?;
    let worker = node.clone();
    blocking(move || worker.orders.edit(&order_id, &edit, at_ms)).await
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, OrdersError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(ApiError::internal)?
        .map_err(orders_error)
}

/// A line must name a catalog item and a quantity in range.
fn check_line(node: &NodeContext, line: &OrderLineBody, path: &str) -> Result<(), ApiError> {
    let field = |name: &str| {
        if path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        }
    };
    if node.catalog_now().item(&line.sku).is_none() {
        return Err(ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "unknown_sku",
            message: format!("SKU {:?} is not in the catalog", line.sku),
            field: Some(field("sku")),
        });
    }
    if !(1..=posmesh_sync::orders::ORDER_QUANTITY_MAX).contains(&line.quantity) {
        return Err(ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "quantity_out_of_range",
            message: OrderError::InvalidQuantity(line.quantity).to_string(),
            field: Some(field("quantity")),
        });
    }
    Ok(())
}

/// The answer shape of an order, with its status from the order index.
fn dto(node: &NodeContext, view: OrderView) -> Result<OrderDto, ApiError> {
    let closed_by: Vec<String> = node
        .store
        .order_sales(&view.order_id)
        .map_err(ApiError::internal)?
        .into_iter()
        .map(|s| format!("{}/{}", s.device_id, s.seq))
        .collect();
    Ok(OrderDto {
        status: if closed_by.is_empty() {
            "open"
        } else {
            "closed"
        },
        closed_by,
        created_by: view.created_by,
        created_at_ms: view.created_at_ms,
        table: view.table,
        customer: view.customer,
        lines: view
            .lines
            .into_iter()
            .map(|line| OrderLineDto {
                name: node
                    .catalog_now()
                    .item(&line.sku)
                    .map(|item| item.name.clone())
                    .unwrap_or_default(),
                line_id: line.line_id,
                sku: line.sku,
                quantity: line.quantity,
                added_by: line.added_by,
            })
            .collect(),
        order_id: view.order_id,
    })
}

/// The API answer of an order refusal.
fn orders_error(error: OrdersError) -> ApiError {
    let message = error.to_string();
    let (status, code, field) = match &error {
        OrdersError::Closed { .. } => (StatusCode::CONFLICT, "order_closed", None),
        OrdersError::Storage(_) => {
            tracing::error!(%message, "order edit not stored");
            (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable", None)
        }
        OrdersError::Order(order) => match order {
            OrderError::NotFound(_) => (StatusCode::NOT_FOUND, "order_not_found", None),
            OrderError::LineNotFound { .. } => (StatusCode::NOT_FOUND, "line_not_found", None),
            OrderError::LineExists { .. } => (StatusCode::CONFLICT, "line_exists", None),
            OrderError::AlreadyExists(_) => (StatusCode::CONFLICT, "order_exists", None),
            OrderError::TooManyLines => (StatusCode::UNPROCESSABLE_ENTITY, "too_many_lines", None),
            OrderError::InvalidQuantity(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "quantity_out_of_range",
                Some("quantity"),
            ),
            // An id no order or line can have: nothing by that name exists.
            OrderError::InvalidId(_) => (StatusCode::NOT_FOUND, "not_found", None),
            OrderError::InvalidText { field } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_text",
                Some(*field),
            ),
            OrderError::TooManyOrders(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "too_many_orders", None)
            }
            OrderError::Malformed { .. } | OrderError::Automerge(_) => {
                return ApiError::internal(message);
            }
        },
    };
    ApiError::new(status, code, message, field)
}
