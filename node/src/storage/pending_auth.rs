//! Durable reversal records: card authorisations (0200) that may have reached the
//! acquirer and whose outcome this device does not know for certain yet.
//!
//! Standard terminal practice ("reversal on power failure", cf. EMV terminal
//! specifications): the record is written, synced, **before** the request is sent and
//! deleted on a definitive outcome (declined, reversal acknowledged, nothing sent, or the
//! approved sale journaled). A record found at start-up names a request whose till died
//! in flight: its reversal (0400) is sent until the acquirer answers it
//! ([`crate::payments::card_tender::run_pending_reversals`]).
//!
//! Kept in `device_meta` under `pending_auth/` + the payment's sealing id
//! ([`crate::payments::card_tender::sealing_id`]), as JSON. A record holds what the
//! reversal needs to name the original (reference, amount, time, terminal) and **no card
//! data**. Local to the device: never replicated.

use super::keys::{pending_auth_key, CF_DEVICE_META, PENDING_AUTH_PREFIX};
use super::{JournalStore, StorageError};
use rocksdb::{IteratorMode, WriteBatch};
use serde::{Deserialize, Serialize};

/// One card authorisation sent (or about to be sent) whose outcome is not settled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingAuthorization {
    /// The sale's Idempotency-Key (a record whose key has a journaled sale is stale: the
    /// sale was recorded and the crash came before the record was deleted).
    pub idempotency_key: String,
    /// `PaymentRef::sale_id` the request was sent under (STAN and RRN derive from it).
    pub sale_id: String,
    /// `PaymentRef::tender_index`.
    pub tender_index: u16,
    /// `PaymentRef::attempt`.
    pub attempt: u16,
    /// Amount, minor units (> 0).
    pub amount_minor: i64,
    /// ISO 4217 alphabetic code of the amount.
    pub currency: String,
    /// When the payment was taken, ms since the Unix epoch (fields 7, 12, 13 of the 0200).
    pub taken_at_ms: i64,
    /// Terminal id (field 41) it was sent under, without padding.
    pub terminal_id: String,
    /// Merchant id (field 42) it was sent under, without padding.
    pub merchant_id: String,
}

fn corrupt(reason: impl ToString) -> StorageError {
    StorageError::Corrupt {
        what: "pending card authorisation".to_owned(),
        reason: reason.to_string(),
    }
}

impl JournalStore {
    /// Stores the record of authorisation `id`, synced before it returns (before the
    /// request is sent).
    ///
    /// # Errors
    /// RocksDB's: nothing was stored (and the request must not be sent).
    pub fn put_pending_authorization(
        &self,
        id: &str,
        record: &PendingAuthorization,
    ) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(record).map_err(corrupt)?;
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_DEVICE_META), pending_auth_key(id), bytes);
        self.write_synced(batch)
    }

    /// The record of authorisation `id`, if any.
    ///
    /// # Errors
    /// RocksDB's; [`StorageError::Corrupt`] for a record that does not parse.
    pub fn pending_authorization(
        &self,
        id: &str,
    ) -> Result<Option<PendingAuthorization>, StorageError> {
        self.db()
            .get_cf(self.cf(CF_DEVICE_META), pending_auth_key(id))?
            .map(|bytes| serde_json::from_slice(&bytes).map_err(corrupt))
            .transpose()
    }

    /// Deletes the record of authorisation `id` (none: nothing happens), synced.
    ///
    /// # Errors
    /// RocksDB's.
    pub fn delete_pending_authorization(&self, id: &str) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        batch.delete_cf(self.cf(CF_DEVICE_META), pending_auth_key(id));
        self.write_synced(batch)
    }

    /// Every record, as `(id, record)` in id order.
    ///
    /// # Errors
    /// RocksDB's; [`StorageError::Corrupt`] for a record that does not parse.
    pub fn pending_authorizations(
        &self,
    ) -> Result<Vec<(String, PendingAuthorization)>, StorageError> {
        let mut records = Vec::new();
        let iter = self.db().iterator_cf(
            self.cf(CF_DEVICE_META),
            IteratorMode::From(PENDING_AUTH_PREFIX, rocksdb::Direction::Forward),
        );
        for row in iter {
            let (key, value) = row?;
            let Some(id) = key.strip_prefix(PENDING_AUTH_PREFIX) else {
                break;
            };
            let id = String::from_utf8(id.to_vec()).map_err(corrupt)?;
            records.push((id, serde_json::from_slice(&value).map_err(corrupt)?));
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str) -> PendingAuthorization {
        PendingAuthorization {
            idempotency_key: key.into(),
            sale_id: format!("till-1:{key}"),
            tender_index: 0,
            attempt: 0,
            amount_minor: 850,
            currency: "GBP".into(),
            taken_at_ms: 1_700_000_000_000,
            terminal_id: "till-1".into(),
            merchant_id: "posmesh-merch".into(),
        }
    }

    #[test]
    fn records_survive_reopening_list_in_order_and_deletes_stick() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = JournalStore::open(dir.path()).expect("open");
            assert_eq!(store.pending_authorizations().expect("list"), Vec::new());
            assert_eq!(
                store.pending_authorization("till-1:b#0#0").expect("get"),
                None
            );
            store
                .put_pending_authorization("till-1:b#0#0", &record("b"))
                .expect("put");
            store
                .put_pending_authorization("till-1:a#0#0", &record("a"))
                .expect("put");
            // Other device_meta keys around the prefix are not records.
            store.put_own_revocation(None).expect("meta");
        }
        let store = JournalStore::open(dir.path()).expect("reopen");
        assert_eq!(
            store.pending_authorizations().expect("list"),
            vec![
                ("till-1:a#0#0".to_owned(), record("a")),
                ("till-1:b#0#0".to_owned(), record("b")),
            ]
        );
        assert_eq!(
            store.pending_authorization("till-1:b#0#0").expect("get"),
            Some(record("b"))
        );
        store
            .delete_pending_authorization("till-1:a#0#0")
            .expect("delete");
        store
            .delete_pending_authorization("till-1:never#0#0")
            .expect("deleting nothing is fine");
        drop(store);
        let store = JournalStore::open(dir.path()).expect("reopen");
        assert_eq!(
            store.pending_authorizations().expect("list"),
            vec![("till-1:b#0#0".to_owned(), record("b"))]
        );
    }

    #[test]
    fn an_unreadable_record_is_reported_not_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = JournalStore::open(dir.path()).expect("open");
        let mut batch = WriteBatch::default();
        batch.put_cf(
            store.cf(CF_DEVICE_META),
            pending_auth_key("x"),
            b"{not json",
        );
        store.write_synced(batch).expect("write");
        assert!(matches!(
            store.pending_authorizations(),
            Err(StorageError::Corrupt { .. })
        ));
        assert!(matches!(
            store.pending_authorization("x"),
            Err(StorageError::Corrupt { .. })
        ));
    }
}
