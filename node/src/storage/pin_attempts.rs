//! Wrong-PIN counts and lockouts of this device ([`crate::pin_lockout`]), kept in
//! `device_meta` under `pin_attempts/<operator id>` so a restart or crash of the node does
//! not lift a lockout. Local to the device: never replicated.

use super::keys::CF_DEVICE_META;
use super::{JournalStore, StorageError};
use crate::pin_lockout::PinAttempts;
use rocksdb::{Direction, IteratorMode, WriteBatch};

/// Prefix of the `device_meta` keys of PIN attempt counts.
const PREFIX: &[u8] = b"pin_attempts/";

fn key(operator_id: &str) -> Vec<u8> {
    let mut key = PREFIX.to_vec();
    key.extend_from_slice(operator_id.as_bytes());
    key
}

impl JournalStore {
    /// Every stored count, by operator id.
    ///
    /// # Errors
    /// RocksDB's; [`StorageError::Corrupt`] for a record that does not parse.
    pub fn pin_attempts(&self) -> Result<Vec<(String, PinAttempts)>, StorageError> {
        let iter = self.db().iterator_cf(
            self.cf(CF_DEVICE_META),
            IteratorMode::From(PREFIX, Direction::Forward),
        );
        let mut counts = Vec::new();
        for item in iter {
            let (key, value) = item?;
            let Some(operator) = key.strip_prefix(PREFIX) else {
                break;
            };
            let corrupt = |reason: &str| StorageError::Corrupt {
                what: format!("pin attempts {}", String::from_utf8_lossy(operator)),
                reason: reason.to_owned(),
            };
            let operator = String::from_utf8(operator.to_vec())
                .map_err(|_| corrupt("operator id is not UTF-8"))?;
            let attempts =
                PinAttempts::from_bytes(&value).ok_or_else(|| corrupt("not 12 bytes"))?;
            counts.push((operator, attempts));
        }
        Ok(counts)
    }

    /// Stores `operator_id`'s count (`None`: deletes it), synced before it returns.
    ///
    /// # Errors
    /// RocksDB's: nothing was stored.
    pub fn put_pin_attempts(
        &self,
        operator_id: &str,
        attempts: Option<PinAttempts>,
    ) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        match attempts {
            Some(a) => batch.put_cf(self.cf(CF_DEVICE_META), key(operator_id), a.to_bytes()),
            None => batch.delete_cf(self.cf(CF_DEVICE_META), key(operator_id)),
        }
        self.write_synced(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_survive_reopening_and_deletes_stick() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bob = PinAttempts {
            failures: 5,
            locked_until_ms: 1_764_500_000_000,
        };
        let carol = PinAttempts {
            failures: 2,
            locked_until_ms: 0,
        };
        {
            let store = JournalStore::open(dir.path()).expect("open");
            store
                .ensure_identity("s1", "till-1", 1, [7; 32], 0)
                .expect("identity");
            store.put_pin_attempts("bob", Some(bob)).expect("put");
            store.put_pin_attempts("carol", Some(carol)).expect("put");
            store.put_pin_attempts("dave", Some(carol)).expect("put");
            store.put_pin_attempts("dave", None).expect("delete");
        }
        let store = JournalStore::open(dir.path()).expect("reopen");
        assert_eq!(
            store.pin_attempts().expect("read"),
            vec![("bob".to_owned(), bob), ("carol".to_owned(), carol)]
        );
        assert!(
            store.identity().expect("identity").is_some(),
            "other records untouched"
        );
    }
}
