//! [`SaleError`]: why a sale or refund request was refused.

use crate::money::Currency;

/// Why [`crate::price_sale`] or [`crate::price_refund`] refused a request.
///
/// Every variant names the offending input: [`SaleError::code`] is a stable snake_case code
/// for APIs and metrics, [`SaleError::field`] the JSON path of the input that caused it
/// (`"lines[2].quantity"`). A refused request changes nothing (the functions are pure).
/// Indices are 0-based positions in the request (for refunds: in the refund request).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SaleError {
    /// The request's currency is not the catalog's.
    #[error("sale currency {request} differs from catalog currency {catalog}")]
    CurrencyMismatch {
        /// Currency of the catalog.
        catalog: Currency,
        /// Currency of the request.
        request: Currency,
    },
    /// The sale (or refund) has no lines.
    #[error("no lines")]
    NoLines,
    /// More lines than [`crate::limits::SALE_LINES_MAX`].
    #[error("{count} lines, at most {max} allowed", max = crate::limits::SALE_LINES_MAX)]
    TooManyLines {
        /// Lines in the request.
        count: usize,
    },
    /// More tenders than [`crate::limits::SALE_TENDERS_MAX`].
    #[error("{count} tenders, at most {max} allowed", max = crate::limits::SALE_TENDERS_MAX)]
    TooManyTenders {
        /// Tenders in the request.
        count: usize,
    },
    /// The SKU is not in the catalog.
    #[error("line {line}: unknown SKU {sku:?}")]
    UnknownSku {
        /// Line index.
        line: usize,
        /// The SKU as given.
        sku: String,
    },
    /// Quantity outside `1..=LINE_QUANTITY_MAX` (refunds: not positive).
    #[error("line {line}: quantity {quantity} out of range")]
    QuantityOutOfRange {
        /// Line index.
        line: usize,
        /// The quantity as given.
        quantity: i64,
    },
    /// An amount that must be `>= 0` is negative (price override, amount discount).
    #[error("{field}: negative amount {amount_minor}")]
    NegativeAmount {
        /// JSON path of the amount.
        field: String,
        /// The amount, minor units.
        amount_minor: i64,
    },
    /// A percentage above [`crate::limits::DISCOUNT_PERCENT_BP_MAX`].
    #[error("{field}: percentage {percent_bp} bp above 10000 bp")]
    PercentOutOfRange {
        /// JSON path of the discount.
        field: String,
        /// The percentage, basis points.
        percent_bp: u32,
    },
    /// A discount larger than the amount it applies to.
    #[error("{field}: discount {discount_minor} exceeds amount {amount_minor}")]
    DiscountExceedsAmount {
        /// JSON path of the discount.
        field: String,
        /// The discount, minor units.
        discount_minor: i64,
        /// The amount it applies to, minor units.
        amount_minor: i64,
    },
    /// A product or sum does not fit `i64` minor units.
    #[error("{field}: amount overflows i64 minor units")]
    AmountOverflow {
        /// JSON path of the input whose amount overflowed.
        field: String,
    },
    /// A tender amount that is not in `1..=`[`crate::limits::TENDER_AMOUNT_MAX_MINOR`].
    #[error(
        "tender {tender}: amount {amount_minor} must be > 0 and at most 10000000000 minor units"
    )]
    InvalidTenderAmount {
        /// Tender index.
        tender: usize,
        /// The amount as given, minor units.
        amount_minor: i64,
    },
    /// A tender reference longer than [`crate::limits::TENDER_REFERENCE_BYTES_MAX`].
    #[error("tender {tender}: reference of {len_bytes} bytes is too long")]
    TenderReferenceTooLong {
        /// Tender index.
        tender: usize,
        /// Length of the reference, bytes.
        len_bytes: usize,
    },
    /// Non-cash tenders (card, QR wallet, gift card) exceed the amount due: only cash gives
    /// change.
    #[error("non-cash tenders {non_cash_minor} exceed amount due {due_minor}")]
    NonCashOverpayment {
        /// Amount due, minor units.
        due_minor: i64,
        /// Sum of non-cash tenders, minor units.
        non_cash_minor: i64,
    },
    /// The tenders do not cover the amount due.
    #[error("tenders {tendered_minor} short of amount due {due_minor}")]
    TendersShort {
        /// Amount due, minor units.
        due_minor: i64,
        /// Sum of all tenders, minor units.
        tendered_minor: i64,
    },
    /// A refund line names a line the original sale does not have.
    #[error("refund line {line}: original has no line {line_index}")]
    LineIndexOutOfRange {
        /// Refund request line index.
        line: usize,
        /// The original line index as given.
        line_index: u32,
    },
    /// Two refund lines name the same original line.
    #[error("refund line {line}: original line {line_index} already named")]
    DuplicateRefundLine {
        /// Refund request line index.
        line: usize,
        /// The original line index.
        line_index: u32,
    },
    /// Refunding more units than the original line sold.
    #[error(
        "refund line {line}: {quantity} more of original line {line_index} \
         ({already_refunded} of {original_quantity} refunded) exceeds the original"
    )]
    RefundExceedsOriginal {
        /// Refund request line index.
        line: usize,
        /// The original line index.
        line_index: u32,
        /// Units requested now.
        quantity: i64,
        /// Units refunded before.
        already_refunded: i64,
        /// Units sold.
        original_quantity: i64,
    },
    /// `already_refunded_qty` does not match the original (wrong length, or a count outside
    /// `0..=quantity`).
    #[error("refund history invalid at original line {line_index}")]
    RefundHistoryInvalid {
        /// The first original line index at fault (the length if the length is wrong).
        line_index: usize,
    },
    /// The original sale is not one `price_sale` could have produced (e.g. a corrupted
    /// record with a non-positive quantity).
    #[error("original sale line {line_index} is invalid")]
    InvalidOriginalSale {
        /// The original line index at fault.
        line_index: usize,
    },
}

impl SaleError {
    /// Stable snake_case code of the error, for APIs, logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            SaleError::CurrencyMismatch { .. } => "currency_mismatch",
            SaleError::NoLines => "no_lines",
            SaleError::TooManyLines { .. } => "too_many_lines",
            SaleError::TooManyTenders { .. } => "too_many_tenders",
            SaleError::UnknownSku { .. } => "unknown_sku",
            SaleError::QuantityOutOfRange { .. } => "quantity_out_of_range",
            SaleError::NegativeAmount { .. } => "negative_amount",
            SaleError::PercentOutOfRange { .. } => "percent_out_of_range",
            SaleError::DiscountExceedsAmount { .. } => "discount_exceeds_amount",
            SaleError::AmountOverflow { .. } => "amount_overflow",
            SaleError::InvalidTenderAmount { .. } => "invalid_tender_amount",
            SaleError::TenderReferenceTooLong { .. } => "tender_reference_too_long",
            SaleError::NonCashOverpayment { .. } => "non_cash_overpayment",
            SaleError::TendersShort { .. } => "tenders_short",
            SaleError::LineIndexOutOfRange { .. } => "line_index_out_of_range",
            SaleError::DuplicateRefundLine { .. } => "duplicate_refund_line",
            SaleError::RefundExceedsOriginal { .. } => "refund_exceeds_original",
            SaleError::RefundHistoryInvalid { .. } => "refund_history_invalid",
            SaleError::InvalidOriginalSale { .. } => "invalid_original_sale",
        }
    }

    /// JSON path of the offending input, e.g. `"lines[2].quantity"`, `"tenders"`,
    /// `"discount"`, `"currency"`. For refunds, paths are into the refund request, except
    /// `"already_refunded_qty[i]"` and `"original.lines[i]"`.
    pub fn field(&self) -> String {
        match self {
            SaleError::CurrencyMismatch { .. } => "currency".to_owned(),
            SaleError::NoLines | SaleError::TooManyLines { .. } => "lines".to_owned(),
            SaleError::TooManyTenders { .. }
            | SaleError::NonCashOverpayment { .. }
            | SaleError::TendersShort { .. } => "tenders".to_owned(),
            SaleError::UnknownSku { line, .. } => format!("lines[{line}].sku"),
            SaleError::QuantityOutOfRange { line, .. }
            | SaleError::RefundExceedsOriginal { line, .. } => format!("lines[{line}].quantity"),
            SaleError::NegativeAmount { field, .. }
            | SaleError::PercentOutOfRange { field, .. }
            | SaleError::DiscountExceedsAmount { field, .. }
            | SaleError::AmountOverflow { field } => field.clone(),
            SaleError::InvalidTenderAmount { tender, .. } => {
                format!("tenders[{tender}].amount_minor")
            }
            SaleError::TenderReferenceTooLong { tender, .. } => {
                format!("tenders[{tender}].reference")
            }
            SaleError::LineIndexOutOfRange { line, .. }
            | SaleError::DuplicateRefundLine { line, .. } => format!("lines[{line}].line_index"),
            SaleError::RefundHistoryInvalid { line_index } => {
                format!("already_refunded_qty[{line_index}]")
            }
            SaleError::InvalidOriginalSale { line_index } => {
                format!("original.lines[{line_index}]")
            }
        }
    }
}
