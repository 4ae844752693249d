//! [`PricedSale`]: a sale as priced and settled, the record that is journalled and printed.

use std::collections::BTreeMap;

pub use crate::consumption::Consumption;
pub use crate::discount::Discount;
use crate::money::Currency;
pub use crate::pricing::price_sale;
pub use crate::sale_request::{LineRequest, SaleRequest};
pub use crate::tender::{SettledTender, TenderKind, TenderRequest};

/// One priced line. All amounts are minor units of the sale currency, VAT included.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PricedLine {
    /// SKU of the item.
    pub sku: String,
    /// Item name from the catalog (trimmed).
    pub name: String,
    /// Units sold (`>= 1`).
    pub quantity: i64,
    /// Unit price used (catalog price, or the override).
    pub unit_price_minor: i64,
    /// `true` if `unit_price_minor` is a manual override.
    pub price_overridden: bool,
    /// `quantity × unit_price_minor`.
    pub gross_minor: i64,
    /// The line discount as requested.
    pub line_discount: Option<Discount>,
    /// Line discount plus this line's share of the sale discount (`<= gross_minor`).
    pub discount_minor: i64,
    /// `gross_minor − discount_minor`: what the customer pays for the line.
    pub net_minor: i64,
    /// VAT rate applied, basis points.
    pub tax_rate_bp: u32,
    /// VAT contained in `net_minor` ([`crate::tax_included_minor`]).
    pub tax_minor: i64,
    /// Tax class id of the item.
    pub tax_class: String,
    /// Consumption the rate was chosen for.
    pub consumption: Consumption,
}

/// VAT totals of the lines sharing one rate (for the receipt's VAT summary and reports).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VatRateTotal {
    /// The rate, basis points.
    pub rate_bp: u32,
    /// Sum of line nets at this rate, VAT included, minor units.
    pub gross_minor: i64,
    /// Sum of line VAT at this rate, minor units.
    pub tax_minor: i64,
}

/// A priced, settled sale. Amounts are minor units of `currency`. Invariants (established
/// by [`crate::price_sale`]): `gross − discount == total == Σ line net`, `tax == Σ line tax`,
/// `Σ tender amounts − change == amount due`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PricedSale {
    /// Currency of every amount.
    pub currency: Currency,
    /// Default consumption of the sale.
    pub consumption: Consumption,
    /// Version of the catalog the sale was priced from.
    pub catalog_version: u64,
    /// Priced lines, in request order.
    pub lines: Vec<PricedLine>,
    /// Sale-level discount as requested.
    pub sale_discount: Option<Discount>,
    /// Σ line gross.
    pub gross_minor: i64,
    /// Σ line discount (line discounts and the sale discount).
    pub discount_minor: i64,
    /// Σ line net, before cash rounding.
    pub total_minor: i64,
    /// Σ line VAT.
    pub tax_minor: i64,
    /// Amount due minus total (cash rounding; 0 unless paid partly in cash).
    pub cash_rounding_minor: i64,
    /// Tenders as settled.
    pub tenders: Vec<SettledTender>,
    /// The store-wide tax version whose rates priced the lines (0: the catalog's own
    /// rates); see [`crate::Catalog::with_tax_rates`]. Each line's rate is in
    /// [`PricedLine::tax_rate_bp`].
    #[serde(default)]
    pub tax_version: u64,
}

impl PricedSale {
    /// `total_minor + cash_rounding_minor`: what the customer pays (saturating, so a
    /// corrupted record cannot panic; exact for any sale `price_sale` produced).
    pub fn amount_due_minor(&self) -> i64 {
        self.total_minor.saturating_add(self.cash_rounding_minor)
    }

    /// Σ change handed back, minor units (saturating).
    pub fn change_minor(&self) -> i64 {
        self.tenders
            .iter()
            .fold(0_i64, |acc, t| acc.saturating_add(t.change_minor))
    }

    /// Σ tender amounts offered, minor units (saturating).
    pub fn tendered_minor(&self) -> i64 {
        self.tenders
            .iter()
            .fold(0_i64, |acc, t| acc.saturating_add(t.amount_minor))
    }

    /// Line nets and VAT summed per VAT rate, ascending by rate (saturating sums).
    pub fn vat_summary(&self) -> Vec<VatRateTotal> {
        let mut by_rate: BTreeMap<u32, (i64, i64)> = BTreeMap::new();
        for line in &self.lines {
            let entry = by_rate.entry(line.tax_rate_bp).or_insert((0, 0));
            entry.0 = entry.0.saturating_add(line.net_minor);
            entry.1 = entry.1.saturating_add(line.tax_minor);
        }
        by_rate
            .into_iter()
            .map(|(rate_bp, (gross_minor, tax_minor))| VatRateTotal {
                rate_bp,
                gross_minor,
                tax_minor,
            })
            .collect()
    }
}
