//! Reporting, on a peer, a second key claimed for a device
//! ([`posmesh_sync::replication::judge_key`]): logged once as an ERROR naming the device
//! and raised as the lasting manager alert [`KEY_CONFLICT_CODE`] (`GET /v1/alerts`,
//! counted in `/v1/status` and `posmesh status`).

use posmesh_sync::chain_head::PUBLIC_KEY_LEN;
use posmesh_sync::replication::KeyConflict;
use std::collections::BTreeSet;
use std::sync::Mutex;

/// Code of the alert and of the log line.
pub const KEY_CONFLICT_CODE: &str = "device_key_conflict";

/// The text of the alert for `conflict` on `device_id`, offered by `peer`.
pub fn describe(device_id: &str, conflict: &KeyConflict, peer: &str) -> String {
    format!(
        "two chain-head keys claim device {device_id}: the key of incarnation {} is kept \
         ({} of its entries held here), the key of incarnation {} (from {peer}) is refused \
         and nothing signed by it enters the ledger. A till restarted under an old id with a \
         wiped data directory does this: stop it and enrol it as a new device with a new id",
        conflict.kept.incarnation, conflict.entries_held, conflict.refused.incarnation
    )
}

/// The conflicts already reported since start: each (device, refused key) once.
#[derive(Default)]
pub struct KeyConflictLog {
    seen: Mutex<BTreeSet<(String, [u8; PUBLIC_KEY_LEN])>>,
}

impl KeyConflictLog {
    /// True the first time `conflict` on `device_id` is seen.
    pub fn first(&self, device_id: &str, conflict: &KeyConflict) -> bool {
        self.seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert((device_id.to_owned(), conflict.refused.public_key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use posmesh_sync::replication::KeyClaim;

    fn conflict(refused_key: u8) -> KeyConflict {
        KeyConflict {
            kept: KeyClaim {
                incarnation: 5,
                public_key: [1; PUBLIC_KEY_LEN],
            },
            refused: KeyClaim {
                incarnation: 9,
                public_key: [refused_key; PUBLIC_KEY_LEN],
            },
            entries_held: 12,
        }
    }

    #[test]
    fn each_refused_key_is_reported_once_per_device() {
        let log = KeyConflictLog::default();
        assert!(log.first("till-1", &conflict(2)));
        assert!(!log.first("till-1", &conflict(2)));
        assert!(log.first("till-1", &conflict(3)));
        assert!(log.first("till-2", &conflict(2)));
        let text = describe("till-1", &conflict(2), "till-9");
        for part in ["till-1", "incarnation 5", "12 of its entries", "till-9"] {
            assert!(text.contains(part), "{part}: {text}");
        }
    }
}
