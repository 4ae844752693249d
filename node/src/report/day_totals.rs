//! Takings per business date, computed from journal entries (pure: entries in, totals out).
//!
//! Rules: a sale counts on its business date; a void removes the voided sale from the
//! totals of the sale's own date (and counts it under `voided_sales`); a refund counts on
//! the refund's business date, in `refunds_minor` (its tax in `refunds_tax_minor`) and per
//! tender as money paid out.

use crate::ledger::convert::tender_kind_from_proto;
use crate::ledger::sale_ref::SaleRef;
use posmesh_proto::journal::v1::{journal_entry::Payload, JournalEntry, Sale};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Totals of one business date. Amounts in minor units of the store currency.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DayTotals {
    /// YYYY-MM-DD.
    pub business_date: String,
    /// Sales taken (voided ones excluded).
    pub sales: u64,
    /// Units sold over all lines of those sales.
    pub items: i64,
    /// Sum of line gross amounts.
    pub gross_minor: i64,
    /// Sum of discounts.
    pub discount_minor: i64,
    /// Sum of amounts due (after discounts and cash rounding).
    pub takings_minor: i64,
    /// Tax contained in the takings.
    pub tax_minor: i64,
    /// Sales voided.
    pub voided_sales: u64,
    /// Refunds made.
    pub refunds: u64,
    /// Money refunded.
    pub refunds_minor: i64,
    /// Tax contained in the refunds (to deduct from `tax_minor` for the day's net VAT).
    pub refunds_tax_minor: i64,
    /// Net per tender (`cash`, `card`, …): takings minus change minus refunds.
    #[schema(value_type = Object)]
    pub tenders_minor: BTreeMap<String, i64>,
}

/// Accumulates [`DayTotals`] from journal entries in any order.
#[derive(Debug, Default)]
pub struct DayTotalsBuilder {
    days: BTreeMap<String, DayTotals>,
}

impl DayTotalsBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one entry. For a void, `original` looks the voided sale up.
    pub fn add(
        &mut self,
        entry: &JournalEntry,
        original: impl Fn(&SaleRef) -> Option<JournalEntry>,
    ) {
        match &entry.payload {
            Some(Payload::Sale(sale)) => self.add_sale(&entry.business_date, sale, 1),
            Some(Payload::Void(void)) => {
                let sale_ref = SaleRef {
                    device_id: void.original_device_id.clone(),
                    seq: void.original_seq,
                };
                if let Some(voided) = original(&sale_ref) {
                    if let Some(Payload::Sale(sale)) = &voided.payload {
                        self.add_sale(&voided.business_date, sale, -1);
                        self.day(&voided.business_date).voided_sales += 1;
                    }
                }
            }
            Some(Payload::Refund(refund)) => {
                let day = self.day(&entry.business_date);
                day.refunds += 1;
                day.refunds_minor += refund.total_minor;
                day.refunds_tax_minor += refund.tax_minor;
                for tender in &refund.tenders {
                    *day.tenders_minor
                        .entry(tender_name(tender.kind))
                        .or_default() -= tender.amount_minor;
                }
            }
            Some(Payload::Payment(_)) | None => {}
        }
    }

    /// The totals, by business date ascending.
    pub fn finish(self) -> Vec<DayTotals> {
        self.days.into_values().collect()
    }

    fn add_sale(&mut self, date: &str, sale: &Sale, sign: i64) {
        let day = self.day(date);
        if sign > 0 {
            day.sales += 1;
        } else {
            day.sales = day.sales.saturating_sub(1);
        }
        day.items += sign * sale.lines.iter().map(|l| l.quantity).sum::<i64>();
        day.gross_minor += sign * sale.gross_minor;
        day.discount_minor += sign * sale.discount_minor;
        day.takings_minor += sign * (sale.total_minor + sale.cash_rounding_minor);
        day.tax_minor += sign * sale.tax_minor;
        for tender in &sale.tenders {
            *day.tenders_minor
                .entry(tender_name(tender.kind))
                .or_default() += sign * (tender.amount_minor - tender.change_minor);
        }
    }

    fn day(&mut self, date: &str) -> &mut DayTotals {
        self.days
            .entry(date.to_owned())
            .or_insert_with(|| DayTotals {
                business_date: date.to_owned(),
                ..Default::default()
            })
    }
}

fn tender_name(kind: i32) -> String {
    match tender_kind_from_proto(kind) {
        Ok(kind) => serde_json::to_value(kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("{kind:?}")),
        Err(_) => format!("unknown_{kind}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use posmesh_proto::journal::v1 as pb;

    fn sale(date: &str, seq: u64, qty: i64, total: i64, cash: i64) -> JournalEntry {
        JournalEntry {
            device_id: "till-1".into(),
            seq,
            business_date: date.into(),
            payload: Some(Payload::Sale(pb::Sale {
                lines: vec![pb::SaleLine {
                    quantity: qty,
                    ..Default::default()
                }],
                gross_minor: total,
                total_minor: total,
                tax_minor: total / 6,
                tenders: vec![pb::Tender {
                    kind: pb::TenderKind::Cash as i32,
                    amount_minor: cash,
                    change_minor: cash - total,
                    ..Default::default()
                }],
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn sales_voids_and_refunds_land_on_the_right_days() {
        let s1 = sale("2017-01-01", 1, 2, 600, 1000);
        let s2 = sale("2017-01-01", 2, 1, 300, 300);
        let void = JournalEntry {
            device_id: "till-1".into(),
            seq: 3,
            business_date: "2017-01-02".into(),
            payload: Some(Payload::Void(pb::Void {
                original_device_id: "till-1".into(),
                original_seq: 2,
                ..Default::default()
            })),
            ..Default::default()
        };
        let refund = JournalEntry {
            device_id: "till-1".into(),
            seq: 4,
            business_date: "2017-01-02".into(),
            payload: Some(Payload::Refund(pb::Refund {
                total_minor: 300,
                tenders: vec![pb::Tender {
                    kind: pb::TenderKind::Cash as i32,
                    amount_minor: 300,
                    ..Default::default()
                }],
                ..Default::default()
            })),
            ..Default::default()
        };
        let all = [s1.clone(), s2.clone(), void.clone(), refund.clone()];
        let lookup = |r: &SaleRef| all.iter().find(|e| e.seq == r.seq).cloned();
        let mut builder = DayTotalsBuilder::new();
        for entry in &all {
            builder.add(entry, lookup);
        }
        let days = builder.finish();
        assert_eq!(days.len(), 2);
        let first = &days[0];
        assert_eq!((first.sales, first.items, first.takings_minor), (1, 2, 600));
        assert_eq!(first.voided_sales, 1);
        assert_eq!(first.tenders_minor["cash"], 600);
        let second = &days[1];
        assert_eq!((second.refunds, second.refunds_minor), (1, 300));
        assert_eq!(second.tenders_minor["cash"], -300);
    }
}
