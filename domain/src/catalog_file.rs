//! [`CatalogFile`]: the catalog as written by HQ (TOML, parsed by the node), not yet validated.

use crate::tax::TaxClass;

/// A catalog as read from its file, before validation by [`crate::Catalog::from_file`].
///
/// Unknown fields are refused so a typo in a price file is an error, not a silent default.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogFile {
    /// Catalog version (`>= 1`); each published catalog has a higher version.
    pub version: u64,
    /// ISO 4217 code of every price in the file (`"GBP"`).
    pub currency: String,
    /// Cash rounding step in minor units (5 for CHF: cash totals end in 0 or 5 centimes);
    /// absent when cash is paid to the minor unit.
    #[serde(default)]
    pub cash_rounding_increment_minor: Option<i64>,
    /// The tax classes items refer to.
    pub tax_classes: Vec<TaxClass>,
    /// The items on sale.
    pub items: Vec<CatalogItemFile>,
}

/// One item of a [`CatalogFile`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogItemFile {
    /// Stock-keeping unit: non-empty, `[A-Z0-9_-]`, unique.
    pub sku: String,
    /// Display name; unique after trimming surrounding whitespace.
    pub name: String,
    /// Unit price, VAT included, in minor units of the catalog currency (`>= 0`).
    pub price_minor: i64,
    /// Id of one of the file's tax classes.
    pub tax_class: String,
}
