//! [`LedgerDigest`]: what a node holds of every device's journal, in one comparable hash.

use crate::storage::{JournalStore, StorageError};
use posmesh_sync::chain::ChainHash;
use sha2::{Digest, Sha256};

/// One device's journal as held: its last seq and the chain hash there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceHead {
    /// Device id.
    pub device_id: String,
    /// Highest stored seq (entries `1 ..= seq` are held).
    pub seq: u64,
    /// Chain hash of entry `seq`.
    pub head_hash: ChainHash,
}

/// Every device's head, by device id, and a SHA-256 over them: two nodes with the same
/// digest hold exactly the same entries of every device (hash chains make a head hash
/// commit to the whole prefix).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerDigest {
    /// Per device, in device-id order.
    pub devices: Vec<DeviceHead>,
    /// SHA-256 over `device id ‖ 0x00 ‖ seq (u64 BE) ‖ head hash` of each device in order.
    pub digest: [u8; 32],
}

impl LedgerDigest {
    /// Reads the heads from `store` (a few seeks per device).
    ///
    /// # Errors
    /// Storage errors; [`StorageError::Corrupt`] when a device's last entry is missing.
    pub fn of_store(store: &JournalStore) -> Result<Self, StorageError> {
        let mut devices = Vec::new();
        for (device_id, seq) in store.stored_version_vector()? {
            let head_hash =
                store
                    .chain_hash(&device_id, seq)?
                    .ok_or_else(|| StorageError::Corrupt {
                        what: format!("journal entry {device_id}/{seq}"),
                        reason: "missing".into(),
                    })?;
            devices.push(DeviceHead {
                device_id,
                seq,
                head_hash,
            });
        }
        Ok(Self::of_heads(devices))
    }

    /// The digest of `devices` (sorted by device id here).
    pub fn of_heads(mut devices: Vec<DeviceHead>) -> Self {
        devices.sort_by(|a, b| a.device_id.cmp(&b.device_id));
        let mut hasher = Sha256::new();
        for head in &devices {
            hasher.update(head.device_id.as_bytes());
            hasher.update([0]);
            hasher.update(head.seq.to_be_bytes());
            hasher.update(head.head_hash);
        }
        Self {
            devices,
            digest: hasher.finalize().into(),
        }
    }

    /// Entries held, all devices together.
    pub fn entries_total(&self) -> u64 {
        self.devices.iter().map(|d| d.seq).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(device: &str, seq: u64, byte: u8) -> DeviceHead {
        DeviceHead {
            device_id: device.into(),
            seq,
            head_hash: [byte; 32],
        }
    }

    #[test]
    fn digest_ignores_order_and_sees_every_difference() {
        let a = LedgerDigest::of_heads(vec![head("till-1", 3, 1), head("till-2", 5, 2)]);
        let b = LedgerDigest::of_heads(vec![head("till-2", 5, 2), head("till-1", 3, 1)]);
        assert_eq!(a, b);
        assert_eq!(a.entries_total(), 8);
        for other in [
            vec![head("till-1", 3, 1), head("till-2", 4, 2)],
            vec![head("till-1", 3, 1), head("till-2", 5, 9)],
            vec![head("till-1", 3, 1)],
        ] {
            assert_ne!(a.digest, LedgerDigest::of_heads(other).digest);
        }
    }
}
