//! [`CertFingerprint`]: the SHA-256 of a DER certificate, as announced in TXT records.

use std::fmt;

use sha2::{Digest, Sha256};

/// Bytes of a SHA-256 digest.
pub const FINGERPRINT_BYTES: usize = 32;

/// The SHA-256 digest of a certificate's DER encoding (the same value as
/// [`crate::pki::IssuedIdentity::fingerprint_sha256_hex`]). Written as 64 lower-case hex
/// digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CertFingerprint([u8; FINGERPRINT_BYTES]);

impl CertFingerprint {
    /// Wraps a digest.
    pub const fn from_bytes(bytes: [u8; FINGERPRINT_BYTES]) -> Self {
        Self(bytes)
    }

    /// The fingerprint of a DER certificate.
    pub fn of_der(cert_der: &[u8]) -> Self {
        Self(Sha256::digest(cert_der).into())
    }

    /// Parses exactly 64 lower-case hex digits.
    ///
    /// # Errors
    /// A static description of what is wrong (length or character).
    pub fn from_hex(hex_digits: &str) -> Result<Self, &'static str> {
        if hex_digits.len() != FINGERPRINT_BYTES * 2 {
            return Err("not 64 hex digits");
        }
        if !hex_digits
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err("not lower-case hex");
        }
        let mut bytes = [0u8; FINGERPRINT_BYTES];
        hex::decode_to_slice(hex_digits, &mut bytes).map_err(|_| "not lower-case hex")?;
        Ok(Self(bytes))
    }

    /// The digest.
    pub const fn as_bytes(&self) -> &[u8; FINGERPRINT_BYTES] {
        &self.0
    }

    /// 64 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for CertFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for CertFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertFingerprint({})", self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_refusals() {
        let fp = CertFingerprint::of_der(b"not really a certificate");
        assert_eq!(CertFingerprint::from_hex(&fp.to_hex()), Ok(fp));
        assert_eq!(fp.to_hex().len(), 64);
        let upper = fp.to_hex().to_uppercase();
        assert_eq!(CertFingerprint::from_hex(&upper), Err("not lower-case hex"));
        assert_eq!(CertFingerprint::from_hex("abcd"), Err("not 64 hex digits"));
        assert_eq!(
            CertFingerprint::from_hex(&"g".repeat(64)),
            Err("not lower-case hex")
        );
        // 64 bytes but multi-byte characters: refused on characters, not sliced.
        assert_eq!(
            CertFingerprint::from_hex(&"é".repeat(32)),
            Err("not lower-case hex")
        );
    }
}
