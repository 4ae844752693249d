//! Sale endpoints: create, get, list, void, refund.
//!
//! Every write needs an Idempotency-Key: the same key with the same request answers the
//! original entry again (200, `Idempotent-Replayed: true`), the same key with another request
//! is refused (409). A write is answered only once it is durable in the journal.

use super::body::{idempotency_key, parse_json, request_hash};
use super::dto::{
    CreateSaleBody, DeviceList, EntryPage, EntryView, ListQuery, RefundBody, SaleStatusView,
    VoidBody,
};
use super::error::{ApiError, ErrorBody};
use super::query::StrictQuery;
use crate::clock;
use crate::config::validate_id;
use crate::ledger::sale_ref::SaleRef;
use crate::payments::card_void::CardVoidError;
use crate::runtime::NodeContext;
use crate::storage::writer::{AppendCommand, AppendError, Committed, Operation};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use posmesh_domain::{
    price_sale, Currency, RefundLineRequest, RefundRequest, SaleRequest, TenderKind,
};
use posmesh_proto::journal::v1::journal_entry::Payload;
use std::sync::Arc;

/// Longest free-text reason or operator id, characters.
pub const TEXT_FIELD_LEN_MAX: usize = 200;
/// Largest page of a listing.
pub const PAGE_ENTRIES_MAX: usize = 1000;
/// How far in the future `occurred_at` may lie (till clocks drift), ms.
pub const OCCURRED_AT_FUTURE_MS_MAX: i64 = 24 * 3600 * 1000;
/// Earliest accepted `occurred_at`: 2000-01-01T00:00:00Z, ms since the Unix epoch (older
/// dates are typos or a till with a dead clock battery).
pub const OCCURRED_AT_MIN_MS: i64 = 946_684_800_000;

/// Records a sale.
#[utoipa::path(post, tag = "Sales", path = "/v1/sales", request_body = CreateSaleBody,
    params(("Idempotency-Key" = String, Header, description = "unique per sale attempt")),
    responses((status = 201, body = EntryView, description = "recorded and durable"),
              (status = 200, body = EntryView, description = "replay of an earlier request with this key"),
              (status = 400, body = ErrorBody),
              (status = 402, body = ErrorBody, description = "a tender's payment was not taken, nothing journaled; `message` is the cashier's sentence: `card_declined`, `card_not_approved` (no answer; reversed), `card_payment_reversed_earlier` (a retry of a payment an earlier attempt left reversed), `card_payment_unresolved` (a retry of a payment an earlier attempt may have had approved — the till stopped with it in flight — whose reversal is not acknowledged yet; resent in the background; never sent again nor taken offline under this key: ask for another way to pay), `offline_<reason>`, `gift_card_refused`, `qr_not_confirmed`"),
              (status = 409, body = ErrorBody, description = "e.g. `idempotency_key_reused`: the key was used for another request; `card_payment_in_progress`: another request with this key is taking the same card payment now"),
              (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
              (status = 422, body = ErrorBody, description = "a sale the rules refuse, `code` says which: e.g. `unknown_sku`, `quantity_out_of_range` (a quantity outside 1..=100000; one that is not an integer is 400 `invalid_field`), `tenders_short`"),
              (status = 503, body = ErrorBody)))]
pub async fn create_sale(
    State(node): State<Arc<NodeContext>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let started = clock::monotonic_now();
    let key = idempotency_key(&headers)?;
    let body: CreateSaleBody = parse_json(&headers, body)?;
    if super::card_sales::has_card_data(&body) {
        // Its own task: a client that hangs up mid-payment does not cancel it between an
        // approval and the journal write (the sale is journaled, or the payment reversed).
        let response = tokio::spawn(super::card_sales::create_card_sale(node, headers, body))
            .await
            .map_err(ApiError::internal)??;
        metrics::histogram!("posmesh_sale_ack_seconds").record(started.elapsed());
        return Ok(response);
    }
    let hash = request_hash("create_sale", "", &body);
    if let Some(earlier) = answered_before(&node, &key, &hash)? {
        return Ok(earlier);
    }
    let operator_id = sale_operator_id(body.operator_id.as_deref())?;
    let dated = node.dated(body.occurred_at.as_deref())?;
    let request = sale_request(&body)?;
    let sale = SaleToRecord {
        key,
        hash,
        operator_id,
        dated,
        order_id: None,
    };
    let committed = record_sale(&node, sale, &request).await?;
    metrics::histogram!("posmesh_sale_ack_seconds").record(started.elapsed());
    Ok(written(committed))
}

/// A sale request's journal context: who, when, under which Idempotency-Key, and the shared
/// order it closes (if any).
pub(super) struct SaleToRecord {
    /// The client's Idempotency-Key.
    pub key: String,
    /// Hash of the canonical request (see [`request_hash`]).
    pub hash: [u8; 32],
    /// Operator ("" when none).
    pub operator_id: String,
    /// When it happened (ms since the Unix epoch) and its business date.
    pub dated: (i64, String),
    /// The order the sale closes, if any.
    pub order_id: Option<String>,
}

/// Prices `request` with the catalog and tax rates in force at the sale's time (as applied
/// on this device: a sale never waits on Raft) and appends it to the journal (a sale, or
/// one closing `sale.order_id`); answered once durable.
pub(super) async fn record_sale(
    node: &NodeContext,
    sale: SaleToRecord,
    request: &SaleRequest,
) -> Result<Committed, ApiError> {
    let catalog = node.catalog_for_sale(sale.dated.0);
    let priced = Box::new(price_sale(&catalog, request)?);
    let catalog_version = priced.catalog_version;
    let operation = match sale.order_id {
        Some(order_id) => Operation::CloseOrder {
            order_id,
            sale: priced,
        },
        None => Operation::Sale(priced),
    };
    let (occurred_at_ms, business_date) = sale.dated;
    let command = AppendCommand {
        idempotency_key: sale.key,
        request_hash: sale.hash,
        occurred_at_ms,
        business_date,
        catalog_version,
        operator_id: sale.operator_id,
        operation,
    };
    let committed = node.writer.append(command).await?;
    if !committed.replayed {
        metrics::counter!("posmesh_sales_recorded_total").increment(1);
    }
    Ok(committed)
}

/// Voids a sale in full. Card payments of the sale are reversed at the acquirer first
/// (`payments::card_void`): 409 `card_payment_not_forwarded` while an offline card payment
/// waits to be forwarded, 503 `card_reversal_failed` when the acquirer does not answer —
/// nothing is voided then.
#[utoipa::path(post, tag = "Sales", path = "/v1/sales/{device}/{seq}/void", request_body = VoidBody,
    params(("device" = String, Path), ("seq" = u64, Path, minimum = 1, description = "sequence number of the entry in `device`'s journal, from 1"),
           ("Idempotency-Key" = String, Header)),
    responses((status = 201, body = EntryView), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 503, body = ErrorBody)))]
pub async fn void_sale(
    State(node): State<Arc<NodeContext>>,
    Path((device, seq)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let original = sale_ref(&device, &seq)?;
    let key = idempotency_key(&headers)?;
    // A void needs nothing but its target: an empty body means no reason.
    let body: VoidBody = match &body {
        Ok(bytes) if bytes.is_empty() => VoidBody { reason: None },
        _ => parse_json(&headers, body)?,
    };
    let hash = request_hash("void_sale", &original.to_string(), &body);
    if let Some(earlier) = answered_before(&node, &key, &hash)? {
        return Ok(earlier);
    }
    let reason = text_field(body.reason.as_deref(), "reason")?;
    // A card sale's payments are reversed at the acquirer first (see payments::card_void).
    let reversals = node
        .payments
        .void_reversals(&node.store, &original)
        .map_err(|e| card_void_refusal(&e))?;
    node.payments
        .reverse_for_void(&reversals)
        .await
        .map_err(|e| card_void_refusal(&e))?;
    append_now(&node, key, hash, Operation::Void { original, reason }).await
}

/// The API answer to a void the payments refused (nothing was journaled).
fn card_void_refusal(error: &CardVoidError) -> ApiError {
    let (status, code) = match error {
        CardVoidError::NotForwarded { .. } => (StatusCode::CONFLICT, "card_payment_not_forwarded"),
        CardVoidError::NoAcquirer { .. } => (StatusCode::CONFLICT, "card_reversal_needs_acquirer"),
        CardVoidError::NotReversed { .. } => {
            (StatusCode::SERVICE_UNAVAILABLE, "card_reversal_failed")
        }
        CardVoidError::Unreversible { .. } => {
            (StatusCode::UNPROCESSABLE_ENTITY, "card_unreversible")
        }
        CardVoidError::Storage(_) => (StatusCode::INTERNAL_SERVER_ERROR, "storage"),
    };
    ApiError::new(status, code, error.to_string(), None)
}

/// Refunds lines of a sale; never more than was sold. A voided sale is refused first (409
/// `sale_voided`, whatever the tender). A refund to a card paid through the
/// acquirer is refused (409 `card_refund_unsupported`): nothing would reach the acquirer.
#[utoipa::path(post, tag = "Sales", path = "/v1/sales/{device}/{seq}/refunds", request_body = RefundBody,
    params(("device" = String, Path), ("seq" = u64, Path, minimum = 1, description = "sequence number of the entry in `device`'s journal, from 1"),
           ("Idempotency-Key" = String, Header)),
    responses((status = 201, body = EntryView), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn refund_sale(
    State(node): State<Arc<NodeContext>>,
    Path((device, seq)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let original = sale_ref(&device, &seq)?;
    let key = idempotency_key(&headers)?;
    let body: RefundBody = parse_json(&headers, body)?;
    let hash = request_hash("refund_sale", &original.to_string(), &body);
    if let Some(earlier) = answered_before(&node, &key, &hash)? {
        return Ok(earlier);
    }
    let reason = text_field(body.reason.as_deref(), "reason")?;
    let request = RefundRequest {
        lines: body
            .lines
            .iter()
            .map(|l| RefundLineRequest {
                line_index: l.line_index,
                quantity: l.quantity,
            })
            .collect(),
        tender: match body.tender {
            Some(kind) => kind,
            None => original_tender(&node, &original),
        },
    };
    let card_through_acquirer =
        request.tender == TenderKind::Card && paid_through_acquirer(&node, &original);
    if let Some(refused) = refund_refusal(
        &original,
        sale_voided(&node, &original),
        card_through_acquirer,
    ) {
        return Err(refused);
    }
    let operation = Operation::Refund {
        original,
        request,
        reason,
    };
    append_now(&node, key, hash, operation).await
}

/// Why a refund is refused before it reaches the writer, if it is: a voided sale first
/// (409 `sale_voided`, whatever the tender: nothing is left to refund, and the card advice
/// "void the whole sale" would be wrong), then a card refund the acquirer would never see
/// (409 `card_refund_unsupported`: the customer would stay charged; a card tender recorded
/// without card data was taken on a standalone terminal, where the refund is made too).
fn refund_refusal(
    original: &SaleRef,
    voided: bool,
    card_through_acquirer: bool,
) -> Option<ApiError> {
    if voided {
        return Some(AppendError::SaleVoided(original.clone()).into());
    }
    card_through_acquirer.then(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "card_refund_unsupported",
            "refunds to a card are not sent to the acquirer by posmesh yet: refund in cash (\"tender\": \"cash\"), or void the whole sale (its card payment is reversed)",
            Some("tender"),
        )
    })
}

/// Whether the sale `original` is voided as known here (false when unknown or unreadable:
/// the writer then refuses the refund with the precise reason).
fn sale_voided(node: &NodeContext, original: &SaleRef) -> bool {
    node.store
        .sale_status(&original.device_id, original.seq)
        .ok()
        .flatten()
        .is_some_and(|status| !status.voided_by_device_id.is_empty())
}

/// The tender a refund goes back to by default: the original sale's first tender (cash if
/// the sale cannot be read; the writer then refuses the refund with the precise reason).
fn original_tender(node: &NodeContext, original: &SaleRef) -> TenderKind {
    original_sale(node, original).map_or(TenderKind::Cash, |sale| {
        crate::ledger::convert::first_tender_kind(&sale)
    })
}

/// The sale `original` as journaled here (None: unknown here, unreadable, or not a sale).
fn original_sale(
    node: &NodeContext,
    original: &SaleRef,
) -> Option<posmesh_proto::journal::v1::Sale> {
    let entry = node
        .store
        .entry(&original.device_id, original.seq)
        .ok()
        .flatten();
    match entry.and_then(|e| e.payload) {
        Some(Payload::Sale(sale)) => Some(sale),
        _ => None,
    }
}

/// Whether a card tender of the sale went through this store's acquirer connection
/// (approved online or taken offline for store-and-forward).
fn paid_through_acquirer(node: &NodeContext, original: &SaleRef) -> bool {
    original_sale(node, original).is_some_and(|sale| {
        sale.tenders.iter().any(|t| {
            t.kind == posmesh_proto::journal::v1::TenderKind::Card as i32
                && (t.offline || !t.auth_id.is_empty())
        })
    })
}

/// One sale (or any journal entry) with what happened to it since.
#[utoipa::path(get, tag = "Sales", path = "/v1/sales/{device}/{seq}",
    params(("device" = String, Path), ("seq" = u64, Path, minimum = 1, description = "sequence number of the entry in `device`'s journal, from 1")),
    responses((status = 200, body = EntryView), (status = 404, body = ErrorBody)))]
pub async fn get_sale(
    State(node): State<Arc<NodeContext>>,
    Path((device, seq)): Path<(String, String)>,
) -> Result<Json<EntryView>, ApiError> {
    let wanted = sale_ref(&device, &seq)?;
    let bytes = node
        .store
        .entry_bytes(&wanted.device_id, wanted.seq)
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            ApiError::not_found("sale_not_found", format!("sale {wanted} not found"), None)
        })?;
    let entry = crate::storage::journal_store::decode_entry(&wanted.device_id, wanted.seq, &bytes)
        .map_err(ApiError::internal)?;
    let mut view = EntryView::from_entry(&entry, &posmesh_sync::chain::entry_hash(&bytes));
    if matches!(entry.payload, Some(Payload::Sale(_))) {
        let status = node
            .store
            .sale_status(&wanted.device_id, wanted.seq)
            .map_err(ApiError::internal)?
            .unwrap_or_default();
        view.status = Some(SaleStatusView::from(status));
    }
    Ok(Json(view))
}

/// Sales of a device of the store (default: this one) after a sequence number, optionally
/// of one business date.
#[utoipa::path(get, tag = "Sales", path = "/v1/sales", params(ListQuery),
    responses((status = 200, body = EntryPage), (status = 400, body = ErrorBody)))]
pub async fn list_sales(
    State(node): State<Arc<NodeContext>>,
    StrictQuery(query): StrictQuery<ListQuery>,
) -> Result<Json<EntryPage>, ApiError> {
    list(node, query, true).await
}

/// Journal entries of every kind of a device of the store (default: this one).
#[utoipa::path(get, tag = "Sales", path = "/v1/journal", params(ListQuery),
    responses((status = 200, body = EntryPage), (status = 400, body = ErrorBody)))]
pub async fn list_journal(
    State(node): State<Arc<NodeContext>>,
    StrictQuery(query): StrictQuery<ListQuery>,
) -> Result<Json<EntryPage>, ApiError> {
    list(node, query, false).await
}

async fn list(
    node: Arc<NodeContext>,
    query: ListQuery,
    sales_only: bool,
) -> Result<Json<EntryPage>, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=PAGE_ENTRIES_MAX).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit must be 1..={PAGE_ENTRIES_MAX}"),
            Some("limit"),
        ));
    }
    let device = query
        .device
        .clone()
        .unwrap_or_else(|| node.identity.device_id.clone());
    validate_id("device id", &device)
        .map_err(|e| ApiError::bad_request("invalid_query", e.to_string(), Some("device")))?;
    if let Some(date) = &query.business_date {
        chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|_| {
            ApiError::bad_request(
                "invalid_query",
                format!("business_date {date:?} is not YYYY-MM-DD"),
                Some("business_date"),
            )
        })?;
    }
    let page = tokio::task::spawn_blocking(move || {
        let mut entries = Vec::new();
        let mut last_seen = None;
        let mut scan_error = None;
        node.store
            .scan_device(&device, query.after_seq, |seq, bytes| {
                last_seen = Some(seq);
                match crate::storage::journal_store::decode_entry(&device, seq, bytes) {
                    Ok(entry) => {
                        let kind_ok =
                            !sales_only || matches!(entry.payload, Some(Payload::Sale(_)));
                        let date_ok = query
                            .business_date
                            .as_ref()
                            .is_none_or(|d| *d == entry.business_date);
                        if kind_ok && date_ok {
                            let hash = posmesh_sync::chain::entry_hash(bytes);
                            entries.push(EntryView::from_entry(&entry, &hash));
                        }
                    }
                    Err(error) => scan_error = Some(error),
                }
                entries.len() < limit && scan_error.is_none()
            })?;
        if let Some(error) = scan_error {
            return Err(error);
        }
        let head = node.store.last_seq(&device)?;
        let next_after_seq = last_seen.filter(|seq| *seq < head);
        Ok(EntryPage {
            entries,
            next_after_seq,
        })
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    Ok(Json(page))
}

/// Appends an operation on an earlier sale (void, refund) dated now, and answers it.
async fn append_now(
    node: &NodeContext,
    key: String,
    hash: [u8; 32],
    operation: Operation,
) -> Result<Response, ApiError> {
    let (occurred_at_ms, business_date) = node.dated(None)?;
    let command = AppendCommand {
        idempotency_key: key,
        request_hash: hash,
        occurred_at_ms,
        business_date,
        catalog_version: 0,
        operator_id: String::new(),
        operation,
    };
    Ok(written(node.writer.append(command).await?))
}

/// If `key` was used before: the original answer again (same request) or 409 (another
/// request) — before validating the request again, so a retry is answered even after the
/// catalog changed. The writer checks again under its lock (a concurrent first use).
pub(super) fn answered_before(
    node: &NodeContext,
    key: &str,
    hash: &[u8; 32],
) -> Result<Option<Response>, ApiError> {
    let Some(record) = node.store.idempotency(key).map_err(ApiError::internal)? else {
        return Ok(None);
    };
    if record.request_hash.as_slice() != hash.as_slice() {
        return Err(crate::storage::writer::AppendError::IdempotencyConflict {
            key: key.to_owned(),
        }
        .into());
    }
    let bytes = node
        .store
        .entry_bytes(&record.device_id, record.seq)
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            ApiError::internal(format!("Idempotency-Key {key:?} points at a missing entry"))
        })?;
    let entry = crate::storage::journal_store::decode_entry(&record.device_id, record.seq, &bytes)
        .map_err(ApiError::internal)?;
    Ok(Some(written(Committed {
        entry,
        chain_hash: posmesh_sync::chain::entry_hash(&bytes),
        replayed: true,
    })))
}

/// The devices whose journals this node holds, with the highest sequence number of each.
#[utoipa::path(get, tag = "Sales", path = "/v1/devices", responses((status = 200, body = DeviceList)))]
pub async fn list_devices(
    State(node): State<Arc<NodeContext>>,
) -> Result<Json<DeviceList>, ApiError> {
    let devices = tokio::task::spawn_blocking(move || node.store.stored_version_vector())
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(Json(DeviceList { devices }))
}

/// 201 with the entry, or 200 with `Idempotent-Replayed: true` for a replay.
pub(super) fn written(committed: Committed) -> Response {
    let view = EntryView::from_entry(&committed.entry, &committed.chain_hash);
    if committed.replayed {
        let mut response = (StatusCode::OK, Json(view)).into_response();
        response
            .headers_mut()
            .insert("Idempotent-Replayed", HeaderValue::from_static("true"));
        response
    } else {
        (StatusCode::CREATED, Json(view)).into_response()
    }
}

fn sale_ref(device: &str, seq: &str) -> Result<SaleRef, ApiError> {
    validate_id("device id", device)
        .map_err(|e| ApiError::bad_request("invalid_sale_id", e.to_string(), Some("device")))?;
    let seq = seq.parse::<u64>().ok().filter(|s| *s > 0).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_sale_id",
            format!("sequence number {seq:?} is not a positive integer"),
            Some("seq"),
        )
    })?;
    Ok(SaleRef {
        device_id: device.to_owned(),
        seq,
    })
}

pub(super) fn text_field(value: Option<&str>, field: &'static str) -> Result<String, ApiError> {
    let value = value.unwrap_or("");
    if value.chars().count() > TEXT_FIELD_LEN_MAX || value.chars().any(char::is_control) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_text",
            format!("{field} must be at most {TEXT_FIELD_LEN_MAX} characters without control characters"),
            Some(field),
        ));
    }
    Ok(value.to_owned())
}

/// The operator a sale records: `""` when the body names none, else the id checked by the
/// rule of an operator's id when it is set (`POST /v1/operators`: lowercase letters, digits
/// and `-`, 1–63 bytes). Not checked against the store's operators: a till sells while
/// cut off from the Raft group, and a sale never waits on it (README, "What is not
/// enforced").
///
/// # Errors
/// 422 `invalid_operator_id` naming `operator_id`; nothing is journaled.
pub(super) fn sale_operator_id(value: Option<&str>) -> Result<String, ApiError> {
    let Some(value) = value else {
        return Ok(String::new());
    };
    super::staff::check_operator_id(value)?;
    Ok(value.to_owned())
}

/// The domain request of a sale body (422 `unknown_currency` for a code ISO 4217 lacks).
pub(super) fn sale_request(body: &CreateSaleBody) -> Result<SaleRequest, ApiError> {
    Ok(body.to_sale_request(parse_currency(&body.currency)?))
}

/// An ISO 4217 code of a request body's `currency` field (422 `unknown_currency`).
pub(super) fn parse_currency(code: &str) -> Result<Currency, ApiError> {
    Currency::from_code(code).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_currency",
            e.to_string(),
            Some("currency"),
        )
    })
}

impl NodeContext {
    /// When an event happened (`occurred_at`, RFC 3339, or now) and its business date.
    pub(crate) fn dated(&self, occurred_at: Option<&str>) -> Result<(i64, String), ApiError> {
        let now_ms = i64::try_from(clock::wall_clock_ms()).unwrap_or(i64::MAX);
        let at_ms = match occurred_at {
            None => now_ms,
            Some(text) => chrono::DateTime::parse_from_rfc3339(text)
                .map_err(|e| {
                    ApiError::bad_request(
                        "invalid_timestamp",
                        format!("occurred_at {text:?} is not RFC 3339: {e}"),
                        Some("occurred_at"),
                    )
                })?
                .timestamp_millis(),
        };
        if at_ms < OCCURRED_AT_MIN_MS {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "occurred_at_too_old",
                "occurred_at is before 2000-01-01; check the till's clock",
                Some("occurred_at"),
            ));
        }
        if at_ms > now_ms.saturating_add(OCCURRED_AT_FUTURE_MS_MAX) {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "occurred_at_in_future",
                "occurred_at is more than 24 hours in the future; check the till's clock",
                Some("occurred_at"),
            ));
        }
        let date = self.calendar.business_date(at_ms).map_err(|e| {
            ApiError::bad_request("invalid_timestamp", e.to_string(), Some("occurred_at"))
        })?;
        Ok((at_ms, date.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A voided sale is refused as voided whatever the tender; the card refusal (which
    /// advises voiding the whole sale) only for a sale that is not voided.
    #[test]
    fn a_voided_sale_is_refused_as_voided_before_the_card_check() {
        let original = SaleRef {
            device_id: "till-1".into(),
            seq: 4,
        };
        for card in [true, false] {
            let refused = refund_refusal(&original, true, card).expect("refused");
            assert_eq!(
                (refused.status, refused.code),
                (StatusCode::CONFLICT, "sale_voided")
            );
        }
        let refused = refund_refusal(&original, false, true).expect("refused");
        assert_eq!(refused.code, "card_refund_unsupported");
        assert!(refund_refusal(&original, false, false).is_none());
    }
}
