//! [`DiscoveryTracker`]: turns mdns-sd's service events into [`DiscoveryEvent`]s.
//!
//! mdns-sd reports `ServiceResolved` again and again for the same instance (as A/AAAA,
//! SRV and TXT records arrive or are refreshed) and `ServiceRemoved` by full instance
//! name only. The tracker remembers, per full name, the peer last reported, so that:
//! - a resolution identical to the last one emits nothing (upsert, deduplicated);
//! - a changed one emits `Upserted` (and `Removed` first if the instance now names another
//!   device);
//! - a resolution we now ignore (other store, new version, broken TXT) or a removal
//!   emits `Removed` for the device it used to announce;
//! - a device announced under several full names (an mDNS name conflict renamed one,
//!   or two boxes claim one id) is reported with its most recently changed announcement
//!   and removed only when its last name goes. Which of two competing announcements is
//!   genuine is not decided here: mTLS decides.
//!
//! Pure: no clock, no I/O.

use std::collections::BTreeMap;

use super::filter::{DiscoveredPeer, Ignored};
use super::DiscoveryEvent;
use crate::peer_table::PEERS_MAX;

/// One announced instance and when (in resolution order) its content last changed.
#[derive(Clone, Debug)]
struct Instance {
    peer: DiscoveredPeer,
    changed_seq: u64,
}

/// The instances currently announced and what was last reported per device.
///
/// Invariant: `reported` holds, for every device announced by at least one instance, the
/// content of its most recently changed instance, and nothing else — which is exactly
/// what the consumer of the events has seen. At most [`PEERS_MAX`] instances.
#[derive(Clone, Debug, Default)]
pub struct DiscoveryTracker {
    /// Keyed by lower-cased full instance name (DNS names are case-insensitive).
    instances: BTreeMap<String, Instance>,
    /// Keyed by device id.
    reported: BTreeMap<String, DiscoveredPeer>,
    next_seq: u64,
}

impl DiscoveryTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of instances tracked.
    pub fn len(&self) -> usize {
        self.instances.len()
    }

    /// True when nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
    }

    /// What was last reported for `device_id` (the consumer's view).
    pub fn reported(&self, device_id: &str) -> Option<&DiscoveredPeer> {
        self.reported.get(device_id)
    }

    /// `fullname` was resolved and the filter judged it `verdict`. Returns the events to
    /// emit, in order (none, one or two). A new instance beyond [`PEERS_MAX`] is dropped
    /// (tracker unchanged, no event).
    pub fn resolved(
        &mut self,
        fullname: &str,
        verdict: Result<DiscoveredPeer, Ignored>,
    ) -> Vec<DiscoveryEvent> {
        let key = fullname.to_ascii_lowercase();
        let peer = match verdict {
            Ok(peer) => peer,
            Err(_) => return self.forget(&key),
        };
        match self.instances.get(&key) {
            Some(known) if known.peer == peer => return Vec::new(),
            None if self.instances.len() >= PEERS_MAX => return Vec::new(),
            _ => {}
        }
        let changed_seq = self.next_seq;
        self.next_seq += 1;
        let device_id = peer.device_id.clone();
        let previous = self.instances.insert(key, Instance { peer, changed_seq });
        let mut events = Vec::with_capacity(2);
        if let Some(previous) = previous {
            if previous.peer.device_id != device_id {
                events.extend(self.sync(&previous.peer.device_id));
            }
        }
        events.extend(self.sync(&device_id));
        debug_assert!(self.instances.len() <= PEERS_MAX);
        debug_assert!(self.reported.len() <= self.instances.len());
        events
    }

    /// `fullname` was withdrawn (goodbye packet or TTL expiry). Returns the events to emit.
    pub fn removed(&mut self, fullname: &str) -> Vec<DiscoveryEvent> {
        self.forget(&fullname.to_ascii_lowercase())
    }

    fn forget(&mut self, key: &str) -> Vec<DiscoveryEvent> {
        match self.instances.remove(key) {
            Some(previous) => self.sync(&previous.peer.device_id).into_iter().collect(),
            None => Vec::new(),
        }
    }

    /// Brings `reported[device_id]` in line with the most recently changed instance of
    /// that device, returning the event that tells the consumer, if any.
    fn sync(&mut self, device_id: &str) -> Option<DiscoveryEvent> {
        let desired = self
            .instances
            .values()
            .filter(|i| i.peer.device_id == device_id)
            .max_by_key(|i| i.changed_seq)
            .map(|i| i.peer.clone());
        match (desired, self.reported.get(device_id)) {
            (None, None) => None,
            (None, Some(_)) => {
                self.reported.remove(device_id);
                Some(DiscoveryEvent::Removed(device_id.to_owned()))
            }
            (Some(desired), Some(reported)) if desired == *reported => None,
            (Some(desired), _) => {
                self.reported.insert(device_id.to_owned(), desired.clone());
                Some(DiscoveryEvent::Upserted(desired))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::super::fingerprint::CertFingerprint;
    use super::*;
    use crate::peer_table::PeerSource;

    fn peer(device: &str, port: u16) -> DiscoveredPeer {
        DiscoveredPeer {
            device_id: device.to_owned(),
            addrs: vec![SocketAddr::from(([192, 0, 2, 1], port))],
            fingerprint: CertFingerprint::of_der(device.as_bytes()),
            source: PeerSource::Mdns,
        }
    }

    const T2: &str = "till-2._posmesh._udp.local.";

    #[test]
    fn repeated_resolution_is_one_upsert() {
        let mut t = DiscoveryTracker::new();
        assert_eq!(
            t.resolved(T2, Ok(peer("till-2", 1))),
            vec![DiscoveryEvent::Upserted(peer("till-2", 1))]
        );
        assert!(t.resolved(T2, Ok(peer("till-2", 1))).is_empty());
        // Case of the DNS name does not matter.
        assert!(t
            .resolved(&T2.to_uppercase(), Ok(peer("till-2", 1)))
            .is_empty());
        // An address change is a new upsert.
        assert_eq!(
            t.resolved(T2, Ok(peer("till-2", 2))),
            vec![DiscoveryEvent::Upserted(peer("till-2", 2))]
        );
        assert_eq!(t.len(), 1);
        assert_eq!(
            t.removed(T2),
            vec![DiscoveryEvent::Removed("till-2".to_owned())]
        );
        assert!(t.removed(T2).is_empty());
        assert!(t.is_empty());
    }

    #[test]
    fn ignored_resolution_removes_a_known_peer_only() {
        let mut t = DiscoveryTracker::new();
        assert!(t.resolved(T2, Err(Ignored::OwnDevice)).is_empty());
        t.resolved(T2, Ok(peer("till-2", 1)));
        assert_eq!(
            t.resolved(T2, Err(Ignored::UnsupportedVersion { version: 2 })),
            vec![DiscoveryEvent::Removed("till-2".to_owned())]
        );
        assert!(t.reported("till-2").is_none());
        assert!(t.is_empty());
    }

    #[test]
    fn instance_renamed_to_other_device() {
        let mut t = DiscoveryTracker::new();
        t.resolved(T2, Ok(peer("till-2", 1)));
        assert_eq!(
            t.resolved(T2, Ok(peer("till-3", 1))),
            vec![
                DiscoveryEvent::Removed("till-2".to_owned()),
                DiscoveryEvent::Upserted(peer("till-3", 1)),
            ]
        );
    }

    #[test]
    fn device_under_two_names_removed_with_the_last() {
        let mut t = DiscoveryTracker::new();
        let renamed = "till-2 (2)._posmesh._udp.local.";
        t.resolved(T2, Ok(peer("till-2", 1)));
        assert_eq!(
            t.resolved(renamed, Ok(peer("till-2", 2))),
            vec![DiscoveryEvent::Upserted(peer("till-2", 2))]
        );
        assert!(t.removed(T2).is_empty());
        assert_eq!(
            t.removed(renamed),
            vec![DiscoveryEvent::Removed("till-2".to_owned())]
        );
        // The other order: the name reported last goes first, the remaining one is
        // reported again because it differs.
        t.resolved(T2, Ok(peer("till-2", 1)));
        t.resolved(renamed, Ok(peer("till-2", 2)));
        assert_eq!(
            t.removed(renamed),
            vec![DiscoveryEvent::Upserted(peer("till-2", 1))]
        );
    }

    #[test]
    fn bounded() {
        let mut t = DiscoveryTracker::new();
        for i in 0..PEERS_MAX {
            let name = format!("d{i}._posmesh._udp.local.");
            assert_eq!(t.resolved(&name, Ok(peer(&format!("d{i}"), 1))).len(), 1);
        }
        assert!(t
            .resolved("x._posmesh._udp.local.", Ok(peer("x", 1)))
            .is_empty());
        assert_eq!(t.len(), PEERS_MAX);
        // A known instance still updates when full.
        assert_eq!(
            t.resolved("d0._posmesh._udp.local.", Ok(peer("d0", 9)))
                .len(),
            1
        );
    }
}
