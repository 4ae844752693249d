//! Pro-rata allocation of an amount over weights by the largest-remainder method.

use crate::rounding::to_i64;

/// Splits `total_minor` over lines in proportion to `weights_minor`, so that the shares sum
/// to exactly `total_minor` and no share exceeds its weight.
///
/// Largest-remainder (Hamilton) method: each line first gets `floor(total × w / Σw)`; the
/// minor units left over go one each to the lines with the largest remainders
/// `total × w mod Σw`, ties to the lower index. Used to spread a sale-level discount over
/// its lines so per-line VAT can be computed on what was actually paid (VAT is due on the
/// consideration actually received: Value Added Tax Act 1994 s.19).
///
/// Returns `None` if a weight is negative, `Σw` overflows `i64`, `total_minor < 0` or
/// `total_minor > Σw`. With `Σw == 0` (and so `total_minor == 0`) all shares are 0.
pub fn allocate_largest_remainder(total_minor: i64, weights_minor: &[i64]) -> Option<Vec<i64>> {
    let weight_sum = checked_weight_sum(weights_minor)?;
    if total_minor < 0 || total_minor > weight_sum {
        return None;
    }
    if weight_sum == 0 {
        return Some(vec![0; weights_minor.len()]);
    }
    let total = i128::from(total_minor);
    let sum = i128::from(weight_sum);
    let mut shares = Vec::with_capacity(weights_minor.len());
    let mut remainders = Vec::with_capacity(weights_minor.len());
    for (index, weight) in weights_minor.iter().enumerate() {
        let product = total * i128::from(*weight);
        shares.push(to_i64(product / sum)?);
        remainders.push((product % sum, index));
    }
    let floor_sum: i64 = shares
        .iter()
        .try_fold(0_i64, |acc, s| acc.checked_add(*s))?;
    let leftover = usize::try_from(total_minor.checked_sub(floor_sum)?).ok()?;
    debug_assert!(leftover < weights_minor.len().max(1));
    // Largest remainder first; equal remainders: lower index first.
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (remainder, index) in remainders.iter().take(leftover) {
        // Σ remainders = leftover × Σw with each < Σw, so the top `leftover` are all > 0,
        // hence floor < weight and the +1 keeps share <= weight.
        debug_assert!(*remainder > 0);
        shares[*index] = shares[*index].checked_add(1)?;
    }
    debug_assert!(shares
        .iter()
        .zip(weights_minor)
        .all(|(s, w)| (0..=*w).contains(s)));
    Some(shares)
}

fn checked_weight_sum(weights_minor: &[i64]) -> Option<i64> {
    weights_minor.iter().try_fold(
        0_i64,
        |acc, w| {
            if *w < 0 {
                None
            } else {
                acc.checked_add(*w)
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocation_table() {
        let cases: &[(i64, &[i64], &[i64])] = &[
            (30, &[99, 99, 99], &[10, 10, 10]),
            (10, &[4, 4, 4], &[4, 3, 3]), // tie → lower index
            (2, &[1, 1, 1], &[1, 1, 0]),
            (100, &[50, 30, 20], &[50, 30, 20]),
            (7, &[0, 5, 5], &[0, 4, 3]),
            (0, &[0, 0], &[0, 0]),
            (0, &[], &[]),
            (5, &[3, 2], &[3, 2]),
            (1, &[1, 2], &[0, 1]), // remainders 1 vs 2 → larger wins
        ];
        for (total, weights, want) in cases {
            assert_eq!(
                allocate_largest_remainder(*total, weights).as_deref(),
                Some(*want),
                "{total} over {weights:?}"
            );
        }
    }

    #[test]
    fn refuses_invalid_input() {
        assert_eq!(allocate_largest_remainder(4, &[1, 2]), None);
        assert_eq!(allocate_largest_remainder(-1, &[1, 2]), None);
        assert_eq!(allocate_largest_remainder(0, &[1, -2]), None);
        assert_eq!(allocate_largest_remainder(0, &[i64::MAX, 1]), None);
        assert_eq!(allocate_largest_remainder(1, &[]), None);
    }
}
