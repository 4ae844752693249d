//! Domain values ⇄ journal messages.
//!
//! The journal stores what the domain computed, field for field, so a sale read back
//! converts to the same [`PricedSale`] (a property test checks the round trip).

use super::sale_ref::SaleRef;
use posmesh_domain::{
    Consumption, Currency, Discount, PricedLine, PricedRefund, PricedSale, SettledTender,
    TenderKind,
};
use posmesh_proto::journal::v1 as pb;

/// The journal `Sale` of a priced sale rung up directly (no shared order).
pub fn sale_to_proto(sale: &PricedSale) -> pb::Sale {
    order_sale_to_proto(sale, "")
}

/// The journal `Sale` of a priced sale that closes the shared order `order_id` (`""`: none).
pub fn order_sale_to_proto(sale: &PricedSale, order_id: &str) -> pb::Sale {
    pb::Sale {
        currency: sale.currency.code().to_owned(),
        lines: sale.lines.iter().map(line_to_proto).collect(),
        sale_discount: sale.sale_discount.map(discount_to_proto),
        gross_minor: sale.gross_minor,
        discount_minor: sale.discount_minor,
        total_minor: sale.total_minor,
        tax_minor: sale.tax_minor,
        cash_rounding_minor: sale.cash_rounding_minor,
        tenders: sale.tenders.iter().map(tender_to_proto).collect(),
        consumption: consumption_to_proto(sale.consumption) as i32,
        order_id: order_id.to_owned(),
        tax_version: sale.tax_version,
    }
}

/// The priced sale stored in a journal `Sale`. Errors name the field that does not convert
/// (only possible for corrupt or foreign data).
pub fn sale_from_proto(sale: &pb::Sale, catalog_version: u64) -> Result<PricedSale, String> {
    Ok(PricedSale {
        currency: Currency::from_code(&sale.currency).map_err(|e| e.to_string())?,
        consumption: consumption_from_proto(sale.consumption)?,
        catalog_version,
        lines: sale
            .lines
            .iter()
            .map(line_from_proto)
            .collect::<Result<_, _>>()?,
        sale_discount: sale
            .sale_discount
            .as_ref()
            .map(discount_from_proto)
            .transpose()?,
        gross_minor: sale.gross_minor,
        discount_minor: sale.discount_minor,
        total_minor: sale.total_minor,
        tax_minor: sale.tax_minor,
        cash_rounding_minor: sale.cash_rounding_minor,
        tenders: sale
            .tenders
            .iter()
            .map(tender_from_proto)
            .collect::<Result<_, _>>()?,
        tax_version: sale.tax_version,
    })
}

/// The journal `Refund` of a priced refund of `original` (whose receipt number is
/// `original_receipt_no`).
pub fn refund_to_proto(
    original: &SaleRef,
    original_receipt_no: u64,
    refund: &PricedRefund,
    reason: &str,
) -> pb::Refund {
    pb::Refund {
        original_device_id: original.device_id.clone(),
        original_seq: original.seq,
        original_receipt_no,
        lines: refund
            .lines
            .iter()
            .map(|line| pb::RefundLine {
                line_index: line.line_index,
                quantity: line.quantity,
                amount_minor: line.amount_minor,
                tax_minor: line.tax_minor,
            })
            .collect(),
        currency: refund.currency.code().to_owned(),
        total_minor: refund.total_minor,
        tax_minor: refund.tax_minor,
        tenders: vec![tender_to_proto(&refund.tender)],
        reason: reason.to_owned(),
    }
}

fn line_to_proto(line: &PricedLine) -> pb::SaleLine {
    pb::SaleLine {
        sku: line.sku.clone(),
        name: line.name.clone(),
        quantity: line.quantity,
        unit_price_minor: line.unit_price_minor,
        price_overridden: line.price_overridden,
        gross_minor: line.gross_minor,
        line_discount: line.line_discount.map(discount_to_proto),
        discount_minor: line.discount_minor,
        net_minor: line.net_minor,
        tax_rate_bp: line.tax_rate_bp,
        tax_minor: line.tax_minor,
        tax_class: line.tax_class.clone(),
        consumption: consumption_to_proto(line.consumption) as i32,
    }
}

fn line_from_proto(line: &pb::SaleLine) -> Result<PricedLine, String> {
    Ok(PricedLine {
        sku: line.sku.clone(),
        name: line.name.clone(),
        quantity: line.quantity,
        unit_price_minor: line.unit_price_minor,
        price_overridden: line.price_overridden,
        gross_minor: line.gross_minor,
        line_discount: line
            .line_discount
            .as_ref()
            .map(discount_from_proto)
            .transpose()?,
        discount_minor: line.discount_minor,
        net_minor: line.net_minor,
        tax_rate_bp: line.tax_rate_bp,
        tax_minor: line.tax_minor,
        tax_class: line.tax_class.clone(),
        consumption: consumption_from_proto(line.consumption)?,
    })
}

fn discount_to_proto(discount: Discount) -> pb::Discount {
    let kind = match discount {
        Discount::AmountMinor(minor) => pb::discount::Kind::AmountMinor(minor),
        Discount::PercentBp(bp) => pb::discount::Kind::PercentBp(bp),
    };
    pb::Discount { kind: Some(kind) }
}

fn discount_from_proto(discount: &pb::Discount) -> Result<Discount, String> {
    match discount.kind {
        Some(pb::discount::Kind::AmountMinor(minor)) => Ok(Discount::AmountMinor(minor)),
        Some(pb::discount::Kind::PercentBp(bp)) => Ok(Discount::PercentBp(bp)),
        None => Err("discount without kind".into()),
    }
}

fn consumption_to_proto(consumption: Consumption) -> pb::Consumption {
    match consumption {
        Consumption::TakeAway => pb::Consumption::TakeAway,
        Consumption::EatIn => pb::Consumption::EatIn,
    }
}

fn consumption_from_proto(value: i32) -> Result<Consumption, String> {
    match pb::Consumption::try_from(value) {
        Ok(pb::Consumption::TakeAway) => Ok(Consumption::TakeAway),
        Ok(pb::Consumption::EatIn) => Ok(Consumption::EatIn),
        _ => Err(format!("consumption {value} is not take-away or eat-in")),
    }
}

fn tender_to_proto(tender: &SettledTender) -> pb::Tender {
    pb::Tender {
        kind: tender_kind_to_proto(tender.kind) as i32,
        amount_minor: tender.amount_minor,
        change_minor: tender.change_minor,
        reference: tender.reference.clone().unwrap_or_default(),
        ..Default::default()
    }
}

fn tender_from_proto(tender: &pb::Tender) -> Result<SettledTender, String> {
    Ok(SettledTender {
        kind: tender_kind_from_proto(tender.kind)?,
        amount_minor: tender.amount_minor,
        change_minor: tender.change_minor,
        reference: (!tender.reference.is_empty()).then(|| tender.reference.clone()),
    })
}

/// The journal tender kind of a domain tender kind.
pub fn tender_kind_to_proto(kind: TenderKind) -> pb::TenderKind {
    match kind {
        TenderKind::Cash => pb::TenderKind::Cash,
        TenderKind::Card => pb::TenderKind::Card,
        TenderKind::QrWallet => pb::TenderKind::QrWallet,
        TenderKind::GiftCard => pb::TenderKind::GiftCard,
    }
}

/// The domain tender kind of a journal tender kind.
pub fn tender_kind_from_proto(value: i32) -> Result<TenderKind, String> {
    match pb::TenderKind::try_from(value) {
        Ok(pb::TenderKind::Cash) => Ok(TenderKind::Cash),
        Ok(pb::TenderKind::Card) => Ok(TenderKind::Card),
        Ok(pb::TenderKind::QrWallet) => Ok(TenderKind::QrWallet),
        Ok(pb::TenderKind::GiftCard) => Ok(TenderKind::GiftCard),
        _ => Err(format!("tender kind {value} is unknown")),
    }
}

/// The tender a refund of `sale` goes back to by default: its first tender (cash when it
/// has none this version knows).
pub fn first_tender_kind(sale: &pb::Sale) -> TenderKind {
    sale.tenders
        .first()
        .and_then(|t| tender_kind_from_proto(t.kind).ok())
        .unwrap_or(TenderKind::Cash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use posmesh_domain::{
        price_sale, Catalog, CatalogFile, LineRequest, SaleRequest, TenderRequest,
    };
    use proptest::prelude::*;

    fn catalog() -> Catalog {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../catalog/bakery.toml");
        let text = std::fs::read_to_string(path).expect("bakery catalog");
        let file: CatalogFile = toml::from_str(&text).expect("parses");
        Catalog::from_file(file).expect("valid")
    }

    proptest! {
        /// Whatever the domain prices, the journal stores and gives back unchanged.
        #[test]
        fn priced_sales_round_trip_through_the_journal(
            lines in proptest::collection::vec((0usize..6, 1i64..20, proptest::option::of(0u32..3000)), 1..6),
            eat_in in any::<bool>(),
            sale_percent in proptest::option::of(0u32..5000),
            card in any::<bool>(),
        ) {
            let catalog = catalog();
            let skus = ["BREAD", "COFFEE", "TEA", "MEDIALUNA", "GIFT_VOUCHER", "HOT_CHOCOLATE"];
            let request = SaleRequest {
                currency: catalog.currency(),
                consumption: if eat_in { Consumption::EatIn } else { Consumption::TakeAway },
                lines: lines.iter().map(|(sku, quantity, percent)| LineRequest {
                    sku: skus[*sku].into(),
                    quantity: *quantity,
                    unit_price_override_minor: None,
                    discount: percent.map(Discount::PercentBp),
                    consumption: None,
                }).collect(),
                discount: sale_percent.map(Discount::PercentBp),
                tenders: vec![TenderRequest { kind: TenderKind::Cash, amount_minor: 1_000_000, reference: None }],
            };
            let mut priced = price_sale(&catalog, &request).expect("valid sale");
            if card {
                let exact = TenderRequest { kind: TenderKind::Card, amount_minor: priced.total_minor, reference: Some("ref-1".into()) };
                priced = price_sale(&catalog, &SaleRequest { tenders: vec![exact], ..request }).expect("valid sale");
            }
            let back = sale_from_proto(&sale_to_proto(&priced), priced.catalog_version).expect("converts back");
            prop_assert_eq!(back, priced);
        }
    }
}
