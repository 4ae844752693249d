//! What a batch of another device's journal changes beyond the journal itself: the order
//! index, sale status (refunds and voids made elsewhere) and manager alerts — written in the
//! same synced `WriteBatch` as the entries, so the derived records never lag the journal.
//!
//! Conflicts that only become visible when a partition heals are detected here, on merge:
//! two devices that both refunded the same sale past what was sold (`over_refund`), voided
//! it twice (`double_void`), refunded a voided sale (`refund_of_voided_sale`) or voided a
//! refunded one (`void_of_refunded_sale`). Each raises an [`Alert`]; the entries stay (they
//! are facts: money moved at a till), the manager settles the difference. An offline card
//! payment declined after forwarding (`saf_declined`) is raised on every device too.

use super::keys::{self, CF_ALERTS, CF_ORDER_SALES, CF_SALE_STATUS};
use super::{JournalStore, StorageError};
use crate::ledger::sale_ref::SaleRef;
use posmesh_proto::journal::v1::{journal_entry::Payload, JournalEntry};
use posmesh_proto::storage::v1::{Alert, SaleStatus};
use prost::Message;
use rocksdb::WriteBatch;
use std::collections::{BTreeMap, BTreeSet};

/// What storing a replicated batch changed beyond the journal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplicaEffects {
    /// Orders that gained a closing sale from the batch.
    pub orders_closed: BTreeSet<String>,
    /// Alerts raised by the batch.
    pub alerts: Vec<Alert>,
}

/// Builds the derived records of one batch: statuses are read from the store once and
/// then kept here, so several entries of the batch about one sale add up.
pub(super) struct EffectsBuilder<'a> {
    store: &'a JournalStore,
    /// The batch's own entries, by seq (a refund may follow its sale in the same batch).
    batch_entries: BTreeMap<(String, u64), JournalEntry>,
    statuses: BTreeMap<SaleRef, SaleStatus>,
    effects: ReplicaEffects,
    now_ms: i64,
}

impl<'a> EffectsBuilder<'a> {
    pub(super) fn new(store: &'a JournalStore, now_ms: i64) -> Self {
        Self {
            store,
            batch_entries: BTreeMap::new(),
            statuses: BTreeMap::new(),
            effects: ReplicaEffects::default(),
            now_ms,
        }
    }

    /// Adds the derived records of `entry` (already decoded from the batch) to `batch`.
    pub(super) fn add(
        &mut self,
        entry: JournalEntry,
        batch: &mut WriteBatch,
    ) -> Result<(), StorageError> {
        let this = SaleRef {
            device_id: entry.device_id.clone(),
            seq: entry.seq,
        };
        match &entry.payload {
            Some(Payload::Sale(sale)) => {
                if !sale.order_id.is_empty() {
                    let hlc = entry.hlc.unwrap_or_default();
                    batch.put_cf(
                        self.store.cf(CF_ORDER_SALES),
                        keys::order_sale_key(&sale.order_id, &entry.device_id, entry.seq),
                        keys::order_sale_value(hlc.physical_ms, hlc.logical),
                    );
                    self.effects.orders_closed.insert(sale.order_id.clone());
                }
                // Refunds of this sale may have arrived first (from another device).
                let status = self.status(&this)?;
                if !status.refunds.is_empty() {
                    self.check_refunded_quantities(&this, &entry, &status, batch)?;
                }
            }
            Some(Payload::Refund(refund)) => {
                let original = SaleRef {
                    device_id: refund.original_device_id.clone(),
                    seq: refund.original_seq,
                };
                let mut status = self.status(&original)?;
                for line in &refund.lines {
                    let index = line.line_index as usize;
                    if status.refunded_quantity.len() <= index {
                        status.refunded_quantity.resize(index + 1, 0);
                    }
                    status.refunded_quantity[index] =
                        status.refunded_quantity[index].saturating_add(line.quantity);
                }
                status.refunds.push(this.to_string());
                if !status.voided_by_device_id.is_empty() {
                    self.raise(
                        batch,
                        "refund_of_voided_sale",
                        &original.to_string(),
                        format!(
                            "sale {original} was voided by {}/{} and refunded by {this}",
                            status.voided_by_device_id, status.voided_by_seq
                        ),
                    );
                }
                if let Some(sale_entry) = self.entry(&original)? {
                    self.check_refunded_quantities(&original, &sale_entry, &status, batch)?;
                }
                self.put_status(batch, original, status);
            }
            Some(Payload::Void(void)) => {
                let original = SaleRef {
                    device_id: void.original_device_id.clone(),
                    seq: void.original_seq,
                };
                let mut status = self.status(&original)?;
                if status.voided_by_device_id.is_empty() {
                    status.voided_by_device_id = this.device_id.clone();
                    status.voided_by_seq = this.seq;
                } else {
                    self.raise(
                        batch,
                        "double_void",
                        &original.to_string(),
                        format!(
                            "sale {original} was voided twice: by {}/{} and by {this}",
                            status.voided_by_device_id, status.voided_by_seq
                        ),
                    );
                }
                if !status.refunds.is_empty() {
                    self.raise(
                        batch,
                        "void_of_refunded_sale",
                        &original.to_string(),
                        format!(
                            "sale {original} was refunded ({}) and voided by {this}",
                            status.refunds.join(", ")
                        ),
                    );
                }
                self.put_status(batch, original, status);
            }
            Some(Payload::Payment(event)) if event.kind == super::saf::ADVICE_DECLINED => {
                let subject = format!(
                    "{}/{}#{}",
                    event.sale_device_id, event.sale_seq, event.tender_index
                );
                self.raise(
                    batch,
                    "saf_declined",
                    &subject,
                    format!(
                        "offline card payment {subject} was declined after forwarding: {} \
                         (code {}); collect the money another way",
                        event.detail, event.response_code
                    ),
                );
            }
            Some(Payload::Payment(_)) | None => {}
        }
        super::saf::index_entry(self.store, &entry, batch)?;
        self.batch_entries
            .insert((entry.device_id.clone(), entry.seq), entry);
        Ok(())
    }

    pub(super) fn finish(self) -> ReplicaEffects {
        self.effects
    }

    /// Raises `over_refund` when more units of a line were refunded than sold.
    fn check_refunded_quantities(
        &mut self,
        sale_ref: &SaleRef,
        sale_entry: &JournalEntry,
        status: &SaleStatus,
        batch: &mut WriteBatch,
    ) -> Result<(), StorageError> {
        let Some(Payload::Sale(sale)) = &sale_entry.payload else {
            return Ok(());
        };
        for (index, refunded) in status.refunded_quantity.iter().enumerate() {
            let sold = sale.lines.get(index).map_or(0, |line| line.quantity);
            if *refunded > sold {
                self.raise(
                    batch,
                    "over_refund",
                    &sale_ref.to_string(),
                    format!(
                        "line {index} of sale {sale_ref}: {refunded} units refunded, {sold} sold \
                         (refunds {})",
                        status.refunds.join(", ")
                    ),
                );
            }
        }
        Ok(())
    }

    fn status(&self, sale: &SaleRef) -> Result<SaleStatus, StorageError> {
        match self.statuses.get(sale) {
            Some(status) => Ok(status.clone()),
            None => Ok(self
                .store
                .sale_status(&sale.device_id, sale.seq)?
                .unwrap_or_default()),
        }
    }

    fn entry(&self, sale: &SaleRef) -> Result<Option<JournalEntry>, StorageError> {
        match self.batch_entries.get(&(sale.device_id.clone(), sale.seq)) {
            Some(entry) => Ok(Some(entry.clone())),
            None => self.store.entry(&sale.device_id, sale.seq),
        }
    }

    fn put_status(&mut self, batch: &mut WriteBatch, sale: SaleRef, status: SaleStatus) {
        batch.put_cf(
            self.store.cf(CF_SALE_STATUS),
            keys::entry_key(&sale.device_id, sale.seq),
            status.encode_to_vec(),
        );
        self.statuses.insert(sale, status);
    }

    fn raise(&mut self, batch: &mut WriteBatch, kind: &str, subject: &str, message: String) {
        let alert = Alert {
            kind: kind.to_owned(),
            subject: subject.to_owned(),
            message,
            raised_at_ms: self.now_ms,
        };
        batch.put_cf(
            self.store.cf(CF_ALERTS),
            keys::alert_key(kind, subject),
            alert.encode_to_vec(),
        );
        self.effects.alerts.push(alert);
    }
}
