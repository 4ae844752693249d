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
//!
//! # Crash while a request is in flight
//! Before the 0200 is sent, a reversal record ([`PendingAuthorization`]: reference, amount,
//! time, terminal; no card data) is written, synced. It is deleted on a definitive outcome:
//! declined, reversal acknowledged, nothing sent, or the approved sale journaled (or its
//! reversal acknowledged when the sale could not be). A record left behind — the till died
//! (power cut, SIGKILL) while the request was in flight, or the reversal went unanswered —
//! is reversed (0400) at start-up and then every 5 to 30 s until the acquirer answers
//! ([`run_pending_reversals`]), the EMV terminals' "reversal on power failure". A retry of
//! that sale (the same Idempotency-Key) never sends the request again nor goes offline
//! under that reference: it tries the reversal itself and answers
//! [`CardTenderError::ReversedEarlier`] once acknowledged, else
//! [`CardTenderError::Unresolved`].

use super::PaymentsService;
use crate::runtime::NodeContext;
use crate::storage::pending_auth::PendingAuthorization;
use crate::storage::JournalStore;
use chrono::{Datelike, Timelike};
use posmesh_domain::{Currency, Money};
use posmesh_payments::card_data::{CardToken, ForwardingCardData, SealedCardData};
use posmesh_payments::connector::{
    build_reversal_of_recorded, AuthorizationOutcome, CardPayment, DateTime, EntryMode,
    PaymentConnector, PaymentRef, RecordedPayment, ReversalStatus, Terminal, TraceIds,
};
use posmesh_payments::iso8583::Mti;
use posmesh_payments::offline_limits::{self, CommittedAllotment, Exposure, OfflineRefusal};
use posmesh_proto::journal::v1::Tender;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    /// reversed (after a timeout, or after this device restarted with the request in
    /// flight): the acquirer refuses it as a duplicate.
    #[error("this sale's card payment was not approved earlier (the acquirer did not answer) and was reversed; to try the card again, start a new sale (a new Idempotency-Key)")]
    ReversedEarlier,
    /// An earlier attempt of this sale's card payment (same Idempotency-Key) may have been
    /// approved and its reversal is not acknowledged yet: it is not sent again, nor taken
    /// offline under the same reference.
    #[error("an earlier attempt of this card payment may have been approved; its reversal is pending and will be retried until the acquirer answers; ask for another way to pay")]
    Unresolved,
    /// Another request with the same Idempotency-Key is taking this card payment now.
    #[error("this sale's card payment is being taken by another request with the same Idempotency-Key; retry once that request has answered")]
    InProgress,
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
    /// For an approved online payment: its reversal record, held in flight until the sale
    /// is journaled ([`PaymentsService::settle_approved`]) or reversed
    /// ([`PaymentsService::reverse_approved`]).
    pub in_flight: Option<InFlight>,
}

/// Who holds a card payment in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holder {
    /// A sale request authorising it.
    Request,
    /// [`run_pending_reversals`] reversing it.
    Reversal,
}

/// The card payments (sealing ids) in flight on this device.
#[derive(Clone, Debug, Default)]
pub struct InFlightSet(Arc<Mutex<HashMap<String, Holder>>>);

impl InFlightSet {
    /// Marks `id` in flight for `holder`; `Err` names who holds it already.
    ///
    /// # Errors
    /// The current holder.
    pub fn enter(&self, id: &str, holder: Holder) -> Result<InFlight, Holder> {
        let mut held = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(current) = held.get(id) {
            return Err(*current);
        }
        held.insert(id.to_owned(), holder);
        Ok(InFlight {
            id: id.to_owned(),
            set: self.clone(),
        })
    }
}

/// A card payment in flight (its sealing id); released when dropped.
#[derive(Debug)]
pub struct InFlight {
    id: String,
    set: InFlightSet,
}

impl InFlight {
    /// The payment's sealing id (the key of its reversal record).
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut held = self.set.0.lock().unwrap_or_else(|p| p.into_inner());
        held.remove(&self.id);
    }
}

/// What became of a pending authorisation's record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// The acquirer answered the reversal (0410, this response code): the record is gone.
    Reversed(String),
    /// The sale was journaled after all (the till died after journaling it, before the
    /// record was deleted): the record was stale and is gone, nothing was sent.
    Journaled,
    /// The reversal could not be sent or got no answer (why): the record stays.
    Unanswered(String),
}

/// First wait of [`run_pending_reversals`] after a pass that left a reversal unanswered;
/// doubled after each such pass up to [`REVERSAL_RETRY_MAX`].
pub const REVERSAL_RETRY_MIN: Duration = Duration::from_secs(5);
/// Longest wait between two passes of [`run_pending_reversals`] (also its pace when no
/// record waits, in case one was left without a wake-up).
pub const REVERSAL_RETRY_MAX: Duration = Duration::from_secs(30);

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
    /// When it was taken, ms since the Unix epoch (the request's date and time fields).
    pub taken_at_ms: i64,
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
        PendingCard {
            payment,
            fields,
            taken_at_ms,
        }
    }

    /// Authorizes online (0200) tender `pending` of the sale with Idempotency-Key
    /// `idempotency_key`, under a reversal record written to `store` before the request is
    /// sent (see the module doc). `Ok(Err(pending))` hands the payment back when the
    /// acquirer is unreachable (nothing was sent) or not configured: decide it offline
    /// with [`PaymentsService::take_offline`].
    ///
    /// # Errors
    /// [`CardTenderError::Declined`]; [`CardTenderError::NotApproved`] when the request may
    /// have reached the acquirer but no answer came (it was reversed, or its reversal is
    /// retried); [`CardTenderError::ReversedEarlier`] / [`CardTenderError::Unresolved`] for
    /// a retry of a payment an earlier attempt left unsettled;
    /// [`CardTenderError::InProgress`] while another request takes the same payment;
    /// [`CardTenderError::Storage`] when the record cannot be written (nothing was sent).
    pub async fn authorize(
        &self,
        store: &JournalStore,
        idempotency_key: &str,
        pending: PendingCard,
    ) -> Result<Result<TakenCard, PendingCard>, CardTenderError> {
        let id = sealing_id(&pending.payment.reference);
        let in_flight = self.enter_for_request(&id).await?;
        let storage = |e: crate::storage::StorageError| CardTenderError::Storage(e.to_string());
        if let Some(record) = store.pending_authorization(&id).map_err(storage)? {
            // An earlier attempt may have been approved (the till died with it in flight,
            // or its reversal went unanswered): never send it again, never take it
            // offline under the same reference.
            return Err(match self.resolve_pending(store, &id, &record).await {
                Resolution::Reversed(_) => CardTenderError::ReversedEarlier,
                Resolution::Journaled | Resolution::Unanswered(_) => CardTenderError::Unresolved,
            });
        }
        let Some(connector) = &self.connector else {
            return Ok(Err(pending));
        };
        let PendingCard {
            payment,
            mut fields,
            taken_at_ms,
        } = pending;
        let record = self.pending_record(idempotency_key, &payment, taken_at_ms);
        store
            .put_pending_authorization(&id, &record)
            .map_err(storage)?;
        let settled = || {
            if let Err(error) = store.delete_pending_authorization(&id) {
                tracing::error!(%error, payment = %id, "cannot delete a settled authorisation's reversal record (its reversal will be sent needlessly)");
            }
        };
        match connector.authorize(&payment, true).await {
            AuthorizationOutcome::Approved { auth_id, .. } => {
                metrics::counter!("posmesh_card_payments_total", "mode" => "online").increment(1);
                fields.reference = format!("auth {auth_id} {}", fields.masked_pan);
                fields.auth_id = auth_id;
                Ok(Ok(TakenCard {
                    fields,
                    stored_digest: None,
                    approved: Some(payment),
                    in_flight: Some(in_flight),
                }))
            }
            // 94 to a request whose STAN/RRN derive from this sale's Idempotency-Key: the
            // same payment was sent before and reversed after a timeout (a retry of a "not
            // approved" sale under the same key), not a decline of the card.
            AuthorizationOutcome::Declined { response_code, .. } if response_code == "94" => {
                settled();
                Err(CardTenderError::ReversedEarlier)
            }
            AuthorizationOutcome::Declined {
                response_code,
                reason,
            } => {
                settled();
                Err(CardTenderError::Declined {
                    response_code,
                    reason,
                })
            }
            AuthorizationOutcome::NotApproved { cause, reversal } => {
                let reversal = match reversal {
                    ReversalStatus::NotNeeded => {
                        settled();
                        tracing::info!(%cause, "acquirer unreachable: deciding the card payment offline");
                        return Ok(Err(PendingCard {
                            payment,
                            fields,
                            taken_at_ms,
                        }));
                    }
                    ReversalStatus::Acknowledged { response_code } => {
                        settled();
                        format!("reversal acknowledged, code {response_code}")
                    }
                    ReversalStatus::Pending { cause, .. } => {
                        drop(in_flight);
                        self.reversal_wakeup.notify_one();
                        format!("reversal not acknowledged yet ({cause}); it is resent until the acquirer answers")
                    }
                };
                Err(CardTenderError::NotApproved { cause, reversal })
            }
        }
    }

    /// Marks payment `id` in flight for a request. While the pending-reversal task is
    /// reversing it, waits for that (bounded by twice the acquirer timeout and a second).
    ///
    /// # Errors
    /// [`CardTenderError::InProgress`] when another request holds it;
    /// [`CardTenderError::Unresolved`] when the reversal still runs after the bound.
    async fn enter_for_request(&self, id: &str) -> Result<InFlight, CardTenderError> {
        let bound = Duration::from_millis(self.config.acquirer_timeout_ms)
            .saturating_mul(2)
            .saturating_add(Duration::from_secs(1));
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            match self.in_flight.enter(id, Holder::Request) {
                Ok(in_flight) => return Ok(in_flight),
                Err(Holder::Request) => return Err(CardTenderError::InProgress),
                Err(Holder::Reversal) if tokio::time::Instant::now() >= deadline => {
                    return Err(CardTenderError::Unresolved)
                }
                Err(Holder::Reversal) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// The reversal record of `payment` (no card data).
    fn pending_record(
        &self,
        idempotency_key: &str,
        payment: &CardPayment,
        taken_at_ms: i64,
    ) -> PendingAuthorization {
        PendingAuthorization {
            idempotency_key: idempotency_key.to_owned(),
            sale_id: payment.reference.sale_id.clone(),
            tender_index: payment.reference.tender_index,
            attempt: payment.reference.attempt,
            amount_minor: payment.amount.minor,
            currency: payment.amount.currency.code().to_owned(),
            taken_at_ms,
            terminal_id: self.terminal.terminal_id.trim_end().to_owned(),
            merchant_id: self.terminal.merchant_id.trim_end().to_owned(),
        }
    }

    /// Settles pending authorisation `id` (the caller holds it in flight): deletes a stale
    /// record whose sale was journaled, else sends the reversal (0400) its record names and
    /// deletes the record once the acquirer answers (any 0410 code: `00` reversed, `25` it
    /// never had the request).
    pub async fn resolve_pending(
        &self,
        store: &JournalStore,
        id: &str,
        record: &PendingAuthorization,
    ) -> Resolution {
        let delete = |what: &str| {
            if let Err(error) = store.delete_pending_authorization(id) {
                tracing::error!(%error, payment = %id, "cannot delete the reversal record {what}");
            }
        };
        match store.idempotency(&record.idempotency_key) {
            Ok(Some(journaled))
                if format!("{}:{}", journaled.device_id, record.idempotency_key)
                    == record.sale_id =>
            {
                delete("of a journaled sale");
                return Resolution::Journaled;
            }
            Ok(_) => {}
            Err(error) => return Resolution::Unanswered(format!("reading the journal: {error}")),
        }
        let Some(connector) = &self.connector else {
            return Resolution::Unanswered(
                "this device has no acquirer configured (--acquirer)".to_owned(),
            );
        };
        let (terminal, payment) = match recorded_payment(record) {
            Ok(recorded) => recorded,
            Err(why) => return Resolution::Unanswered(why),
        };
        let message = match build_reversal_of_recorded(&terminal, &payment) {
            Ok(message) => message,
            Err(error) => return Resolution::Unanswered(format!("building the reversal: {error}")),
        };
        let mut connector = connector.clone();
        connector.terminal = terminal;
        match connector.send_reversal(&message).await {
            ReversalStatus::Acknowledged { response_code } => {
                metrics::counter!("posmesh_card_reversals_total", "cause" => "unsettled_authorization")
                    .increment(1);
                tracing::info!(payment = %id, %response_code, "reversal of an unsettled card authorisation acknowledged");
                delete("of an acknowledged reversal");
                Resolution::Reversed(response_code)
            }
            ReversalStatus::Pending { cause, .. } => Resolution::Unanswered(cause),
            ReversalStatus::NotNeeded => {
                Resolution::Unanswered("the reversal could not be sent".to_owned())
            }
        }
    }

    /// Deletes the reversal record of an approved payment whose sale is journaled (a
    /// failure is logged: the stale record is recognised and dropped later, never
    /// reversed).
    pub fn settle_approved(&self, store: &JournalStore, card: &TakenCard) {
        if let Some(in_flight) = &card.in_flight {
            if let Err(error) = store.delete_pending_authorization(in_flight.id()) {
                tracing::error!(%error, payment = %in_flight.id(), "cannot delete the reversal record of a journaled sale");
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
            ..
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
            in_flight: None,
        })
    }

    /// Reverses an approved online payment whose sale could not be journaled, by its
    /// reversal record: deleted once the acquirer answers; otherwise kept, and
    /// [`run_pending_reversals`] resends it.
    pub async fn reverse_approved(&self, store: &JournalStore, card: &TakenCard) {
        let Some(in_flight) = &card.in_flight else {
            return;
        };
        let id = in_flight.id();
        let record = match store.pending_authorization(id) {
            Ok(Some(record)) => record,
            Ok(None) => {
                tracing::error!(payment = %id, "the reversal record of an approved payment is missing");
                return;
            }
            Err(error) => {
                tracing::error!(%error, payment = %id, "cannot read the reversal record of an approved payment");
                self.reversal_wakeup.notify_one();
                return;
            }
        };
        match self.resolve_pending(store, id, &record).await {
            Resolution::Reversed(response_code) => tracing::warn!(
                payment = %id, %response_code,
                "approved card payment reversed: its sale was not recorded"
            ),
            Resolution::Journaled => {}
            Resolution::Unanswered(cause) => {
                tracing::warn!(payment = %id, %cause, "approved card payment of a sale not recorded: its reversal is not acknowledged yet and will be resent");
                self.reversal_wakeup.notify_one();
            }
        }
    }
}

/// The terminal and the payment a reversal record names.
///
/// # Errors
/// The record's currency or terminal cannot make a message (a corrupt record).
fn recorded_payment(record: &PendingAuthorization) -> Result<(Terminal, RecordedPayment), String> {
    let currency = Currency::from_code(&record.currency)
        .map_err(|e| format!("currency {:?}: {e}", record.currency))?;
    let terminal = Terminal::new(&record.terminal_id, &record.merchant_id)
        .map_err(|e| format!("terminal {:?}: {e}", record.terminal_id))?;
    let taken_at = iso_datetime(record.taken_at_ms);
    Ok((
        terminal,
        RecordedPayment {
            original_mti: Mti::FinancialRequest,
            reference: PaymentRef {
                sale_id: record.sale_id.clone(),
                tender_index: record.tender_index,
                attempt: record.attempt,
            },
            amount: Money::new(record.amount_minor, currency),
            taken_at_utc: taken_at,
            taken_at_local: taken_at,
        },
    ))
}

/// Reverses every pending authorisation this device holds (see the module doc): at
/// start-up, then after [`REVERSAL_RETRY_MIN`] doubling up to [`REVERSAL_RETRY_MAX`] while
/// one stays unanswered (every [`REVERSAL_RETRY_MAX`] otherwise, or when a request wakes
/// it), until `stop`. Records a request holds in flight are left to it. One WARN per record
/// left unanswered; the gauge `posmesh_card_reversals_pending` counts the records.
pub async fn run_pending_reversals(
    node: Arc<NodeContext>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut warned = std::collections::HashSet::new();
    let mut backoff = REVERSAL_RETRY_MIN;
    loop {
        // Stopping abandons a reversal in flight: its record stays for the next start.
        let unanswered = tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => return,
            unanswered = pending_reversals_pass(&node, &mut warned) => unanswered,
        };
        let wait = if unanswered {
            let wait = backoff;
            backoff = backoff.saturating_mul(2).min(REVERSAL_RETRY_MAX);
            wait
        } else {
            backoff = REVERSAL_RETRY_MIN;
            REVERSAL_RETRY_MAX
        };
        tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => return,
            _ = node.payments.reversal_wakeup.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// One pass of [`run_pending_reversals`]; whether a reversal stayed unanswered.
async fn pending_reversals_pass(
    node: &NodeContext,
    warned: &mut std::collections::HashSet<String>,
) -> bool {
    let records = match node.store.pending_authorizations() {
        Ok(records) => records,
        Err(error) => {
            tracing::error!(%error, "cannot read the pending card authorisations");
            return true;
        }
    };
    metrics::gauge!("posmesh_card_reversals_pending").set(records.len() as f64);
    if records.is_empty() {
        warned.clear();
        return false;
    }
    let mut unanswered = false;
    let mut left = records.len();
    for (id, record) in records {
        let Ok(_in_flight) = node.payments.in_flight.enter(&id, Holder::Reversal) else {
            continue; // a request is taking it: the request settles it
        };
        match node
            .payments
            .resolve_pending(&node.store, &id, &record)
            .await
        {
            Resolution::Reversed(_) | Resolution::Journaled => {
                left -= 1;
                warned.remove(&id);
            }
            Resolution::Unanswered(cause) => {
                unanswered = true;
                if warned.insert(id.clone()) {
                    tracing::warn!(payment = %id, amount_minor = record.amount_minor, %cause,
                        "a card authorisation may have been approved and is not reversed yet (the till stopped with it in flight, or its reversal went unanswered): resending the reversal until the acquirer answers");
                }
            }
        }
    }
    metrics::gauge!("posmesh_card_reversals_pending").set(left as f64);
    unanswered
}

#[cfg(test)]
mod tests {
    use super::*;
    use posmesh_payments::card_data::Pan;
    use posmesh_payments::connector::{build_request, build_reversal};

    #[test]
    fn a_payment_is_held_once_and_released_when_dropped() {
        let set = InFlightSet::default();
        let held = set.enter("till-1:a#0#0", Holder::Request).expect("free");
        assert_eq!(held.id(), "till-1:a#0#0");
        assert_eq!(
            set.enter("till-1:a#0#0", Holder::Reversal).err(),
            Some(Holder::Request)
        );
        assert!(set.enter("till-1:b#0#0", Holder::Reversal).is_ok());
        drop(held);
        let again = set
            .enter("till-1:a#0#0", Holder::Reversal)
            .expect("released");
        assert_eq!(
            set.enter("till-1:a#0#0", Holder::Request).err(),
            Some(Holder::Reversal)
        );
        drop(again);
    }

    #[test]
    fn a_record_reverses_exactly_the_request_it_was_written_for() {
        let terminal = Terminal::new("till-1", "posmesh-merch").expect("terminal");
        let reference = payment_ref("till-1", "k-1", 1);
        let taken_at_ms = 1_764_000_000_123;
        let amount = Money::new(850, Currency::from_code("GBP").expect("GBP"));
        let payment = CardPayment {
            reference: reference.clone(),
            card: ForwardingCardData::new(Pan::parse("4111111111111111").expect("pan"), "3012")
                .expect("card"),
            amount,
            taken_at_utc: iso_datetime(taken_at_ms),
            taken_at_local: iso_datetime(taken_at_ms),
            entry_mode: EntryMode::Manual,
        };
        let request = build_request(&terminal, &payment, Mti::FinancialRequest).expect("0200");
        let expected = build_reversal(&request, false).expect("0400");
        let record = PendingAuthorization {
            idempotency_key: "k-1".into(),
            sale_id: reference.sale_id.clone(),
            tender_index: reference.tender_index,
            attempt: reference.attempt,
            amount_minor: 850,
            currency: "GBP".into(),
            taken_at_ms,
            terminal_id: "till-1".into(),
            merchant_id: "posmesh-merch".into(),
        };
        let (record_terminal, recorded) = recorded_payment(&record).expect("payment");
        let reversal = build_reversal_of_recorded(&record_terminal, &recorded).expect("0400");
        assert_eq!(reversal.mti(), expected.mti());
        for n in [3u8, 4, 7, 11, 12, 13, 37, 41, 42, 49, 90] {
            assert_eq!(reversal.get(n), expected.get(n), "field {n}");
        }
        assert_eq!(reversal.get(2), None, "no card data in the reversal");

        let bad = PendingAuthorization {
            currency: "XXQ".into(),
            ..record
        };
        assert!(recorded_payment(&bad).is_err());
    }
}
