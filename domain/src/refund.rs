//! Refunds of a priced sale: [`RefundRequest`] → [`PricedRefund`] by [`price_refund`].

use crate::error::SaleError;
use crate::limits::SALE_LINES_MAX;
use crate::money::Currency;
use crate::rounding::{div_floor, to_i64};
use crate::sale::{PricedLine, PricedSale};
use crate::tender::{SettledTender, TenderKind};

/// Refund `quantity` more units of the original line at `line_index`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RefundLineRequest {
    /// Index of the line in the original sale (0-based).
    pub line_index: u32,
    /// Units to refund now (`> 0`).
    pub quantity: i64,
}

/// A refund of some units of some lines of one sale, paid back by one tender.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RefundRequest {
    /// `1..=SALE_LINES_MAX` lines, each naming a different original line.
    pub lines: Vec<RefundLineRequest>,
    /// How the money is paid back.
    pub tender: TenderKind,
}

/// One refunded line: amounts are positive minor units paid back to the customer.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PricedRefundLine {
    /// Index of the line in the original sale.
    pub line_index: u32,
    /// Units refunded now.
    pub quantity: i64,
    /// Amount refunded, VAT included, minor units.
    pub amount_minor: i64,
    /// VAT contained in `amount_minor`, minor units.
    pub tax_minor: i64,
}

/// A priced refund: `total_minor == Σ line amounts`, `tax_minor == Σ line VAT`, and the
/// tender pays back `total_minor` with no change.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PricedRefund {
    /// Currency of the original sale.
    pub currency: Currency,
    /// Refunded lines, in request order.
    pub lines: Vec<PricedRefundLine>,
    /// Σ line amounts, minor units.
    pub total_minor: i64,
    /// Σ line VAT, minor units.
    pub tax_minor: i64,
    /// The refund tender: the requested kind, amount `total_minor`, change 0.
    pub tender: SettledTender,
}

/// Prices a refund of `original`, given the units of each original line refunded before
/// (`already_refunded_qty[i]` for `original.lines[i]`).
///
/// Rule: amounts are cumulative proportions, so refunding all `Q` units of a line in any
/// number of steps pays back exactly its net and VAT, never a minor unit more or less:
/// `amount = floor(net × (r + q) / Q) − floor(net × r / Q)` with `r` already refunded and
/// `q` refunded now (the same for VAT). The refund is what the customer paid, discounts
/// included (VAT Act 1994 s.19: VAT follows the consideration). No cash rounding is applied
/// to refunds.
///
/// # Errors
/// [`SaleError::RefundHistoryInvalid`] if `already_refunded_qty` has the wrong length or a
/// count outside `0..=quantity`; [`SaleError::NoLines`], [`SaleError::TooManyLines`],
/// [`SaleError::LineIndexOutOfRange`], [`SaleError::DuplicateRefundLine`],
/// [`SaleError::QuantityOutOfRange`] (quantity `<= 0`), [`SaleError::RefundExceedsOriginal`],
/// [`SaleError::InvalidOriginalSale`], [`SaleError::AmountOverflow`].
pub fn price_refund(
    original: &PricedSale,
    already_refunded_qty: &[i64],
    req: &RefundRequest,
) -> Result<PricedRefund, SaleError> {
    if already_refunded_qty.len() != original.lines.len() {
        let line_index = already_refunded_qty.len().min(original.lines.len());
        return Err(SaleError::RefundHistoryInvalid { line_index });
    }
    if req.lines.is_empty() {
        return Err(SaleError::NoLines);
    }
    if req.lines.len() > SALE_LINES_MAX {
        return Err(SaleError::TooManyLines {
            count: req.lines.len(),
        });
    }
    let mut seen = vec![false; original.lines.len()];
    let mut lines = Vec::with_capacity(req.lines.len());
    for (line, request) in req.lines.iter().enumerate() {
        let index = claim_line(original, &mut seen, line, request)?;
        let refunded = already_refunded_qty.get(index).copied().unwrap_or(0);
        let original_line = original
            .lines
            .get(index)
            .ok_or(SaleError::InvalidOriginalSale { line_index: index })?;
        lines.push(refund_line(original_line, index, refunded, line, request)?);
    }
    let total_minor = checked_sum(lines.iter().map(|l| l.amount_minor))?;
    let tax_minor = checked_sum(lines.iter().map(|l| l.tax_minor))?;
    let tender = SettledTender {
        kind: req.tender,
        amount_minor: total_minor,
        change_minor: 0,
        reference: None,
    };
    Ok(PricedRefund {
        currency: original.currency,
        lines,
        total_minor,
        tax_minor,
        tender,
    })
}

/// Checks that the request line names an existing original line not yet named; returns
/// its index.
fn claim_line(
    original: &PricedSale,
    seen: &mut [bool],
    line: usize,
    request: &RefundLineRequest,
) -> Result<usize, SaleError> {
    let line_index = request.line_index;
    let out_of_range = SaleError::LineIndexOutOfRange { line, line_index };
    let index = usize::try_from(line_index).map_err(|_| out_of_range.clone())?;
    if index >= original.lines.len() {
        return Err(out_of_range);
    }
    let slot = seen.get_mut(index).ok_or(out_of_range)?;
    if *slot {
        return Err(SaleError::DuplicateRefundLine { line, line_index });
    }
    *slot = true;
    Ok(index)
}

/// Prices `request.quantity` more units of `original_line`, of which `refunded` units were
/// refunded before.
fn refund_line(
    original_line: &PricedLine,
    index: usize,
    refunded: i64,
    line: usize,
    request: &RefundLineRequest,
) -> Result<PricedRefundLine, SaleError> {
    let quantity = request.quantity;
    if quantity <= 0 {
        return Err(SaleError::QuantityOutOfRange { line, quantity });
    }
    let original_quantity = original_line.quantity;
    if original_quantity <= 0 {
        return Err(SaleError::InvalidOriginalSale { line_index: index });
    }
    if !(0..=original_quantity).contains(&refunded) {
        return Err(SaleError::RefundHistoryInvalid { line_index: index });
    }
    let after = refunded
        .checked_add(quantity)
        .filter(|after| *after <= original_quantity);
    let Some(after) = after else {
        return Err(SaleError::RefundExceedsOriginal {
            line,
            line_index: request.line_index,
            quantity,
            already_refunded: refunded,
            original_quantity,
        });
    };
    let share = |whole: i64| cumulative_share(whole, refunded, after, original_quantity);
    let invalid = || SaleError::InvalidOriginalSale { line_index: index };
    // The amount is the share of the line's tax plus the share of its amount before tax,
    // each telescoping on its own: every step's tax is then within its amount (0 ≤ tax ≤
    // amount), and the steps still sum to exactly the line's net and tax. Sharing the net
    // directly could round a step's amount down to below its tax share.
    let before_tax = original_line
        .net_minor
        .checked_sub(original_line.tax_minor)
        .ok_or_else(invalid)?;
    let tax_minor = share(original_line.tax_minor).ok_or_else(invalid)?;
    let amount_minor = share(before_tax)
        .and_then(|before_tax| before_tax.checked_add(tax_minor))
        .ok_or_else(invalid)?;
    Ok(PricedRefundLine {
        line_index: request.line_index,
        quantity,
        amount_minor,
        tax_minor,
    })
}

/// `floor(whole × after / total) − floor(whole × before / total)`: the part of `whole`
/// belonging to units `before..after` of `total`, telescoping so all steps sum to `whole`.
///
/// `None` if `total <= 0` or the result does not fit `i64` (impossible for
/// `0 <= before <= after <= total`).
pub fn cumulative_share(whole: i64, before: i64, after: i64, total: i64) -> Option<i64> {
    let whole = i128::from(whole);
    let total = i128::from(total);
    let upper = div_floor(whole * i128::from(after), total)?;
    let lower = div_floor(whole * i128::from(before), total)?;
    to_i64(upper.checked_sub(lower)?)
}

fn checked_sum(values: impl Iterator<Item = i64>) -> Result<i64, SaleError> {
    let mut sum = 0_i64;
    for value in values {
        sum = sum
            .checked_add(value)
            .ok_or_else(|| SaleError::AmountOverflow {
                field: "lines".to_owned(),
            })?;
    }
    Ok(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cumulative_share_telescopes() {
        // 100 over 3 units refunded one at a time: 33, 33, 34.
        assert_eq!(cumulative_share(100, 0, 1, 3), Some(33));
        assert_eq!(cumulative_share(100, 1, 2, 3), Some(33));
        assert_eq!(cumulative_share(100, 2, 3, 3), Some(34));
        assert_eq!(cumulative_share(100, 0, 3, 3), Some(100));
        assert_eq!(cumulative_share(100, 0, 1, 0), None);
    }
}
