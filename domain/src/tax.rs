//! VAT contained in tax-inclusive prices, and [`TaxClass`] (the rates of one kind of item).

pub use crate::consumption::Consumption;
use crate::rounding::{div_round_half_away, to_i64};

/// Basis points in 100 % (1 bp = 0.01 %).
const BP_PER_WHOLE: i128 = 10_000;

/// The VAT contained in a VAT-inclusive amount, in the same minor units.
///
/// Rule: `round(gross_minor × rate_bp / (10 000 + rate_bp))`, to the nearest minor unit,
/// halves away from zero. This is the "VAT fraction" of HMRC VAT Notice 700 s.17
/// (`rate / (100 + rate)`, i.e. 1/6 at 20 %), applied per line. Notice 700 para 17.5 lets
/// a retailer calculating VAT per line round each calculation to the nearest penny, up or
/// down, but not always down (see also HMRC manual VATREC12010).
///
/// `rate_bp` is in basis points (2000 = 20 %). Computed in `i128`, so it never overflows or
/// panics, for any input: `|result| <= |gross_minor|`, and it is monotone non-decreasing in
/// `gross_minor`. Negative amounts (refunds) are symmetric.
pub fn tax_included_minor(gross_minor: i64, rate_bp: u32) -> i64 {
    let rate = i128::from(rate_bp);
    let denominator = BP_PER_WHOLE + rate;
    let numerator = i128::from(gross_minor) * rate;
    // denominator >= 10 000 > 0, so the division is defined.
    let tax = div_round_half_away(numerator, denominator).unwrap_or(0);
    debug_assert!(tax.abs() <= i128::from(gross_minor).abs());
    // |tax| <= |gross_minor|, so it fits i64; the fallback is unreachable.
    to_i64(tax).unwrap_or(gross_minor)
}

/// A tax class of the catalog: the VAT rates of a kind of item, in basis points, for each
/// [`Consumption`]. UK examples (HMRC VAT Notice 709/1): `cold_food` = 0 bp take-away,
/// 2000 bp eat-in; `hot_drink` = 2000 bp both ways (hot food and drink are always
/// standard-rated).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxClass {
    /// Identifier items refer to (`"cold_food"`); unique within a catalog.
    pub id: String,
    /// Rate when taken away, in basis points (0..=10 000).
    pub take_away_rate_bp: u32,
    /// Rate when consumed on the premises, in basis points (0..=10 000).
    pub eat_in_rate_bp: u32,
}

impl TaxClass {
    /// The VAT rate in basis points that applies for `consumption`.
    pub fn rate_bp(&self, consumption: Consumption) -> u32 {
        match consumption {
            Consumption::TakeAway => self.take_away_rate_bp,
            Consumption::EatIn => self.eat_in_rate_bp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vat_fraction_table() {
        // (gross pence, rate bp, VAT pence), worked by hand with the VAT fraction.
        let cases = [
            (120, 2000, 20),   // £1.20 at 20 %: 1.20 / 6 = 0.20
            (100, 2000, 17),   // £1.00 / 6 = 0.1666.. → 0.17
            (99, 2000, 17),    // 0.165 → half up → 0.17
            (297, 2000, 50),   // 2.97 / 6 = 0.495 → 0.50
            (267, 2000, 45),   // 2.67 / 6 = 0.445 → 0.45
            (105, 500, 5),     // 5 %: 1.05 × 5/105 = 0.05
            (21, 500, 1),      // 0.21 × 5/105 = 0.01
            (250, 0, 0),       // zero-rated
            (0, 2000, 0),      // nothing
            (-120, 2000, -20), // refunds are symmetric
            (3, 2000, 1),      // 0.5p → half away from zero → 1p
            (-3, 2000, -1),
            (2, 2000, 0),      // 0.33p → 0
            (100, 10_000, 50), // 100 %: half of gross
        ];
        for (gross, rate, want) in cases {
            assert_eq!(
                tax_included_minor(gross, rate),
                want,
                "{gross} at {rate} bp"
            );
        }
    }

    #[test]
    fn extremes_do_not_overflow() {
        assert_eq!(
            tax_included_minor(i64::MAX, 10_000),
            4_611_686_018_427_387_904
        );
        assert_eq!(
            tax_included_minor(i64::MIN, 10_000),
            -4_611_686_018_427_387_904
        );
        let huge_rate = tax_included_minor(i64::MAX, u32::MAX);
        assert!(0 < huge_rate && huge_rate < i64::MAX);
        let huge_rate = tax_included_minor(i64::MIN, u32::MAX);
        assert!(i64::MIN < huge_rate && huge_rate < 0);
        assert_eq!(tax_included_minor(i64::MAX, 0), 0);
    }

    #[test]
    fn rate_depends_on_consumption() {
        let cold = TaxClass {
            id: "cold_food".into(),
            take_away_rate_bp: 0,
            eat_in_rate_bp: 2000,
        };
        assert_eq!(cold.rate_bp(Consumption::TakeAway), 0);
        assert_eq!(cold.rate_bp(Consumption::EatIn), 2000);
    }
}
