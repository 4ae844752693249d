//! [`TaxInForce`]: the VAT rates that price a sale — the store-wide tax version committed
//! through the Raft group and in force at the sale's time, else the catalog's own rates.
//!
//! Sales never wait on Raft: the schedule is read from this device's locally applied
//! state (no linearizable read). A device that has not yet applied the newest version
//! prices with the newest it has applied; the sale records which version priced it
//! (`Sale.tax_version`, 0 for the catalog's rates) and each line's rate (`tax_rate_bp`), so
//! such a sale can be found and corrected by a refund if it matters.

use crate::consensus::RaftService;
use posmesh_consensus::tax::TaxSchedule;
use posmesh_domain::Catalog;
use std::sync::{Arc, Mutex};

/// The last catalog built with a tax version's rates, reused while neither changes.
struct Taxed {
    /// The catalog the rates were applied to.
    base: Arc<Catalog>,
    /// The tax version applied.
    version: u64,
    /// The result.
    taxed: Arc<Catalog>,
}

/// A cache of the catalog with the committed tax rates applied.
#[derive(Default)]
pub struct TaxInForce {
    last: Mutex<Option<Taxed>>,
}

impl TaxInForce {
    /// `catalog` with the rates of the tax version in force at `at_ms` (ms since the Unix
    /// epoch, the sale's time) as applied on this device; `catalog` itself when there is
    /// no Raft group or no version is in force yet.
    pub fn apply(
        &self,
        raft: Option<&RaftService>,
        catalog: Arc<Catalog>,
        at_ms: i64,
    ) -> Arc<Catalog> {
        let Some(raft) = raft else {
            return catalog;
        };
        let Some(version) = raft.read(|state| state.tax.at(at_ms).map(|s| s.version)) else {
            return catalog;
        };
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(cached) = last.as_ref() {
            if cached.version == version && Arc::ptr_eq(&cached.base, &catalog) {
                return cached.taxed.clone();
            }
        }
        let schedule = raft.read(|state| {
            state
                .tax
                .schedules
                .iter()
                .find(|s| s.version == version)
                .cloned()
        });
        let Some(schedule) = schedule else {
            return catalog; // replaced by a snapshot between the two reads: next sale
        };
        let taxed = match with_schedule(&catalog, &schedule) {
            Ok(taxed) => Arc::new(taxed),
            Err(error) => {
                // The state machine refuses rates above 100 %, so this means a bug.
                tracing::error!(version, %error, "committed tax rates unusable; keeping the catalog's");
                return catalog;
            }
        };
        tracing::info!(version, "pricing with the tax rates committed through Raft");
        *last = Some(Taxed {
            base: catalog,
            version,
            taxed: taxed.clone(),
        });
        taxed
    }
}

/// `catalog` with `schedule`'s rates for the classes it names (see
/// [`posmesh_consensus::tax`] for the keys).
///
/// # Errors
/// A rate above 100 % (the state machine never commits one).
pub fn with_schedule(
    catalog: &Catalog,
    schedule: &TaxSchedule,
) -> Result<Catalog, posmesh_domain::CatalogError> {
    catalog.with_tax_rates(schedule.version, |class, consumption| {
        schedule.rate_bp(class, consumption)
    })
}

/// The keys of a tax schedule that name no tax class of `catalog` (checked before a new
/// version is proposed: such a key would change nothing).
pub fn unknown_classes<'a>(
    catalog: &Catalog,
    keys: impl IntoIterator<Item = &'a String>,
) -> Vec<String> {
    keys.into_iter()
        .filter(|key| {
            let (class, _) = posmesh_consensus::tax::split_key(key);
            catalog.tax_class(class).is_none()
        })
        .cloned()
        .collect()
}
