//! Property tests (proptest): arithmetic, allocation, VAT, pricing, tenders and refunds.

use super::common::*;
use posmesh_domain::{
    allocate_largest_remainder, price_refund, price_sale, render_receipt, tax_included_minor,
    Catalog, CatalogFile, Consumption, Discount, LineRequest, Money, MoneyError, PricedSale,
    RefundLineRequest, RefundRequest, SaleRequest, TenderKind, TenderRequest,
};
use proptest::prelude::*;

// ---- money -------------------------------------------------------------------------------

fn expect_from_i128(value: i128, money: Result<Money, MoneyError>) {
    match i64::try_from(value) {
        Ok(minor) => assert_eq!(money.map(|m| m.minor), Ok(minor)),
        Err(_) => assert_eq!(money, Err(MoneyError::Overflow)),
    }
}

proptest! {
    #[test]
    fn money_arithmetic_matches_i128(a in any::<i64>(), b in any::<i64>()) {
        let gbp = currency("GBP");
        let (x, y) = (Money::new(a, gbp), Money::new(b, gbp));
        expect_from_i128(i128::from(a) + i128::from(b), x.checked_add(y));
        expect_from_i128(i128::from(a) - i128::from(b), x.checked_sub(y));
        expect_from_i128(i128::from(a) * i128::from(b), x.checked_mul(b));
        let other = Money::new(b, currency("EUR"));
        let mismatch = Err(MoneyError::CurrencyMismatch { left: gbp, right: currency("EUR") });
        prop_assert_eq!(x.checked_add(other), mismatch.clone());
        prop_assert_eq!(x.checked_sub(other), mismatch);
        prop_assert!(!x.to_string().is_empty());
    }
}

// ---- allocation --------------------------------------------------------------------------

fn weights_and_total() -> impl Strategy<Value = (Vec<i64>, i64)> {
    prop_oneof![
        prop::collection::vec(0_i64..1_000_000, 0..40),
        prop::collection::vec(0_i64..(i64::MAX / 64), 1..40),
    ]
    .prop_flat_map(|weights| {
        let sum: i64 = weights.iter().sum();
        (Just(weights), 0..=sum)
    })
}

proptest! {
    #[test]
    fn allocation_sums_exactly_and_fits_each_line((weights, total) in weights_and_total()) {
        let shares = allocate_largest_remainder(total, &weights).expect("valid input");
        prop_assert_eq!(shares.len(), weights.len());
        prop_assert_eq!(shares.iter().map(|s| i128::from(*s)).sum::<i128>(), i128::from(total));
        for (share, weight) in shares.iter().zip(&weights) {
            prop_assert!(0 <= *share && share <= weight, "{share} of {weight}");
        }
    }

    #[test]
    fn allocation_never_panics(total in any::<i64>(), weights in prop::collection::vec(any::<i64>(), 0..8)) {
        let _ = allocate_largest_remainder(total, &weights);
    }
}

// ---- VAT ---------------------------------------------------------------------------------

proptest! {
    #[test]
    fn tax_is_at_most_net_and_monotone(
        net in 0_i64..=i64::MAX / 2,
        more in 0_i64..=i64::MAX / 2,
        rate in 0_u32..=10_000,
    ) {
        let tax = tax_included_minor(net, rate);
        prop_assert!(0 <= tax && tax <= net);
        prop_assert!(tax <= tax_included_minor(net + more, rate));
        // Within half a minor unit of the exact VAT fraction.
        let exact_scaled = i128::from(net) * i128::from(rate);
        let denominator = 10_000 + i128::from(rate);
        let error = (i128::from(tax) * denominator - exact_scaled).abs();
        prop_assert!(2 * error <= denominator);
    }

    #[test]
    fn tax_never_panics(gross in any::<i64>(), rate in any::<u32>()) {
        let tax = tax_included_minor(gross, rate);
        prop_assert!(i128::from(tax).abs() <= i128::from(gross).abs());
    }
}

// ---- sales -------------------------------------------------------------------------------

const SKUS: &[&str] = &["TEA", "COFFEE", "SANDWICH", "BREAD", "MUFFIN"];

fn catalog_strategy() -> impl Strategy<Value = Catalog> {
    prop_oneof![Just(uk()), Just(chf()), Just(uk_with_cash_rounding())]
}

/// The UK catalog with a cash rounding increment, to exercise rounding on GBP.
fn uk_with_cash_rounding() -> Catalog {
    let file = CatalogFile {
        cash_rounding_increment_minor: Some(10),
        ..uk_file()
    };
    Catalog::from_file(file).expect("valid")
}

fn consumption() -> impl Strategy<Value = Consumption> {
    prop_oneof![Just(Consumption::TakeAway), Just(Consumption::EatIn)]
}

fn small_discount() -> impl Strategy<Value = Option<Discount>> {
    prop_oneof![
        Just(None),
        (0_u32..=10_000).prop_map(|bp| Some(Discount::PercentBp(bp))),
        (0_i64..=50).prop_map(|minor| Some(Discount::AmountMinor(minor))),
    ]
}

fn valid_line(skus: &'static [&'static str]) -> impl Strategy<Value = LineRequest> {
    (
        prop::sample::select(skus),
        1_i64..=20,
        prop::option::weighted(0.2, 0_i64..100_000),
        small_discount(),
        prop::option::weighted(0.3, consumption()),
    )
        .prop_map(
            |(sku, quantity, unit_price_override_minor, discount, consumption)| LineRequest {
                sku: sku.to_owned(),
                quantity,
                unit_price_override_minor,
                discount,
                consumption,
            },
        )
}

fn tender_kind() -> impl Strategy<Value = TenderKind> {
    prop_oneof![
        Just(TenderKind::Cash),
        Just(TenderKind::Card),
        Just(TenderKind::QrWallet),
        Just(TenderKind::GiftCard),
    ]
}

/// A catalog and a request that prices (the tenders are fitted to the total afterwards).
fn priceable() -> impl Strategy<Value = (Catalog, SaleRequest)> {
    (
        catalog_strategy(),
        consumption(),
        small_discount(),
        tender_kind(),
        0_i64..5_000,
        any::<bool>(),
    )
        .prop_flat_map(|(catalog, consumption, discount, kind, extra, split)| {
            let skus: &'static [&'static str] = if catalog.currency().code() == "CHF" {
                &["KAFFEE", "GIPFELI"]
            } else {
                SKUS
            };
            let lines = prop::collection::vec(valid_line(skus), 1..12);
            (
                Just(catalog),
                Just(consumption),
                lines,
                Just(discount),
                Just(kind),
                Just(extra),
                Just(split),
            )
        })
        .prop_map(
            |(catalog, consumption, lines, discount, kind, extra, split)| {
                let currency = catalog.currency();
                let mut req = SaleRequest {
                    currency,
                    consumption,
                    lines,
                    discount,
                    tenders: vec![],
                };
                req.tenders = fitting_tenders(&catalog, &req, kind, extra, split);
                (catalog, req)
            },
        )
        // Amount discounts can exceed a cheap line; such requests are tested elsewhere.
        .prop_filter("request prices", |(catalog, req)| {
            price_sale(catalog, req).is_ok()
        })
}

/// Tenders that settle `req`: a non-cash tender for part or all of the due amount, cash
/// (with `extra` over) for the rest.
fn fitting_tenders(
    catalog: &Catalog,
    req: &SaleRequest,
    kind: TenderKind,
    extra: i64,
    split: bool,
) -> Vec<TenderRequest> {
    // Price once with a huge cash tender to learn the cash amount due.
    let mut probe = req.clone();
    probe.tenders = vec![tender(
        TenderKind::Cash,
        posmesh_domain::TENDER_AMOUNT_MAX_MINOR,
    )];
    let Ok(priced) = price_sale(catalog, &probe) else {
        return vec![];
    };
    let total = priced.total_minor;
    if kind.is_cash() {
        let due = priced.amount_due_minor();
        return if due + extra > 0 {
            vec![tender(TenderKind::Cash, due + extra)]
        } else {
            vec![]
        };
    }
    let non_cash = if split { total / 2 } else { total };
    let mut tenders = vec![];
    if non_cash > 0 {
        tenders.push(tender(kind, non_cash));
    }
    if split && total - non_cash + extra > 0 {
        tenders.push(tender(TenderKind::Cash, total - non_cash + extra + 10));
    }
    tenders
}

fn check_invariants(catalog: &Catalog, sale: &PricedSale) -> Result<(), TestCaseError> {
    let sum = |f: fn(&posmesh_domain::PricedLine) -> i64| sale.lines.iter().map(f).sum::<i64>();
    prop_assert_eq!(sale.total_minor, sum(|l| l.net_minor));
    prop_assert_eq!(sale.gross_minor, sum(|l| l.gross_minor));
    prop_assert_eq!(sale.discount_minor, sum(|l| l.discount_minor));
    prop_assert_eq!(sale.tax_minor, sum(|l| l.tax_minor));
    prop_assert_eq!(sale.gross_minor - sale.discount_minor, sale.total_minor);
    for line in &sale.lines {
        prop_assert_eq!(line.gross_minor, line.quantity * line.unit_price_minor);
        prop_assert!(0 <= line.discount_minor && line.discount_minor <= line.gross_minor);
        prop_assert_eq!(line.net_minor, line.gross_minor - line.discount_minor);
        prop_assert!(0 <= line.tax_minor && line.tax_minor <= line.net_minor);
        prop_assert_eq!(
            line.tax_minor,
            tax_included_minor(line.net_minor, line.tax_rate_bp)
        );
    }
    let due = sale.amount_due_minor();
    prop_assert_eq!(sale.tendered_minor() - sale.change_minor(), due);
    let increment = catalog.cash_rounding_increment_minor().unwrap_or(1);
    prop_assert!(2 * sale.cash_rounding_minor.abs() <= increment);
    if sale.cash_rounding_minor != 0 {
        prop_assert!(sale.tenders.iter().any(|t| t.kind.is_cash()));
        prop_assert_eq!(due % increment, 0);
    }
    let non_cash: i64 = sale
        .tenders
        .iter()
        .filter(|t| !t.kind.is_cash())
        .map(|t| t.amount_minor)
        .sum();
    prop_assert!(non_cash <= due);
    for tender in sale.tenders.iter().filter(|t| !t.kind.is_cash()) {
        prop_assert_eq!(tender.change_minor, 0);
    }
    Ok(())
}

proptest! {
    #[test]
    fn priced_sales_keep_their_invariants((catalog, req) in priceable()) {
        let sale = price_sale(&catalog, &req).map_err(|e| TestCaseError::fail(e.to_string()))?;
        check_invariants(&catalog, &sale)?;
        let receipt = render_receipt("Store", "till-1", 1, &sale);
        prop_assert!(receipt.lines().all(|row| row.chars().count() <= 40));
        let json = serde_json::to_string(&sale).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back: PricedSale = serde_json::from_str(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, sale);
    }

    #[test]
    fn sale_discount_shares_follow_largest_remainder((catalog, req) in priceable()) {
        let sale = price_sale(&catalog, &req).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut undiscounted = req.clone();
        undiscounted.discount = None;
        undiscounted.tenders = vec![tender(TenderKind::Card, 1)];
        // Without the sale discount, every line's discount is its line discount only.
        let line_only: Vec<i64> = req
            .lines
            .iter()
            .zip(&sale.lines)
            .map(|(r, l)| r.discount.map_or(0, |d| d.resolve_minor(l.gross_minor, "").unwrap_or(0)))
            .collect();
        let bases: Vec<i64> = sale.lines.iter().zip(&line_only).map(|(l, d)| l.gross_minor - d).collect();
        let shares: Vec<i64> = sale.lines.iter().zip(&line_only).map(|(l, d)| l.discount_minor - d).collect();
        let sale_discount: i64 = shares.iter().sum();
        prop_assert_eq!(allocate_largest_remainder(sale_discount, &bases), Some(shares));
    }
}

fn arbitrary_discount() -> impl Strategy<Value = Option<Discount>> {
    prop_oneof![
        Just(None),
        any::<u32>().prop_map(|bp| Some(Discount::PercentBp(bp))),
        any::<i64>().prop_map(|minor| Some(Discount::AmountMinor(minor))),
    ]
}

fn arbitrary_line() -> impl Strategy<Value = LineRequest> {
    (
        prop_oneof![
            prop::sample::select(&["TEA", "HUGE", "SANDWICH", "KAFFEE"][..]).prop_map(String::from),
            ".{0,6}"
        ],
        prop_oneof![any::<i64>(), -2_i64..200_000],
        prop::option::of(prop_oneof![any::<i64>(), 0_i64..1000, Just(i64::MAX)]),
        arbitrary_discount(),
        prop::option::of(consumption()),
    )
        .prop_map(
            |(sku, quantity, unit_price_override_minor, discount, consumption)| LineRequest {
                sku,
                quantity,
                unit_price_override_minor,
                discount,
                consumption,
            },
        )
}

fn arbitrary_request() -> impl Strategy<Value = SaleRequest> {
    (
        prop::sample::select(&["GBP", "CHF", "EUR", "JPY"][..]),
        consumption(),
        prop::collection::vec(arbitrary_line(), 0..10),
        arbitrary_discount(),
        prop::collection::vec(
            (
                tender_kind(),
                prop_oneof![any::<i64>(), 0_i64..10_000, Just(i64::MAX)],
                prop::option::of(".{0,140}"),
            )
                .prop_map(|(kind, amount_minor, reference)| TenderRequest {
                    kind,
                    amount_minor,
                    reference,
                }),
            0..20,
        ),
    )
        .prop_map(
            |(code, consumption, lines, discount, tenders)| SaleRequest {
                currency: currency(code),
                consumption,
                lines,
                discount,
                tenders,
            },
        )
}

proptest! {
    #[test]
    fn price_sale_never_panics(catalog in catalog_strategy(), req in arbitrary_request()) {
        if let Ok(sale) = price_sale(&catalog, &req) {
            check_invariants(&catalog, &sale)?;
        }
    }
}

// ---- refunds -----------------------------------------------------------------------------

/// Splits `total` into 1..=total random positive steps.
fn steps_of(total: i64, cuts: &[i64]) -> Vec<i64> {
    let mut points: Vec<i64> = cuts
        .iter()
        .map(|c| c.rem_euclid(total.max(1)))
        .filter(|p| *p > 0)
        .collect();
    points.push(0);
    points.push(total);
    points.sort_unstable();
    points.dedup();
    points.windows(2).map(|w| w[1] - w[0]).collect()
}

proptest! {
    #[test]
    fn refunds_in_any_steps_sum_to_line_net_and_tax(
        (catalog, req) in priceable(),
        cuts in prop::collection::vec(any::<i64>(), 0..8),
        kind in tender_kind(),
    ) {
        let sale = price_sale(&catalog, &req).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut refunded = vec![0_i64; sale.lines.len()];
        let mut paid = vec![(0_i64, 0_i64); sale.lines.len()];
        for (index, line) in sale.lines.iter().enumerate() {
            for step in steps_of(line.quantity, &cuts) {
                let line_index = u32::try_from(index).map_err(|e| TestCaseError::fail(e.to_string()))?;
                let request = RefundRequest { lines: vec![RefundLineRequest { line_index, quantity: step }], tender: kind };
                let refund = price_refund(&sale, &refunded, &request).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(refund.tender.amount_minor, refund.total_minor);
                prop_assert_eq!(refund.tender.change_minor, 0);
                prop_assert!(0 <= refund.tax_minor && refund.tax_minor <= refund.total_minor);
                paid[index].0 += refund.total_minor;
                paid[index].1 += refund.tax_minor;
                refunded[index] += step;
            }
            prop_assert_eq!(paid[index], (line.net_minor, line.tax_minor));
            // Nothing is left to refund.
            let more = RefundRequest { lines: vec![RefundLineRequest { line_index: index as u32, quantity: 1 }], tender: kind };
            prop_assert_eq!(price_refund(&sale, &refunded, &more).map_err(|e| e.code()), Err("refund_exceeds_original"));
        }
    }

    #[test]
    fn price_refund_never_panics(
        (catalog, req) in priceable(),
        refunded in prop::collection::vec(prop_oneof![any::<i64>(), 0_i64..3], 0..14),
        lines in prop::collection::vec((prop_oneof![any::<u32>(), 0_u32..14], prop_oneof![any::<i64>(), 1_i64..4]), 0..6),
        corrupt in prop::option::of((any::<i64>(), any::<i64>())),
    ) {
        let mut sale = price_sale(&catalog, &req).map_err(|e| TestCaseError::fail(e.to_string()))?;
        if let (Some((quantity, net)), Some(line)) = (corrupt, sale.lines.first_mut()) {
            line.quantity = quantity;
            line.net_minor = net;
        }
        let lines = lines.into_iter().map(|(line_index, quantity)| RefundLineRequest { line_index, quantity }).collect();
        let _ = price_refund(&sale, &refunded, &RefundRequest { lines, tender: TenderKind::Cash });
    }

    #[test]
    fn receipt_never_panics(name in ".{0,60}", device in ".{0,60}", receipt_no in any::<u64>(), (catalog, req) in priceable()) {
        let sale = price_sale(&catalog, &req).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let text = render_receipt(&name, &device, receipt_no, &sale);
        prop_assert!(text.lines().all(|row| row.chars().count() <= 40));
    }
}
