//! This device's own certificate revocation as it learned it
//! ([`crate::consensus::own_revocation`]), kept in `device_meta` under `own_revocation` so
//! a restart does not lift it: a revocation learned from a peer's close (QUIC code 4) is
//! in no Raft state this device applied. Local to the device: never replicated.

use super::keys::{CF_DEVICE_META, META_OWN_REVOCATION};
use super::{JournalStore, StorageError};
use crate::consensus::own_revocation::OwnRevocation;
use rocksdb::WriteBatch;

impl JournalStore {
    /// The revocation recorded, if any.
    ///
    /// # Errors
    /// RocksDB's; [`StorageError::Corrupt`] for a record that does not parse.
    pub fn own_revocation(&self) -> Result<Option<OwnRevocation>, StorageError> {
        let Some(bytes) = self
            .db()
            .get_cf(self.cf(CF_DEVICE_META), META_OWN_REVOCATION)?
        else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StorageError::Corrupt {
                what: "own certificate revocation".to_owned(),
                reason: e.to_string(),
            })
    }

    /// Records the revocation (`None`: deletes the record), synced before it returns.
    ///
    /// # Errors
    /// RocksDB's: nothing was stored.
    pub fn put_own_revocation(
        &self,
        revocation: Option<&OwnRevocation>,
    ) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        match revocation {
            Some(revocation) => {
                let bytes = serde_json::to_vec(revocation).map_err(|e| StorageError::Corrupt {
                    what: "own certificate revocation".to_owned(),
                    reason: e.to_string(),
                })?;
                batch.put_cf(self.cf(CF_DEVICE_META), META_OWN_REVOCATION, bytes);
            }
            None => batch.delete_cf(self.cf(CF_DEVICE_META), META_OWN_REVOCATION),
        }
        self.write_synced(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_survives_reopening_and_a_delete_sticks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let revocation = OwnRevocation {
            device_id: "till-3".into(),
            serial: "0c".into(),
            revoked_at_index: 42,
            learned_from: "refused at the mesh by till-1".into(),
        };
        {
            let store = JournalStore::open(dir.path()).expect("open");
            assert_eq!(store.own_revocation().expect("read"), None);
            store.put_own_revocation(Some(&revocation)).expect("put");
        }
        let store = JournalStore::open(dir.path()).expect("reopen");
        assert_eq!(store.own_revocation().expect("read"), Some(revocation));
        store.put_own_revocation(None).expect("delete");
        drop(store);
        let store = JournalStore::open(dir.path()).expect("reopen");
        assert_eq!(store.own_revocation().expect("read"), None);
    }
}
