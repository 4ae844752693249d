//! The chain report: for every store the cloud holds, sales per business day and tender,
//! the store's last contact, and its unforwarded offline card payments. Computed from the
//! ingested journal entries with the same [`DayTotalsBuilder`] the devices use, so a day's
//! totals in the cloud equal the devices' totals of the same entries.

use super::store::{CloudStore, CloudStoreError};
use crate::ledger::sale_ref::SaleRef;
use crate::report::day_totals::{DayTotals, DayTotalsBuilder};
use posmesh_proto::journal::v1::{journal_entry::Payload, JournalEntry, TenderKind};
use prost::Message;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Entries read per storage call while building a report.
const REPORT_READ_ENTRIES_MAX: usize = 4_096;

/// `PaymentEvent.kind`s that settle an offline card payment: the acquirer acknowledged the
/// forwarded advice, accepting or declining it — either way it is no longer unforwarded.
pub const PAYMENT_FORWARDED_KINDS: [&str; 2] = [
    crate::storage::saf::ADVICE_ACCEPTED,
    crate::storage::saf::ADVICE_DECLINED,
];

/// The chain report (`GET /v1/reports/chain`, `posmesh report chain`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChainReport {
    /// One per store the cloud has heard from, by store id.
    pub stores: Vec<StoreReport>,
}

/// One store in the chain report.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoreReport {
    /// Store id.
    pub store_id: String,
    /// Unix ms of the last call from any device of the store.
    pub last_contact_ms: i64,
    /// Journal entries held, all devices.
    pub entries: u64,
    /// The cloud's version vector of the store: device → highest seq held.
    pub version_vector: BTreeMap<String, u64>,
    /// Sales per business day; tenders in `tenders_minor` (minor units of the store
    /// currency), by day.
    pub days: Vec<DayTotals>,
    /// Card payments accepted offline (sale tenders of kind card with `offline` set) that
    /// the cloud holds no acknowledgement for ([`PAYMENT_FORWARDED_KINDS`]).
    pub unforwarded_offline_card_payments: u64,
}

impl ChainReport {
    /// The store `store_id`, if the cloud holds it.
    pub fn store(&self, store_id: &str) -> Option<&StoreReport> {
        self.stores.iter().find(|s| s.store_id == store_id)
    }
}

/// Builds the chain report from `store`.
///
/// # Errors
/// Storage errors; a stored entry that does not decode.
pub fn chain_report(store: &dyn CloudStore) -> Result<ChainReport, CloudStoreError> {
    let mut report = ChainReport::default();
    for contact in store.stores()? {
        report.stores.push(store_report(
            store,
            &contact.store_id,
            contact.last_contact_ms,
        )?);
    }
    Ok(report)
}

fn decode(
    store_id: &str,
    device: &str,
    seq: u64,
    bytes: &[u8],
) -> Result<JournalEntry, CloudStoreError> {
    JournalEntry::decode(bytes).map_err(|e| CloudStoreError::Corrupt {
        what: format!("entry {store_id}/{device}/{seq}"),
        reason: e.to_string(),
    })
}

fn store_report(
    store: &dyn CloudStore,
    store_id: &str,
    last_contact_ms: i64,
) -> Result<StoreReport, CloudStoreError> {
    let vector = store.version_vector(store_id)?;
    let mut builder = DayTotalsBuilder::new();
    let mut entries = 0u64;
    let mut offline = BTreeSet::new();
    let mut forwarded = BTreeSet::new();
    let mut version_vector = BTreeMap::new();
    for (device, _, held) in vector.missing_from(&Default::default()) {
        version_vector.insert(device.clone(), held);
        let mut after = 0;
        while after < held {
            let chunk = store.entries_after(store_id, &device, after, REPORT_READ_ENTRIES_MAX)?;
            let Some((last, _)) = chunk.last() else {
                break;
            };
            after = *last;
            for (seq, bytes) in chunk {
                let entry = decode(store_id, &device, seq, &bytes)?;
                entries += 1;
                match &entry.payload {
                    Some(Payload::Sale(sale)) => {
                        for (index, tender) in sale.tenders.iter().enumerate() {
                            if tender.kind == TenderKind::Card as i32 && tender.offline {
                                let index = u32::try_from(index).unwrap_or(u32::MAX);
                                offline.insert((entry.device_id.clone(), entry.seq, index));
                            }
                        }
                    }
                    Some(Payload::Payment(payment))
                        if PAYMENT_FORWARDED_KINDS.contains(&payment.kind.as_str()) =>
                    {
                        forwarded.insert((
                            payment.sale_device_id.clone(),
                            payment.sale_seq,
                            payment.tender_index,
                        ));
                    }
                    _ => {}
                }
                builder.add(&entry, |sale: &SaleRef| {
                    let seq = sale.seq.checked_sub(1)?;
                    let found = store
                        .entries_after(store_id, &sale.device_id, seq, 1)
                        .ok()?;
                    let (found_seq, bytes) = found.into_iter().next()?;
                    (found_seq == sale.seq)
                        .then(|| JournalEntry::decode(bytes.as_slice()).ok())
                        .flatten()
                });
            }
        }
    }
    Ok(StoreReport {
        store_id: store_id.to_owned(),
        last_contact_ms,
        entries,
        version_vector,
        days: builder.finish(),
        unforwarded_offline_card_payments: offline.difference(&forwarded).count() as u64,
    })
}
