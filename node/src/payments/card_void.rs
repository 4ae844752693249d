//! Voiding a sale paid by card: the acquirer un-charges the card before the void is
//! journaled, so a voided sale never leaves the customer charged.
//!
//! For each card tender of the original sale:
//! - approved online (0200) → a reversal (0400) naming the 0200;
//! - taken offline and acknowledged by the acquirer (the forwarded 0220/0221 advice was
//!   answered, approved or declined) → a reversal naming the 0220 (a declined advice is
//!   answered `00` with nothing to un-charge);
//! - taken offline and not forwarded yet → the void is **refused**: the store's forwarder
//!   (the Raft leader, perhaps another device) may be sending the advice right now, and a
//!   reversal overtaking its advice would leave the card charged. The cashier voids once
//!   the payment is forwarded, or refunds in cash.
//!
//! Every reversal must be answered (`00`; `25` = the acquirer has no record, nothing to
//! un-charge) before the void is journaled. No answer → the void is refused and nothing is
//! journaled; voiding again sends the same reversal (same STAN, RRN and field 90), which
//! the acquirer deduplicates, so a retry never un-charges twice. The reversal carries no
//! card data: the journal keeps none, and the acquirer finds the original by terminal,
//! STAN and RRN (ISO 8583:1987 field 90, original data elements).

use super::card_tender::iso_datetime;
use super::PaymentsService;
use crate::ledger::sale_ref::SaleRef;
use crate::storage::JournalStore;
use posmesh_domain::{Currency, Money};
use posmesh_payments::connector::{
    build_reversal_of_recorded, PaymentConnector, PaymentRef, RecordedPayment, ReversalStatus,
    Terminal,
};
use posmesh_payments::iso8583::{self, Mti};
use posmesh_proto::journal::v1::{journal_entry::Payload, TenderKind};

/// One card payment to reverse before a void.
#[derive(Clone, Debug)]
pub struct VoidReversal {
    /// Index of the tender in the original sale.
    pub tender_index: usize,
    /// The terminal it was taken under (field 41) and this store's merchant (field 42).
    pub terminal: Terminal,
    /// The payment as journaled.
    pub payment: RecordedPayment,
    /// Masked PAN, for messages.
    pub masked_pan: String,
}

/// Why a card sale cannot be voided now. Nothing was journaled.
#[derive(Debug, thiserror::Error)]
pub enum CardVoidError {
    /// An offline card tender is still waiting to be forwarded.
    #[error("card payment {masked_pan} (tender {tender_index}) was taken offline and is not forwarded to the acquirer yet, so it cannot be reversed now: void the sale once it is forwarded, or refund it in cash")]
    NotForwarded {
        /// Tender index in the sale.
        tender_index: usize,
        /// Masked PAN.
        masked_pan: String,
    },
    /// The sale has an approved card payment but this device has no acquirer configured.
    #[error("this sale was paid by card (tender {tender_index}) and this device has no acquirer configured (--acquirer) to reverse it: void it on a device that has, or refund it in cash")]
    NoAcquirer {
        /// Tender index in the sale.
        tender_index: usize,
    },
    /// The acquirer did not acknowledge the reversal.
    #[error("the card payment {masked_pan} (tender {tender_index}) could not be reversed: {cause}. Nothing was voided; void again when the acquirer answers (the retry is recognised, never reversed twice), or refund in cash")]
    NotReversed {
        /// Tender index in the sale.
        tender_index: usize,
        /// Masked PAN.
        masked_pan: String,
        /// What failed.
        cause: String,
    },
    /// The journaled card fields cannot make a reversal (a corrupt or foreign entry).
    #[error("the card payment of tender {tender_index} cannot be reversed: {reason}")]
    Unreversible {
        /// Tender index in the sale.
        tender_index: usize,
        /// Why.
        reason: String,
    },
    /// Reading the journal failed.
    #[error("reading the sale failed: {0}")]
    Storage(String),
}

impl PaymentsService {
    /// The reversals a void of `original` needs (empty for a sale without card tenders,
    /// an unknown sale or one already voided or refunded: the writer then refuses the void
    /// with its own precise reason).
    ///
    /// # Errors
    /// [`CardVoidError::NotForwarded`] for an offline tender not acknowledged yet,
    /// [`CardVoidError::Unreversible`] for card fields that cannot name a transaction.
    pub fn void_reversals(
        &self,
        store: &JournalStore,
        original: &SaleRef,
    ) -> Result<Vec<VoidReversal>, CardVoidError> {
        let storage = |e: crate::storage::StorageError| CardVoidError::Storage(e.to_string());
        let Some(entry) = store
            .entry(&original.device_id, original.seq)
            .map_err(storage)?
        else {
            return Ok(Vec::new());
        };
        let Some(Payload::Sale(sale)) = &entry.payload else {
            return Ok(Vec::new());
        };
        if let Some(status) = store
            .sale_status(&original.device_id, original.seq)
            .map_err(storage)?
        {
            if !status.voided_by_device_id.is_empty() || !status.refunds.is_empty() {
                return Ok(Vec::new());
            }
        }
        let mut reversals = Vec::new();
        for (tender_index, tender) in sale.tenders.iter().enumerate() {
            if tender.kind != TenderKind::Card as i32 {
                continue;
            }
            let unreversible = |reason: String| CardVoidError::Unreversible {
                tender_index,
                reason,
            };
            let original_mti = if tender.offline {
                let index = u32::try_from(tender_index).unwrap_or(u32::MAX);
                if !store
                    .saf_payment_acked(&original.device_id, original.seq, index)
                    .map_err(storage)?
                {
                    return Err(CardVoidError::NotForwarded {
                        tender_index,
                        masked_pan: tender.masked_pan.clone(),
                    });
                }
                Mti::FinancialAdvice
            } else if tender.auth_id.is_empty() {
                continue; // never approved online: nothing was charged
            } else {
                Mti::FinancialRequest
            };
            let currency = Currency::from_code(&sale.currency)
                .map_err(|e| unreversible(format!("currency {}: {e}", sale.currency)))?;
            let terminal = Terminal::new(&tender.terminal_id, &self.config.merchant_id)
                .map_err(|e| unreversible(format!("terminal {:?}: {e}", tender.terminal_id)))?;
            let taken_at = iso_datetime(entry.occurred_at_ms);
            reversals.push(VoidReversal {
                tender_index,
                terminal,
                payment: RecordedPayment {
                    original_mti,
                    reference: PaymentRef {
                        sale_id: tender.payment_sale_id.clone(),
                        tender_index: u16::try_from(tender_index).unwrap_or(u16::MAX),
                        attempt: u16::try_from(tender.payment_attempt).unwrap_or(u16::MAX),
                    },
                    amount: Money::new(tender.amount_minor, currency),
                    taken_at_utc: taken_at,
                    taken_at_local: taken_at,
                },
                masked_pan: tender.masked_pan.clone(),
            });
        }
        Ok(reversals)
    }

    /// Sends every reversal of `reversals` and waits for each answer.
    ///
    /// # Errors
    /// [`CardVoidError::NoAcquirer`] without `--acquirer`; [`CardVoidError::NotReversed`]
    /// when a reversal got no answer or was refused (stops at the first).
    pub async fn reverse_for_void(&self, reversals: &[VoidReversal]) -> Result<(), CardVoidError> {
        for reversal in reversals {
            let Some(connector) = &self.connector else {
                return Err(CardVoidError::NoAcquirer {
                    tender_index: reversal.tender_index,
                });
            };
            let not_reversed = |cause: String| CardVoidError::NotReversed {
                tender_index: reversal.tender_index,
                masked_pan: reversal.masked_pan.clone(),
                cause,
            };
            let message = build_reversal_of_recorded(&reversal.terminal, &reversal.payment)
                .map_err(|e| not_reversed(e.to_string()))?;
            let mut connector = connector.clone();
            connector.terminal = reversal.terminal.clone();
            match connector.send_reversal(&message).await {
                ReversalStatus::Acknowledged { response_code }
                    if response_code == "00" || response_code == "25" =>
                {
                    metrics::counter!("posmesh_card_reversals_total", "cause" => "void")
                        .increment(1);
                    tracing::info!(tender = reversal.tender_index, card = %reversal.masked_pan, %response_code, "card payment reversed for a void");
                }
                ReversalStatus::Acknowledged { response_code } => {
                    return Err(not_reversed(format!(
                        "the acquirer refused the reversal: {} (response code {response_code})",
                        iso8583::response_code_text(&response_code)
                    )));
                }
                ReversalStatus::Pending { cause, .. } => {
                    return Err(not_reversed(format!(
                        "the acquirer did not answer ({cause})"
                    )));
                }
                ReversalStatus::NotNeeded => {}
            }
        }
        Ok(())
    }
}
