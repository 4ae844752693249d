//! Sales with card tenders that carry the card (`tenders[i].card`): the card part of
//! `POST /v1/sales`, and the store's offline card budget.
//!
//! # Answers
//! - 422 `invalid_card` (bad PAN, Luhn, expiry format), `card_expired`,
//!   `card_not_allowed` (card data on a tender that is not a card): bad input, nothing
//!   sent to the acquirer, nothing journaled.
//! - 402 Payment Required — the payment was not taken, nothing journaled, the cashier asks
//!   for another way to pay; `error.message` is the sentence to show:
//!   `card_declined` (the issuer said no), `card_not_approved` (the acquirer did not answer
//!   in time; the request was reversed), `offline_<reason>` (acquirer unreachable and the
//!   payment is outside the offline limits: `offline_over_floor_limit`,
//!   `offline_over_device_cap`, `offline_no_allotment`, `offline_over_allotment`,
//!   `offline_too_long_offline`, …).
//! - 201 as any sale; the tender shows the masked PAN and whether it was offline.
//!
//! The Idempotency-Key makes a retried request the same payment: the same STAN and RRN,
//! so the acquirer answers the original decision and never charges twice. The request hash
//! behind the key is taken with each PAN replaced by its keyed token.

use super::body::{idempotency_key, parse_json, request_hash};
use super::dto::CreateSaleBody;
use super::error::{ApiError, ErrorBody};
use super::sales::{answered_before, sale_request, text_field, written, SaleToRecord};
use crate::payments::card_tender::{payment_ref, CardTenderError, OfflineContext, TakenCard};
use crate::runtime::NodeContext;
use crate::storage::writer::{AppendCommand, Operation};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use chrono::Datelike;
use posmesh_consensus::StoreCommand;
use posmesh_domain::{price_sale, Money, TenderKind};
use posmesh_payments::card_data::{CardToken, ForwardingCardData, Pan};
use posmesh_payments::offline_limits::CommittedAllotment;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

/// Whether a sale body carries card data (then [`create_card_sale`] takes it).
pub fn has_card_data(body: &CreateSaleBody) -> bool {
    body.tenders.iter().any(|t| t.card.is_some())
}

/// One validated card of the request.
struct CardInput {
    index: usize,
    amount_minor: i64,
    card: ForwardingCardData,
}

/// Validates the cards of `body`: 422 for a bad PAN, expiry, an expired card or card data
/// on another tender kind. `now_ms` decides expiry (a card is valid through its month).
fn card_inputs(body: &CreateSaleBody, now_ms: i64) -> Result<Vec<CardInput>, ApiError> {
    let now = chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
    let this_month = (now.year() % 100) * 100 + now.month() as i32;
    let mut inputs = Vec::new();
    for (index, tender) in body.tenders.iter().enumerate() {
        let Some(card) = &tender.card else { continue };
        let field = format!("tenders[{index}].card");
        if tender.kind != TenderKind::Card {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "card_not_allowed",
                "card data is only accepted on a tender of kind \"card\"",
                Some(&field),
            ));
        }
        let invalid = |e: posmesh_payments::card_data::CardDataError, what: &str| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_card",
                e.to_string(),
                Some(&format!("{field}.{what}")),
            )
        };
        let pan = Pan::parse(&card.pan).map_err(|e| invalid(e, "pan"))?;
        let card = ForwardingCardData::new(pan, &card.expiry).map_err(|e| invalid(e, "expiry"))?;
        let expiry: i32 = card.expiry.parse().unwrap_or(0);
        if expiry < this_month {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "card_expired",
                format!(
                    "the card expired at the end of {}/{}",
                    &card.expiry[2..],
                    &card.expiry[..2]
                ),
                Some(&format!("{field}.expiry")),
            ));
        }
        inputs.push(CardInput {
            index,
            amount_minor: tender.amount_minor,
            card,
        });
    }
    Ok(inputs)
}

/// The body with every PAN replaced by its keyed token (what the request hash is taken
/// over, so no clear PAN — nor an unkeyed hash of one — is stored with the key).
fn tokenized(node: &NodeContext, body: &CreateSaleBody) -> CreateSaleBody {
    let mut body = body.clone();
    for tender in &mut body.tenders {
        if let Some(card) = &mut tender.card {
            card.pan = match Pan::parse(&card.pan) {
                Ok(pan) => CardToken::new(&node.payments.keys.token_key, &pan)
                    .as_str()
                    .to_owned(),
                Err(_) => String::from("invalid"),
            };
        }
    }
    body
}

/// `POST /v1/sales` for a body with card data (see the module doc).
pub async fn create_card_sale(
    node: Arc<NodeContext>,
    headers: HeaderMap,
    body: CreateSaleBody,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let hash = request_hash("create_sale", "", &tokenized(&node, &body));
    if let Some(earlier) = answered_before(&node, &key, &hash)? {
        return Ok(earlier);
    }
    let operator_id = text_field(body.operator_id.as_deref(), "operator_id")?;
    let dated = node.dated(body.occurred_at.as_deref())?;
    let request = sale_request(&body)?;
    let priced = Box::new(price_sale(&node.catalog, &request)?);
    let now_ms = i64::try_from(crate::clock::wall_clock_ms()).unwrap_or(i64::MAX);
    let inputs = card_inputs(&body, now_ms)?;
    let sale = SaleToRecord {
        key,
        hash,
        operator_id,
        dated,
        order_id: None,
    };
    let currency = priced.currency;
    let mut taken: Vec<(usize, TakenCard)> = Vec::new();
    let mut offline_guard = None;
    let mut pending_minor = 0i64;
    for input in inputs {
        let reference = payment_ref(&node.identity.device_id, &sale.key, input.index);
        let amount = Money::new(input.amount_minor, currency);
        let pending = node
            .payments
            .prepare(reference, amount, input.card, sale.dated.0);
        let outcome = match node.payments.authorize(pending).await {
            Ok(Ok(card)) => Ok(card),
            Ok(Err(pending)) => {
                if offline_guard.is_none() {
                    offline_guard = Some(node.payments.offline_lock.clone().lock_owned().await);
                }
                let context = offline_context(&node, pending_minor, now_ms);
                node.payments.take_offline(pending, &context)
            }
            Err(error) => Err(error),
        };
        match outcome {
            Ok(card) => {
                if card.stored_digest.is_some() {
                    pending_minor = pending_minor.saturating_add(input.amount_minor);
                }
                taken.push((input.index, card));
            }
            Err(error) => {
                undo(&node, &taken).await;
                return Err(refusal(&error));
            }
        }
    }
    let cards = taken
        .iter()
        .map(|(index, card)| (*index, card.fields.clone()))
        .collect();
    let (occurred_at_ms, business_date) = sale.dated;
    let command = AppendCommand {
        idempotency_key: sale.key,
        request_hash: sale.hash,
        occurred_at_ms,
        business_date,
        catalog_version: priced.catalog_version,
        operator_id: sale.operator_id,
        operation: Operation::CardSale {
            sale: priced,
            cards,
        },
    };
    let committed = match node.writer.append(command).await {
        Ok(committed) => committed,
        Err(error) => {
            undo(&node, &taken).await;
            return Err(error.into());
        }
    };
    drop(offline_guard);
    if let Some(replication) = &node.replication {
        for (_, card) in &taken {
            if let Some(digest) = &card.stored_digest {
                if let Ok(Some(sealed)) = node.store.card_data(digest) {
                    replication.offer_card_data(digest, &sealed);
                }
            }
        }
    }
    metrics::counter!("posmesh_sales_recorded_total").increment(1);
    Ok(written(committed))
}

/// The offline decision's view of this device.
fn offline_context(node: &NodeContext, pending_minor: i64, now_ms: i64) -> OfflineContext<'_> {
    let allotment = node.raft.as_ref().and_then(|raft| {
        let (index, allotment_minor, currency) =
            raft.committed_allotment(&node.identity.device_id)?;
        (currency == node.catalog.currency().code()).then_some(CommittedAllotment {
            committed_index: index,
            allotment_minor,
        })
    });
    OfflineContext {
        store: &node.store,
        device_id: &node.identity.device_id,
        allotment,
        pending_minor,
        now_ms,
    }
}

/// Undoes what earlier tenders of a refused sale did: reverses online approvals, deletes
/// sealed card data.
async fn undo(node: &NodeContext, taken: &[(usize, TakenCard)]) {
    for (_, card) in taken {
        if let Some(payment) = &card.approved {
            node.payments.reverse_approved(payment).await;
        }
        if let Some(digest) = &card.stored_digest {
            if let Err(error) = node.store.delete_card_data(digest) {
                tracing::error!(%error, "cannot delete the card data of a refused sale");
            }
        }
    }
}

fn refusal(error: &CardTenderError) -> ApiError {
    let code = match error {
        CardTenderError::Declined { .. } => "card_declined",
        CardTenderError::NotApproved { .. } => "card_not_approved",
        CardTenderError::OfflineRefused(refusal) => match refusal.code() {
            "invalid_amount" => "offline_invalid_amount",
            "over_floor_limit" => "offline_over_floor_limit",
            "over_device_cap" => "offline_over_device_cap",
            "no_allotment" => "offline_no_allotment",
            "over_allotment" => "offline_over_allotment",
            "too_long_offline" => "offline_too_long_offline",
            _ => "offline_refused",
        },
        CardTenderError::Storage(_) => {
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "card_data_unavailable",
                error.to_string(),
                None,
            )
        }
    };
    ApiError::new(
        StatusCode::PAYMENT_REQUIRED,
        code,
        error.to_string(),
        Some("tenders"),
    )
}

/// `PUT /v1/payments/exposure-budget` body.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExposureBudgetBody {
    /// The store's budget of unforwarded offline card payments, minor units (≥ 0).
    pub amount_minor: i64,
    /// ISO 4217 code (the store's currency).
    pub currency: String,
}

/// `PUT /v1/payments/exposure-allotments/{device}` body.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExposureAllotmentBody {
    /// The device's share of the budget, minor units (≥ 0; all shares ≤ the budget).
    pub amount_minor: i64,
}

/// Sets the store's offline card budget through Raft.
#[utoipa::path(put, path = "/v1/payments/exposure-budget", request_body = ExposureBudgetBody,
    responses((status = 201, description = "committed"), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn set_exposure_budget(
    State(node): State<Arc<NodeContext>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body: ExposureBudgetBody = parse_json(&headers, body)?;
    let currency = super::sales::parse_currency(&body.currency)?;
    super::gift_cards::decide(
        &node,
        StoreCommand::SetExposureBudget {
            amount_minor: body.amount_minor,
            currency,
        },
    )
    .await
}

/// Sets a device's allotment of the offline card budget through Raft.
#[utoipa::path(put, path = "/v1/payments/exposure-allotments/{device}", request_body = ExposureAllotmentBody,
    params(("device" = String, Path)),
    responses((status = 201, description = "committed"), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn set_exposure_allotment(
    State(node): State<Arc<NodeContext>>,
    Path(device): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    crate::config::validate_id("device id", &device).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_id",
            e.to_string(),
            Some("device"),
        )
    })?;
    let body: ExposureAllotmentBody = parse_json(&headers, body)?;
    super::gift_cards::decide(
        &node,
        StoreCommand::SetExposureAllotment {
            device_id: device,
            amount_minor: body.amount_minor,
        },
    )
    .await
}

/// One queued offline payment.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueuedPayment {
    /// The sale: device and seq, and the tender index.
    pub device_id: String,
    /// Journal seq of the sale.
    pub seq: u64,
    /// Tender index in the sale.
    pub tender_index: u32,
    /// Minor units.
    pub amount_minor: i64,
    /// ISO 4217 code.
    pub currency: String,
    /// Masked PAN.
    pub masked_pan: String,
    /// When it was taken, ms since the Unix epoch.
    pub taken_at_ms: i64,
    /// Whether this device holds its sealed card data (escrow).
    pub card_data_held: bool,
}

/// The store-and-forward queue as this device holds it (every device's offline payments
/// not yet acknowledged by the acquirer), at most 1000.
#[utoipa::path(get, path = "/v1/payments/queue", responses((status = 200, body = [QueuedPayment])))]
pub async fn queue(
    State(node): State<Arc<NodeContext>>,
) -> Result<Json<Vec<QueuedPayment>>, ApiError> {
    let items = node.store.saf_items(1000).map_err(ApiError::internal)?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let card_data_held = node
            .store
            .card_data(&item.card_data_digest)
            .map_err(ApiError::internal)?
            .is_some();
        out.push(QueuedPayment {
            device_id: item.device_id,
            seq: item.seq,
            tender_index: item.tender_index,
            amount_minor: item.amount_minor,
            currency: item.currency,
            masked_pan: item.masked_pan,
            taken_at_ms: item.taken_at_ms,
            card_data_held,
        });
    }
    Ok(Json(out))
}
