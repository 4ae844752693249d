//! Which device proposes a catalog the cloud published (sans-IO: fed the release version,
//! whether this device leads and the time).
//!
//! Every device with an uplink hears of a new release in its next round, within about a
//! second of each other. If each proposed it, the store's Raft log would take one
//! `PublishCatalog` entry per device — up to 1 MiB each ([`posmesh_consensus::
//! CATALOG_TOML_BYTES_MAX`]), fsynced on every voter — of which all but the first are
//! refused as not newer. So the leader's uplink proposes at once, and a follower's only
//! when the release is still not committed [`FOLLOWER_GRACE`] after it first heard of it
//! (the leader has no uplink, or its uplink is down): the catalog still arrives, one
//! entry in the common case.

use std::time::{Duration, Instant};

/// How long a follower leaves a release to the leader's uplink before proposing it
/// itself: ten of the uplink's idle rounds.
pub const FOLLOWER_GRACE: Duration = Duration::from_secs(10);

/// The release this device has heard of and when it first did.
#[derive(Debug, Default)]
pub struct CatalogProposal {
    heard: Option<(u64, Instant)>,
}

impl CatalogProposal {
    /// Whether this device should propose release `version` now (`leads`: it is the Raft
    /// leader). A newer version than the last one heard starts its own grace.
    pub fn should_propose(&mut self, version: u64, leads: bool, now: Instant) -> bool {
        let first_heard = match self.heard {
            Some((heard, at)) if heard == version => at,
            _ => {
                self.heard = Some((version, now));
                now
            }
        };
        leads || now.saturating_duration_since(first_heard) >= FOLLOWER_GRACE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leader_proposes_at_once_a_follower_after_the_grace() {
        let start = Instant::now();
        let mut leader = CatalogProposal::default();
        assert!(leader.should_propose(2, true, start));
        let mut follower = CatalogProposal::default();
        assert!(!follower.should_propose(2, false, start));
        assert!(!follower.should_propose(2, false, start + Duration::from_secs(9)));
        assert!(follower.should_propose(2, false, start + FOLLOWER_GRACE));
    }

    #[test]
    fn a_newer_release_starts_its_own_grace_and_leadership_counts_when_asked() {
        let start = Instant::now();
        let mut device = CatalogProposal::default();
        assert!(!device.should_propose(2, false, start));
        // Version 3 appears 11 s later: its grace starts then, not at version 2's.
        let later = start + Duration::from_secs(11);
        assert!(!device.should_propose(3, false, later));
        assert!(!device.should_propose(3, false, later + Duration::from_secs(5)));
        // This device became the leader meanwhile: it proposes at once.
        assert!(device.should_propose(3, true, later + Duration::from_secs(6)));
        assert!(device.should_propose(3, false, later + FOLLOWER_GRACE));
    }
}
