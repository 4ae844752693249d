//! The store-and-forward queue and the sealed card data, as stored.
//!
//! The queue is derived from the journal, so it is as durable and as replicated as the
//! journal itself (peer escrow): [`index_entry`] runs for every entry written — by the local
//! writer and by the store of replicated batches, in the same synced `WriteBatch` — and
//! - puts a [`SafItem`] for every offline card tender of a sale (unless the payment was
//!   acknowledged already: an acknowledgement written by another device can arrive first);
//! - on an acknowledgement (`PaymentEvent` `advice_accepted` / `advice_declined`) deletes
//!   the item and the payment's sealed card data, and remembers the acknowledgement.
//!
//! Sealed card data lives in its own column family outside the hash chain, keyed by its
//! digest: written (synced) before the sale that refers to it, escrowed on peers, deleted
//! everywhere once acknowledged.

use super::keys::{self, CF_CARD_DATA, CF_SAF_ACKED, CF_SAF_QUEUE};
use super::{JournalStore, StorageError};
use posmesh_proto::journal::v1::{journal_entry::Payload, JournalEntry, TenderKind};
use posmesh_proto::storage::v1::SafItem;
use prost::Message;
use rocksdb::{IteratorMode, WriteBatch};

/// Payment event kind: the acquirer accepted the advice.
pub const ADVICE_ACCEPTED: &str = "advice_accepted";
/// Payment event kind: the acquirer declined the advice (a decline after forwarding).
pub const ADVICE_DECLINED: &str = "advice_declined";

/// Adds the queue changes implied by `entry` to `batch` (see the module doc).
pub(super) fn index_entry(
    store: &JournalStore,
    entry: &JournalEntry,
    batch: &mut WriteBatch,
) -> Result<(), StorageError> {
    match &entry.payload {
        Some(Payload::Sale(sale)) => {
            for (index, tender) in sale.tenders.iter().enumerate() {
                if tender.kind != TenderKind::Card as i32 || !tender.offline {
                    continue;
                }
                let index = u32::try_from(index).unwrap_or(u32::MAX);
                let key = keys::saf_key(&entry.device_id, entry.seq, index);
                if store
                    .db()
                    .get_cf(store.cf(CF_SAF_ACKED), keys::saf_acked_payment_key(&key))?
                    .is_some()
                {
                    continue;
                }
                let item = SafItem {
                    device_id: entry.device_id.clone(),
                    seq: entry.seq,
                    tender_index: index,
                    amount_minor: tender.amount_minor,
                    currency: sale.currency.clone(),
                    taken_at_ms: entry.occurred_at_ms,
                    card_data_digest: tender.card_data_digest.clone(),
                    terminal_id: tender.terminal_id.clone(),
                    payment_sale_id: tender.payment_sale_id.clone(),
                    payment_attempt: tender.payment_attempt,
                    masked_pan: tender.masked_pan.clone(),
                };
                batch.put_cf(store.cf(CF_SAF_QUEUE), key, item.encode_to_vec());
            }
        }
        Some(Payload::Payment(event))
            if event.kind == ADVICE_ACCEPTED || event.kind == ADVICE_DECLINED =>
        {
            let key = keys::saf_key(&event.sale_device_id, event.sale_seq, event.tender_index);
            batch.delete_cf(store.cf(CF_SAF_QUEUE), &key);
            batch.put_cf(
                store.cf(CF_SAF_ACKED),
                keys::saf_acked_payment_key(&key),
                [],
            );
            if !event.card_data_digest.is_empty() {
                batch.delete_cf(store.cf(CF_CARD_DATA), event.card_data_digest.as_bytes());
                batch.put_cf(
                    store.cf(CF_SAF_ACKED),
                    keys::saf_acked_digest_key(&event.card_data_digest),
                    [],
                );
            }
        }
        _ => {}
    }
    Ok(())
}

impl JournalStore {
    /// Up to `limit` queued offline payments (every device's), in key order (device, seq).
    pub fn saf_items(&self, limit: usize) -> Result<Vec<SafItem>, StorageError> {
        let mut items = Vec::new();
        for row in self
            .db()
            .iterator_cf(self.cf(CF_SAF_QUEUE), IteratorMode::Start)
        {
            if items.len() >= limit {
                break;
            }
            let (key, value) = row?;
            items.push(
                SafItem::decode(value.as_ref()).map_err(|e| StorageError::Corrupt {
                    what: format!("saf item {}", hex::encode(&key)),
                    reason: e.to_string(),
                })?,
            );
        }
        Ok(items)
    }

    /// How many payments are queued (every device's), and for how many this node holds the
    /// sealed card data.
    pub fn saf_counts(&self) -> Result<(u64, u64), StorageError> {
        let (mut queued, mut held) = (0, 0);
        for row in self
            .db()
            .iterator_cf(self.cf(CF_SAF_QUEUE), IteratorMode::Start)
        {
            let (_, value) = row?;
            let item = SafItem::decode(value.as_ref()).map_err(|e| StorageError::Corrupt {
                what: "saf item".into(),
                reason: e.to_string(),
            })?;
            queued += 1;
            if self.card_data(&item.card_data_digest)?.is_some() {
                held += 1;
            }
        }
        Ok((queued, held))
    }

    /// `device_id`'s unforwarded offline total (minor units) and its oldest payment's time
    /// (ms since the Unix epoch).
    pub fn saf_exposure(&self, device_id: &str) -> Result<(i64, Option<i64>), StorageError> {
        let prefix = keys::device_prefix(device_id);
        let mut total: i64 = 0;
        let mut oldest: Option<i64> = None;
        let iter = self.db().iterator_cf(
            self.cf(CF_SAF_QUEUE),
            IteratorMode::From(&prefix, rocksdb::Direction::Forward),
        );
        for row in iter {
            let (key, value) = row?;
            if !key.starts_with(&prefix) {
                break;
            }
            let item = SafItem::decode(value.as_ref()).map_err(|e| StorageError::Corrupt {
                what: "saf item".into(),
                reason: e.to_string(),
            })?;
            total = total.saturating_add(item.amount_minor);
            oldest = Some(oldest.map_or(item.taken_at_ms, |o| o.min(item.taken_at_ms)));
        }
        Ok((total, oldest))
    }

    /// Stores sealed card data under its digest, synced (before the sale that refers to
    /// it is journaled). A blob whose payment was acknowledged already is not kept.
    pub fn put_card_data(&self, digest: &str, sealed: &[u8]) -> Result<bool, StorageError> {
        if self.card_data_acked(digest)? {
            return Ok(false);
        }
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_CARD_DATA), digest.as_bytes(), sealed);
        self.write_synced(batch)?;
        Ok(true)
    }

    /// The sealed card data stored under `digest`.
    pub fn card_data(&self, digest: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.db().get_cf(self.cf(CF_CARD_DATA), digest.as_bytes())?)
    }

    /// Deletes sealed card data (a blob whose sale was never journaled), synced.
    pub fn delete_card_data(&self, digest: &str) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        batch.delete_cf(self.cf(CF_CARD_DATA), digest.as_bytes());
        self.write_synced(batch)
    }

    /// Whether the acquirer acknowledged (accepted or declined) the forwarded advice of
    /// offline tender `tender_index` of sale `(device_id, seq)`.
    pub fn saf_payment_acked(
        &self,
        device_id: &str,
        seq: u64,
        tender_index: u32,
    ) -> Result<bool, StorageError> {
        let key = keys::saf_key(device_id, seq, tender_index);
        Ok(self
            .db()
            .get_cf(self.cf(CF_SAF_ACKED), keys::saf_acked_payment_key(&key))?
            .is_some())
    }

    /// Whether the payment of `digest` was acknowledged by the acquirer.
    pub fn card_data_acked(&self, digest: &str) -> Result<bool, StorageError> {
        Ok(self
            .db()
            .get_cf(self.cf(CF_SAF_ACKED), keys::saf_acked_digest_key(digest))?
            .is_some())
    }

    /// Deletes every stored blob whose payment was acknowledged (a blob that arrived from a
    /// peer after the acknowledgement); returns how many.
    pub fn purge_acked_card_data(&self) -> Result<usize, StorageError> {
        let mut batch = WriteBatch::default();
        let mut purged = 0;
        for row in self
            .db()
            .iterator_cf(self.cf(CF_CARD_DATA), IteratorMode::Start)
        {
            let (key, _) = row?;
            let digest = String::from_utf8_lossy(&key).into_owned();
            if self.card_data_acked(&digest)? {
                batch.delete_cf(self.cf(CF_CARD_DATA), &key);
                purged += 1;
            }
        }
        if purged > 0 {
            self.write_synced(batch)?;
        }
        Ok(purged)
    }

    /// Every stored card-data digest (for escrow offers), at most `limit`.
    pub fn card_data_digests(&self, limit: usize) -> Result<Vec<String>, StorageError> {
        let mut digests = Vec::new();
        for row in self
            .db()
            .iterator_cf(self.cf(CF_CARD_DATA), IteratorMode::Start)
        {
            if digests.len() >= limit {
                break;
            }
            let (key, _) = row?;
            digests.push(String::from_utf8_lossy(&key).into_owned());
        }
        Ok(digests)
    }
}

impl JournalStore {
    /// Whether this device sent `item`'s advice before (its resends are 0221 repeats).
    pub fn saf_sent(&self, item: &SafItem) -> Result<bool, StorageError> {
        Ok(self
            .db()
            .get_cf(self.cf(CF_SAF_ACKED), sent_key(item))?
            .is_some())
    }

    /// Records, in one synced write, that this device is about to send the advices of
    /// `items`; answers for each whether it was sent before (its send is a 0221 repeat).
    pub fn mark_saf_sent_all(&self, items: &[SafItem]) -> Result<Vec<bool>, StorageError> {
        let mut batch = WriteBatch::default();
        let mut repeats = Vec::with_capacity(items.len());
        for item in items {
            let repeat = self.saf_sent(item)?;
            if !repeat {
                batch.put_cf(self.cf(CF_SAF_ACKED), sent_key(item), []);
            }
            repeats.push(repeat);
        }
        if repeats.iter().any(|r| !r) {
            self.write_synced(batch)?;
        }
        Ok(repeats)
    }
}

impl JournalStore {
    /// Takes back the "sent" mark of `item` (its advice never left this device), synced.
    pub fn unmark_saf_sent(&self, item: &SafItem) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        batch.delete_cf(self.cf(CF_SAF_ACKED), sent_key(item));
        self.write_synced(batch)
    }
}

fn sent_key(item: &SafItem) -> Vec<u8> {
    let mut key = b"s".to_vec();
    key.extend_from_slice(&keys::saf_key(&item.device_id, item.seq, item.tender_index));
    key
}
