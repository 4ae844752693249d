//! The directory of the devices' chain-head verifying keys, implemented by the driver.

use crate::chain_head::PUBLIC_KEY_LEN;

/// Where the replicator finds the Ed25519 public key (RFC 8032) that verifies a device's
/// signed chain heads ([`ChainHead::verify`](crate::chain_head::ChainHead::verify)).
///
/// # Obligations
/// - The key comes from a trusted source: the device's certificate or the store's
///   Raft-committed membership, never from the batch being verified.
/// - `None` means the device is unknown (not a member of the store): its batches are refused
///   with [`RefusalReason::UnknownDevice`](super::RefusalReason::UnknownDevice).
/// - The answer for a device does not change within one `handle_message` call.
pub trait SigningKeys {
    /// The 32-byte Ed25519 public key of `device_id`, or `None` when the device is unknown.
    fn public_key(&self, device_id: &str) -> Option<[u8; PUBLIC_KEY_LEN]>;
}
