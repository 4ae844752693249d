//! posmesh domain: money, VAT, catalog, sales, tenders, refunds and receipts.
//!
//! Pure logic: no I/O, no clocks, no randomness. Money is always an integer count of minor
//! units (`i64`) of an ISO 4217 [`Currency`]; all arithmetic is checked (or done in `i128`
//! where a product of two amounts is needed), so no input can make a function panic.
//!
//! # Layout
//! - [`limits`] — every bound on input (lines, quantities, tenders, lengths), units last.
//! - [`currency`] — [`Currency`]: ISO 4217 code and minor-unit exponent.
//! - [`money`] — [`Money`], [`MoneyError`], checked arithmetic and formatting.
//! - [`rounding`] — the integer division and rounding rules everything else uses.
//! - [`consumption`] — [`Consumption`]: eat-in or take-away (decides the VAT rate).
//! - [`tax`] — [`tax_included_minor`] (the VAT fraction) and [`TaxClass`].
//! - [`catalog_file`] — [`CatalogFile`]: the catalog as read from TOML, unvalidated.
//! - [`catalog_error`] — [`CatalogError`].
//! - [`catalog`] — [`Catalog`]: validated items, prices and tax classes.
//! - [`discount`] — [`Discount`]: amount or percentage off.
//! - [`allocation`] — largest-remainder split of a sale discount over lines.
//! - [`cash_rounding`] — rounding cash totals to the smallest coin (CHF 0.05).
//! - [`tender`] — [`TenderKind`], [`TenderRequest`], [`SettledTender`] and settlement.
//! - [`sale_request`] — [`SaleRequest`], [`LineRequest`]: what the POS app asks for.
//! - [`sale`] — [`PricedSale`], [`PricedLine`]: the priced, settled sale.
//! - [`pricing`] — [`price_sale`].
//! - [`refund`] — [`RefundRequest`], [`PricedRefund`], [`price_refund`].
//! - [`error`] — [`SaleError`] with stable codes and JSON field paths.
//! - [`receipt`] — [`render_receipt`]: plain-text customer receipt.

#![deny(clippy::disallowed_methods)]

pub mod allocation;
pub mod cash_rounding;
pub mod catalog;
pub mod catalog_error;
pub mod catalog_file;
pub mod consumption;
pub mod currency;
pub mod discount;
pub mod error;
pub mod limits;
pub mod money;
pub mod pricing;
pub mod receipt;
pub mod refund;
pub mod rounding;
pub mod sale;
pub mod sale_request;
pub mod tax;
pub mod tender;

pub use allocation::allocate_largest_remainder;
pub use cash_rounding::cash_rounded_minor;
pub use catalog::{Catalog, CatalogItem};
pub use catalog_error::CatalogError;
pub use catalog_file::{CatalogFile, CatalogItemFile};
pub use consumption::Consumption;
pub use currency::Currency;
pub use discount::Discount;
pub use error::SaleError;
pub use limits::*;
pub use money::{format_minor_units, Money, MoneyError};
pub use pricing::price_sale;
pub use receipt::{format_rate_bp, render_receipt};
pub use refund::{
    cumulative_share, price_refund, PricedRefund, PricedRefundLine, RefundLineRequest,
    RefundRequest,
};
pub use sale::{PricedLine, PricedSale, VatRateTotal};
pub use sale_request::{LineRequest, SaleRequest};
pub use tax::{tax_included_minor, TaxClass};
pub use tender::{settle_tenders, SettledTender, TenderKind, TenderRequest};
