//! The store's card-data keys.
//!
//! # Key handling
//! Every device of a store holds one 32-byte **store card secret**, provisioned with the
//! device (`--card-secret-file`, 64 hex characters, readable by the node's user only) — in
//! production this is the job of an HSM or a P2PE (point-to-point encryption) scheme, whose
//! keys never leave tamper-resistant hardware; this file-based secret is the lab stand-in.
//! Two keys are derived from it with HMAC-SHA256 (RFC 2104, as a KDF with fixed labels):
//! - the **forwarding key** (`"posmesh card-data AES-256-GCM v1"`): seals the PAN and
//!   expiry of an offline payment (`SealedCardData`, AES-256-GCM bound to the payment id);
//!   any device of the store can open a peer's blob to forward it;
//! - the **token key** (`"posmesh card token HMAC-SHA256 v1"`): the keyed token of a PAN
//!   journaled beside the masked PAN.
//!
//! Without `--card-secret-file` the secret is derived from the store id and a constant
//! (`lab_secret`): every device of the store agrees on it, so the lab and tests work, but
//! anyone who knows the store id can derive it — never use that outside a lab.
//! The secret and derived keys live in process memory only; nothing here writes them.

use posmesh_payments::card_data::{hmac_sha256, STORE_KEY_BYTES};
use std::path::Path;

/// The two keys derived from the store card secret.
#[derive(Clone)]
pub struct StoreCardKeys {
    /// AES-256-GCM key of sealed card data.
    pub forwarding_key: [u8; STORE_KEY_BYTES],
    /// HMAC-SHA256 key of card tokens.
    pub token_key: [u8; STORE_KEY_BYTES],
    /// Whether the keys come from the lab secret (no `--card-secret-file`).
    pub lab: bool,
}

impl std::fmt::Debug for StoreCardKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoreCardKeys(lab: {})", self.lab)
    }
}

impl StoreCardKeys {
    /// Derives the keys from a store secret.
    pub fn derive(secret: &[u8; STORE_KEY_BYTES], lab: bool) -> StoreCardKeys {
        StoreCardKeys {
            forwarding_key: hmac_sha256(secret, b"posmesh card-data AES-256-GCM v1"),
            token_key: hmac_sha256(secret, b"posmesh card token HMAC-SHA256 v1"),
            lab,
        }
    }

    /// The keys from `file` (64 hex characters, surrounding whitespace ignored), or the lab
    /// keys of `store_id` when `file` is `None`.
    ///
    /// # Errors
    /// The file cannot be read or is not 32 bytes of hex.
    pub fn load(file: Option<&Path>, store_id: &str) -> anyhow::Result<StoreCardKeys> {
        let Some(path) = file else {
            return Ok(StoreCardKeys::derive(&lab_secret(store_id), true));
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!("cannot read the card secret file {}: {e}", path.display())
        })?;
        let bytes = hex::decode(text.trim())
            .map_err(|e| anyhow::anyhow!("card secret file {}: not hex: {e}", path.display()))?;
        let secret: [u8; STORE_KEY_BYTES] = bytes.as_slice().try_into().map_err(|_| {
            anyhow::anyhow!(
                "card secret file {}: {} bytes, expected {STORE_KEY_BYTES}",
                path.display(),
                bytes.len()
            )
        })?;
        Ok(StoreCardKeys::derive(&secret, false))
    }
}

/// The lab stand-in for a provisioned secret: HMAC-SHA256 of the store id under a constant.
pub fn lab_secret(store_id: &str) -> [u8; STORE_KEY_BYTES] {
    hmac_sha256(
        b"posmesh lab card secret - not for production",
        store_id.as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_purpose_and_store() {
        let a = StoreCardKeys::derive(&lab_secret("s1"), true);
        let b = StoreCardKeys::derive(&lab_secret("s2"), true);
        assert_ne!(a.forwarding_key, a.token_key);
        assert_ne!(a.forwarding_key, b.forwarding_key);
        assert_eq!(
            a.token_key,
            StoreCardKeys::derive(&lab_secret("s1"), true).token_key
        );
    }

    #[test]
    fn a_secret_file_must_be_32_hex_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret");
        std::fs::write(&path, "00ff").expect("write");
        assert!(StoreCardKeys::load(Some(&path), "s1").is_err());
        std::fs::write(&path, format!("{}\n", "ab".repeat(32))).expect("write");
        let keys = StoreCardKeys::load(Some(&path), "s1").expect("loads");
        assert!(!keys.lab);
        assert_ne!(
            keys.token_key,
            StoreCardKeys::load(None, "s1").expect("lab").token_key
        );
    }
}
