//! Signed chain heads: after each batch it writes, a device signs the head of its chain
//! (Ed25519, RFC 8032). Because every entry is hash-chained, one signature covers the whole
//! range up to the head: a receiver checks every hash and one signature per range, which
//! keeps verifying millions of entries cheap. Ed25519 signatures are deterministic, so the
//! simulator replays them exactly.
//!
//! The signed message is the canonical encoding
//!
//! ```text
//! "posmesh/chain-head/v1" 0x00
//! u16-BE length ‖ store_id ‖ u16-BE length ‖ device_id
//! u64-BE device_incarnation ‖ u64-BE seq ‖ 32-byte chain hash
//! ```

use crate::chain::ChainHash;
use crate::SyncError;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

/// Domain-separation prefix of the signed message.
const CHAIN_HEAD_DOMAIN: &[u8] = b"posmesh/chain-head/v1\0";

/// Length of an Ed25519 public key, bytes.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of an Ed25519 signature, bytes.
pub const SIGNATURE_LEN: usize = 64;

/// The head of one device's chain at some sequence number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainHead {
    /// Store of the device.
    pub store_id: String,
    /// The device.
    pub device_id: String,
    /// Its incarnation.
    pub device_incarnation: u64,
    /// Sequence number of the head entry.
    pub seq: u64,
    /// Chain hash of the head entry.
    pub chain_hash: ChainHash,
}

impl ChainHead {
    /// The canonical bytes that are signed (see the module docs).
    pub fn signed_message(&self) -> Vec<u8> {
        let mut message = Vec::with_capacity(CHAIN_HEAD_DOMAIN.len() + 64 + 48);
        message.extend_from_slice(CHAIN_HEAD_DOMAIN);
        for field in [&self.store_id, &self.device_id] {
            // Ids are at most 64 bytes (config validation); longer ones are truncated in the
            // length prefix only if > 65535, which validation already refuses.
            let len = u16::try_from(field.len()).unwrap_or(u16::MAX);
            message.extend_from_slice(&len.to_be_bytes());
            message.extend_from_slice(field.as_bytes());
        }
        message.extend_from_slice(&self.device_incarnation.to_be_bytes());
        message.extend_from_slice(&self.seq.to_be_bytes());
        message.extend_from_slice(&self.chain_hash);
        message
    }

    /// Signs the head with the device's key.
    pub fn sign(&self, key: &SigningKey) -> [u8; SIGNATURE_LEN] {
        key.sign(&self.signed_message()).to_bytes()
    }

    /// Checks `signature` over this head against the device's public key.
    ///
    /// # Errors
    /// [`SyncError::BadSignature`] when the key or signature is malformed or does not match.
    pub fn verify(&self, public_key: &[u8], signature: &[u8]) -> Result<(), SyncError> {
        let bad = |reason: &str| SyncError::BadSignature {
            device_id: self.device_id.clone(),
            seq: self.seq,
            reason: reason.to_owned(),
        };
        let public_key: [u8; PUBLIC_KEY_LEN] = public_key
            .try_into()
            .map_err(|_| bad("public key is not 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&public_key).map_err(|_| bad("malformed public key"))?;
        let signature: [u8; SIGNATURE_LEN] = signature
            .try_into()
            .map_err(|_| bad("signature is not 64 bytes"))?;
        key.verify(&self.signed_message(), &Signature::from_bytes(&signature))
            .map_err(|_| bad("signature does not match"))
    }
}

/// A signing key from 32 secret bytes (the caller draws them from the OS once, when the
/// device's data directory is created, or from a seed in the simulator).
pub fn signing_key(secret: &[u8; 32]) -> SigningKey {
    SigningKey::from_bytes(secret)
}

/// The public key of a signing key.
pub fn public_key(key: &SigningKey) -> [u8; PUBLIC_KEY_LEN] {
    key.verifying_key().to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(seq: u64) -> ChainHead {
        ChainHead {
            store_id: "s1".into(),
            device_id: "till-1".into(),
            device_incarnation: 7,
            seq,
            chain_hash: [seq as u8; 32],
        }
    }

    #[test]
    fn a_signed_head_verifies_and_any_change_breaks_it() {
        let key = signing_key(&[42; 32]);
        let public = public_key(&key);
        let signature = head(5).sign(&key);
        head(5).verify(&public, &signature).expect("valid");
        // Deterministic (RFC 8032): the same head signs to the same bytes.
        assert_eq!(signature, head(5).sign(&key));
        assert!(head(6).verify(&public, &signature).is_err());
        let mut other_device = head(5);
        other_device.device_id = "till-2".into();
        assert!(other_device.verify(&public, &signature).is_err());
        let other_key = public_key(&signing_key(&[43; 32]));
        assert!(head(5).verify(&other_key, &signature).is_err());
        assert!(head(5).verify(&public, &signature[..63]).is_err());
    }
}
