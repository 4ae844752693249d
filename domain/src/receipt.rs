//! [`render_receipt`]: the plain-text customer receipt of a priced sale.

use crate::money::format_minor_units;
use crate::sale::{PricedLine, PricedSale};

/// Characters per receipt row (a common 80 mm thermal printer width in its small font).
pub const RECEIPT_WIDTH_CHARS: usize = 40;

/// Renders the customer receipt of `sale` as plain text, rows of at most
/// [`RECEIPT_WIDTH_CHARS`] characters separated by `\n`.
///
/// Content: store name, device and receipt number, each line (name, gross, quantity × unit
/// price, discount), subtotal, discounts, total, cash rounding and amount due when rounded,
/// a VAT summary per rate (VAT-inclusive amount and VAT), tenders and change. Amounts are
/// formatted with the currency's minor-unit exponent (`2.67` for GBP, `500` for JPY). Prices
/// include VAT and the VAT is summarised per rate, the content of a UK retailer's simplified
/// VAT invoice (HMRC VAT Notice 700 s.16); the caller adds what such an invoice also needs
/// (address, VAT registration number, time of supply). Control characters in the inputs are
/// replaced by spaces; over-long texts are cut, never wrapped. Never panics.
pub fn render_receipt(
    store_name: &str,
    device_id: &str,
    receipt_no: u64,
    sale: &PricedSale,
) -> String {
    let mut out = Receipt {
        rows: Vec::new(),
        exponent: sale.currency.exponent(),
    };
    out.text(&clean(store_name));
    out.pair(
        &format!("Device {}", clean(device_id)),
        &format!("Receipt {receipt_no}"),
    );
    out.pair(
        &format!("Catalog v{}", sale.catalog_version),
        sale.consumption.label(),
    );
    out.rule();
    for line in &sale.lines {
        out.line(line, sale);
    }
    out.rule();
    out.totals(sale);
    out.rule();
    out.vat_summary(sale);
    out.rule();
    out.tenders(sale);
    out.text("Prices include VAT");
    out.finish()
}

/// Formats a rate in basis points as a percentage: 2000 → `"20%"`, 550 → `"5.5%"`,
/// 1250 → `"12.5%"`, 5 → `"0.05%"`.
pub fn format_rate_bp(rate_bp: u32) -> String {
    let whole = rate_bp / 100;
    let fraction = rate_bp % 100;
    if fraction == 0 {
        format!("{whole}%")
    } else if fraction.is_multiple_of(10) {
        format!("{whole}.{}%", fraction / 10)
    } else {
        format!("{whole}.{fraction:02}%")
    }
}

struct Receipt {
    rows: Vec<String>,
    exponent: u8,
}

impl Receipt {
    fn text(&mut self, text: &str) {
        self.rows
            .push(text.chars().take(RECEIPT_WIDTH_CHARS).collect());
    }

    fn rule(&mut self) {
        self.rows.push("-".repeat(RECEIPT_WIDTH_CHARS));
    }

    /// `left` and `right` on one row, `right` right-aligned; `left` is cut to fit.
    fn pair(&mut self, left: &str, right: &str) {
        let right: String = right.chars().take(RECEIPT_WIDTH_CHARS).collect();
        let room = RECEIPT_WIDTH_CHARS.saturating_sub(right.chars().count() + 1);
        let left: String = left.chars().take(room).collect();
        let pad = RECEIPT_WIDTH_CHARS.saturating_sub(left.chars().count() + right.chars().count());
        self.rows.push(format!("{left}{}{right}", " ".repeat(pad)));
    }

    fn amount(&self, minor: i64) -> String {
        format_minor_units(minor, self.exponent)
    }

    fn negated(&self, minor: i64) -> String {
        self.amount(minor.checked_neg().unwrap_or(i64::MAX))
    }

    fn line(&mut self, line: &PricedLine, sale: &PricedSale) {
        self.pair(&line.name, &self.amount(line.gross_minor));
        let marker = if line.price_overridden {
            " (manual price)"
        } else {
            ""
        };
        if line.quantity != 1 || line.price_overridden {
            let unit = self.amount(line.unit_price_minor);
            self.text(&format!("  {} x {unit}{marker}", line.quantity));
        }
        if line.discount_minor != 0 {
            self.pair("  Discount", &self.negated(line.discount_minor));
        }
        if line.consumption != sale.consumption {
            self.text(&format!("  {}", line.consumption.label()));
        }
    }

    fn totals(&mut self, sale: &PricedSale) {
        self.pair("Subtotal", &self.amount(sale.gross_minor));
        if sale.discount_minor != 0 {
            self.pair("Discounts", &self.negated(sale.discount_minor));
        }
        let code = sale.currency.code();
        self.pair(
            "TOTAL",
            &format!("{code} {}", self.amount(sale.total_minor)),
        );
        if sale.cash_rounding_minor != 0 {
            self.pair("Cash rounding", &self.amount(sale.cash_rounding_minor));
            let due = self.amount(sale.amount_due_minor());
            self.pair("AMOUNT DUE", &format!("{code} {due}"));
        }
    }

    fn vat_summary(&mut self, sale: &PricedSale) {
        for rate in sale.vat_summary() {
            let label = format!(
                "VAT {} on {}",
                format_rate_bp(rate.rate_bp),
                self.amount(rate.gross_minor)
            );
            self.pair(&label, &self.amount(rate.tax_minor));
        }
        self.pair("VAT total", &self.amount(sale.tax_minor));
    }

    fn tenders(&mut self, sale: &PricedSale) {
        for tender in &sale.tenders {
            self.pair(tender.kind.label(), &self.amount(tender.amount_minor));
        }
        let change_minor = sale.change_minor();
        if change_minor != 0 {
            self.pair("Change", &self.amount(change_minor));
        }
    }

    fn finish(self) -> String {
        let mut text = self.rows.join("\n");
        text.push('\n');
        text
    }
}

/// `text` with control characters replaced by spaces and surrounding whitespace trimmed.
fn clean(text: &str) -> String {
    let replaced: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    replaced.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_format_table() {
        let cases = [
            (2000, "20%"),
            (550, "5.5%"),
            (1250, "12.5%"),
            (5, "0.05%"),
            (0, "0%"),
        ];
        for (bp, want) in cases {
            assert_eq!(format_rate_bp(bp), want);
        }
    }
}
