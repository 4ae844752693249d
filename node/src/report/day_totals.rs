//! Takings per business date, computed from journal entries (pure: entries in, totals out).
//!
//! Rules: a sale counts on its business date; a void removes the voided sale from the
//! totals of the sale's own date (and counts it under `voided_sales`); a refund counts on
//! the refund's business date, in `refunds_minor` (its tax in `refunds_tax_minor`) and per
//! tender as money paid out; an offline card payment the acquirer declined after
//! forwarding (`PaymentEvent` `advice_declined`) counts on the decline's business date in
//! `card_declined_after_forwarding_minor` and is taken out of the card tender — the money
//! was never received (unless the sale is voided: the void took it out already).

use crate::ledger::convert::tender_kind_from_proto;
use crate::ledger::sale_ref::SaleRef;
use crate::storage::saf::ADVICE_DECLINED;
use posmesh_proto::journal::v1::{journal_entry::Payload, JournalEntry, Sale};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The card tender's name in `tenders_minor`.
const CARD: &str = "card";
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
    /// Offline card payments declined by the acquirer after forwarding (journaled this
    /// day): owed by the customers, not in the card tender.
    #[serde(default)]
    pub card_declined_after_forwarding: u64,
    /// Their amount.
    #[serde(default)]
    pub card_declined_after_forwarding_minor: i64,
}

/// Accumulates [`DayTotals`] from journal entries in any order.
#[derive(Debug, Default)]
pub struct DayTotalsBuilder {
    days: BTreeMap<String, DayTotals>,
    /// Declines after forwarding: (decline's date, sale, amount), applied in `finish`.
    declined: Vec<(String, SaleRef, i64)>,
    /// Voided sales seen.
    voided: BTreeSet<SaleRef>,
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
                self.voided.insert(sale_ref);
            }
            Some(Payload::Payment(event)) if event.kind == ADVICE_DECLINED => {
                let sale_ref = SaleRef {
                    device_id: event.sale_device_id.clone(),
                    seq: event.sale_seq,
                };
                let amount = original(&sale_ref).and_then(|sale| match sale.payload {
                    Some(Payload::Sale(sale)) => usize::try_from(event.tender_index)
                        .ok()
                        .and_then(|i| sale.tenders.get(i).map(|t| t.amount_minor)),
                    _ => None,
                });
                if let Some(amount) = amount {
                    self.declined
                        .push((entry.business_date.clone(), sale_ref, amount));
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
    pub fn finish(mut self) -> Vec<DayTotals> {
        for (date, sale, amount) in std::mem::take(&mut self.declined) {
            if self.voided.contains(&sale) {
                continue;
            }
            let day = self.day(&date);
            day.card_declined_after_forwarding += 1;
            day.card_declined_after_forwarding_minor += amount;
            *day.tenders_minor.entry(CARD.to_owned()).or_default() -= amount;
        }
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

    /// Entry `seq` of till-1 on `date`: a void of till-1's sale `original`.
    fn void_of(seq: u64, original: u64, date: &str) -> JournalEntry {
        JournalEntry {
            device_id: "till-1".into(),
            seq,
            business_date: date.into(),
            payload: Some(Payload::Void(pb::Void {
                original_device_id: "till-1".into(),
                original_seq: original,
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    #[test]
    fn sales_voids_and_refunds_land_on_the_right_days() {
        let s1 = sale("2017-01-01", 1, 2, 600, 1000);
        let s2 = sale("2017-01-01", 2, 1, 300, 300);
        let void = void_of(3, 2, "2017-01-02");
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

    #[test]
    fn a_decline_after_forwarding_leaves_the_card_takings_once() {
        let card_sale = |seq: u64| {
            let mut entry = sale("2017-01-01", seq, 1, 850, 0);
            if let Some(Payload::Sale(sale)) = &mut entry.payload {
                sale.tenders = vec![pb::Tender {
                    kind: pb::TenderKind::Card as i32,
                    amount_minor: 850,
                    offline: true,
                    ..Default::default()
                }];
            }
            entry
        };
        let declined = |seq: u64, of: u64| JournalEntry {
            device_id: "till-1".into(),
            seq,
            business_date: "2017-01-02".into(),
            payload: Some(Payload::Payment(pb::PaymentEvent {
                sale_device_id: "till-1".into(),
                sale_seq: of,
                tender_index: 0,
                kind: ADVICE_DECLINED.into(),
                ..Default::default()
            })),
            ..Default::default()
        };
        let void_of_2 = void_of(5, 2, "2017-01-02");
        // Sale 1 declined; sale 2 declined and voided (taken out once, by the void).
        let all = [
            card_sale(1),
            card_sale(2),
            declined(3, 1),
            declined(4, 2),
            void_of_2,
        ];
        let lookup = |r: &SaleRef| all.iter().find(|e| e.seq == r.seq).cloned();
        let mut builder = DayTotalsBuilder::new();
        for entry in all.iter().rev() {
            builder.add(entry, lookup);
        }
        let days = builder.finish();
        assert_eq!(
            days[0].tenders_minor["card"], 850,
            "sale 1 taken; sale 2 voided"
        );
        assert_eq!(days[0].takings_minor, 850);
        let second = &days[1];
        assert_eq!(
            (
                second.card_declined_after_forwarding,
                second.card_declined_after_forwarding_minor,
                second.tenders_minor["card"]
            ),
            (1, 850, -850)
        );
    }
}
