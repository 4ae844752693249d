//! Amounts for people to read in reports (Z-report, CLI): the currency's symbol where one
//! is well known and unambiguous, else its ISO 4217 code; the minor-unit exponent of the
//! currency (ISO 4217: 2 for GBP, 0 for JPY, 3 for KWD). Receipts keep their own layout
//! ([`posmesh_domain::render_receipt`]).

use posmesh_domain::{format_minor_units, Currency};

/// Symbols printed before the amount, by ISO 4217 code. Only symbols that name one
/// currency in a store's everyday use; every other code is printed as the code.
const SYMBOLS: [(&str, &str); 4] = [("EUR", "€"), ("GBP", "£"), ("JPY", "¥"), ("USD", "$")];

/// `minor` units of `currency` as text: `-£2.50` (sign before the symbol), `¥500`,
/// `CHF -2.50` (a code with a space, sign on the number) for currencies without a symbol
/// in the table.
pub fn money_text(minor: i64, currency: Currency) -> String {
    let number = format_minor_units(minor, currency.exponent());
    match SYMBOLS.iter().find(|(code, _)| *code == currency.code()) {
        Some((_, symbol)) => match number.strip_prefix('-') {
            Some(magnitude) => format!("-{symbol}{magnitude}"),
            None => format!("{symbol}{number}"),
        },
        None => format!("{} {number}", currency.code()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(minor: i64, code: &str) -> String {
        money_text(minor, Currency::from_code(code).expect(code))
    }

    #[test]
    fn sign_symbol_code_and_exponent() {
        assert_eq!(text(-250, "GBP"), "-£2.50");
        assert_eq!(text(250, "GBP"), "£2.50");
        assert_eq!(text(5, "EUR"), "€0.05");
        assert_eq!(text(-500, "JPY"), "-¥500", "JPY has no minor digits");
        assert_eq!(text(1234, "KWD"), "KWD 1.234", "3 minor digits, no symbol");
        assert_eq!(text(-250, "CHF"), "CHF -2.50");
        assert_eq!(text(0, "USD"), "$0.00");
        assert_eq!(text(i64::MIN, "GBP"), "-£92233720368547758.08");
    }
}
