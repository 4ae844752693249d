//! A wiped device (its id has history it does not hold, [`super::identity_conflict`])
//! refuses the entries of its own id that its peers push at every anti-entropy round. That
//! is already an alert (`device_identity_conflict`); the refusal is logged at WARN once per
//! peer, and at DEBUG after that, instead of at every round.

use std::collections::BTreeSet;
use std::sync::Mutex;

/// Peers whose pushes of this device's own entries were refused and logged.
#[derive(Default)]
pub struct OwnIdRefusals {
    logged: Mutex<BTreeSet<String>>,
}

impl OwnIdRefusals {
    /// True the first time a refusal of this device's own entries from `peer` is seen.
    pub fn first(&self, peer: &str) -> bool {
        self.logged
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(peer.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_peer_is_logged_once() {
        let refusals = OwnIdRefusals::default();
        assert!(refusals.first("till-2"));
        assert!(!refusals.first("till-2"));
        assert!(refusals.first("till-3"));
        assert!(!refusals.first("till-3"));
    }
}
