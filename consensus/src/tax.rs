//! The store's tax configuration in the replicated state: versioned schedules of rates per
//! tax class, each effective from a time on (a new version never changes what applied
//! before it: receipts already printed keep their rates).
//!
//! Rates are integer basis points (1 bp = 0.01 %; 2000 bp = 20 %), never floats, as VAT
//! rates are published with at most two decimals (e.g. 5.5 %, 8.1 %).
//!
//! A schedule's keys name the catalog's tax classes: `cold_food` sets the class's rate both
//! ways, `cold_food:eat_in` / `cold_food:take_away` one [`Consumption`] only (the suffixed
//! key wins over the plain one). Sales are priced with the schedule in force at their time
//! ([`TaxSchedule::rate_bp`] per class); a class the schedule does not name keeps the
//! catalog's rates, and before the first schedule's effective time every class does.

use crate::command::{Outcome, Refusal};
use crate::state::check_id;
use posmesh_domain::Consumption;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Highest accepted rate, basis points (100 %).
pub const RATE_BPS_MAX: u32 = 10_000;
/// Most tax classes in one schedule (keeps snapshots bounded).
pub const CLASSES_MAX: usize = 64;

/// One version of the store's tax rates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxSchedule {
    /// The version (assigned by whoever configures the store; strictly increasing).
    pub version: u64,
    /// From when these rates apply, ms since the Unix epoch (UTC).
    pub effective_at_ms: i64,
    /// Rate per tax class (e.g. `standard`, `reduced`, `zero`), basis points.
    pub rates_bps: BTreeMap<String, u32>,
    /// Log index at which the version was set.
    pub set_at_index: u64,
}

/// Suffix of a key that sets a class's take-away rate only.
pub const TAKE_AWAY_SUFFIX: &str = ":take_away";
/// Suffix of a key that sets a class's eat-in rate only.
pub const EAT_IN_SUFFIX: &str = ":eat_in";

/// The tax class a schedule key names and the consumption it is limited to, if any:
/// `cold_food` → (`cold_food`, `None`), `cold_food:eat_in` → (`cold_food`, eat-in).
pub fn split_key(key: &str) -> (&str, Option<Consumption>) {
    if let Some(class) = key.strip_suffix(TAKE_AWAY_SUFFIX) {
        (class, Some(Consumption::TakeAway))
    } else if let Some(class) = key.strip_suffix(EAT_IN_SUFFIX) {
        (class, Some(Consumption::EatIn))
    } else {
        (key, None)
    }
}

impl TaxSchedule {
    /// The rate this schedule sets for `tax_class` consumed `consumption`, basis points:
    /// the key `<class>:<eat_in|take_away>` if present, else `<class>`; `None` when it names
    /// neither (the catalog's rate stays).
    pub fn rate_bp(&self, tax_class: &str, consumption: Consumption) -> Option<u32> {
        let suffix = match consumption {
            Consumption::TakeAway => TAKE_AWAY_SUFFIX,
            Consumption::EatIn => EAT_IN_SUFFIX,
        };
        self.rates_bps
            .get(&format!("{tax_class}{suffix}"))
            .or_else(|| self.rates_bps.get(tax_class))
            .copied()
    }
}

/// Every tax schedule the store has had, oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxConfig {
    /// The schedules in version order (versions and effective times both increase).
    pub schedules: Vec<TaxSchedule>,
}

impl TaxConfig {
    /// The schedule in force at `at_ms` (ms since the Unix epoch): the last one whose
    /// effective time is not after it; `None` before the first.
    pub fn at(&self, at_ms: i64) -> Option<&TaxSchedule> {
        self.schedules
            .iter()
            .rev()
            .find(|s| s.effective_at_ms <= at_ms)
    }

    /// The newest schedule (possibly not yet in force).
    pub fn latest(&self) -> Option<&TaxSchedule> {
        self.schedules.last()
    }

    /// Applies a `SetTaxRates` committed at `index`. Refused (nothing changed) if the
    /// version or effective time would go back, or a class or rate is invalid.
    pub(crate) fn set(
        &mut self,
        index: u64,
        version: u64,
        effective_at_ms: i64,
        rates_bps: &BTreeMap<String, u32>,
    ) -> Result<Outcome, Refusal> {
        if rates_bps.is_empty() || rates_bps.len() > CLASSES_MAX {
            return Err(Refusal::InvalidTaxClasses {
                count: rates_bps.len(),
                max: CLASSES_MAX,
            });
        }
        for (class, rate) in rates_bps {
            check_id("tax_class", class)?;
            if *rate > RATE_BPS_MAX {
                return Err(Refusal::InvalidTaxRate {
                    tax_class: class.clone(),
                    rate_bps: *rate,
                    max_bps: RATE_BPS_MAX,
                });
            }
        }
        if let Some(current) = self.latest() {
            if version <= current.version || effective_at_ms < current.effective_at_ms {
                return Err(Refusal::TaxVersionNotNewer {
                    current_version: current.version,
                    current_effective_at_ms: current.effective_at_ms,
                    requested_version: version,
                    requested_effective_at_ms: effective_at_ms,
                });
            }
        }
        self.schedules.push(TaxSchedule {
            version,
            effective_at_ms,
            rates_bps: rates_bps.clone(),
            set_at_index: index,
        });
        Ok(Outcome::TaxRatesSet {
            version,
            effective_at_ms,
            set_at_index: index,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::command::{Outcome, Refusal, StoreCommand, StoreResponse};
    use crate::state::StoreState;
    use std::collections::BTreeMap;

    fn set(version: u64, at: i64, rates: &[(&str, u32)]) -> StoreCommand {
        StoreCommand::SetTaxRates {
            version,
            effective_at_ms: at,
            rates_bps: rates.iter().map(|(c, r)| ((*c).to_owned(), *r)).collect(),
        }
    }

    #[test]
    fn a_key_sets_a_class_both_ways_and_a_suffixed_key_one_way() {
        use super::{split_key, TaxSchedule};
        use posmesh_domain::Consumption::{EatIn, TakeAway};
        let schedule = TaxSchedule {
            version: 1,
            effective_at_ms: 0,
            rates_bps: [("hot", 500), ("cold", 0), ("cold:eat_in", 1250)]
                .iter()
                .map(|(c, r)| ((*c).to_owned(), *r))
                .collect(),
            set_at_index: 1,
        };
        assert_eq!(schedule.rate_bp("hot", TakeAway), Some(500));
        assert_eq!(schedule.rate_bp("hot", EatIn), Some(500));
        assert_eq!(schedule.rate_bp("cold", TakeAway), Some(0));
        assert_eq!(schedule.rate_bp("cold", EatIn), Some(1250));
        assert_eq!(schedule.rate_bp("other", EatIn), None);
        assert_eq!(split_key("cold:eat_in"), ("cold", Some(EatIn)));
        assert_eq!(split_key("cold:take_away"), ("cold", Some(TakeAway)));
        assert_eq!(split_key("cold"), ("cold", None));
    }

    #[test]
    fn versions_apply_from_their_time_and_never_go_back() {
        let mut state = StoreState::default();
        assert!(matches!(
            state.apply(1, &set(1, 1_000, &[("standard", 2000), ("zero", 0)])),
            StoreResponse::Applied(Outcome::TaxRatesSet { version: 1, .. })
        ));
        assert!(matches!(
            state.apply(2, &set(2, 5_000, &[("standard", 2100)])),
            StoreResponse::Applied(_)
        ));
        assert_eq!(state.tax.at(999), None);
        assert_eq!(state.tax.at(4_999).map(|s| s.version), Some(1));
        assert_eq!(state.tax.at(5_000).map(|s| s.version), Some(2));
        let before = state.clone();
        for (index, bad) in [
            set(2, 6_000, &[("standard", 2000)]),
            set(3, 4_000, &[("standard", 2000)]),
            set(3, 6_000, &[("standard", 10_001)]),
            set(3, 6_000, &[]),
            set(3, 6_000, &[("", 100)]),
        ]
        .iter()
        .enumerate()
        {
            let response = state.apply(10 + index as u64, bad);
            assert!(
                matches!(response, StoreResponse::Refused(_)),
                "{bad:?}: {response:?}"
            );
            assert_eq!(state, before, "a refusal changes nothing");
        }
        assert_eq!(
            state.apply(20, &set(3, 6_000, &[("standard", 10_001)])),
            StoreResponse::Refused(Refusal::InvalidTaxRate {
                tax_class: "standard".into(),
                rate_bps: 10_001,
                max_bps: 10_000,
            })
        );
        let many: BTreeMap<String, u32> = (0..65).map(|i| (format!("c{i}"), 0)).collect();
        assert!(matches!(
            state.apply(
                21,
                &StoreCommand::SetTaxRates {
                    version: 9,
                    effective_at_ms: 9_000,
                    rates_bps: many
                }
            ),
            StoreResponse::Refused(Refusal::InvalidTaxClasses { count: 65, .. })
        ));
    }
}
