//! EMV merchant-presented QR payloads (EMVCo "QR Code Specification for Payment Systems:
//! Merchant-Presented Mode", v1.1): the text a till shows as a QR code for a wallet app to
//! pay a given amount. Sans-IO: building and checking strings only.
//!
//! The payload is a sequence of TLV data objects — ID (2 digits), length (2 digits), value
//! — in ascending ID order, ending with the CRC object `63` whose value is the
//! CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF, no reflection, no final
//! XOR) of the whole payload up to and including `6304`, as 4 upper-case hex digits.
//!
//! Objects written: `00` payload format indicator `01`; `01` point of initiation `12`
//! (dynamic: one amount, one use); `26` merchant account information (template: `00`
//! globally unique id of the wallet scheme, `01` merchant id); `52` merchant category
//! code; `53` transaction currency (ISO 4217 numeric); `54` transaction amount (major
//! units with a decimal point, e.g. `8.50`); `58` country code; `59` merchant name; `60`
//! merchant city; `62` additional data (template: `05` reference label = the payment
//! reference); `63` CRC.

use crate::currency_numeric;
use posmesh_domain::Money;
use std::collections::BTreeMap;

/// Longest value of one data object (the length field has 2 digits).
pub const VALUE_LEN_MAX: usize = 99;

/// What the payload is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QrRequest {
    /// Wallet scheme's globally unique id (tag 26, sub-tag 00), e.g. a reverse domain name.
    pub scheme_id: String,
    /// Merchant id at the scheme (tag 26, sub-tag 01).
    pub merchant_id: String,
    /// ISO 18245 merchant category code, 4 digits (tag 52), e.g. `5812` eating places.
    pub merchant_category_code: String,
    /// Amount to pay (tags 53, 54), `> 0`.
    pub amount: Money,
    /// ISO 3166-1 alpha-2 country code (tag 58).
    pub country: String,
    /// Merchant name, at most 25 characters (tag 59).
    pub merchant_name: String,
    /// Merchant city, at most 15 characters (tag 60).
    pub merchant_city: String,
    /// Reference label (tag 62, sub-tag 05): what the wallet's confirmation names.
    pub reference: String,
}

/// Why a payload could not be built or read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QrError {
    /// A value is empty, too long or not printable ASCII.
    #[error("QR field {tag}: {why}")]
    Field {
        /// The data object id.
        tag: &'static str,
        /// What is wrong.
        why: String,
    },
    /// The amount is not positive, or its currency has no ISO 4217 numeric code.
    #[error("QR amount {0} is not payable")]
    Amount(Money),
    /// The payload's TLV structure is broken.
    #[error("QR payload is malformed at byte {at}")]
    Malformed {
        /// Offset of the first bad object.
        at: usize,
    },
    /// The CRC does not match.
    #[error("QR payload CRC is {found}, the content's is {computed}")]
    Crc {
        /// CRC in the payload.
        found: String,
        /// CRC computed.
        computed: String,
    },
}

/// CRC-16/CCITT-FALSE of `data` (check value of `"123456789"`: 0x29B1).
pub fn crc16_ccitt_false(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for byte in data {
        crc ^= u16::from(*byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

fn object(tag: &'static str, value: &str, max: usize) -> Result<String, QrError> {
    let bad = |why: String| QrError::Field { tag, why };
    if value.is_empty() || value.len() > max.min(VALUE_LEN_MAX) {
        return Err(bad(format!(
            "must be 1 to {} characters",
            max.min(VALUE_LEN_MAX)
        )));
    }
    if !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(bad("must be printable ASCII".into()));
    }
    Ok(format!("{tag}{:02}{value}", value.len()))
}

/// The amount as tag 54 writes it: major units, a decimal point only when the currency
/// has minor units (`8.50`, `1200` for JPY).
fn amount_text(amount: Money) -> String {
    let exponent = amount.currency.exponent();
    if exponent == 0 {
        return amount.minor.to_string();
    }
    let scale = 10_i64.pow(u32::from(exponent));
    format!(
        "{}.{:0width$}",
        amount.minor / scale,
        amount.minor % scale,
        width = usize::from(exponent)
    )
}

/// Builds the payload for `request`.
///
/// # Errors
/// [`QrError::Amount`] for a non-positive amount or a currency without a numeric code;
/// [`QrError::Field`] for a value out of its length or alphabet.
pub fn build_payload(request: &QrRequest) -> Result<String, QrError> {
    if request.amount.minor <= 0 {
        return Err(QrError::Amount(request.amount));
    }
    let currency = currency_numeric::numeric_code(request.amount.currency)
        .ok_or(QrError::Amount(request.amount))?;
    if request.merchant_category_code.len() != 4
        || !request
            .merchant_category_code
            .bytes()
            .all(|b| b.is_ascii_digit())
    {
        return Err(QrError::Field {
            tag: "52",
            why: "must be 4 digits".into(),
        });
    }
    if request.country.len() != 2 || !request.country.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(QrError::Field {
            tag: "58",
            why: "must be 2 upper-case letters".into(),
        });
    }
    let account = object("00", &request.scheme_id, 32)? + &object("01", &request.merchant_id, 32)?;
    let additional = object("05", &request.reference, 25)?;
    let mut payload = String::new();
    payload += &object("00", "01", 2)?;
    payload += &object("01", "12", 2)?;
    payload += &object("26", &account, 99)?;
    payload += &object("52", &request.merchant_category_code, 4)?;
    payload += &object("53", currency, 3)?;
    payload += &object("54", &amount_text(request.amount), 13)?;
    payload += &object("58", &request.country, 2)?;
    payload += &object("59", &request.merchant_name, 25)?;
    payload += &object("60", &request.merchant_city, 15)?;
    payload += &object("62", &additional, 99)?;
    payload += "6304";
    let crc = crc16_ccitt_false(payload.as_bytes());
    payload += &format!("{crc:04X}");
    Ok(payload)
}

/// Checks the CRC and splits a payload into its top-level data objects (tag → value).
///
/// # Errors
/// [`QrError::Malformed`] for a broken TLV structure or a missing CRC last;
/// [`QrError::Crc`] when the CRC does not match.
pub fn parse_payload(payload: &str) -> Result<BTreeMap<String, String>, QrError> {
    let bytes = payload.as_bytes();
    let mut objects = BTreeMap::new();
    let mut at = 0;
    while at < bytes.len() {
        let header = payload.get(at..at + 4).ok_or(QrError::Malformed { at })?;
        let (tag, len) = header.split_at(2);
        let len: usize = len.parse().map_err(|_| QrError::Malformed { at })?;
        if !tag.bytes().all(|b| b.is_ascii_digit()) {
            return Err(QrError::Malformed { at });
        }
        let value = payload
            .get(at + 4..at + 4 + len)
            .ok_or(QrError::Malformed { at })?;
        if tag == "63" {
            if at + 4 + len != bytes.len() || len != 4 {
                return Err(QrError::Malformed { at });
            }
            let computed = format!("{:04X}", crc16_ccitt_false(&bytes[..at + 4]));
            if !value.eq_ignore_ascii_case(&computed) {
                return Err(QrError::Crc {
                    found: value.to_owned(),
                    computed,
                });
            }
            objects.insert(tag.to_owned(), value.to_owned());
            return Ok(objects);
        }
        objects.insert(tag.to_owned(), value.to_owned());
        at += 4 + len;
    }
    Err(QrError::Malformed { at })
}

#[cfg(test)]
mod tests {
    use super::*;
    use posmesh_domain::Currency;

    fn request(minor: i64) -> QrRequest {
        QrRequest {
            scheme_id: "com.posmesh.wallet".into(),
            merchant_id: "POSMESH-STORE".into(),
            merchant_category_code: "5812".into(),
            amount: Money::new(minor, Currency::from_code("GBP").expect("GBP")),
            country: "GB".into(),
            merchant_name: "Bakery".into(),
            merchant_city: "Edinburgh".into(),
            reference: "till-1:k1#0".into(),
        }
    }

    #[test]
    fn crc_matches_the_catalogued_check_value() {
        // CRC-16/CCITT-FALSE ("CRC-16/IBM-3740" in the CRC catalogue): check = 0x29B1.
        assert_eq!(crc16_ccitt_false(b"123456789"), 0x29B1);
    }

    #[test]
    fn payload_carries_amount_currency_and_a_valid_crc() {
        let payload = build_payload(&request(850)).expect("builds");
        assert!(payload.starts_with("000201010212"), "{payload}");
        let objects = parse_payload(&payload).expect("parses");
        assert_eq!(objects["53"], "826");
        assert_eq!(objects["54"], "8.50");
        assert_eq!(objects["58"], "GB");
        assert!(objects["62"].contains("till-1:k1#0"));
        assert_eq!(objects["63"].len(), 4);
    }

    #[test]
    fn a_changed_character_fails_the_crc() {
        let payload = build_payload(&request(850)).expect("builds");
        let tampered = payload.replace("8.50", "9.50");
        assert!(matches!(parse_payload(&tampered), Err(QrError::Crc { .. })));
        assert!(matches!(
            parse_payload(&payload[..payload.len() - 2]),
            Err(QrError::Malformed { .. })
        ));
    }

    #[test]
    fn bad_requests_are_refused() {
        assert!(matches!(
            build_payload(&request(0)),
            Err(QrError::Amount(_))
        ));
        let mut long = request(100);
        long.merchant_name = "x".repeat(26);
        assert!(matches!(
            build_payload(&long),
            Err(QrError::Field { tag: "59", .. })
        ));
        let mut mcc = request(100);
        mcc.merchant_category_code = "58a2".into();
        assert!(build_payload(&mcc).is_err());
    }
}
