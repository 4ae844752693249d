//! A device whose id the store knows with history it does not hold — its data directory
//! was wiped or replaced and it restarted under its old id and certificate — finds out and
//! stops selling under that id.
//!
//! It learns it from its peers ([`posmesh_sync::replication::own_identity_conflict`]): a
//! peer's version vector holds more of its entries than its journal has, or a peer relays
//! an attestation of its id under another key of an older incarnation. From then on
//! ([`IdentityConflictNotice`]) it logs an ERROR once, raises the manager alert
//! [`IDENTITY_CONFLICT_CODE`], shows it in `posmesh status`, and its sales API refuses
//! every write with 409 [`IDENTITY_CONFLICT_CODE`] saying what to do: enrol the till as a
//! new device with a new id (DESIGN: a replaced till gets a new id, never the old one).
//! Its peers keep the original key and refuse its new one
//! ([`posmesh_sync::replication::judge_key`]), so nothing it journals under the new key
//! enters the store's ledger.
//!
//! Before it has heard a peer (usually well under a second after a peer is reachable) it
//! cannot know, and takes sales: those stay in its own journal only (README, Devices).

use posmesh_sync::replication::IdentityConflict;
use std::sync::OnceLock;

/// Code of the alert, of the API refusal (409) and of the log line.
pub const IDENTITY_CONFLICT_CODE: &str = "device_identity_conflict";

/// This device's identity conflict as it learned it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityConflictReport {
    /// This device.
    pub device_id: String,
    /// What proves it.
    pub conflict: IdentityConflict,
    /// The peer that showed it.
    pub learned_from: String,
}

impl std::fmt::Display for IdentityConflictReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "device {} must not take sales under this id: {} (shown by {}). Its peers keep \
             the original key and refuse this journal. Stop it and enrol this till as a new \
             device with a new id (`posmesh ca issue … --device <new id>`, an empty data \
             directory): a replaced till never reuses an old id. The sales recorded under \
             this id before stay in the store's ledger",
            self.device_id, self.conflict, self.learned_from
        )
    }
}

/// Whether this device learned of an identity conflict, recorded once.
#[derive(Default)]
pub struct IdentityConflictNotice {
    report: OnceLock<IdentityConflictReport>,
}

impl IdentityConflictNotice {
    /// Records the conflict: the first time it is logged at ERROR and true is returned
    /// (the caller raises the alert); later records change nothing.
    pub fn record(&self, report: IdentityConflictReport) -> bool {
        if self.report.set(report).is_err() {
            return false;
        }
        if let Some(report) = self.report.get() {
            tracing::error!(code = IDENTITY_CONFLICT_CODE, device = %report.device_id, "{report}");
        }
        true
    }

    /// The conflict, once learned.
    pub fn get(&self) -> Option<&IdentityConflictReport> {
        self.report.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(peer: &str) -> IdentityConflictReport {
        IdentityConflictReport {
            device_id: "till-1".into(),
            conflict: IdentityConflict::HistoryMissing {
                peer_holds: 40,
                held_here: 0,
            },
            learned_from: peer.into(),
        }
    }

    #[test]
    fn the_first_conflict_learned_is_kept_and_says_what_to_do() {
        let notice = IdentityConflictNotice::default();
        assert_eq!(notice.get(), None);
        assert!(notice.record(report("till-2")));
        assert!(!notice.record(report("till-3")));
        let kept = notice.get().expect("recorded");
        assert_eq!(kept.learned_from, "till-2");
        let text = kept.to_string();
        for part in ["till-1", "40 entries", "till-2", "new device with a new id"] {
            assert!(text.contains(part), "{part}: {text}");
        }
    }
}
