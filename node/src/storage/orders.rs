//! Storage of shared orders: their Automerge documents in chunks, the order-editing
//! session counter, the index of the sales that closed each order, and manager alerts.

use super::keys::{self, CF_ALERTS, CF_DEVICE_META, CF_ORDERS, CF_ORDER_SALES};
use super::{JournalStore, StorageError};
use posmesh_proto::storage::v1::Alert;
use posmesh_sync::orders::ClosingSale;
use prost::Message;
use rocksdb::{Direction, IteratorMode, WriteBatch};
use std::collections::BTreeMap;

/// One order's stored document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredOrder {
    /// Its chunks concatenated in order (what `OrderDoc::load` takes).
    pub bytes: Vec<u8>,
    /// How many chunks are stored.
    pub chunks: u64,
    /// The number the next chunk gets.
    pub next_chunk: u64,
}

impl JournalStore {
    /// Raises the order-editing session counter and returns the new value (1 on a new
    /// directory), synced before it is returned: a session number is never used twice.
    pub fn next_orders_session(&self) -> Result<u64, StorageError> {
        let current = match self
            .db()
            .get_cf(self.cf(CF_DEVICE_META), keys::META_ORDERS_SESSION)?
        {
            Some(bytes) => u64::from_be_bytes(bytes.as_slice().try_into().map_err(|_| {
                StorageError::Corrupt {
                    what: "orders session counter".into(),
                    reason: format!("{} bytes, not 8", bytes.len()),
                }
            })?),
            None => 0,
        };
        let next = current + 1;
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(CF_DEVICE_META),
            keys::META_ORDERS_SESSION,
            next.to_be_bytes(),
        );
        self.write_synced(batch)?;
        Ok(next)
    }

    /// Every stored order document, by order id.
    pub fn stored_orders(&self) -> Result<BTreeMap<String, StoredOrder>, StorageError> {
        let mut orders: BTreeMap<String, StoredOrder> = BTreeMap::new();
        for item in self
            .db()
            .iterator_cf(self.cf(CF_ORDERS), IteratorMode::Start)
        {
            let (key, value) = item?;
            let (order_id, chunk) =
                keys::parse_order_chunk_key(&key).ok_or_else(|| StorageError::Corrupt {
                    what: "orders key".into(),
                    reason: hex::encode(&key),
                })?;
            let order = orders.entry(order_id.to_owned()).or_default();
            order.bytes.extend_from_slice(&value);
            order.chunks += 1;
            order.next_chunk = chunk + 1;
        }
        Ok(orders)
    }

    /// Stores chunk `chunk` of `order_id`; `synced` for local edits that are acknowledged
    /// once this returns (merged changes from peers need no fsync: the peers hold them).
    pub fn put_order_chunk(
        &self,
        order_id: &str,
        chunk: u64,
        bytes: &[u8],
        synced: bool,
    ) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(CF_ORDERS),
            keys::order_chunk_key(order_id, chunk),
            bytes,
        );
        if synced {
            self.write_synced(batch)
        } else {
            Ok(self.db().write(batch)?)
        }
    }

    /// Replaces chunks `0..chunk` of `order_id` with one chunk `chunk` holding the whole
    /// document (compaction), atomically and synced.
    pub fn compact_order(
        &self,
        order_id: &str,
        chunk: u64,
        bytes: &[u8],
    ) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(
            self.cf(CF_ORDERS),
            keys::order_chunk_key(order_id, 0),
            keys::order_chunk_key(order_id, chunk),
        );
        batch.put_cf(
            self.cf(CF_ORDERS),
            keys::order_chunk_key(order_id, chunk),
            bytes,
        );
        self.write_synced(batch)
    }

    /// The sales (any device's) that closed `order_id`.
    pub fn order_sales(&self, order_id: &str) -> Result<Vec<ClosingSale>, StorageError> {
        let prefix = keys::order_prefix(order_id);
        let mut sales = Vec::new();
        let mode = IteratorMode::From(&prefix, Direction::Forward);
        for item in self.db().iterator_cf(self.cf(CF_ORDER_SALES), mode) {
            let (key, value) = item?;
            if !key.starts_with(&prefix) {
                break;
            }
            sales.push(closing_sale(&key[prefix.len()..], &value)?);
        }
        Ok(sales)
    }

    /// Every order with at least two closing sales (close conflicts), by order id.
    pub fn orders_closed_twice(&self) -> Result<BTreeMap<String, Vec<ClosingSale>>, StorageError> {
        let mut all: BTreeMap<String, Vec<ClosingSale>> = BTreeMap::new();
        for item in self
            .db()
            .iterator_cf(self.cf(CF_ORDER_SALES), IteratorMode::Start)
        {
            let (key, value) = item?;
            let split = key
                .iter()
                .position(|b| *b == 0)
                .ok_or_else(|| corrupt(&key))?;
            let order_id = std::str::from_utf8(&key[..split]).map_err(|_| corrupt(&key))?;
            let sale = closing_sale(&key[split + 1..], &value)?;
            all.entry(order_id.to_owned()).or_default().push(sale);
        }
        all.retain(|_, sales| sales.len() > 1);
        Ok(all)
    }

    /// Raises (or updates) an alert, synced.
    pub fn raise_alert(&self, alert: &Alert) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(CF_ALERTS),
            keys::alert_key(&alert.kind, &alert.subject),
            alert.encode_to_vec(),
        );
        self.write_synced(batch)
    }

    /// Clears the alert of `kind` about `subject`, synced; true when there was one.
    ///
    /// # Errors
    /// RocksDB's: nothing was cleared.
    pub fn clear_alert(&self, kind: &str, subject: &str) -> Result<bool, StorageError> {
        let key = keys::alert_key(kind, subject);
        if self.db().get_cf(self.cf(CF_ALERTS), &key)?.is_none() {
            return Ok(false);
        }
        let mut batch = WriteBatch::default();
        batch.delete_cf(self.cf(CF_ALERTS), key);
        self.write_synced(batch)?;
        Ok(true)
    }

    /// Every alert, by key order (kind, then subject).
    pub fn alerts(&self) -> Result<Vec<Alert>, StorageError> {
        let mut alerts = Vec::new();
        for item in self
            .db()
            .iterator_cf(self.cf(CF_ALERTS), IteratorMode::Start)
        {
            let (key, value) = item?;
            alerts.push(
                Alert::decode(value.as_ref()).map_err(|e| StorageError::Corrupt {
                    what: format!("alert {}", String::from_utf8_lossy(&key)),
                    reason: e.to_string(),
                })?,
            );
        }
        Ok(alerts)
    }
}

fn closing_sale(entry_key: &[u8], value: &[u8]) -> Result<ClosingSale, StorageError> {
    let (device_id, seq) = keys::parse_entry_key(entry_key).ok_or_else(|| corrupt(entry_key))?;
    if value.len() != 12 {
        return Err(corrupt(entry_key));
    }
    let (physical, logical) = value.split_at(8);
    Ok(ClosingSale {
        device_id: device_id.to_owned(),
        seq,
        hlc_physical_ms: u64::from_be_bytes(physical.try_into().map_err(|_| corrupt(entry_key))?),
        hlc_logical: u32::from_be_bytes(logical.try_into().map_err(|_| corrupt(entry_key))?),
    })
}

fn corrupt(key: &[u8]) -> StorageError {
    StorageError::Corrupt {
        what: "order_sales key".into(),
        reason: hex::encode(key),
    }
}
