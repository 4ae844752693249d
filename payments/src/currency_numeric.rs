//! ISO 4217 numeric codes (ISO 8583 field 49 is `n3`, the numeric code) for every currency
//! of the domain's ISO 4217 table, from the ISO 4217 list maintained by SIX Group.

use posmesh_domain::Currency;

const NUMERIC: &[(&str, &str)] = &[
    ("AED", "784"),
    ("AUD", "036"),
    ("BGN", "975"),
    ("BHD", "048"),
    ("BIF", "108"),
    ("BRL", "986"),
    ("CAD", "124"),
    ("CHF", "756"),
    ("CLP", "152"),
    ("CNY", "156"),
    ("CZK", "203"),
    ("DJF", "262"),
    ("DKK", "208"),
    ("EUR", "978"),
    ("GBP", "826"),
    ("GNF", "324"),
    ("HKD", "344"),
    ("HUF", "348"),
    ("INR", "356"),
    ("IQD", "368"),
    ("ISK", "352"),
    ("JOD", "400"),
    ("JPY", "392"),
    ("KMF", "174"),
    ("KRW", "410"),
    ("KWD", "414"),
    ("LYD", "434"),
    ("MXN", "484"),
    ("NOK", "578"),
    ("NZD", "554"),
    ("OMR", "512"),
    ("PLN", "985"),
    ("PYG", "600"),
    ("RON", "946"),
    ("RWF", "646"),
    ("SEK", "752"),
    ("SGD", "702"),
    ("TND", "788"),
    ("TRY", "949"),
    ("UGX", "800"),
    ("USD", "840"),
    ("VND", "704"),
    ("VUV", "548"),
    ("XAF", "950"),
    ("XOF", "952"),
    ("XPF", "953"),
    ("ZAR", "710"),
];

/// The 3-digit ISO 4217 numeric code of `currency` (`"826"` for GBP).
pub fn numeric_code(currency: Currency) -> Option<&'static str> {
    NUMERIC
        .iter()
        .find(|(code, _)| *code == currency.code())
        .map(|(_, numeric)| *numeric)
}

/// The currency with numeric code `numeric` (`"978"` → EUR).
pub fn from_numeric(numeric: &str) -> Option<Currency> {
    NUMERIC
        .iter()
        .find(|(_, n)| *n == numeric)
        .and_then(|(code, _)| Currency::from_code(code).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_is_a_domain_currency_with_a_unique_numeric_code() {
        let mut seen = std::collections::HashSet::new();
        for (code, numeric) in NUMERIC {
            let currency = Currency::from_code(code).expect(code);
            assert_eq!(numeric.len(), 3);
            assert!(seen.insert(*numeric), "{numeric} twice");
            assert_eq!(from_numeric(numeric), Some(currency));
            assert_eq!(numeric_code(currency), Some(*numeric));
        }
        assert_eq!(NUMERIC.len(), 47, "the domain's table has 47 currencies");
        assert_eq!(
            numeric_code(Currency::from_code("GBP").expect("GBP")),
            Some("826")
        );
        assert_eq!(from_numeric("999"), None);
    }
}
