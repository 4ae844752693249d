//! Device signing keys derived from the run's seed, and head signing: every signature of a
//! run is fixed by the seed (Ed25519 signatures are deterministic, RFC 8032).

use ed25519_dalek::SigningKey;
use posmesh_proto::journal::v1::ChainHeadSignature;
use posmesh_sync::chain::ChainHash;
use posmesh_sync::chain_head::{signing_key, ChainHead};
use sha2::{Digest, Sha256};

/// The store every simulated device belongs to.
pub const STORE_ID: &str = "sim-store";
/// The incarnation of every simulated device (a restart keeps the disk, so the incarnation).
pub const INCARNATION: u64 = 1;

/// The Ed25519 signing key of `device_id` in the run of `seed`:
/// `SHA-256("posmesh-sim/device-key/v1" 0x00 ‖ seed (u64 BE) ‖ device_id)` as the secret.
pub fn device_key(seed: u64, device_id: &str) -> SigningKey {
    let mut hasher = Sha256::new();
    hasher.update(b"posmesh-sim/device-key/v1\0");
    hasher.update(seed.to_be_bytes());
    hasher.update(device_id.as_bytes());
    signing_key(&hasher.finalize().into())
}

/// The head of `device_id`'s chain at `seq` (entry hash `chain_hash`), signed with `key`.
pub fn sign_head(
    device_id: &str,
    seq: u64,
    chain_hash: ChainHash,
    key: &SigningKey,
) -> ChainHeadSignature {
    let head = ChainHead {
        store_id: STORE_ID.into(),
        device_id: device_id.into(),
        device_incarnation: INCARNATION,
        seq,
        chain_hash,
    };
    ChainHeadSignature {
        device_id: device_id.into(),
        device_incarnation: INCARNATION,
        seq,
        chain_hash: chain_hash.to_vec(),
        signature: head.sign(key).to_vec(),
    }
}
