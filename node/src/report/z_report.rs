//! The Z-report of a closed business day: totals over exactly the entries inside the day
//! close's consistent cut — the ledger's version vector the store's Raft group committed
//! when the day was closed — so every device computes the same report from the same
//! entries, whatever it received later. Entries dated that day but beyond the cut (a
//! partitioned till's sales that arrived after the close) are counted apart as late
//! entries, and the next report carries them: an entry dated an earlier closed day X that
//! was outside X's cut appears, labelled late, in the report of the first close after X's
//! (in Raft log order) whose cut holds it — so every late entry is carried exactly once, and
//! every device carries the same ones (the closes and their cuts are Raft-committed).

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
    /// Entries dated earlier closed days that missed their own day's cut and are first held
    /// by this one ("device/seq"): carried into this report, labelled late.
    #[serde(default)]
    pub carried_late_entries: Vec<String>,
    /// Their totals, one per original business date, ascending.
    #[serde(default)]
    pub carried_late_totals: Vec<DayTotals>,
}

/// One Raft-committed day close: its log index and its cut.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseCut {
    /// Raft log index of the close.
    pub closed_at_index: u64,
    /// Per device, the last journal seq included.
    pub cut: BTreeMap<String, u64>,
}

impl CloseCut {
    fn holds(&self, device: &str, seq: u64) -> bool {
        seq <= self.cut.get(device).copied().unwrap_or(0)
    }
}

/// Whether the entry `(device, seq)` dated `date` is a late entry of an earlier close that
/// the close `this` carries: `date` was closed before `this` (log order) without the entry,
/// and no close between the two holds it.
fn carried_by(
    this: &CloseCut,
    closes: &BTreeMap<String, CloseCut>,
    date: &str,
    device: &str,
    seq: u64,
) -> bool {
    let Some(own) = closes.get(date) else {
        return false; // its day is not closed: its own Z will count it
    };
    if own.closed_at_index >= this.closed_at_index
        || own.holds(device, seq)
        || !this.holds(device, seq)
    {
        return false;
    }
    !closes.values().any(|other| {
        other.closed_at_index > own.closed_at_index
            && other.closed_at_index < this.closed_at_index
            && other.holds(device, seq)
    })
}

/// Computes the Z-report of `business_date`, one of the store's committed `closes` (every
/// day close, by business date), from the entries `store` holds.
///
/// # Errors
/// Storage errors, undecodable entries; [`StorageError::Corrupt`] when `business_date` is
/// not among `closes`.
pub fn z_report(
    store: &JournalStore,
    business_date: &str,
    closes: &BTreeMap<String, CloseCut>,
) -> Result<ZReport, StorageError> {
    let this = closes
        .get(business_date)
        .ok_or_else(|| StorageError::Corrupt {
            what: format!("day close {business_date}"),
            reason: "not among the store's closes".into(),
        })?;
    let (closed_at_index, cut) = (this.closed_at_index, &this.cut);
    let mut inside = DayTotalsBuilder::new();
    let mut late = DayTotalsBuilder::new();
    let mut late_entries = Vec::new();
    let mut carried = DayTotalsBuilder::new();
    let mut carried_entries = Vec::new();
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
                if entry.business_date != business_date
                    && carried_by(this, closes, &entry.business_date, &device, seq)
                {
                    carried.add(&entry, original);
                    carried_entries.push(format!("{device}/{seq}"));
                }
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
        carried_late_entries: carried_entries,
        carried_late_totals: carried
            .finish()
            .into_iter()
            .filter(|d| closes.contains_key(&d.business_date) && d.business_date != business_date)
            .collect(),
    })
}
