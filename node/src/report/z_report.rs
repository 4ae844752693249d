//! The Z-report of a closed business day: totals over exactly the entries inside the day
//! close's consistent cut — the ledger's version vector the store's Raft group committed
//! when the day was closed — so every device computes the same report from the same
//! entries, whatever it received later. Entries dated that day but beyond the cut (a
//! partitioned till's sales that arrived after the close) are counted apart as late
//! entries, for the next report to carry.

use super::day_totals::{DayTotals, DayTotalsBuilder};
use crate::storage::journal_store::decode_entry;
use crate::storage::{JournalStore, StorageError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A Z-report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ZReport {
    /// The business date, YYYY-MM-DD.
    pub business_date: String,
    /// Raft log index at which the day was closed.
    pub closed_at_index: u64,
    /// The cut: per device, the last journal seq included.
    pub cut: BTreeMap<String, u64>,
    /// True when this device holds every entry inside the cut (otherwise the report is
    /// incomplete here until replication catches up).
    pub complete: bool,
    /// Totals of the entries inside the cut.
    pub totals: DayTotals,
    /// Entries dated this day beyond the cut ("device/seq"), in device and seq order.
    pub late_entries: Vec<String>,
    /// Totals of the late entries.
    pub late_totals: DayTotals,
}

/// Computes the Z-report of `business_date` closed at `closed_at_index` with `cut` from
/// the entries `store` holds.
///
/// # Errors
/// Storage errors, undecodable entries.
pub fn z_report(
    store: &JournalStore,
    business_date: &str,
    closed_at_index: u64,
    cut: &BTreeMap<String, u64>,
) -> Result<ZReport, StorageError> {
    let mut inside = DayTotalsBuilder::new();
    let mut late = DayTotalsBuilder::new();
    let mut late_entries = Vec::new();
    let held = store.stored_version_vector()?;
    let complete = cut
        .iter()
        .all(|(device, seq)| held.get(device).copied().unwrap_or(0) >= *seq);
    let mut failure = None;
    for device in store.devices()? {
        let limit = cut.get(&device).copied().unwrap_or(0);
        store.scan_device(&device, 0, |seq, bytes| {
            let entry = match decode_entry(&device, seq, bytes) {
                Ok(entry) => entry,
                Err(error) => {
                    failure = Some(error);
                    return false;
                }
            };
            let original = |r: &crate::ledger::sale_ref::SaleRef| {
                store.entry(&r.device_id, r.seq).ok().flatten()
            };
            if seq <= limit {
                inside.add(&entry, original);
            } else if entry.business_date == business_date {
                late.add(&entry, original);
                late_entries.push(format!("{device}/{seq}"));
            }
            true
        })?;
        if let Some(error) = failure.take() {
            return Err(error);
        }
    }
    let day = |days: Vec<DayTotals>| {
        days.into_iter()
            .find(|d| d.business_date == business_date)
            .unwrap_or_else(|| DayTotals {
                business_date: business_date.to_owned(),
                ..DayTotals::default()
            })
    };
    Ok(ZReport {
        business_date: business_date.to_owned(),
        closed_at_index,
        cut: cut.clone(),
        complete,
        totals: day(inside.finish()),
        late_entries,
        late_totals: day(late.finish()),
    })
}
