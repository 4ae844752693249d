//! Taking one card tender of a sale.
//!
//! 1. With an acquirer configured: a financial request (0200) bounded by the acquirer
//!    timeout. Approved → the tender is good. Declined → refused with the issuer's reason.
//!    No answer after the request may have left → the connector reverses it (0400) and the
//!    payment is **not approved** (the cashier asks for another payment). STAN and RRN
//!    derive from (device, Idempotency-Key, tender index), so a retried request of the same
//!    sale is recognised by the acquirer and never charges twice.
//! 2. Acquirer unreachable (nothing was sent) or not configured → offline: accepted only
//!    within the floor limit, the device cap, the device's last Raft-committed allotment of
//!    the store budget and the maximum offline age (`posmesh_payments::offline_limits`),
//!    else refused with the cashier's sentence. An accepted offline payment's PAN and
//!    expiry are sealed (AES-256-GCM) and stored outside the hash chain, synced, before the
//!    sale is journaled; the journal keeps the masked PAN, the keyed token and the blob's
//!    digest only.

use super::PaymentsService;
use crate::storage::JournalStore;
use chrono::{Datelike, Timelike};
use posmesh_domain::Money;
use posmesh_payments::card_data::{CardToken, ForwardingCardData, SealedCardData};
use posmesh_payments::connector::{
    AuthorizationOutcome, CardPayment, DateTime, EntryMode, PaymentConnector, PaymentRef,
    ReversalStatus, TraceIds,
};
use posmesh_payments::offline_limits::{self, CommittedAllotment, Exposure, OfflineRefusal};
use posmesh_proto::journal::v1::Tender;

/// Why a card tender was not taken. Nothing was journaled.
#[derive(Debug, thiserror::Error)]
pub enum CardTenderError {
    /// The issuer declined (response code and its meaning).
    #[error("card declined by the issuer: {reason} (response code {response_code}). Ask for another card or another way to pay.")]
    Declined {
        /// ISO 8583 field 39.
        response_code: String,
        /// Its meaning.
        reason: &'static str,
    },
    /// The acquirer did not answer in time; the request was reversed.
    #[error("card payment not approved: the acquirer did not answer ({cause}); the request was reversed ({reversal}). Ask for another way to pay, or try the card again as a new sale.")]
    NotApproved {
        /// What failed.
        cause: String,
        /// What became of the reversal.
        reversal: String,
    },
    /// This sale's card payment was sent before under the same Idempotency-Key and
    /// reversed after a timeout: the acquirer refuses it as a duplicate.
    #[error("this sale's card payment was not approved earlier (the acquirer did not answer) and was reversed; to try the card again, start a new sale (a new Idempotency-Key)")]
    ReversedEarlier,
    /// Offline and outside the limits.
    #[error("{0}")]
    OfflineRefused(OfflineRefusal),
    /// The node could not store the card data.
    #[error("card data could not be stored: {0}")]
    Storage(String),
}

/// A card tender as taken: the journal's card fields.
#[derive(Debug)]
pub struct TakenCard {
    /// Tender fields to journal (kind, amount and change are filled by the sale).
    pub fields: Tender,
    /// Sealed card data stored for an offline payment (deleted again if the sale is not
    /// journaled).
    pub stored_digest: Option<String>,
    /// The approved online payment, to reverse if the sale is not journaled after all.
    pub approved: Option<CardPayment>,
}

/// The payment identity of tender `tender_index` of the sale with Idempotency-Key `key`
/// on `device_id`: the same request retried gives the same STAN and RRN.
pub fn payment_ref(device_id: &str, key: &str, tender_index: usize) -> PaymentRef {
    PaymentRef {
        sale_id: format!("{device_id}:{key}"),
        tender_index: u16::try_from(tender_index).unwrap_or(u16::MAX),
        attempt: 0,
    }
}

/// The id the sealed card data is bound to (AES-GCM associated data).
pub fn sealing_id(reference: &PaymentRef) -> String {
    format!(
        "{}#{}#{}",
        reference.sale_id, reference.tender_index, reference.attempt
    )
}

/// ISO 8583 date/time fields of `at_ms` (UTC; fields 12/13 also carry UTC here).
pub fn iso_datetime(at_ms: i64) -> DateTime {
    let at = chrono::DateTime::from_timestamp_millis(at_ms).unwrap_or_default();
    DateTime::new(
        at.month() as u8,
        at.day() as u8,
        at.hour() as u8,
        at.minute() as u8,
        at.second() as u8,
    )
    .unwrap_or(DateTime {
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
    })
}

/// What the offline decision needs from the node.
pub struct OfflineContext<'a> {
    /// The database (exposure, card data).
    pub store: &'a JournalStore,
    /// This device.
    pub device_id: &'a str,
    /// The device's last Raft-committed allotment (None: none committed, or no Raft).
    pub allotment: Option<CommittedAllotment>,
    /// Offline card amounts of earlier tenders of the same sale, minor units.
    pub pending_minor: i64,
    /// Now, ms since the Unix epoch.
    pub now_ms: i64,
}

/// A card payment being taken: what the acquirer gets and what the journal keeps.
#[derive(Debug)]
pub struct PendingCard {
    /// The payment (clear card data: memory only).
    pub payment: CardPayment,
    /// The journal's card fields so far (masked PAN, token, trace numbers).
    pub fields: Tender,
}

impl PaymentsService {
    /// Prepares tender `reference` of `amount` paid with `card` at `taken_at_ms`.
    pub fn prepare(
        &self,
        reference: PaymentRef,
        amount: Money,
        card: ForwardingCardData,
        taken_at_ms: i64,
    ) -> PendingCard {
        let ids = TraceIds::derive(&reference);
        let fields = Tender {
            masked_pan: card.pan.masked().as_str().to_owned(),
            card_token: CardToken::new(&self.keys.token_key, &card.pan)
                .as_str()
                .to_owned(),
            terminal_id: self.terminal.terminal_id.trim_end().to_owned(),
            stan: ids.stan,
            rrn: ids.rrn,
            payment_sale_id: reference.sale_id.clone(),
            payment_attempt: u32::from(reference.attempt),
            ..Tender::default()
        };
        let payment = CardPayment {
            reference,
            card,
            amount,
            taken_at_utc: iso_datetime(taken_at_ms),
            taken_at_local: iso_datetime(taken_at_ms),
            entry_mode: EntryMode::Manual,
        };
        PendingCard { payment, fields }
    }

    /// Authorizes online (0200). `Ok(Err(pending))` hands the payment back when the
    /// acquirer is unreachable (nothing was sent) or not configured: decide it offline
    /// with [`PaymentsService::take_offline`].
    ///
    /// # Errors
    /// [`CardTenderError::Declined`]; [`CardTenderError::NotApproved`] when the request may
    /// have reached the acquirer but no answer came (it was reversed).
    pub async fn authorize(
        &self,
        pending: PendingCard,
    ) -> Result<Result<TakenCard, PendingCard>, CardTenderError> {
        let Some(connector) = &self.connector else {
            return Ok(Err(pending));
        };
        let PendingCard {
            payment,
            mut fields,
        } = pending;
        match connector.authorize(&payment, true).await {
            AuthorizationOutcome::Approved { auth_id, .. } => {
                metrics::counter!("posmesh_card_payments_total", "mode" => "online").increment(1);
                fields.reference = format!("auth {auth_id} {}", fields.masked_pan);
                fields.auth_id = auth_id;
                Ok(Ok(TakenCard {
                    fields,
                    stored_digest: None,
                    approved: Some(payment),
                }))
            }
            // 94 to a request whose STAN/RRN derive from this sale's Idempotency-Key: the
            // same payment was sent before and reversed after a timeout (a retry of a "not
            // approved" sale under the same key), not a decline of the card.
            AuthorizationOutcome::Declined { response_code, .. } if response_code == "94" => {
                Err(CardTenderError::ReversedEarlier)
            }
            AuthorizationOutcome::Declined {
                response_code,
                reason,
            } => Err(CardTenderError::Declined {
                response_code,
                reason,
            }),
            AuthorizationOutcome::NotApproved { cause, reversal } => {
                let reversal = match reversal {
                    ReversalStatus::NotNeeded => {
                        tracing::info!(%cause, "acquirer unreachable: deciding the card payment offline");
                        return Ok(Err(PendingCard { payment, fields }));
                    }
                    ReversalStatus::Acknowledged { response_code } => {
                        format!("reversal acknowledged, code {response_code}")
                    }
                    ReversalStatus::Pending { cause, .. } => {
                        format!("reversal not acknowledged: {cause}")
                    }
                };
                Err(CardTenderError::NotApproved { cause, reversal })
            }
        }
    }

    /// Decides a payment offline within the limits; if accepted, seals its card data and
    /// stores it (synced). The caller holds [`PaymentsService::offline_lock`] from before
    /// this call until the sale is journaled (or the card data deleted again).
    ///
    /// # Errors
    /// [`CardTenderError::OfflineRefused`] with the cashier's sentence;
    /// [`CardTenderError::Storage`].
    pub fn take_offline(
        &self,
        pending: PendingCard,
        context: &OfflineContext<'_>,
    ) -> Result<TakenCard, CardTenderError> {
        let PendingCard {
            payment,
            mut fields,
        } = pending;
        let (held_minor, oldest_ms) = context
            .store
            .saf_exposure(context.device_id)
            .map_err(|e| CardTenderError::Storage(e.to_string()))?;
        let exposure = Exposure {
            unforwarded_minor: held_minor.saturating_add(context.pending_minor),
            oldest_unforwarded_at_secs: oldest_ms.map(|ms| u64::try_from(ms / 1000).unwrap_or(0)),
        };
        let now_secs = u64::try_from(context.now_ms / 1000).unwrap_or(0);
        offline_limits::decide(
            &self.limits,
            &exposure,
            context.allotment.as_ref(),
            payment.amount,
            now_secs,
        )
        .map_err(CardTenderError::OfflineRefused)?;
        let sealed = SealedCardData::seal(
            &self.keys.forwarding_key,
            &sealing_id(&payment.reference),
            &payment.card,
        )
        .map_err(|e| CardTenderError::Storage(e.to_string()))?;
        let digest = sealed.digest();
        context
            .store
            .put_card_data(&digest, sealed.as_bytes())
            .map_err(|e| CardTenderError::Storage(e.to_string()))?;
        metrics::counter!("posmesh_card_payments_total", "mode" => "offline").increment(1);
        fields.offline = true;
        fields.card_data_digest = digest.clone();
        fields.reference = format!("offline {}", fields.masked_pan);
        Ok(TakenCard {
            fields,
            stored_digest: Some(digest),
            approved: None,
        })
    }

    /// Reverses an approved online payment whose sale could not be journaled (best effort:
    /// logged when the reversal is not acknowledged).
    pub async fn reverse_approved(&self, payment: &CardPayment) {
        let Some(connector) = &self.connector else {
            return;
        };
        let request = match posmesh_payments::connector::build_request(
            &connector.terminal,
            payment,
            posmesh_payments::iso8583::Mti::FinancialRequest,
        ) {
            Ok(request) => request,
            Err(error) => {
                tracing::error!(%error, "cannot build the reversal of an approved payment");
                return;
            }
        };
        match posmesh_payments::connector::build_reversal(&request, false) {
            Ok(reversal) => {
                let status = connector.send_reversal(&reversal).await;
                tracing::warn!(
                    ?status,
                    "approved card payment reversed: its sale was not recorded"
                );
            }
            Err(error) => tracing::error!(%error, "cannot build the reversal"),
        }
    }
}
