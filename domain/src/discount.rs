//! [`Discount`]: an amount or percentage taken off a line or a whole sale.

use crate::error::SaleError;
use crate::limits::DISCOUNT_PERCENT_BP_MAX;
use crate::rounding::{div_round_half_away, to_i64};

/// A discount, on one line or on the whole sale. Serialises as `{"amount_minor": 50}` or
/// `{"percent_bp": 1000}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Discount {
    /// A fixed amount off, in minor units (`>= 0`, at most the amount discounted).
    AmountMinor(i64),
    /// A percentage off, in basis points (`0..=10 000`; 1000 = 10 %).
    PercentBp(u32),
}

impl Discount {
    /// The discount in minor units when applied to `base_minor` (`>= 0`).
    ///
    /// A percentage is `round(base × bp / 10 000)` to the nearest minor unit, halves up
    /// (away from zero): the house rule, chosen to match the VAT rounding of
    /// [`crate::tax_included_minor`]. `field` is the JSON path of the discount, used in errors.
    ///
    /// # Errors
    /// [`SaleError::NegativeAmount`] for a negative amount, [`SaleError::PercentOutOfRange`]
    /// above 10 000 bp, [`SaleError::DiscountExceedsAmount`] if the amount exceeds `base_minor`.
    pub fn resolve_minor(self, base_minor: i64, field: &str) -> Result<i64, SaleError> {
        debug_assert!(base_minor >= 0);
        let discount_minor = match self {
            Discount::AmountMinor(amount_minor) if amount_minor < 0 => {
                return Err(SaleError::NegativeAmount {
                    field: field.to_owned(),
                    amount_minor,
                });
            }
            Discount::AmountMinor(amount_minor) => amount_minor,
            Discount::PercentBp(percent_bp) if percent_bp > DISCOUNT_PERCENT_BP_MAX => {
                return Err(SaleError::PercentOutOfRange {
                    field: field.to_owned(),
                    percent_bp,
                });
            }
            Discount::PercentBp(percent_bp) => percent_of(base_minor, percent_bp),
        };
        if discount_minor > base_minor {
            return Err(SaleError::DiscountExceedsAmount {
                field: field.to_owned(),
                discount_minor,
                amount_minor: base_minor,
            });
        }
        debug_assert!((0..=base_minor).contains(&discount_minor));
        Ok(discount_minor)
    }
}

/// `round(base_minor × percent_bp / 10 000)`, halves away from zero; `percent_bp <= 10 000`
/// so the result lies between 0 and `base_minor`.
fn percent_of(base_minor: i64, percent_bp: u32) -> i64 {
    let product = i128::from(base_minor) * i128::from(percent_bp);
    let rounded = div_round_half_away(product, 10_000).unwrap_or(0);
    to_i64(rounded).unwrap_or(base_minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_table() {
        let cases = [
            (Discount::PercentBp(1000), 297, 30), // 29.7 → 30
            (Discount::PercentBp(1000), 295, 30), // 29.5 → 30 (half up)
            (Discount::PercentBp(1000), 294, 29),
            (Discount::PercentBp(10_000), 297, 297),
            (Discount::PercentBp(0), 297, 0),
            (Discount::AmountMinor(50), 297, 50),
            (Discount::AmountMinor(297), 297, 297),
            (Discount::PercentBp(10_000), i64::MAX, i64::MAX),
        ];
        for (discount, base, want) in cases {
            assert_eq!(
                discount.resolve_minor(base, "discount"),
                Ok(want),
                "{discount:?}"
            );
        }
    }

    #[test]
    fn resolve_errors() {
        let err = |d: Discount, base| d.resolve_minor(base, "discount").map_err(|e| e.code());
        assert_eq!(err(Discount::AmountMinor(-1), 10), Err("negative_amount"));
        assert_eq!(
            err(Discount::AmountMinor(11), 10),
            Err("discount_exceeds_amount")
        );
        assert_eq!(
            err(Discount::PercentBp(10_001), 10),
            Err("percent_out_of_range")
        );
    }

    #[test]
    fn serde_shape() {
        let json = serde_json::to_string(&Discount::PercentBp(1000)).expect("ser");
        assert_eq!(json, r#"{"percent_bp":1000}"#);
        let back: Discount = serde_json::from_str(r#"{"amount_minor":50}"#).expect("de");
        assert_eq!(back, Discount::AmountMinor(50));
    }
}
