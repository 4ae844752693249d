//! [`CatalogError`]: why a catalog file was refused.

/// Why [`crate::Catalog::from_file`] refused a catalog file. Each variant names the
/// offending item (by SKU, or by position if the SKU itself is bad) or field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// `version` is 0; versions start at 1.
    #[error("version: must be >= 1, got {version}")]
    InvalidVersion {
        /// The version as given.
        version: u64,
    },
    /// `currency` is not an ISO 4217 code of the built-in table.
    #[error("currency: unknown ISO 4217 code {currency:?}")]
    UnknownCurrency {
        /// The code as given.
        currency: String,
    },
    /// `cash_rounding_increment_minor` is set but not `> 0`.
    #[error("cash_rounding_increment_minor: must be > 0, got {increment_minor}")]
    InvalidCashRoundingIncrement {
        /// The increment as given, minor units.
        increment_minor: i64,
    },
    /// More tax classes than `CATALOG_TAX_CLASSES_MAX`.
    #[error("tax_classes: {count} exceed the limit")]
    TooManyTaxClasses {
        /// Tax classes in the file.
        count: usize,
    },
    /// A tax class id is empty or longer than `TAX_CLASS_ID_BYTES_MAX`.
    #[error("tax_classes[{index}].id: invalid id {id:?}")]
    InvalidTaxClassId {
        /// Position in `tax_classes`.
        index: usize,
        /// The id as given.
        id: String,
    },
    /// Two tax classes share an id.
    #[error("tax_classes: duplicate id {id:?}")]
    DuplicateTaxClass {
        /// The repeated id.
        id: String,
    },
    /// A rate above `TAX_RATE_BP_MAX` (100 %).
    #[error("tax class {id:?}: rate {rate_bp} bp above 10000 bp")]
    TaxRateOutOfRange {
        /// The tax class id.
        id: String,
        /// The rate as given, basis points.
        rate_bp: u32,
    },
    /// More items than `CATALOG_ITEMS_MAX`.
    #[error("items: {count} exceed the limit")]
    TooManyItems {
        /// Items in the file.
        count: usize,
    },
    /// A SKU that is empty, too long, or not `[A-Z0-9_-]`.
    #[error("items[{index}].sku: invalid SKU {sku:?}")]
    InvalidSku {
        /// Position in `items`.
        index: usize,
        /// The SKU as given.
        sku: String,
    },
    /// Two items share a SKU.
    #[error("items: duplicate SKU {sku:?}")]
    DuplicateSku {
        /// The repeated SKU.
        sku: String,
    },
    /// An item name that is empty after trimming, or too long.
    #[error("item {sku:?}: invalid name {name:?}")]
    InvalidName {
        /// The item's SKU.
        sku: String,
        /// The name as given.
        name: String,
    },
    /// Two items share a name (after trimming).
    #[error("item {sku:?}: name {name:?} already used by {other_sku:?}")]
    DuplicateName {
        /// The item's SKU.
        sku: String,
        /// The trimmed name.
        name: String,
        /// The SKU of the item that has the name first.
        other_sku: String,
    },
    /// A negative price.
    #[error("item {sku:?}: negative price {price_minor}")]
    NegativePrice {
        /// The item's SKU.
        sku: String,
        /// The price as given, minor units.
        price_minor: i64,
    },
    /// An item refers to a tax class the file does not define.
    #[error("item {sku:?}: unknown tax class {tax_class:?}")]
    UnknownTaxClass {
        /// The item's SKU.
        sku: String,
        /// The tax class id as given.
        tax_class: String,
    },
}
