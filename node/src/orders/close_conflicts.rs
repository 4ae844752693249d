//! Settling an order that was closed on more than one device (see
//! [`posmesh_sync::orders::close_rule`] for the rule).
//!
//! Every device raises the same `order_close_conflict` alert (same key, same winner). Only
//! the device that recorded a losing sale can write to its journal, so it alone journals
//! the compensating refund: every line not yet refunded, back to the sale's first tender,
//! reason `order_close_conflict`, under the Idempotency-Key
//! `order-close-conflict/{order}/{seq}` — so a restart, a second batch or a second
//! settlement never refunds twice.

use super::OrdersService;
use crate::clock;
use crate::ledger::convert;
use crate::ledger::sale_ref::SaleRef;
use crate::storage::writer::{AppendCommand, AppendError, Operation};
use posmesh_domain::{RefundLineRequest, RefundRequest};
use posmesh_proto::journal::v1::journal_entry::Payload;
use posmesh_proto::storage::v1::Alert;
use posmesh_sync::orders::{close_winner, ClosingSale};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Reason journaled on a compensating refund.
pub const CLOSE_CONFLICT_REASON: &str = "order_close_conflict";

impl OrdersService {
    /// Settles every order with more than one closing sale (start-up).
    pub async fn settle_all_close_conflicts(self: Arc<Self>) {
        let store = self.store.clone();
        let conflicts = match tokio::task::spawn_blocking(move || store.orders_closed_twice()).await
        {
            Ok(Ok(conflicts)) => conflicts,
            Ok(Err(error)) => return tracing::error!(%error, "cannot read the order index"),
            Err(error) => return tracing::error!(%error, "order index task failed"),
        };
        for (order_id, sales) in conflicts {
            self.settle(&order_id, sales).await;
        }
    }

    /// Orders that gained a closing sale from a replicated batch: settles those closed
    /// more than once.
    pub async fn on_orders_closed(self: Arc<Self>, order_ids: Vec<String>) {
        for order_id in order_ids {
            let store = self.store.clone();
            let id = order_id.clone();
            match tokio::task::spawn_blocking(move || store.order_sales(&id)).await {
                Ok(Ok(sales)) if sales.len() > 1 => self.settle(&order_id, sales).await,
                Ok(Ok(_)) => {}
                Ok(Err(error)) => {
                    tracing::error!(order = %order_id, %error, "cannot read the order index")
                }
                Err(error) => tracing::error!(order = %order_id, %error, "order index task failed"),
            }
        }
    }

    async fn settle(&self, order_id: &str, sales: Vec<ClosingSale>) {
        let Some(winner) = close_winner(&sales).cloned() else {
            return;
        };
        let losers: Vec<&ClosingSale> = sales.iter().filter(|s| **s != winner).collect();
        let names: Vec<String> = losers
            .iter()
            .map(|s| format!("{}/{}", s.device_id, s.seq))
            .collect();
        let alert = Alert {
            kind: "order_close_conflict".into(),
            subject: order_id.to_owned(),
            message: format!(
                "order {order_id} was closed on {} devices while they could not reach each \
                 other; sale {}/{} stands, {} refunded by the device that took it",
                sales.len(),
                winner.device_id,
                winner.seq,
                names.join(", ")
            ),
            raised_at_ms: i64::try_from(clock::wall_clock_ms()).unwrap_or(i64::MAX),
        };
        tracing::warn!(order = %order_id, message = %alert.message, "manager alert: order closed twice");
        metrics::counter!("posmesh_alerts_raised_total", "kind" => "order_close_conflict")
            .increment(1);
        let store = self.store.clone();
        let raised = alert.clone();
        if let Ok(Err(error)) =
            tokio::task::spawn_blocking(move || store.raise_alert(&raised)).await
        {
            tracing::error!(order = %order_id, %error, "cannot store the alert");
        }
        for loser in losers
            .into_iter()
            .filter(|s| s.device_id == self.local_device())
        {
            let sale = SaleRef {
                device_id: loser.device_id.clone(),
                seq: loser.seq,
            };
            match self.compensate(order_id, &sale, &winner).await {
                Ok(Some(seq)) => tracing::warn!(order = %order_id, %sale, refund_seq = seq,
                    "refunded the losing sale of a close conflict"),
                Ok(None) => {}
                Err(error) => tracing::error!(order = %order_id, %sale, %error,
                    "cannot refund the losing sale of a close conflict; will retry at the next start"),
            }
        }
    }

    /// Journals the refund of every unrefunded unit of `sale`; `None` when nothing is left
    /// to refund (refunded or voided already). Returns the refund's seq.
    async fn compensate(
        &self,
        order_id: &str,
        sale: &SaleRef,
        winner: &ClosingSale,
    ) -> Result<Option<u64>, AppendError> {
        let entry = self
            .store
            .entry(&sale.device_id, sale.seq)?
            .ok_or_else(|| AppendError::UnknownSale(sale.clone()))?;
        let Some(Payload::Sale(original)) = &entry.payload else {
            return Err(AppendError::NotASale(sale.clone()));
        };
        let status = self
            .store
            .sale_status(&sale.device_id, sale.seq)?
            .unwrap_or_default();
        let key = format!("order-close-conflict/{order_id}/{}", sale.seq);
        if self.store.idempotency(&key)?.is_some() || !status.voided_by_device_id.is_empty() {
            return Ok(None); // settled before, or nothing left to pay back
        }
        let lines: Vec<RefundLineRequest> = original
            .lines
            .iter()
            .enumerate()
            .filter_map(|(index, line)| {
                let refunded = status.refunded_quantity.get(index).copied().unwrap_or(0);
                let left = line.quantity - refunded;
                (left > 0).then(|| RefundLineRequest {
                    line_index: u32::try_from(index).unwrap_or(u32::MAX),
                    quantity: left,
                })
            })
            .collect();
        if lines.is_empty() {
            return Ok(None);
        }
        let now_ms = i64::try_from(clock::wall_clock_ms()).unwrap_or(i64::MAX);
        let business_date = self
            .calendar
            .business_date(now_ms)
            .map(|d| d.to_string())
            .unwrap_or_else(|_| entry.business_date.clone());
        let mut hasher = Sha256::new();
        hasher.update(key.as_bytes());
        let command = AppendCommand {
            idempotency_key: key,
            request_hash: hasher.finalize().into(),
            occurred_at_ms: now_ms,
            business_date,
            catalog_version: 0,
            operator_id: String::new(),
            operation: Operation::Refund {
                original: sale.clone(),
                request: RefundRequest {
                    lines,
                    tender: convert::first_tender_kind(original),
                },
                reason: format!(
                    "{CLOSE_CONFLICT_REASON}: order {order_id} was closed first by sale {}/{}",
                    winner.device_id, winner.seq
                ),
            },
        };
        let writer = self.writer().ok_or(AppendError::WriterStopped)?;
        let committed = writer.append(command).await?;
        Ok((!committed.replayed).then_some(committed.entry.seq))
    }
}
