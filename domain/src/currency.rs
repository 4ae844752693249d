//! [`Currency`]: an ISO 4217 currency and its minor-unit exponent.

use crate::money::MoneyError;

/// ISO 4217 alphabetic codes with their minor-unit exponent (digits after the decimal point),
/// from the ISO 4217 list maintained by SIX Group ("list one", column "Minor unit").
/// Sorted by code so lookups can binary-search.
const ISO_4217_TABLE: &[(&str, u8)] = &[
    ("AED", 2),
    ("AUD", 2),
    ("BGN", 2),
    ("BHD", 3),
    ("BIF", 0),
    ("BRL", 2),
    ("CAD", 2),
    ("CHF", 2),
    ("CLP", 0),
    ("CNY", 2),
    ("CZK", 2),
    ("DJF", 0),
    ("DKK", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("GNF", 0),
    ("HKD", 2),
    ("HUF", 2),
    ("INR", 2),
    ("IQD", 3),
    ("ISK", 0),
    ("JOD", 3),
    ("JPY", 0),
    ("KMF", 0),
    ("KRW", 0),
    ("KWD", 3),
    ("LYD", 3),
    ("MXN", 2),
    ("NOK", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PLN", 2),
    ("PYG", 0),
    ("RON", 2),
    ("RWF", 0),
    ("SEK", 2),
    ("SGD", 2),
    ("TND", 3),
    ("TRY", 2),
    ("UGX", 0),
    ("USD", 2),
    ("VND", 0),
    ("VUV", 0),
    ("XAF", 0),
    ("XOF", 0),
    ("XPF", 0),
    ("ZAR", 2),
];

/// An ISO 4217 currency: its three-letter alphabetic code and its minor-unit exponent
/// (2 for GBP: 1 GBP = 100 pence; 0 for JPY; 3 for KWD: 1 KWD = 1000 fils).
///
/// Only codes of the built-in ISO 4217 table can be constructed, so a `Currency` is always
/// valid. Serialises as its code string (`"GBP"`); deserialising validates the code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: &'static str,
    exponent: u8,
}

impl Currency {
    /// Looks up an upper-case ISO 4217 alphabetic code (`"GBP"`).
    ///
    /// # Errors
    /// [`MoneyError::UnknownCurrency`] if the code is not in the table (codes are
    /// case-sensitive: `"gbp"` is refused).
    pub fn from_code(code: &str) -> Result<Currency, MoneyError> {
        match ISO_4217_TABLE.binary_search_by(|(known, _)| (*known).cmp(code)) {
            Ok(index) => {
                let (code, exponent) = ISO_4217_TABLE[index];
                debug_assert!(code.len() == 3 && exponent <= 3);
                Ok(Currency { code, exponent })
            }
            Err(_) => Err(MoneyError::UnknownCurrency(code.to_owned())),
        }
    }

    /// The three-letter ISO 4217 code, e.g. `"GBP"`.
    pub fn code(&self) -> &str {
        self.code
    }

    /// Digits after the decimal point: minor units per major unit is `10^exponent`.
    pub fn exponent(&self) -> u8 {
        self.exponent
    }

    /// Minor units in one major unit (`10^exponent`: 100 for GBP, 1 for JPY, 1000 for KWD).
    pub fn minor_per_major(&self) -> i64 {
        10_i64.pow(u32::from(self.exponent))
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;

    fn try_from(code: String) -> Result<Currency, MoneyError> {
        Currency::from_code(&code)
    }
}

impl From<Currency> for String {
    fn from(currency: Currency) -> String {
        currency.code.to_owned()
    }
}

impl serde::Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code)
    }
}

impl<'de> serde::Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Currency, D::Error> {
        let code = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Currency::from_code(&code).map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_unique_and_well_formed() {
        for pair in ISO_4217_TABLE.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{} before {}", pair[0].0, pair[1].0);
        }
        for (code, exponent) in ISO_4217_TABLE {
            assert!(code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()));
            assert!(*exponent <= 3);
        }
    }

    #[test]
    fn exponents_of_required_codes() {
        let cases = [
            ("GBP", 2),
            ("EUR", 2),
            ("USD", 2),
            ("CHF", 2),
            ("SEK", 2),
            ("NOK", 2),
            ("DKK", 2),
            ("PLN", 2),
            ("CZK", 2),
            ("JPY", 0),
            ("KRW", 0),
            ("KWD", 3),
            ("BHD", 3),
            ("JOD", 3),
        ];
        for (code, exponent) in cases {
            let currency = Currency::from_code(code).expect(code);
            assert_eq!(currency.code(), code);
            assert_eq!(currency.exponent(), exponent, "{code}");
        }
    }

    #[test]
    fn unknown_codes_are_refused() {
        for code in ["", "gbp", "GB", "GBPX", "XXX", "ZZZ"] {
            assert_eq!(
                Currency::from_code(code),
                Err(MoneyError::UnknownCurrency(code.to_owned()))
            );
        }
    }

    #[test]
    fn serde_uses_the_code_string_and_validates() {
        let gbp = Currency::from_code("GBP").expect("GBP");
        assert_eq!(serde_json::to_string(&gbp).expect("ser"), "\"GBP\"");
        let back: Currency = serde_json::from_str("\"GBP\"").expect("de");
        assert_eq!(back, gbp);
        assert!(serde_json::from_str::<Currency>("\"QQQ\"").is_err());
        assert!(serde_json::from_str::<Currency>("2").is_err());
    }
}
