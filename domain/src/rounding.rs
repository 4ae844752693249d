//! Integer division with explicit rounding rules, on `i128` so products of two `i64` fit.
//!
//! Every rounding in the crate goes through here, so the rule is stated once:
//! "half up" for money means half away from zero (HMRC VAT Notice 700 s.17.5: round to the
//! nearest penny, never always down; we round a half penny up), which for the non-negative amounts of a sale is
//! the same as rounding half towards +infinity.

/// `numerator / denominator` rounded to the nearest integer, halves away from zero.
///
/// Returns `None` when `denominator <= 0`. Never overflows: `|remainder| < denominator`.
pub fn div_round_half_away(numerator: i128, denominator: i128) -> Option<i128> {
    if denominator <= 0 {
        return None;
    }
    let quotient = numerator / denominator;
    let remainder_abs = (numerator % denominator).abs();
    debug_assert!(remainder_abs < denominator);
    // `2 * remainder >= denominator` without the multiplication.
    if remainder_abs >= denominator - remainder_abs {
        Some(quotient + numerator.signum())
    } else {
        Some(quotient)
    }
}

/// `numerator / denominator` rounded towards negative infinity (floor).
///
/// Returns `None` when `denominator <= 0`.
pub fn div_floor(numerator: i128, denominator: i128) -> Option<i128> {
    if denominator <= 0 {
        return None;
    }
    Some(numerator.div_euclid(denominator))
}

/// Narrows an `i128` known to fit into `i64`; `None` if it does not.
pub fn to_i64(value: i128) -> Option<i64> {
    i64::try_from(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_away_from_zero_table() {
        let cases: &[(i128, i128, i128)] = &[
            (5, 10, 1),
            (4, 10, 0),
            (15, 10, 2),
            (-5, 10, -1),
            (-4, 10, 0),
            (-15, 10, -2),
            (0, 7, 0),
            (20, 6, 3),
            (7, 2, 4),
            (-7, 2, -4),
        ];
        for &(n, d, want) in cases {
            assert_eq!(div_round_half_away(n, d), Some(want), "{n}/{d}");
        }
        assert_eq!(div_round_half_away(1, 0), None);
        assert_eq!(div_round_half_away(1, -3), None);
    }

    #[test]
    fn floor_table() {
        assert_eq!(div_floor(7, 2), Some(3));
        assert_eq!(div_floor(-7, 2), Some(-4));
        assert_eq!(div_floor(6, 3), Some(2));
        assert_eq!(div_floor(1, 0), None);
    }
}
