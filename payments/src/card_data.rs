//! Card data handling: what may go into the journal (a masked PAN and a keyed token) and
//! what may not (the clear PAN), plus the sealed blob that carries the card data needed to
//! forward an offline payment.
//!
//! - [`Pan`]: a validated primary account number (12–19 digits, Luhn check). Its `Debug`
//!   and `Display` show only the masked form, so it cannot leak into logs by accident.
//! - [`MaskedPan`]: first 6 and last 4 digits, the rest `*` (PCI DSS 3.4 permits showing
//!   at most these).
//! - [`CardToken`]: HMAC-SHA256 (RFC 2104, implemented here over the `sha2` crate) of the
//!   PAN under the store's secret key: the same card gives the same token within a store,
//!   and the PAN cannot be recovered from it without the key.
//! - [`SealedCardData`]: PAN and expiry encrypted with AES-256-GCM (`ring::aead`) under the
//!   store's forwarding key, bound to the payment id as associated data; the journal refers
//!   to it by [`SealedCardData::digest`] and the blob itself lives outside the hash chain so
//!   it can be deleted once forwarded. Sensitive authentication data (track, CVV, PIN) is
//!   never accepted at all.
//!
//! Keys are raw 32-byte secrets supplied by the caller (provisioning them is the node's job).
//! Memory holding a clear PAN is not zeroised (no zeroize crate in the workspace).

use ring::aead;
use sha2::{Digest, Sha256};
use std::fmt;

/// Shortest PAN accepted, in digits (ISO/IEC 7812 allows 8; acquirers use 12+).
pub const PAN_DIGITS_MIN: usize = 12;
/// Longest PAN accepted, in digits (ISO/IEC 7812).
pub const PAN_DIGITS_MAX: usize = 19;
/// Bytes of a store key (HMAC token key or AES-256 key).
pub const STORE_KEY_BYTES: usize = 32;

/// Why card data was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CardDataError {
    /// The PAN is not 12–19 ASCII digits.
    #[error(
        "card number must be {PAN_DIGITS_MIN} to {PAN_DIGITS_MAX} digits, got {len} characters"
    )]
    PanFormat {
        /// Characters given.
        len: usize,
    },
    /// The PAN fails the Luhn check digit.
    #[error("card number fails its check digit (Luhn)")]
    PanCheckDigit,
    /// The expiry is not `YYMM` with a month 01–12.
    #[error("expiry must be YYMM with month 01-12")]
    Expiry,
    /// The sealed blob could not be opened (wrong key, wrong payment id or tampered).
    #[error("sealed card data does not open: wrong key, wrong payment id or tampered")]
    Open,
    /// The sealed blob is too short to hold a nonce and a tag.
    #[error("sealed card data is truncated")]
    Truncated,
    /// The operating system's random source failed.
    #[error("random source failed")]
    Random,
}

/// A validated PAN. Shows only its masked form in `Debug`/`Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Pan(String);

impl Pan {
    /// Validates `digits`: 12–19 ASCII digits with a valid Luhn check digit.
    ///
    /// # Errors
    /// [`CardDataError::PanFormat`], [`CardDataError::PanCheckDigit`].
    pub fn parse(digits: &str) -> Result<Pan, CardDataError> {
        let len = digits.len();
        if !(PAN_DIGITS_MIN..=PAN_DIGITS_MAX).contains(&len)
            || !digits.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(CardDataError::PanFormat { len });
        }
        if !luhn_valid(digits) {
            return Err(CardDataError::PanCheckDigit);
        }
        Ok(Pan(digits.to_owned()))
    }

    /// The clear digits. Only for the ISO 8583 request and the sealed blob.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The masked PAN (first 6, last 4).
    pub fn masked(&self) -> MaskedPan {
        MaskedPan(mask_pan_digits(&self.0))
    }
}

impl fmt::Debug for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pan({})", mask_pan_digits(&self.0))
    }
}

impl fmt::Display for Pan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask_pan_digits(&self.0))
    }
}

/// `true` if the digit string passes the Luhn (mod 10) check. Non-digits fail.
pub fn luhn_valid(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, b) in digits.bytes().rev().enumerate() {
        if !b.is_ascii_digit() {
            return false;
        }
        let mut d = u32::from(b - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    !digits.is_empty() && sum.is_multiple_of(10)
}

/// Masks a digit string: the first 6 and last 4 characters kept, the rest `*`; strings of
/// 10 characters or fewer become all `*` (nothing would be hidden otherwise).
pub fn mask_pan_digits(digits: &str) -> String {
    let len = digits.chars().count();
    if len <= 10 {
        return "*".repeat(len);
    }
    digits
        .chars()
        .enumerate()
        .map(|(i, c)| if i < 6 || i >= len - 4 { c } else { '*' })
        .collect()
}

/// A masked PAN, safe for the journal, receipts and logs: `411111******1111`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct MaskedPan(String);

impl MaskedPan {
    /// The masked text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// HMAC-SHA256 of `message` under `key` (RFC 2104 with SHA-256, block size 64 bytes).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block_key = [0u8; BLOCK];
    if key.len() > BLOCK {
        block_key[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block_key[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block_key.map(|b| b ^ 0x36));
    inner.update(message);
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(block_key.map(|b| b ^ 0x5c));
    outer.update(inner);
    outer.finalize().into()
}

/// A keyed card token: lower-case hex of HMAC-SHA256(store token key, PAN digits).
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct CardToken(String);

impl CardToken {
    /// The token of `pan` under the store's token key.
    pub fn new(token_key: &[u8; STORE_KEY_BYTES], pan: &Pan) -> CardToken {
        CardToken(hex::encode(hmac_sha256(token_key, pan.expose().as_bytes())))
    }

    /// The 64 hex characters.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The card data needed to forward an offline payment: PAN and expiry (`YYMM`). Never
/// track data, CVV or PIN.
#[derive(Clone, PartialEq, Eq)]
pub struct ForwardingCardData {
    /// The PAN.
    pub pan: Pan,
    /// Expiry `YYMM`.
    pub expiry: String,
}

impl fmt::Debug for ForwardingCardData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ForwardingCardData({}, expiry ****)", self.pan)
    }
}

impl ForwardingCardData {
    /// Validates the expiry (`YYMM`, month 01–12).
    ///
    /// # Errors
    /// [`CardDataError::Expiry`].
    pub fn new(pan: Pan, expiry: &str) -> Result<ForwardingCardData, CardDataError> {
        let ok = expiry.len() == 4
            && expiry.bytes().all(|b| b.is_ascii_digit())
            && matches!(
                expiry.get(2..4).and_then(|m| m.parse::<u8>().ok()),
                Some(1..=12)
            );
        if !ok {
            return Err(CardDataError::Expiry);
        }
        Ok(ForwardingCardData {
            pan,
            expiry: expiry.to_owned(),
        })
    }
}

/// Card data sealed with AES-256-GCM: `nonce (12 bytes) || ciphertext || tag (16 bytes)`.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedCardData(Vec<u8>);

impl fmt::Debug for SealedCardData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SealedCardData({} bytes, {})",
            self.0.len(),
            self.digest()
        )
    }
}

impl SealedCardData {
    /// Seals `card` under `key`, bound to `payment_id` (associated data: the blob opens
    /// only for the payment it was made for). The nonce is 96 random bits from the OS.
    ///
    /// # Errors
    /// [`CardDataError::Random`] if the OS random source fails.
    pub fn seal(
        key: &[u8; STORE_KEY_BYTES],
        payment_id: &str,
        card: &ForwardingCardData,
    ) -> Result<SealedCardData, CardDataError> {
        use ring::rand::SecureRandom;
        let mut nonce = [0u8; aead::NONCE_LEN];
        ring::rand::SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| CardDataError::Random)?;
        let sealing = less_safe_key(key);
        let mut data = format!("{}|{}", card.pan.expose(), card.expiry).into_bytes();
        sealing
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(payment_id.as_bytes()),
                &mut data,
            )
            .map_err(|_| CardDataError::Random)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(SealedCardData(out))
    }

    /// Opens the blob with `key` for `payment_id`.
    ///
    /// # Errors
    /// [`CardDataError::Truncated`], [`CardDataError::Open`] (wrong key or payment id, or a
    /// changed byte), or the PAN/expiry errors if the content is not card data.
    pub fn open(
        &self,
        key: &[u8; STORE_KEY_BYTES],
        payment_id: &str,
    ) -> Result<ForwardingCardData, CardDataError> {
        if self.0.len() < aead::NONCE_LEN + aead::AES_256_GCM.tag_len() {
            return Err(CardDataError::Truncated);
        }
        let (nonce, sealed) = self.0.split_at(aead::NONCE_LEN);
        let nonce =
            aead::Nonce::try_assume_unique_for_key(nonce).map_err(|_| CardDataError::Open)?;
        let mut buffer = sealed.to_vec();
        let clear = less_safe_key(key)
            .open_in_place(nonce, aead::Aad::from(payment_id.as_bytes()), &mut buffer)
            .map_err(|_| CardDataError::Open)?;
        let text = std::str::from_utf8(clear).map_err(|_| CardDataError::Open)?;
        let (pan, expiry) = text.split_once('|').ok_or(CardDataError::Open)?;
        ForwardingCardData::new(Pan::parse(pan)?, expiry)
    }

    /// The sealed bytes (to store outside the hash chain, and escrow on peers).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Wraps bytes read back from storage (checked when opened).
    pub fn from_bytes(bytes: Vec<u8>) -> SealedCardData {
        SealedCardData(bytes)
    }

    /// `sha256:<hex>` of the sealed bytes: what the journal entry records.
    pub fn digest(&self) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(&self.0)))
    }
}

fn less_safe_key(key: &[u8; STORE_KEY_BYTES]) -> aead::LessSafeKey {
    // AES-256-GCM accepts exactly 32-byte keys, which the type guarantees.
    let unbound = aead::UnboundKey::new(&aead::AES_256_GCM, key)
        .unwrap_or_else(|_| unreachable!("AES-256 key is 32 bytes"));
    aead::LessSafeKey::new(unbound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_vectors() {
        // Test case 1.
        let mac = hmac_sha256(&[0x0b; 20], b"Hi There");
        assert_eq!(
            hex::encode(mac),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        // Test case 2.
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block is hashed first.
        let mac = hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        assert_eq!(
            hex::encode(mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn pan_validation_masking_and_no_leak() {
        let pan = Pan::parse("4111111111111111").expect("valid test PAN");
        assert_eq!(pan.masked().as_str(), "411111******1111");
        assert_eq!(format!("{pan:?}"), "Pan(411111******1111)");
        assert_eq!(pan.to_string(), "411111******1111");
        assert_eq!(
            Pan::parse("4111111111111112"),
            Err(CardDataError::PanCheckDigit)
        );
        assert_eq!(Pan::parse("4111"), Err(CardDataError::PanFormat { len: 4 }));
        assert_eq!(
            Pan::parse("41111111111111a1"),
            Err(CardDataError::PanFormat { len: 16 })
        );
        assert_eq!(mask_pan_digits("1234567890"), "**********");
        assert_eq!(mask_pan_digits("5555555555554444"), "555555******4444");
    }

    #[test]
    fn tokens_are_keyed_and_stable() {
        let pan = Pan::parse("4111111111111111").expect("pan");
        let other = Pan::parse("5555555555554444").expect("pan");
        let k1 = [1u8; 32];
        let k2 = [2u8; 32];
        assert_eq!(CardToken::new(&k1, &pan), CardToken::new(&k1, &pan));
        assert_ne!(CardToken::new(&k1, &pan), CardToken::new(&k2, &pan));
        assert_ne!(CardToken::new(&k1, &pan), CardToken::new(&k1, &other));
        assert_eq!(CardToken::new(&k1, &pan).as_str().len(), 64);
        assert!(!CardToken::new(&k1, &pan)
            .as_str()
            .contains("4111111111111111"));
    }

    #[test]
    fn sealed_blob_round_trips_and_refuses_tampering() {
        let key = [7u8; 32];
        let card = ForwardingCardData::new(Pan::parse("4111111111111111").expect("pan"), "2812")
            .expect("card");
        let sealed = SealedCardData::seal(&key, "till-1/42/0", &card).expect("seal");
        assert!(!sealed
            .as_bytes()
            .windows(16)
            .any(|w| w == b"4111111111111111"));
        assert_eq!(sealed.open(&key, "till-1/42/0"), Ok(card.clone()));
        assert_eq!(
            sealed.open(&[8u8; 32], "till-1/42/0"),
            Err(CardDataError::Open)
        );
        assert_eq!(sealed.open(&key, "till-1/43/0"), Err(CardDataError::Open));
        let mut bytes = sealed.as_bytes().to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(
            SealedCardData::from_bytes(bytes).open(&key, "till-1/42/0"),
            Err(CardDataError::Open)
        );
        assert_eq!(
            SealedCardData::from_bytes(vec![0; 10]).open(&key, "x"),
            Err(CardDataError::Truncated)
        );
        // Two seals of the same data differ (random nonce); digests name the bytes.
        let again = SealedCardData::seal(&key, "till-1/42/0", &card).expect("seal");
        assert_ne!(again.digest(), sealed.digest());
        assert!(sealed.digest().starts_with("sha256:"));
        assert_eq!(
            ForwardingCardData::new(Pan::parse("4111111111111111").expect("pan"), "2813"),
            Err(CardDataError::Expiry)
        );
    }
}
