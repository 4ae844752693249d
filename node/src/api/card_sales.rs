//! The tenders of `POST /v1/sales` that need a payment decision — card tenders that carry
//! the card (`tenders[i].card`), gift cards and QR wallets — plus the store's offline card
//! budget, the store-and-forward queue and QR payment requests.
//!
//! Gift card tenders (`reference` = card id) are redeemed through the store's Raft group,
//! last (a redemption cannot be undone, the other tenders can), under a redemption id
//! derived from the device, the Idempotency-Key and the tender index: a retry takes
//! nothing twice. QR wallet tenders (`reference` = QR id from `POST /v1/payments/qr`) need
//! the wallet's confirmation of exactly their amount and pay one sale only.
//!
//! # Answers
//! - 422 `invalid_card` (bad PAN, Luhn, expiry format), `card_expired`,
//!   `card_not_allowed` (card data on a tender that is not a card): bad input, nothing
//!   sent to the acquirer, nothing journaled.
//! - 402 Payment Required — the payment was not taken, nothing journaled, the cashier asks
//!   for another way to pay; `error.message` is the sentence to show:
//!   `card_declined` (the issuer said no), `card_not_approved` (the acquirer did not answer
//!   in time; the request was reversed), `card_payment_reversed_earlier` (a retry of a
//!   payment an earlier attempt under the same key left reversed), `card_payment_unresolved`
//!   (a retry of a payment an earlier attempt may have had approved — the till stopped
//!   with it in flight — whose reversal is not acknowledged yet: it is resent in the
//!   background, and the payment is never sent again nor taken offline under that
//!   key), `offline_<reason>` (acquirer unreachable and the
//!   payment is outside the offline limits: `offline_over_floor_limit`,
//!   `offline_over_device_cap`, `offline_no_allotment`, `offline_over_allotment`,
//!   `offline_too_long_offline`, …), `gift_card_refused` (unknown card, balance short),
//!   `qr_not_confirmed` (unknown, unconfirmed, other amount or used QR). 422
//!   `missing_reference` for a gift card or QR tender without its id; 503 `no_quorum` when
//!   a gift card cannot be redeemed now; 409 `card_payment_in_progress` while another
//!   request with the same Idempotency-Key takes the same card payment.
//! - 201 as any sale; the tender shows the masked PAN and whether it was offline.
//!
//! The Idempotency-Key makes a retried request the same payment: the same STAN and RRN,
//! so the acquirer answers the original decision and never charges twice. The request hash
//! behind the key is taken with each PAN replaced by its keyed token.

use super::body::{idempotency_key, parse_json, request_hash};
use super::dto::CreateSaleBody;
use super::error::{ApiError, ErrorBody};
use super::sales::{answered_before, sale_request, written, SaleToRecord};
use crate::payments::card_tender::{payment_ref, CardTenderError, OfflineContext, TakenCard};
use crate::runtime::NodeContext;
use crate::storage::writer::{AppendCommand, Operation};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Datelike;
use posmesh_consensus::StoreCommand;
use posmesh_domain::{price_sale, Money, TenderKind};
use posmesh_payments::card_data::{CardToken, ForwardingCardData, Pan};
use posmesh_payments::offline_limits::CommittedAllotment;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

/// Start of the redemption id a sale's gift-card tender uses (`sale:<device>:<key>#<tender
/// index>`); a client's own redemption key may not start with it
/// ([`super::gift_cards::redeem`]), so the two never meet in the store's deduplication.
pub(super) const SALE_REDEMPTION_PREFIX: &str = "sale:";

/// Whether a sale body needs its tenders processed here (card data, a gift card or a QR
/// wallet tender); then [`create_card_sale`] takes it.
pub fn has_card_data(body: &CreateSaleBody) -> bool {
    body.tenders
        .iter()
        .any(|t| t.card.is_some() || matches!(t.kind, TenderKind::GiftCard | TenderKind::QrWallet))
}

/// The `reference` of tender `index` (the gift card id or the QR id): 422 when missing.
fn tender_reference(body: &CreateSaleBody, index: usize) -> Result<String, ApiError> {
    match body.tenders[index].reference.as_deref() {
        Some(reference) if !reference.is_empty() => Ok(reference.to_owned()),
        _ => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing_reference",
            "a gift_card tender needs the card id, a qr_wallet tender the QR id, in `reference`",
            Some(&format!("tenders[{index}].reference")),
        )),
    }
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
    let operator_id = super::sales::sale_operator_id(body.operator_id.as_deref())?;
    let dated = node.dated(body.occurred_at.as_deref())?;
    let request = sale_request(&body)?;
    let priced = Box::new(price_sale(&node.catalog_for_sale(dated.0), &request)?);
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
    // QR wallet tenders: confirmed for exactly their amount, not used before.
    let mut qr_ids = Vec::new();
    let mut gift_cards = Vec::new();
    for (index, tender) in body.tenders.iter().enumerate() {
        match tender.kind {
            TenderKind::QrWallet => {
                let id = tender_reference(&body, index)?;
                node.payments
                    .lock_qr()
                    .check(&id, Money::new(tender.amount_minor, currency))
                    .map_err(|e| {
                        ApiError::new(
                            StatusCode::PAYMENT_REQUIRED,
                            "qr_not_confirmed",
                            e.to_string(),
                            Some(&format!("tenders[{index}].reference")),
                        )
                    })?;
                qr_ids.push(id);
            }
            TenderKind::GiftCard => {
                gift_cards.push((index, tender_reference(&body, index)?, tender.amount_minor));
            }
            TenderKind::Cash | TenderKind::Card => {}
        }
    }
    let mut taken: Vec<(usize, TakenCard)> = Vec::new();
    let mut offline_guard = None;
    let mut pending_minor = 0i64;
    for input in inputs {
        let reference = payment_ref(&node.identity.device_id, &sale.key, input.index);
        let amount = Money::new(input.amount_minor, currency);
        let pending = node
            .payments
            .prepare(reference, amount, input.card, sale.dated.0);
        let outcome = match node
            .payments
            .authorize(&node.store, &sale.key, pending)
            .await
        {
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
    // Gift cards last: a redemption cannot be undone, every other tender can.
    for (index, card_id, amount_minor) in gift_cards {
        if let Err(error) = redeem_gift_card(&node, &sale.key, index, card_id, amount_minor).await {
            undo(&node, &taken).await;
            return Err(error);
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
    for (_, card) in &taken {
        node.payments.settle_approved(&node.store, card);
    }
    {
        let mut qr = node.payments.lock_qr();
        for id in &qr_ids {
            qr.mark_used(id);
        }
    }
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

/// Redeems `amount_minor` from gift card `card_id` through Raft, exactly once per sale
/// tender: the redemption id is derived from this device, the sale's Idempotency-Key and
/// the tender index, so a retried request takes nothing twice.
async fn redeem_gift_card(
    node: &NodeContext,
    key: &str,
    index: usize,
    card_id: String,
    amount_minor: i64,
) -> Result<(), ApiError> {
    let field = format!("tenders[{index}].reference");
    let raft = node.raft.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "consensus_unavailable",
            "gift cards are redeemed through the store mesh, which this device does not run",
            Some(&field),
        )
    })?;
    let command = StoreCommand::RedeemGiftCard {
        card_id,
        amount_minor,
        redemption_id: format!(
            "{SALE_REDEMPTION_PREFIX}{}:{key}#{index}",
            node.identity.device_id
        ),
    };
    let (_, response) = raft.write(command).await.map_err(|why| {
        let mut error = super::gift_cards::no_quorum(why);
        error.field = Some(field.clone());
        error
    })?;
    match response {
        posmesh_consensus::StoreResponse::Applied(_)
        | posmesh_consensus::StoreResponse::Replayed { .. } => Ok(()),
        posmesh_consensus::StoreResponse::Refused(refusal) => Err(ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            "gift_card_refused",
            format!("gift card not accepted: {refusal}"),
            Some(&field),
        )),
        posmesh_consensus::StoreResponse::None => Err(ApiError::internal(
            "the store's state machine gave no answer",
        )),
    }
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
        if card.approved.is_some() {
            node.payments.reverse_approved(&node.store, card).await;
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
        CardTenderError::ReversedEarlier => "card_payment_reversed_earlier",
        CardTenderError::Unresolved => "card_payment_unresolved",
        CardTenderError::InProgress => {
            return ApiError::new(
                StatusCode::CONFLICT,
                "card_payment_in_progress",
                error.to_string(),
                Some("tenders"),
            )
        }
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

/// Sets the store's offline card budget through Raft. With an `Idempotency-Key`, a retry
/// under the same key and body answers the first outcome (200, `Idempotent-Replayed:
/// true`), the key used for another request 409 `idempotency_key_reused`. A budget in
/// another currency than the catalog's is 422 `currency_mismatch` (as a gift card's issue),
/// before anything is proposed.
#[utoipa::path(put, tag = "Payments", path = "/v1/payments/exposure-budget", request_body = ExposureBudgetBody,
    params(("X-Operator-Id" = Option<String>, Header, description = "the authorising operator (omit both headers only while the store has no operator)"), ("X-Operator-Pin" = Option<String>, Header, description = "their PIN"), ("Idempotency-Key" = Option<String>, Header, description = "optional, unique per attempt store-wide: a retry with the same key and body answers the first outcome; without it the device keys the write itself")),
    responses((status = 201, description = "committed"), (status = 200, description = "replay of an earlier request with this key (`Idempotent-Replayed: true`)"), (status = 401, body = ErrorBody, description = "`operator_required` (no X-Operator-Id / X-Operator-Pin once the store has operators), `pin_mismatch`"),
              (status = 403, body = ErrorBody, description = "`role_forbidden`: the operator's role may not (see the README's role matrix)"),
              (status = 409, body = ErrorBody, description = "`exposure_budget_exceeded`: the allotments already sum above it; `currency_mismatch`: allotments exist in another currency; `idempotency_key_reused`: the key was used for another request"),
              (status = 422, body = ErrorBody, description = "`currency_mismatch`: not the currency the store sells in; `invalid_amount`"), (status = 503, body = ErrorBody),
              (status = 400, body = ErrorBody, description = "`invalid_header`: X-Operator-Id / X-Operator-Pin not visible ASCII; a malformed request"),
              (status = 429, body = ErrorBody, description = "`pin_locked`: the authorising operator is locked out on this device")))]
pub async fn set_exposure_budget(
    State(node): State<Arc<NodeContext>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let by =
        super::operator_auth::operator_for(&node, &headers, "set the offline card budget").await?;
    let key = super::body::optional_idempotency_key(&headers)?;
    let body: ExposureBudgetBody = parse_json(&headers, body)?;
    let hash = super::body::request_hash("set_exposure_budget", "", &body);
    let currency = super::sales::parse_currency(&body.currency)?;
    let sells_in = node.catalog.currency();
    if currency != sells_in {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "currency_mismatch",
            format!(
                "the store sells in {}, not {}",
                sells_in.code(),
                currency.code()
            ),
            Some("currency"),
        ));
    }
    let command = StoreCommand::SetExposureBudget {
        amount_minor: body.amount_minor,
        currency,
    };
    let command = super::gift_cards::idempotent_if_keyed(key, &hash, command);
    let command = super::operator_auth::authorised(&node, by, command)?;
    super::gift_cards::decide(&node, command).await
}

/// Sets a device's allotment of the offline card budget through Raft, once per
/// `Idempotency-Key` when the client sends one (as the budget). A device the store does
/// not know is 404 `unknown_device` (`check_device_known`), a retired one 409
/// `device_retired`, allotments above the budget 409 `exposure_budget_exceeded`.
#[utoipa::path(put, tag = "Payments", path = "/v1/payments/exposure-allotments/{device}", request_body = ExposureAllotmentBody,
    params(("X-Operator-Id" = Option<String>, Header, description = "the authorising operator (omit both headers only while the store has no operator)"), ("X-Operator-Pin" = Option<String>, Header, description = "their PIN"), ("device" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = "optional, unique per attempt store-wide: a retry with the same key and body answers the first outcome; without it the device keys the write itself")),
    responses((status = 201, description = "committed"), (status = 200, description = "replay of an earlier request with this key (`Idempotent-Replayed: true`)"), (status = 401, body = ErrorBody, description = "`operator_required` (no X-Operator-Id / X-Operator-Pin once the store has operators), `pin_mismatch`"),
              (status = 403, body = ErrorBody, description = "`role_forbidden`: the operator's role may not (see the README's role matrix)"),
              (status = 404, body = ErrorBody, description = "`unknown_device`: the store knows no such device (not in its Raft group, never connected, no entries; enrol it and let it join first)"),
              (status = 409, body = ErrorBody, description = "`device_retired`: the device was removed from the store; `exposure_budget_exceeded`: the allotments would sum above the budget; `no_exposure_budget`; `idempotency_key_reused`: the key was used for another request"),
              (status = 422, body = ErrorBody, description = "`invalid_id`, `invalid_amount`"), (status = 503, body = ErrorBody),
              (status = 400, body = ErrorBody, description = "`invalid_header`: X-Operator-Id / X-Operator-Pin not visible ASCII; a malformed request"),
              (status = 429, body = ErrorBody, description = "`pin_locked`: the authorising operator is locked out on this device")))]
pub async fn set_exposure_allotment(
    State(node): State<Arc<NodeContext>>,
    Path(device): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let by = super::operator_auth::operator_for(
        &node,
        &headers,
        "set a device's offline card allotment",
    )
    .await?;
    crate::config::validate_id("device id", &device).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_id",
            e.to_string(),
            Some("device"),
        )
    })?;
    let key = super::body::optional_idempotency_key(&headers)?;
    let body: ExposureAllotmentBody = parse_json(&headers, body)?;
    let hash = super::body::request_hash("set_exposure_allotment", &device, &body);
    check_device_known(&node, &device)?;
    let command = StoreCommand::SetExposureAllotment {
        device_id: device,
        amount_minor: body.amount_minor,
    };
    let command = super::gift_cards::idempotent_if_keyed(key, &hash, command);
    let command = super::operator_auth::authorised(&node, by, command)?;
    super::gift_cards::decide(&node, command).await
}

/// Refuses an allotment for a device the store does not know (a typo, a till never
/// enrolled): known are the devices `POST /v1/store/devices/{device}/remove` knows — a
/// member of the store's Raft group, connected over the mesh, retired
/// ([`crate::consensus::RaftService::knows_device`]) or with entries held here — and one
/// with a Raft seat recorded or an allotment already (one given by `posmesh init`'s
/// provisioning file before the device joined may still be changed). A retired device is
/// refused by the state machine ([`posmesh_consensus::Refusal::DeviceRetired`]).
///
/// # Errors
/// 404 `unknown_device` (field `device`); 500 `storage`; 503 without consensus.
fn check_device_known(node: &NodeContext, device: &str) -> Result<(), ApiError> {
    let raft = node
        .raft
        .as_ref()
        .ok_or_else(super::gift_cards::no_consensus)?;
    let in_state = raft.read(|state| {
        state.raft_incarnations.contains_key(device)
            || state.exposure.allotments.contains_key(device)
    });
    if in_state || raft.knows_device(device) {
        return Ok(());
    }
    if super::store_devices::holds_entries_of(node, device)? {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_device",
        format!(
            "the store knows no device {device} (not in its Raft group, never connected, no \
             entries here): check the id (`posmesh status` lists the members), or enrol the \
             device and let it join first"
        ),
        Some("device"),
    ))
}

/// One queued offline payment.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueuedPayment {
    /// The sale: device and seq, and the tender index.
    pub device_id: String,
    /// Journal seq of the sale (from 1).
    #[schema(minimum = 1)]
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

/// The store-and-forward queue as one device holds it.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueView {
    /// Offline payments (every device's) not yet acknowledged by the acquirer.
    pub queued: u64,
    /// Of those, how many this device holds the sealed card data of (peer escrow).
    pub card_data_held: u64,
    /// The first [`QUEUE_SHOWN_MAX`] of them, in (device, seq) order.
    pub payments: Vec<QueuedPayment>,
}

/// Most queued payments listed by `GET /v1/payments/queue`.
pub const QUEUE_SHOWN_MAX: usize = 1000;

/// The store-and-forward queue as this device holds it (every device's offline payments
/// not yet acknowledged by the acquirer).
#[utoipa::path(get, tag = "Payments", path = "/v1/payments/queue", responses((status = 200, body = QueueView)))]
pub async fn queue(State(node): State<Arc<NodeContext>>) -> Result<Json<QueueView>, ApiError> {
    let view = tokio::task::spawn_blocking(move || queue_view(&node))
        .await
        .map_err(ApiError::internal)??;
    Ok(Json(view))
}

fn queue_view(node: &NodeContext) -> Result<QueueView, ApiError> {
    let (queued, card_data_held) = node.store.saf_counts().map_err(ApiError::internal)?;
    let items = node
        .store
        .saf_items(QUEUE_SHOWN_MAX)
        .map_err(ApiError::internal)?;
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
    Ok(QueueView {
        queued,
        card_data_held,
        payments: out,
    })
}

/// `POST /v1/payments/qr` body.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QrBody {
    /// Amount to pay, minor units (> 0).
    pub amount_minor: i64,
    /// ISO 4217 code (the store's currency).
    pub currency: String,
}

/// A QR payment request: its id (the tender's `reference`) and the payload to show.
#[derive(Debug, Serialize, ToSchema)]
pub struct QrView {
    /// QR id.
    pub qr_id: String,
    /// EMV merchant-presented QR payload (encode it as a QR code).
    pub payload: String,
    /// Amount, minor units.
    pub amount_minor: i64,
    /// Whether the wallet confirmed it.
    pub confirmed: bool,
}

/// Creates a QR wallet payment request for an amount (Idempotency-Key = the QR's id).
#[utoipa::path(post, tag = "Payments", path = "/v1/payments/qr", request_body = QrBody,
    params(("Idempotency-Key" = String, Header)),
    responses((status = 201, body = QrView), (status = 422, body = ErrorBody)))]
pub async fn create_qr(
    State(node): State<Arc<NodeContext>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let body: QrBody = parse_json(&headers, body)?;
    let currency = super::sales::parse_currency(&body.currency)?;
    let amount = qr_amount(&node, body.amount_minor, currency)?;
    let qr_id = format!("{}:{key}", node.identity.device_id);
    let request = posmesh_payments::emv_qr::QrRequest {
        scheme_id: "com.posmesh.wallet".into(),
        merchant_id: node.payments.config.merchant_id.clone(),
        merchant_category_code: "5812".into(),
        amount,
        country: "GB".into(),
        merchant_name: node.store_name.chars().take(25).collect(),
        merchant_city: "Store".into(),
        reference: qr_id
            .chars()
            .rev()
            .take(25)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect(),
    };
    let payload = posmesh_payments::emv_qr::build_payload(&request).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_qr",
            e.to_string(),
            None,
        )
    })?;
    let session = node.payments.lock_qr().open(&qr_id, amount, payload);
    Ok((
        StatusCode::CREATED,
        Json(QrView {
            qr_id,
            payload: session.payload,
            amount_minor: session.amount.minor,
            confirmed: session.confirmed,
        }),
    )
        .into_response())
}

/// The wallet scheme's confirmation of a QR payment (simulated: a real scheme calls back
/// or is polled).
#[utoipa::path(post, tag = "Payments", path = "/v1/payments/qr/{id}/confirm", request_body = QrBody,
    params(("id" = String, Path)),
    responses((status = 200), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn confirm_qr(
    State(node): State<Arc<NodeContext>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body: QrBody = parse_json(&headers, body)?;
    let currency = super::sales::parse_currency(&body.currency)?;
    let amount = qr_amount(&node, body.amount_minor, currency)?;
    node.payments
        .lock_qr()
        .confirm(&id, amount)
        .map_err(|e| match e {
            crate::payments::qr_wallet::QrRefusal::Unknown(_) => {
                ApiError::not_found("qr_not_found", e.to_string(), None)
            }
            _ => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "qr_amount_mismatch",
                e.to_string(),
                Some("amount_minor"),
            ),
        })?;
    Ok((
        StatusCode::OK,
        Json(serde_json::json!({"qr_id": id, "confirmed": true})),
    )
        .into_response())
}

fn qr_amount(
    node: &NodeContext,
    amount_minor: i64,
    currency: posmesh_domain::Currency,
) -> Result<Money, ApiError> {
    if currency != node.catalog.currency() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "currency_mismatch",
            format!("the store sells in {}", node.catalog.currency().code()),
            Some("currency"),
        ));
    }
    if !(1..=posmesh_domain::TENDER_AMOUNT_MAX_MINOR).contains(&amount_minor) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_amount",
            format!(
                "amount_minor must be 1 to {}",
                posmesh_domain::TENDER_AMOUNT_MAX_MINOR
            ),
            Some("amount_minor"),
        ));
    }
    Ok(Money::new(amount_minor, currency))
}
