//! What a POS app asks to sell: [`SaleRequest`] and its [`LineRequest`]s.

use crate::discount::Discount;
use crate::money::Currency;
use crate::tax::Consumption;
use crate::tender::TenderRequest;

/// One line of a sale request: an item, a quantity, and optional overrides.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LineRequest {
    /// SKU of a catalog item.
    pub sku: String,
    /// Units sold, `1..=LINE_QUANTITY_MAX`.
    pub quantity: i64,
    /// Manual unit price, VAT included, minor units (`>= 0`); replaces the catalog price.
    #[serde(default)]
    pub unit_price_override_minor: Option<i64>,
    /// Discount on this line (amount, or percentage of the line's gross).
    #[serde(default)]
    pub discount: Option<Discount>,
    /// Where this line is consumed, overriding the sale's consumption.
    #[serde(default)]
    pub consumption: Option<Consumption>,
}

/// A sale as asked for by a POS app: lines, an optional sale-level discount and tenders.
/// Priced by [`crate::price_sale`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SaleRequest {
    /// Must equal the catalog currency.
    pub currency: Currency,
    /// Default consumption of every line.
    pub consumption: Consumption,
    /// `1..=SALE_LINES_MAX` lines.
    pub lines: Vec<LineRequest>,
    /// Discount on the whole sale, spread over the lines pro rata.
    #[serde(default)]
    pub discount: Option<Discount>,
    /// `0..=SALE_TENDERS_MAX` payments; at least one unless nothing is due.
    #[serde(default)]
    pub tenders: Vec<TenderRequest>,
}
