//! Operator PINs: checked, hashed with Argon2id (RFC 9106) into a PHC string on this node
//! before a command carrying them enters the Raft log, and verified against that hash.
//! A clear PIN never leaves the process that received it.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// Shortest PIN, digits.
pub const PIN_DIGITS_MIN: usize = 4;
/// Longest PIN, digits.
pub const PIN_DIGITS_MAX: usize = 12;

/// A PIN that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    /// Not 4–12 ASCII digits.
    #[error("a PIN is {PIN_DIGITS_MIN}–{PIN_DIGITS_MAX} digits 0-9")]
    Invalid,
    /// The hasher failed (should not happen with the default parameters).
    #[error("cannot hash the PIN: {0}")]
    Hash(String),
}

/// Checks `pin` (4–12 digits) and hashes it with Argon2id, default parameters of the
/// `argon2` crate (m = 19 MiB, t = 2, p = 1: OWASP's password storage recommendation), a
/// random 16-byte salt. Returns the PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
///
/// # Errors
/// [`PinError::Invalid`] for a PIN that is not 4–12 digits.
pub fn hash_pin(pin: &str) -> Result<String, PinError> {
    check_pin(pin)?;
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| PinError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(pin.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| PinError::Hash(e.to_string()))
}

/// Whether `pin` matches `pin_hash` (a PHC string from [`hash_pin`]). A malformed hash or
/// PIN never matches.
pub fn verify_pin(pin: &str, pin_hash: &str) -> bool {
    if check_pin(pin).is_err() {
        return false;
    }
    PasswordHash::new(pin_hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(pin.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Spends about the time of [`verify_pin`] on `pin` against a hash of nobody's, so that
/// checking an unknown operator's PIN takes as long as a known one's (the time of the
/// answer must not tell whether an operator id exists). Never matches.
pub fn verify_against_nobody(pin: &str) {
    static NOBODY: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let hash = NOBODY.get_or_init(|| {
        let pin: String = (0..PIN_DIGITS_MIN)
            .map(|_| char::from(b'0' + rand::random::<u8>() % 10))
            .collect();
        hash_pin(&pin).ok()
    });
    let pin = if check_pin(pin).is_ok() { pin } else { "0000" };
    if let Some(hash) = hash {
        let _ = verify_pin(pin, hash);
    }
}

fn check_pin(pin: &str) -> Result<(), PinError> {
    if (PIN_DIGITS_MIN..=PIN_DIGITS_MAX).contains(&pin.len())
        && pin.bytes().all(|b| b.is_ascii_digit())
    {
        Ok(())
    } else {
        Err(PinError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_verifies_against_its_hash_only() {
        let hash = hash_pin("2468").expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
        assert!(!hash.contains("2468"), "the clear PIN is not in the hash");
        assert!(verify_pin("2468", &hash));
        assert!(!verify_pin("2469", &hash));
        assert!(!verify_pin("2468", "$argon2id$garbage"));
        assert_ne!(hash, hash_pin("2468").expect("hash"), "salted");
    }

    #[test]
    fn bad_pins_are_refused() {
        for pin in ["", "123", "1234567890123", "12a4", "１２３４", " 1234"] {
            assert_eq!(hash_pin(pin), Err(PinError::Invalid), "{pin:?}");
        }
    }
}
