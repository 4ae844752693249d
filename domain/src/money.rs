//! [`Money`]: an amount in integer minor units of one currency, with checked arithmetic.

pub use crate::currency::Currency;

/// Errors of money arithmetic and currency lookup.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The code is not an ISO 4217 code of the built-in table.
    #[error("unknown ISO 4217 currency code {0:?}")]
    UnknownCurrency(String),
    /// The two operands are in different currencies; no conversion is ever done.
    #[error("currency mismatch: {left} vs {right}")]
    CurrencyMismatch {
        /// Currency of the left operand.
        left: Currency,
        /// Currency of the right operand.
        right: Currency,
    },
    /// The result does not fit an `i64` count of minor units.
    #[error("amount overflows i64 minor units")]
    Overflow,
}

/// An amount of money: `minor` units (pence, cents, yen, fils) of `currency`.
///
/// Never a float. Arithmetic is checked: overflow and mixing currencies are errors.
/// Displays as `"<code> <amount>"` with the sign on the amount: `GBP 12.34`, `JPY 500`,
/// `KWD 1.234`, `GBP -0.05`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Money {
    /// Amount in minor units of `currency` (may be negative, e.g. a refund).
    pub minor: i64,
    /// The currency the amount is counted in.
    pub currency: Currency,
}

impl Money {
    /// `minor` units of `currency`.
    pub fn new(minor: i64, currency: Currency) -> Money {
        Money { minor, currency }
    }

    /// `self + other`.
    ///
    /// # Errors
    /// [`MoneyError::CurrencyMismatch`] if the currencies differ, [`MoneyError::Overflow`] if
    /// the sum does not fit `i64` minor units.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(minor, self.currency))
    }

    /// `self - other`.
    ///
    /// # Errors
    /// As [`Money::checked_add`].
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let minor = self
            .minor
            .checked_sub(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(minor, self.currency))
    }

    /// `self × factor` (e.g. unit price × quantity).
    ///
    /// # Errors
    /// [`MoneyError::Overflow`] if the product does not fit `i64` minor units.
    pub fn checked_mul(self, factor: i64) -> Result<Money, MoneyError> {
        let minor = self.minor.checked_mul(factor).ok_or(MoneyError::Overflow)?;
        Ok(Money::new(minor, self.currency))
    }

    /// `-self`.
    ///
    /// # Errors
    /// [`MoneyError::Overflow`] for `i64::MIN` minor units.
    pub fn checked_neg(self) -> Result<Money, MoneyError> {
        let minor = self.minor.checked_neg().ok_or(MoneyError::Overflow)?;
        Ok(Money::new(minor, self.currency))
    }

    /// The amount without the currency code, e.g. `"12.34"`, `"-0.05"`, `"500"`.
    pub fn amount_string(&self) -> String {
        format_minor_units(self.minor, self.currency.exponent())
    }

    fn same_currency(self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }
}

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.currency.code(), self.amount_string())
    }
}

/// Formats `minor` units with `exponent` decimal places: `(1234, 2)` → `"12.34"`,
/// `(-5, 2)` → `"-0.05"`, `(500, 0)` → `"500"`, `(1234, 3)` → `"1.234"`.
///
/// Total for every `i64` (including `i64::MIN`) and every exponent; works on the decimal
/// digits, so it never divides or overflows.
pub fn format_minor_units(minor: i64, exponent: u8) -> String {
    let digits = minor.unsigned_abs().to_string();
    let exponent = usize::from(exponent);
    let sign = if minor < 0 { "-" } else { "" };
    if exponent == 0 {
        return format!("{sign}{digits}");
    }
    // Left-pad with zeros so there is at least one digit before the point.
    let padded = format!("{digits:0>width$}", width = exponent + 1);
    let (major, fraction) = padded.split_at(padded.len() - exponent);
    format!("{sign}{major}.{fraction}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cur(code: &str) -> Currency {
        Currency::from_code(code).expect(code)
    }

    #[test]
    fn display_table() {
        let cases = [
            (1234, "GBP", "GBP 12.34"),
            (5, "GBP", "GBP 0.05"),
            (-5, "GBP", "GBP -0.05"),
            (-1234, "GBP", "GBP -12.34"),
            (0, "GBP", "GBP 0.00"),
            (500, "JPY", "JPY 500"),
            (-500, "JPY", "JPY -500"),
            (1234, "KWD", "KWD 1.234"),
            (7, "KWD", "KWD 0.007"),
            (i64::MIN, "GBP", "GBP -92233720368547758.08"),
            (i64::MAX, "JPY", "JPY 9223372036854775807"),
        ];
        for (minor, code, want) in cases {
            assert_eq!(Money::new(minor, cur(code)).to_string(), want);
        }
    }

    #[test]
    fn arithmetic_checks_currency_and_overflow() {
        let gbp = cur("GBP");
        let eur = cur("EUR");
        let a = Money::new(150, gbp);
        assert_eq!(a.checked_add(Money::new(50, gbp)), Ok(Money::new(200, gbp)));
        assert_eq!(
            a.checked_sub(Money::new(200, gbp)),
            Ok(Money::new(-50, gbp))
        );
        assert_eq!(a.checked_mul(3), Ok(Money::new(450, gbp)));
        assert_eq!(
            a.checked_add(Money::new(1, eur)),
            Err(MoneyError::CurrencyMismatch {
                left: gbp,
                right: eur
            })
        );
        assert_eq!(
            Money::new(i64::MAX, gbp).checked_add(Money::new(1, gbp)),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            Money::new(i64::MIN, gbp).checked_sub(Money::new(1, gbp)),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            Money::new(i64::MAX, gbp).checked_mul(2),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            Money::new(i64::MIN, gbp).checked_neg(),
            Err(MoneyError::Overflow)
        );
    }
}
