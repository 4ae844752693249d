//! Every `SaleError` variant, triggered through the public API, with its code and field.

use super::common::*;
use posmesh_domain::{
    price_refund, price_sale, Discount, PricedSale, RefundLineRequest, RefundRequest, SaleError,
    SaleRequest, TenderKind, SALE_LINES_MAX, SALE_TENDERS_MAX, TENDER_REFERENCE_BYTES_MAX,
};

/// Every code `SaleError::code` can return. A new variant must be added here and triggered
/// below, or `every_code_is_triggered` fails.
const ALL_CODES: &[&str] = &[
    "currency_mismatch",
    "no_lines",
    "too_many_lines",
    "too_many_tenders",
    "unknown_sku",
    "quantity_out_of_range",
    "negative_amount",
    "percent_out_of_range",
    "discount_exceeds_amount",
    "amount_overflow",
    "invalid_tender_amount",
    "tender_reference_too_long",
    "non_cash_overpayment",
    "tenders_short",
    "line_index_out_of_range",
    "duplicate_refund_line",
    "refund_exceeds_original",
    "refund_history_invalid",
    "invalid_original_sale",
];

fn card(amount_minor: i64) -> Vec<posmesh_domain::TenderRequest> {
    vec![tender(TenderKind::Card, amount_minor)]
}

/// (request, expected code, expected field).
fn sale_cases() -> Vec<(SaleRequest, &'static str, &'static str)> {
    let mut cases = Vec::new();
    let tea = || sale("GBP", vec![line("TEA", 1)], card(120));
    let mut eur = tea();
    eur.currency = currency("EUR");
    cases.push((eur, "currency_mismatch", "currency"));
    cases.push((sale("GBP", vec![], vec![]), "no_lines", "lines"));
    cases.push((
        sale("GBP", vec![line("TEA", 1); SALE_LINES_MAX + 1], vec![]),
        "too_many_lines",
        "lines",
    ));
    let many = vec![tender(TenderKind::Cash, 1); SALE_TENDERS_MAX + 1];
    cases.push((
        sale("GBP", vec![line("TEA", 1)], many),
        "too_many_tenders",
        "tenders",
    ));
    let unknown = sale("GBP", vec![line("TEA", 1), line("SCONE", 1)], card(120));
    cases.push((unknown, "unknown_sku", "lines[1].sku"));
    for quantity in [0, -1, 100_001, i64::MIN] {
        let req = sale("GBP", vec![line("TEA", quantity)], card(120));
        cases.push((req, "quantity_out_of_range", "lines[0].quantity"));
    }
    let mut negative = tea();
    negative.lines[0].unit_price_override_minor = Some(-1);
    cases.push((
        negative,
        "negative_amount",
        "lines[0].unit_price_override_minor",
    ));
    let negative_discount = with_discount(tea(), Discount::AmountMinor(-5));
    cases.push((negative_discount, "negative_amount", "discount"));
    let mut percent = tea();
    percent.lines[0].discount = Some(Discount::PercentBp(10_001));
    cases.push((percent, "percent_out_of_range", "lines[0].discount"));
    let sale_percent = with_discount(tea(), Discount::PercentBp(u32::MAX));
    cases.push((sale_percent, "percent_out_of_range", "discount"));
    let mut too_much = tea();
    too_much.lines[0].discount = Some(Discount::AmountMinor(121));
    cases.push((too_much, "discount_exceeds_amount", "lines[0].discount"));
    let sale_too_much = with_discount(tea(), Discount::AmountMinor(121));
    cases.push((sale_too_much, "discount_exceeds_amount", "discount"));
    let mut override_overflow = sale("GBP", vec![line("TEA", 2)], card(1));
    override_overflow.lines[0].unit_price_override_minor = Some(i64::MAX);
    let override_field = "lines[0].unit_price_override_minor";
    cases.push((override_overflow, "amount_overflow", override_field));
    let catalog_overflow = sale("GBP", vec![line("TEA", 1), line("HUGE", 2)], card(1));
    cases.push((catalog_overflow, "amount_overflow", "lines[1]"));
    let sum_overflow = sale("GBP", vec![line("HUGE", 1), line("HUGE", 1)], card(1));
    cases.push((sum_overflow, "amount_overflow", "lines"));
    // An absurd tender is refused by its limit, before any sum could overflow.
    let absurd_tender = vec![
        tender(TenderKind::Cash, i64::MAX),
        tender(TenderKind::Cash, 1),
    ];
    cases.push((
        sale("GBP", vec![line("TEA", 1)], absurd_tender),
        "invalid_tender_amount",
        "tenders[0].amount_minor",
    ));
    let zero_tender = vec![tender(TenderKind::Card, 100), tender(TenderKind::Cash, 0)];
    let zero = sale("GBP", vec![line("TEA", 1)], zero_tender);
    cases.push((zero, "invalid_tender_amount", "tenders[1].amount_minor"));
    let mut long_ref = tea();
    long_ref.tenders[0].reference = Some("x".repeat(TENDER_REFERENCE_BYTES_MAX + 1));
    cases.push((
        long_ref,
        "tender_reference_too_long",
        "tenders[0].reference",
    ));
    let over = sale("GBP", vec![line("TEA", 1)], card(121));
    cases.push((over, "non_cash_overpayment", "tenders"));
    let short = sale(
        "GBP",
        vec![line("TEA", 1)],
        vec![tender(TenderKind::Cash, 119)],
    );
    cases.push((short, "tenders_short", "tenders"));
    cases.push((
        sale("GBP", vec![line("TEA", 1)], vec![]),
        "tenders_short",
        "tenders",
    ));
    cases
}

fn original() -> PricedSale {
    let req = sale("GBP", vec![line("TEA", 2), line("COFFEE", 3)], card(537));
    price_sale(&uk(), &req).expect("priced")
}

fn refund(lines: &[(u32, i64)]) -> RefundRequest {
    RefundRequest {
        lines: lines
            .iter()
            .map(|&(line_index, quantity)| RefundLineRequest {
                line_index,
                quantity,
            })
            .collect(),
        tender: TenderKind::Card,
    }
}

/// (original, already refunded, request, expected code, expected field).
fn refund_cases() -> Vec<(PricedSale, Vec<i64>, RefundRequest, &'static str, String)> {
    let mut cases = Vec::new();
    let mut push = |o: PricedSale, r: &[i64], q: RefundRequest, code, field: &str| {
        cases.push((o, r.to_vec(), q, code, field.to_owned()));
    };
    push(original(), &[0, 0], refund(&[]), "no_lines", "lines");
    let many = refund(&vec![(0, 1); SALE_LINES_MAX + 1]);
    push(original(), &[0, 0], many, "too_many_lines", "lines");
    push(
        original(),
        &[0, 0],
        refund(&[(2, 1)]),
        "line_index_out_of_range",
        "lines[0].line_index",
    );
    let max_index = refund(&[(0, 1), (u32::MAX, 1)]);
    push(
        original(),
        &[0, 0],
        max_index,
        "line_index_out_of_range",
        "lines[1].line_index",
    );
    let twice = refund(&[(1, 1), (1, 1)]);
    push(
        original(),
        &[0, 0],
        twice,
        "duplicate_refund_line",
        "lines[1].line_index",
    );
    push(
        original(),
        &[0, 0],
        refund(&[(0, 0)]),
        "quantity_out_of_range",
        "lines[0].quantity",
    );
    push(
        original(),
        &[0, 0],
        refund(&[(1, -1)]),
        "quantity_out_of_range",
        "lines[0].quantity",
    );
    let exceeds = refund(&[(0, 1), (1, 2)]);
    push(
        original(),
        &[0, 2],
        exceeds,
        "refund_exceeds_original",
        "lines[1].quantity",
    );
    let huge = refund(&[(1, i64::MAX)]);
    push(
        original(),
        &[0, 2],
        huge,
        "refund_exceeds_original",
        "lines[0].quantity",
    );
    let history = refund(&[(0, 1)]);
    push(
        original(),
        &[0],
        history,
        "refund_history_invalid",
        "already_refunded_qty[1]",
    );
    let history = refund(&[(0, 1)]);
    push(
        original(),
        &[-1, 0],
        history,
        "refund_history_invalid",
        "already_refunded_qty[0]",
    );
    let mut corrupt = original();
    corrupt.lines[1].quantity = 0;
    let request = refund(&[(1, 1)]);
    push(
        corrupt,
        &[0, 0],
        request,
        "invalid_original_sale",
        "original.lines[1]",
    );
    cases
}

#[test]
fn sale_errors_have_code_and_field() {
    let catalog = uk();
    for (req, code, field) in sale_cases() {
        let err = price_sale(&catalog, &req).expect_err(code);
        assert_eq!((err.code(), err.field().as_str()), (code, field), "{err}");
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn refund_errors_have_code_and_field() {
    for (original, refunded, req, code, field) in refund_cases() {
        let err = price_refund(&original, &refunded, &req).expect_err(code);
        assert_eq!((err.code(), err.field()), (code, field.clone()), "{err}");
    }
}

#[test]
fn every_code_is_triggered() {
    let mut seen: Vec<&str> = sale_cases().iter().map(|c| c.1).collect();
    seen.extend(refund_cases().iter().map(|c| c.3));
    for code in ALL_CODES {
        assert!(seen.contains(code), "no test triggers {code}");
    }
    for code in &seen {
        assert!(ALL_CODES.contains(code), "{code} missing from ALL_CODES");
    }
}

#[test]
fn error_details_name_the_offending_values() {
    let req = sale(
        "GBP",
        vec![line("TEA", 1)],
        vec![tender(TenderKind::Cash, 100)],
    );
    let err = price_sale(&uk(), &req).expect_err("short");
    assert_eq!(
        err,
        SaleError::TendersShort {
            due_minor: 120,
            tendered_minor: 100
        }
    );
    let err = price_refund(&original(), &[1, 0], &refund(&[(0, 2)])).expect_err("exceeds");
    assert_eq!(
        err,
        SaleError::RefundExceedsOriginal {
            line: 0,
            line_index: 0,
            quantity: 2,
            already_refunded: 1,
            original_quantity: 2,
        }
    );
}

#[test]
fn nothing_due_needs_no_tender() {
    let mut free = line("TEA", 1);
    free.unit_price_override_minor = Some(0);
    let sale = price_sale(&uk(), &sale("GBP", vec![free], vec![])).expect("free tea");
    assert_eq!(
        (
            sale.total_minor,
            sale.amount_due_minor(),
            sale.tenders.len()
        ),
        (0, 0, 0)
    );
}
