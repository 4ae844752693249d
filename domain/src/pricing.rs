//! [`price_sale`]: turns a [`SaleRequest`] into a [`PricedSale`] against a [`Catalog`].

use crate::allocation::allocate_largest_remainder;
use crate::cash_rounding::cash_rounded_minor;
use crate::catalog::Catalog;
use crate::error::SaleError;
use crate::limits::{LINE_QUANTITY_MAX, SALE_LINES_MAX};
use crate::sale::{PricedLine, PricedSale};
use crate::sale_request::{LineRequest, SaleRequest};
use crate::tax::{tax_included_minor, Consumption};
use crate::tender::{settle_tenders, validate_tenders};

/// Prices and settles a sale. Pure: same catalog and request, same result.
///
/// Rules, in order:
/// 1. The request currency equals the catalog's; `1..=SALE_LINES_MAX` lines;
///    `0..=SALE_TENDERS_MAX` tenders, each `> 0`.
/// 2. Per line: unit price = override or catalog price (`>= 0`); quantity
///    `1..=LINE_QUANTITY_MAX`; gross = quantity × unit; the line discount (amount, or
///    percentage of gross rounded half up) may not exceed gross.
/// 3. The sale discount applies to Σ (gross − line discount) and is spread over the lines
///    by [`allocate_largest_remainder`], so shares sum exactly and none exceeds its line.
/// 4. Net = gross − all discounts; VAT per line = [`tax_included_minor`] of the net at the
///    tax-class rate for the line's consumption (the line's, else the sale's) — HMRC VAT
///    Notice 700 s.17 and Notice 709/1 for eat-in vs take-away. Totals are sums of lines.
/// 5. If the catalog has a cash rounding increment and any tender is cash, the amount due is
///    the total rounded by [`cash_rounded_minor`]; otherwise it is the total.
/// 6. Tenders are settled by [`settle_tenders`].
///
/// All arithmetic is checked: no input makes it panic.
///
/// # Errors
/// The first [`SaleError`] found; [`SaleError::field`] names the input.
pub fn price_sale(catalog: &Catalog, req: &SaleRequest) -> Result<PricedSale, SaleError> {
    check_shape(catalog, req)?;
    let mut lines = Vec::with_capacity(req.lines.len());
    for (index, line) in req.lines.iter().enumerate() {
        lines.push(price_line(catalog, req.consumption, index, line)?);
    }
    apply_sale_discount(req, &mut lines)?;
    let totals = Totals::of(&lines)?;
    let cash_rounding_minor = cash_rounding(catalog, req, totals.total_minor)?;
    let due_minor = totals
        .total_minor
        .checked_add(cash_rounding_minor)
        .ok_or_else(lines_overflow)?;
    let tenders = settle_tenders(due_minor, &req.tenders)?;
    let sale = PricedSale {
        currency: req.currency,
        consumption: req.consumption,
        catalog_version: catalog.version(),
        lines,
        sale_discount: req.discount,
        gross_minor: totals.gross_minor,
        discount_minor: totals.discount_minor,
        total_minor: totals.total_minor,
        tax_minor: totals.tax_minor,
        cash_rounding_minor,
        tenders,
        tax_version: catalog.tax_version(),
    };
    debug_assert_eq!(sale.amount_due_minor(), due_minor);
    Ok(sale)
}

/// Request-wide checks that need no pricing: currency, line and tender counts, tenders.
fn check_shape(catalog: &Catalog, req: &SaleRequest) -> Result<(), SaleError> {
    if req.currency != catalog.currency() {
        let (catalog, request) = (catalog.currency(), req.currency);
        return Err(SaleError::CurrencyMismatch { catalog, request });
    }
    if req.lines.is_empty() {
        return Err(SaleError::NoLines);
    }
    if req.lines.len() > SALE_LINES_MAX {
        return Err(SaleError::TooManyLines {
            count: req.lines.len(),
        });
    }
    validate_tenders(&req.tenders)
}

/// Prices one line before the sale discount: `discount_minor` holds the line discount only.
fn price_line(
    catalog: &Catalog,
    sale_consumption: Consumption,
    index: usize,
    line: &LineRequest,
) -> Result<PricedLine, SaleError> {
    let (item, tax_class) =
        catalog
            .item_with_tax_class(&line.sku)
            .ok_or_else(|| SaleError::UnknownSku {
                line: index,
                sku: line.sku.clone(),
            })?;
    if !(1..=LINE_QUANTITY_MAX).contains(&line.quantity) {
        return Err(SaleError::QuantityOutOfRange {
            line: index,
            quantity: line.quantity,
        });
    }
    let override_field = || format!("lines[{index}].unit_price_override_minor");
    let unit_price_minor = match line.unit_price_override_minor {
        Some(amount_minor) if amount_minor < 0 => {
            return Err(SaleError::NegativeAmount {
                field: override_field(),
                amount_minor,
            });
        }
        Some(price) => price,
        None => item.price_minor,
    };
    let gross_minor = line.quantity.checked_mul(unit_price_minor).ok_or_else(|| {
        let field = match line.unit_price_override_minor {
            Some(_) => override_field(),
            None => format!("lines[{index}]"),
        };
        SaleError::AmountOverflow { field }
    })?;
    let discount_minor = match line.discount {
        Some(discount) => {
            discount.resolve_minor(gross_minor, &format!("lines[{index}].discount"))?
        }
        None => 0,
    };
    let consumption = line.consumption.unwrap_or(sale_consumption);
    let tax_rate_bp = tax_class.rate_bp(consumption);
    let net_minor = gross_minor - discount_minor; // 0 <= discount <= gross
    Ok(PricedLine {
        sku: item.sku.clone(),
        name: item.name.clone(),
        quantity: line.quantity,
        unit_price_minor,
        price_overridden: line.unit_price_override_minor.is_some(),
        gross_minor,
        line_discount: line.discount,
        discount_minor,
        net_minor,
        tax_rate_bp,
        tax_minor: tax_included_minor(net_minor, tax_rate_bp),
        tax_class: item.tax_class.clone(),
        consumption,
    })
}

/// Resolves the sale discount against Σ line nets, spreads it over the lines by largest
/// remainder, and recomputes each line's net and VAT.
fn apply_sale_discount(req: &SaleRequest, lines: &mut [PricedLine]) -> Result<(), SaleError> {
    let Some(discount) = req.discount else {
        return Ok(());
    };
    let bases: Vec<i64> = lines.iter().map(|line| line.net_minor).collect();
    let subtotal_minor = checked_sum(bases.iter().copied())?;
    let sale_discount_minor = discount.resolve_minor(subtotal_minor, "discount")?;
    let shares = allocate_largest_remainder(sale_discount_minor, &bases).ok_or(
        SaleError::AmountOverflow {
            field: "discount".to_owned(),
        },
    )?;
    for (line, share) in lines.iter_mut().zip(shares) {
        debug_assert!((0..=line.net_minor).contains(&share));
        line.discount_minor = line
            .discount_minor
            .checked_add(share)
            .ok_or_else(lines_overflow)?;
        line.net_minor = line.gross_minor - line.discount_minor;
        line.tax_minor = tax_included_minor(line.net_minor, line.tax_rate_bp);
        debug_assert!(line.net_minor >= 0 && line.tax_minor <= line.net_minor);
    }
    Ok(())
}

/// Cash rounding difference (amount due − total), 0 unless the catalog rounds cash and
/// some tender is cash.
fn cash_rounding(catalog: &Catalog, req: &SaleRequest, total_minor: i64) -> Result<i64, SaleError> {
    let Some(increment_minor) = catalog.cash_rounding_increment_minor() else {
        return Ok(0);
    };
    if !req.tenders.iter().any(|tender| tender.kind.is_cash()) {
        return Ok(0);
    }
    let due_minor = cash_rounded_minor(total_minor, increment_minor).ok_or_else(lines_overflow)?;
    // |due − total| <= increment / 2, so the difference fits.
    due_minor
        .checked_sub(total_minor)
        .ok_or_else(lines_overflow)
}

/// Sale totals, each the checked sum of the lines' field.
struct Totals {
    gross_minor: i64,
    discount_minor: i64,
    total_minor: i64,
    tax_minor: i64,
}

impl Totals {
    fn of(lines: &[PricedLine]) -> Result<Totals, SaleError> {
        let totals = Totals {
            gross_minor: checked_sum(lines.iter().map(|l| l.gross_minor))?,
            discount_minor: checked_sum(lines.iter().map(|l| l.discount_minor))?,
            total_minor: checked_sum(lines.iter().map(|l| l.net_minor))?,
            tax_minor: checked_sum(lines.iter().map(|l| l.tax_minor))?,
        };
        assert_eq!(
            totals.gross_minor - totals.discount_minor,
            totals.total_minor
        );
        assert!(0 <= totals.tax_minor && totals.tax_minor <= totals.total_minor);
        Ok(totals)
    }
}

fn checked_sum(values: impl Iterator<Item = i64>) -> Result<i64, SaleError> {
    let mut sum = 0_i64;
    for value in values {
        sum = sum.checked_add(value).ok_or_else(lines_overflow)?;
    }
    Ok(sum)
}

fn lines_overflow() -> SaleError {
    SaleError::AmountOverflow {
        field: "lines".to_owned(),
    }
}
