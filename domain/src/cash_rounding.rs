//! Cash rounding: rounding a cash total to the smallest coin in circulation.

use crate::rounding::{div_round_half_away, to_i64};

/// `total_minor` rounded to the nearest multiple of `increment_minor`, halves up (away
/// from zero), e.g. CHF with increment 5: 12.32 → 12.30, 12.33 → 12.35; with increment 100,
/// 12.50 → 13.00 (an exact half rounds up).
///
/// Source: Swiss practice of rounding cash totals to 5 Rappen, the smallest coin in
/// circulation ("Rappenrundung"); the same scheme with other steps serves e.g. Sweden (whole
/// kronor) and Denmark (50 øre). The difference is not a supply, so no VAT is computed on it
/// (house rule). Applies only when the sale is (partly) paid in cash.
///
/// Returns `None` if `increment_minor <= 0` or the result does not fit `i64`.
pub fn cash_rounded_minor(total_minor: i64, increment_minor: i64) -> Option<i64> {
    let increment = i128::from(increment_minor);
    let steps = div_round_half_away(i128::from(total_minor), increment)?;
    let rounded = to_i64(steps.checked_mul(increment)?)?;
    debug_assert!(i128::from(rounded).abs_diff(i128::from(total_minor)) * 2 <= increment as u128);
    Some(rounded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chf_five_rappen_table() {
        let cases = [
            (1230, 1230),
            (1231, 1230),
            (1232, 1230),
            (1233, 1235),
            (1234, 1235),
            (1236, 1235),
            (1237, 1235),
            (1238, 1240),
            (0, 0),
            (2, 0),
            (3, 5),
        ];
        for (total, want) in cases {
            assert_eq!(cash_rounded_minor(total, 5), Some(want), "{total}");
        }
    }

    #[test]
    fn halves_round_up() {
        assert_eq!(cash_rounded_minor(1250, 100), Some(1300));
        assert_eq!(cash_rounded_minor(1249, 100), Some(1200));
        assert_eq!(cash_rounded_minor(25, 50), Some(50));
    }

    #[test]
    fn refuses_bad_increment_and_overflow() {
        assert_eq!(cash_rounded_minor(100, 0), None);
        assert_eq!(cash_rounded_minor(100, -5), None);
        assert_eq!(cash_rounded_minor(i64::MAX, 10), None);
    }
}
