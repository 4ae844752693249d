//! How a certificate serial is written in the store's log: the canonical form, and the
//! normalisation of what an admin types into it.
//!
//! The canonical form is the one the chain CA prints (`posmesh ca issue`) and the mesh reads
//! from a presented certificate (`posmesh_mesh::tls::serial_hex_of_der`): lowercase hex of
//! the integer's minimal big-endian bytes, at most 20 octets (RFC 5280 §4.1.2.2), `00` for
//! zero. Revocations are looked up by exact string, so a serial committed in another form
//! would never match a certificate: the state machine refuses it
//! ([`crate::StoreState`], `RevokeCertificate`) and every log keeps one spelling.
//!
//! What an admin types is normalised at the edge ([`normalise`]: the API and `posmesh store
//! revoke-certificate`): hex case is folded (`openssl x509 -serial` prints `0C`), and a zero
//! serial is refused there — RFC 5280 serials are positive and the chain CA never issues
//! zero. The state machine still applies `00`, because logs of older versions may hold it
//! (their API took it) and replaying a log must give the same state.

/// Longest serial, hex digits (RFC 5280 §4.1.2.2: at most 20 octets).
pub const SERIAL_HEX_MAX: usize = 40;

/// Checks that `serial` is canonical: 2 to [`SERIAL_HEX_MAX`] lowercase hex digits, whole
/// bytes, no leading zero byte (except `00` itself).
///
/// # Errors
/// The rule it breaks, in words.
pub fn check_canonical(serial: &str) -> Result<(), String> {
    if serial.is_empty() {
        return Err(
            "empty: give the certificate's serial in hex, as `posmesh ca issue` prints it"
                .to_owned(),
        );
    }
    if serial.len() > SERIAL_HEX_MAX {
        return Err(format!(
            "{} hex digits: a serial is at most {SERIAL_HEX_MAX} (20 octets, RFC 5280 §4.1.2.2)",
            serial.len()
        ));
    }
    if let Some(bad) = serial.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!(
            "{bad:?} is not a hex digit: a serial is hex, as `posmesh ca issue` prints it \
             (no `0x`, no colons)"
        ));
    }
    if serial.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("upper-case hex: the store records serials in lower case".to_owned());
    }
    if !serial.len().is_multiple_of(2) {
        return Err(format!(
            "{} hex digits: a serial is whole bytes, an even number of digits (`0c`, not `c`)",
            serial.len()
        ));
    }
    if serial.starts_with("00") && serial != "00" {
        return Err(
            "a leading zero byte: write the serial without it (`0c`, not `000c`), as \
             `posmesh ca issue` prints it"
                .to_owned(),
        );
    }
    Ok(())
}

/// The canonical form of a serial an admin typed: hex case folded to lower case, then
/// [`check_canonical`]; a zero serial is refused.
///
/// # Errors
/// The rule it breaks, in words (nothing is normalised but the case: `c`, `000c` or
/// `0x0c` are refused, not guessed at).
pub fn normalise(input: &str) -> Result<String, String> {
    let serial = input.to_ascii_lowercase();
    check_canonical(&serial)?;
    if serial == "00" {
        return Err(
            "zero: no certificate of the chain CA has serial 00 (RFC 5280 §4.1.2.2: serials \
             are positive); give the serial `posmesh ca issue` printed"
                .to_owned(),
        );
    }
    Ok(serial)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_serials_are_lowercase_minimal_whole_bytes() {
        for good in ["00", "0c", "2a", "0100", "80", &"ab".repeat(20)] {
            assert_eq!(check_canonical(good), Ok(()), "{good}");
        }
        for (bad, rule) in [
            ("", "empty"),
            ("c", "whole bytes"),
            ("0C", "lower case"),
            ("0x0c", "not a hex digit"),
            ("0c:1a", "not a hex digit"),
            ("000c", "leading zero byte"),
            ("0000", "leading zero byte"),
            ("zz", "not a hex digit"),
            (&"ab".repeat(21), "at most 40"),
        ] {
            let refused = check_canonical(bad).expect_err(bad);
            assert!(refused.contains(rule), "{bad}: {refused}");
        }
    }

    #[test]
    fn typed_serials_are_folded_to_lower_case_and_zero_is_refused() {
        assert_eq!(normalise("0C").as_deref(), Ok("0c"));
        assert_eq!(normalise("0c").as_deref(), Ok("0c"));
        assert_eq!(normalise("7F3A0B").as_deref(), Ok("7f3a0b"));
        assert!(normalise("00").expect_err("zero").contains("zero"));
        assert!(normalise("").expect_err("empty").contains("empty"));
        for guessed in ["C", "000C", "0x0C"] {
            assert!(normalise(guessed).is_err(), "{guessed}");
        }
    }
}
