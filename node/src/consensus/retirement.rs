//! A device retired from the store finds out. A manager's `POST
//! /v1/store/devices/{device}/remove` retires the device through Raft
//! ([`posmesh_consensus::StoreCommand::RetireDevice`]) and the leader takes it out of the
//! membership; from then on the retired device gets no more log entries, so on its own it
//! would go on with a frozen copy of the store's decisions (stale tax rates and catalog,
//! the old voters in `posmesh status`). It learns of its retirement in either of two
//! ways, whichever comes first:
//!
//! - its own retirement is in the state it applied (the `RetireDevice` entry commits
//!   before the membership change that drops the device, so a device that was connected
//!   then applies it);
//! - a peer refuses one of its Raft calls — a vote or pre-vote once it hears no leader, a
//!   forwarded write or read — with [`super::wire::RaftReply::Retired`] (every device that
//!   applied the retirement refuses a retired caller);
//! - a peer closes its mesh connection as retired ([`crate::peers::retired_gate`]): this
//!   works even with a wiped data directory, which holds no Raft state.
//!
//! A device restarted after its removal checks the state it applied before its API opens.
//!
//! Once retired, a device logs an ERROR once, raises the manager alert
//! [`RETIRED_CODE`] (listener set by the runtime), shows it in `posmesh status`, and its
//! sales API refuses every write, sales included, with 403 `device_retired`: the design
//! gives a replaced till a new id, so new sales under a retired id must not be taken
//! silently. The mesh refuses its id from the retirement's committed point on
//! ([`crate::peers::retired_gate`]): sales it recorded before stay in the store's ledger as
//! far as they had replicated, the rest in its own journal.

use serde::{Deserialize, Serialize};
use std::sync::{Arc, OnceLock};

/// Code of the alert, of the API refusal and of the log line.
pub const RETIRED_CODE: &str = "device_retired";

/// Start of the text of a store-wide write or read refused because this device is retired
/// (the API answers 403 [`RETIRED_CODE`] for it).
pub const DEVICE_RETIRED: &str = "device retired";

/// This device's retirement as it learned it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retirement {
    /// The retired device (this one).
    pub device_id: String,
    /// Raft log index of the `RetireDevice` entry.
    pub retired_at_index: u64,
    /// How it was learned: `applied here` or `refused by <peer>`.
    pub learned_from: String,
}

impl std::fmt::Display for Retirement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} was removed from the store by a manager (retired at Raft log index {}; {}): it \
             takes no more sales or store-wide decisions, and its copy of the store's \
             decisions (catalog, tax rates, members) is frozen. Stop it; to use this till \
             again, enrol it as a new device with a new id (`posmesh ca issue … --device \
             <new id>`, an empty data directory). Sales recorded here before stay in the \
             store's ledger",
            self.device_id, self.retired_at_index, self.learned_from
        )
    }
}

/// Told once, when this device learns it was retired (raises the manager's alert).
pub type RetirementListener = Arc<dyn Fn(&Retirement) + Send + Sync>;

/// Whether this device was retired, recorded once.
#[derive(Default)]
pub struct RetirementNotice {
    retired: OnceLock<Retirement>,
    listener: OnceLock<RetirementListener>,
}

impl RetirementNotice {
    /// Sets who is told of the retirement (once).
    pub fn on_retired(&self, listener: RetirementListener) {
        let _ = self.listener.set(listener);
    }

    /// Records the retirement: the first time it is logged at ERROR and passed to the
    /// listener; later records change nothing. True when this was the first.
    pub fn record(&self, retirement: Retirement) -> bool {
        if self.retired.set(retirement).is_err() {
            return false;
        }
        if let Some(retirement) = self.retired.get() {
            tracing::error!(code = RETIRED_CODE, device = %retirement.device_id, "{retirement}");
            if let Some(listener) = self.listener.get() {
                listener(retirement);
            }
        }
        true
    }

    /// The retirement, once learned.
    pub fn get(&self) -> Option<&Retirement> {
        self.retired.get()
    }

    /// The text of a store-wide write or read refused because this device is retired.
    pub fn refusal(&self) -> Option<String> {
        self.get()
            .map(|retirement| format!("{DEVICE_RETIRED}: {retirement}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn retirement(learned_from: &str) -> Retirement {
        Retirement {
            device_id: "till-3".into(),
            retired_at_index: 42,
            learned_from: learned_from.into(),
        }
    }

    #[test]
    fn the_first_retirement_learned_is_kept_and_told_once() {
        let notice = RetirementNotice::default();
        assert_eq!(notice.get(), None);
        assert_eq!(notice.refusal(), None);
        let told = Arc::new(Mutex::new(Vec::new()));
        let seen = told.clone();
        notice.on_retired(Arc::new(move |r: &Retirement| {
            seen.lock().expect("lock").push(r.learned_from.clone());
        }));
        assert!(notice.record(retirement("applied here")));
        assert!(!notice.record(retirement("refused by till-1")));
        assert_eq!(*told.lock().expect("lock"), vec!["applied here"]);
        assert_eq!(notice.get(), Some(&retirement("applied here")));
        let refusal = notice.refusal().expect("refused");
        assert!(refusal.starts_with(DEVICE_RETIRED), "{refusal}");
        assert!(
            refusal.contains("till-3") && refusal.contains("index 42"),
            "{refusal}"
        );
        assert!(refusal.contains("new device with a new id"), "{refusal}");
    }
}
