//! Limits on every input the domain accepts (TigerBeetle style: a limit on everything).
//!
//! Names carry their unit last: `_MAX` counts, `_BYTES_MAX` UTF-8 lengths in bytes,
//! `_BP_MAX` basis points (1 bp = 0.01 %, 10 000 bp = 100 %).

/// Most lines one sale may hold (count). More gives `SaleError::TooManyLines`.
pub const SALE_LINES_MAX: usize = 500;

/// Largest quantity of one sale line (units of the item). Quantities are `1..=` this.
pub const LINE_QUANTITY_MAX: i64 = 100_000;

/// Most tenders (payments) one sale may hold (count).
pub const SALE_TENDERS_MAX: usize = 16;

/// Largest percentage discount, in basis points (10 000 bp = 100 %).
pub const DISCOUNT_PERCENT_BP_MAX: u32 = 10_000;

/// Largest VAT rate a tax class may carry, in basis points (10 000 bp = 100 %).
pub const TAX_RATE_BP_MAX: u32 = 10_000;

/// Largest amount of one tender, minor units (10^10: £100 million; no till sees a cash
/// hand-over or card payment anywhere near it, and it keeps every sum far from overflow).
pub const TENDER_AMOUNT_MAX_MINOR: i64 = 10_000_000_000;

/// Longest tender reference (e.g. an acquirer authorisation id), in bytes.
pub const TENDER_REFERENCE_BYTES_MAX: usize = 128;

/// Most items one catalog may hold (count).
pub const CATALOG_ITEMS_MAX: usize = 100_000;

/// Most tax classes one catalog may hold (count).
pub const CATALOG_TAX_CLASSES_MAX: usize = 256;

/// Longest SKU, in bytes (SKUs are ASCII `[A-Z0-9_-]`).
pub const SKU_BYTES_MAX: usize = 64;

/// Longest item name after trimming, in bytes.
pub const ITEM_NAME_BYTES_MAX: usize = 256;

/// Longest tax class id, in bytes.
pub const TAX_CLASS_ID_BYTES_MAX: usize = 64;
