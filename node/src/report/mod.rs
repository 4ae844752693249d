//! Reports computed from the journal.
//!
//! - [`day_totals`]: takings per business date (sales, items, tax, tenders, refunds, voids).
//! - [`z_report`]: the Z-report of a day closed through the store's Raft group.
//! - [`money_text`]: amounts as text for people, by the store's ISO 4217 currency.

pub mod day_totals;
pub mod money_text;
pub mod z_report;

use crate::storage::journal_store::decode_entry;
use crate::storage::{JournalStore, StorageError};
use day_totals::{DayTotals, DayTotalsBuilder};

/// Totals per business date over every device's entries in `store`.
pub fn journal_day_totals(store: &JournalStore) -> Result<Vec<DayTotals>, StorageError> {
    let mut builder = DayTotalsBuilder::new();
    let mut failure = None;
    for device in store.devices()? {
        store.scan_device(&device, 0, |seq, bytes| {
            match decode_entry(&device, seq, bytes) {
                Ok(entry) => {
                    builder.add(&entry, |r| store.entry(&r.device_id, r.seq).ok().flatten());
                    true
                }
                Err(error) => {
                    failure = Some(error);
                    false
                }
            }
        })?;
        if let Some(error) = failure.take() {
            return Err(error);
        }
    }
    Ok(builder.finish())
}
