//! JSON shapes of the local API: request bodies (strict: unknown fields are refused) and
//! answers. Amounts are integer minor units of the sale's ISO 4217 currency.

use crate::ledger::convert;
use crate::ledger::sale_ref::SaleRef;
use posmesh_domain::{
    Consumption, Currency, Discount, LineRequest, PricedSale, SaleRequest, TenderKind,
    TenderRequest,
};
use posmesh_proto::journal::v1::{journal_entry::Payload, JournalEntry};
use posmesh_proto::storage::v1::SaleStatus;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// `POST /v1/sales` body.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSaleBody {
    /// ISO 4217 code; must be the catalog's currency.
    pub currency: String,
    /// `take_away` (default) or `eat_in`: selects each line's tax rate.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "take_away")]
    pub consumption: Option<Consumption>,
    /// Lines, at most 500.
    pub lines: Vec<LineBody>,
    /// Sale discount: `{"amount_minor": 50}` or `{"percent_bp": 1000}` (10 %).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub discount: Option<Discount>,
    /// Tenders; cash may exceed the amount due (change is given), others may not.
    pub tenders: Vec<TenderBody>,
    /// When the sale happened (RFC 3339). Default: now. Set by imports of till history.
    #[serde(default)]
    pub occurred_at: Option<String>,
    /// Operator who rang the sale up, recorded in the journal and shown as the entry's
    /// `operator_id`. Shaped like an operator's id when it is set (`POST /v1/operators`):
    /// lowercase letters, digits and `-`, 1–63 bytes, else 422 `invalid_operator_id` and
    /// nothing is recorded. Not checked against the store's operators nor their shifts: a
    /// till sells while cut off from the store's Raft group, so an id the store does not
    /// know (yet), or a disabled one, is recorded as sent. Omitted: none.
    #[serde(default)]
    #[schema(example = "csh-1")]
    pub operator_id: Option<String>,
}

impl CreateSaleBody {
    /// The domain request of this body. The caller parses `currency` (so it can answer a
    /// bad code with its own error); consumption defaults to take-away.
    pub fn to_sale_request(&self, currency: Currency) -> SaleRequest {
        SaleRequest {
            currency,
            consumption: self.consumption.unwrap_or(Consumption::TakeAway),
            lines: self
                .lines
                .iter()
                .map(|line| LineRequest {
                    sku: line.sku.clone(),
                    quantity: line.quantity,
                    unit_price_override_minor: line.unit_price_override_minor,
                    discount: line.discount,
                    consumption: line.consumption,
                })
                .collect(),
            discount: self.discount,
            tenders: self
                .tenders
                .iter()
                .map(|t| TenderRequest {
                    kind: t.kind,
                    amount_minor: t.amount_minor,
                    reference: t.reference.clone(),
                })
                .collect(),
        }
    }
}

/// One line of a sale request.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineBody {
    /// Catalog SKU.
    pub sku: String,
    /// Units, 1..=100000.
    pub quantity: i64,
    /// Manual unit price (tax-inclusive, minor units) overriding the catalog's.
    #[serde(default)]
    pub unit_price_override_minor: Option<i64>,
    /// Line discount, `{"amount_minor": n}` or `{"percent_bp": n}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub discount: Option<Discount>,
    /// Overrides the sale's consumption for this line.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub consumption: Option<Consumption>,
}

/// One tender of a sale request.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenderBody {
    /// `cash`, `card`, `qr_wallet` or `gift_card`.
    #[schema(value_type = String, example = "cash")]
    pub kind: TenderKind,
    /// Amount handed over or charged, minor units, > 0.
    pub amount_minor: i64,
    /// Card or voucher reference.
    #[serde(default)]
    pub reference: Option<String>,
    /// Card tenders only: the card read at this till. With it the node authorizes the
    /// payment with the acquirer (or takes it offline within the limits); without it the
    /// card was taken on an external terminal and the tender is recorded as given.
    #[serde(default)]
    pub card: Option<CardBody>,
}

/// The card of a card tender. Never journaled in clear: the journal keeps the masked PAN
/// and a keyed token; an offline payment's PAN and expiry are sealed outside the journal.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardBody {
    /// Primary account number: 12–19 digits with a valid Luhn check digit.
    pub pan: String,
    /// Expiry date `YYMM`.
    pub expiry: String,
}

/// `POST /v1/sales/{device}/{seq}/refunds` body.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundBody {
    /// Lines of the original sale to refund.
    pub lines: Vec<RefundLineBody>,
    /// How the money goes back (default: the original sale's first tender).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub tender: Option<TenderKind>,
    /// Why (free text, at most 200 characters).
    #[serde(default)]
    pub reason: Option<String>,
}

/// One refunded line.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundLineBody {
    /// Index of the line in the original sale (0-based).
    pub line_index: u32,
    /// Units to refund.
    pub quantity: i64,
}

/// `POST /v1/sales/{device}/{seq}/void` body.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoidBody {
    /// Why (free text, at most 200 characters).
    #[serde(default)]
    pub reason: Option<String>,
}

/// Query of the listing endpoints.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only entries with a greater sequence number (default 0: from the start).
    #[serde(default)]
    pub after_seq: u64,
    /// Most entries returned, 1..=1000 (default 100).
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// Whose journal: any device of the store (every device holds every device's sales once
    /// replicated). Default: this device.
    #[serde(default)]
    pub device: Option<String>,
    /// Only entries of this business date (YYYY-MM-DD).
    #[serde(default)]
    pub business_date: Option<String>,
}

/// `GET /v1/devices`: the devices whose sales this node holds.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DeviceList {
    /// Device id → highest sequence number held, in device order.
    #[schema(value_type = Object)]
    pub devices: std::collections::BTreeMap<String, u64>,
}

/// A journal entry as the API shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EntryView {
    /// `device/seq`.
    pub id: String,
    /// Device that wrote it.
    pub device_id: String,
    /// Journal sequence number on that device (from 1).
    #[schema(minimum = 1)]
    pub seq: u64,
    /// Receipt number (gap-free per device).
    pub receipt_no: u64,
    /// `sale`, `refund`, `void` or `payment`.
    pub kind: String,
    /// Business date, YYYY-MM-DD in the store's time zone.
    pub business_date: String,
    /// When it happened at the till, ms since the Unix epoch.
    pub occurred_at_ms: i64,
    /// Hybrid logical clock: ms since the Unix epoch, and logical counter.
    pub hlc: [u64; 2],
    /// Catalog version used for pricing.
    pub catalog_version: u64,
    /// Chain hash of this entry, hex.
    pub chain_hash: String,
    /// Chain hash of the previous entry, hex.
    pub prev_hash: String,
    /// The sale, when `kind` is `sale`.
    #[schema(value_type = Option<Object>)]
    pub sale: Option<PricedSale>,
    /// The refund or void, when `kind` is `refund` or `void`.
    #[schema(value_type = Option<Object>)]
    pub reference: Option<serde_json::Value>,
    /// What happened to a sale since (voids, refunds); present on `GET` of one sale.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<SaleStatusView>,
    /// The Idempotency-Key it was written under on `device_id` (keys are per device), e.g.
    /// `import-<file>-<transaction>` for a sale of `posmesh import`.
    pub idempotency_key: String,
    /// The operator the request named (a sale's or order close's `operator_id`), as
    /// recorded: unverified against the store's operators (see `CreateSaleBody`); null
    /// when none was named (voids, refunds and payments name none).
    pub operator_id: Option<String>,
}

/// What happened to a sale after it was taken.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SaleStatusView {
    /// The void entry (`device/seq`), if voided.
    pub voided_by: Option<String>,
    /// Units refunded so far, per line.
    pub refunded_quantity: Vec<i64>,
    /// Refund entries (`device/seq`).
    pub refunds: Vec<String>,
}

/// A page of entries.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EntryPage {
    /// The entries, in sequence order.
    pub entries: Vec<EntryView>,
    /// Pass as `after_seq` for the next page; null when this page is the last.
    pub next_after_seq: Option<u64>,
}

impl EntryView {
    /// The view of a stored entry with chain hash `chain_hash`.
    pub fn from_entry(entry: &JournalEntry, chain_hash: &[u8]) -> Self {
        let (kind, sale, reference) = match &entry.payload {
            Some(Payload::Sale(sale)) => (
                "sale",
                convert::sale_from_proto(sale, entry.catalog_version).ok(),
                None,
            ),
            Some(Payload::Refund(refund)) => (
                "refund",
                None,
                Some(serde_json::json!({
                    "original": SaleRef { device_id: refund.original_device_id.clone(), seq: refund.original_seq }.to_string(),
                    "original_receipt_no": refund.original_receipt_no,
                    "currency": refund.currency,
                    "total_minor": refund.total_minor,
                    "tax_minor": refund.tax_minor,
                    "lines": refund.lines.iter().map(|l| serde_json::json!({
                        "line_index": l.line_index, "quantity": l.quantity,
                        "amount_minor": l.amount_minor, "tax_minor": l.tax_minor,
                    })).collect::<Vec<_>>(),
                    "tender": refund.tenders.first().map(|t| convert::tender_kind_from_proto(t.kind).ok()),
                    "reason": refund.reason,
                })),
            ),
            Some(Payload::Void(void)) => (
                "void",
                None,
                Some(serde_json::json!({
                    "original": SaleRef { device_id: void.original_device_id.clone(), seq: void.original_seq }.to_string(),
                    "original_receipt_no": void.original_receipt_no,
                    "reason": void.reason,
                })),
            ),
            Some(Payload::Payment(_)) => ("payment", None, None),
            None => ("unknown", None, None),
        };
        let hlc = entry.hlc.unwrap_or_default();
        Self {
            id: format!("{}/{}", entry.device_id, entry.seq),
            device_id: entry.device_id.clone(),
            seq: entry.seq,
            receipt_no: entry.receipt_no,
            kind: kind.to_owned(),
            business_date: entry.business_date.clone(),
            occurred_at_ms: entry.occurred_at_ms,
            hlc: [hlc.physical_ms, u64::from(hlc.logical)],
            catalog_version: entry.catalog_version,
            chain_hash: hex::encode(chain_hash),
            prev_hash: hex::encode(&entry.prev_hash),
            sale,
            reference,
            status: None,
            idempotency_key: entry.idempotency_key.clone(),
            operator_id: (!entry.operator_id.is_empty()).then(|| entry.operator_id.clone()),
        }
    }
}

impl From<SaleStatus> for SaleStatusView {
    fn from(status: SaleStatus) -> Self {
        Self {
            voided_by: (!status.voided_by_device_id.is_empty())
                .then(|| format!("{}/{}", status.voided_by_device_id, status.voided_by_seq)),
            refunded_quantity: status.refunded_quantity,
            refunds: status.refunds,
        }
    }
}
