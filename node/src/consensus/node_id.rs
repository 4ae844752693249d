//! Raft node ids of devices.

use sha2::{Digest, Sha256};

/// The Raft node id of `device_id`: the first 8 bytes (big-endian) of
/// SHA-256("posmesh-raft-node\0" ‖ device id). Deterministic, so every device computes the
/// same id for a peer without asking; device ids are never reused (a replaced till gets a
/// new id), so neither are node ids — openraft requires that a removed id never returns.
pub fn node_id(device_id: &str) -> u64 {
    let digest = Sha256::new()
        .chain_update(b"posmesh-raft-node\0")
        .chain_update(device_id.as_bytes())
        .finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinct() {
        assert_eq!(node_id("till-1"), node_id("till-1"));
        assert_ne!(node_id("till-1"), node_id("till-2"));
        assert_ne!(node_id("till-1"), node_id("till-10"));
    }
}
