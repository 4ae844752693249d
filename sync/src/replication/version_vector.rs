//! The version vector of the sales ledger: for each device, the highest sequence number up to
//! which a node holds that device's journal without a gap.
//!
//! Version vectors are due to Parker et al., "Detection of Mutual Inconsistency in Distributed
//! Systems" (IEEE TSE, 1983). Because every device's journal is append-only and gap-free, one
//! number per device summarises exactly which entries a node holds, and the vector of two
//! nodes tells each what the other lacks (the digest exchanged by anti-entropy, Demers et al.
//! 1987). The ledger as a whole is a grow-only set (G-Set, Shapiro et al. 2011) of
//! `(device, seq)` entries, so [`VersionVector::merge`] (pointwise maximum) is its join.

use crate::SyncError;
use posmesh_proto::sync::v1::{DeviceSeq, VersionVectorMsg};
use std::collections::BTreeMap;

/// Most devices a version vector received from a peer may name (a store has tens of devices;
/// the limit bounds the memory a peer can make us allocate).
pub const VERSION_VECTOR_DEVICES_MAX: usize = 4_096;

/// Device id → highest contiguous sequence number held (≥ 1; absent means 0, nothing held).
///
/// A `BTreeMap` keeps iteration (and so every message built from it) deterministic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionVector {
    seqs: BTreeMap<String, u64>,
}

impl VersionVector {
    /// The empty vector: nothing of any device held.
    pub fn new() -> Self {
        Self::default()
    }

    /// Highest contiguous sequence number held of `device_id` (0: nothing).
    pub fn get(&self, device_id: &str) -> u64 {
        self.seqs.get(device_id).copied().unwrap_or(0)
    }

    /// Raises the component of `device_id` to `seq` if it is lower (a vector never goes down:
    /// a lower `seq` is ignored). Returns whether the vector changed.
    pub fn advance(&mut self, device_id: &str, seq: u64) -> bool {
        if seq <= self.get(device_id) {
            return false;
        }
        self.seqs.insert(device_id.to_owned(), seq);
        debug_assert!(self.seqs.values().all(|&s| s > 0));
        true
    }

    /// Pointwise maximum with `other` (the join of the G-Set lattice): afterwards `self`
    /// dominates both inputs. Commutative, associative and idempotent.
    pub fn merge(&mut self, other: &VersionVector) {
        for (device_id, &seq) in &other.seqs {
            self.advance(device_id, seq);
        }
        debug_assert!(self.dominates(other));
    }

    /// Whether `self` holds at least everything `other` holds (every component ≥). Every
    /// vector dominates itself and the empty vector.
    pub fn dominates(&self, other: &VersionVector) -> bool {
        other
            .seqs
            .iter()
            .all(|(device_id, &seq)| self.get(device_id) >= seq)
    }

    /// The ranges `self` holds that are missing from `other`: one
    /// `(device_id, after_seq, up_to_seq)` per device where `self` is ahead, meaning entries
    /// `after_seq + 1 ..= up_to_seq` (with `after_seq = other.get(device_id)`). In device id
    /// order; empty exactly when `other` dominates `self`.
    ///
    /// A sender calls `local.missing_from(&peer)` to learn what to push to `peer`.
    pub fn missing_from(&self, other: &VersionVector) -> Vec<(String, u64, u64)> {
        let missing: Vec<(String, u64, u64)> = self
            .seqs
            .iter()
            .filter_map(|(device_id, &seq)| {
                let after_seq = other.get(device_id);
                (seq > after_seq).then(|| (device_id.clone(), after_seq, seq))
            })
            .collect();
        debug_assert_eq!(missing.is_empty(), other.dominates(self));
        missing
    }

    /// The `(device_id, seq)` components in device id order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.seqs
            .iter()
            .map(|(device, &seq)| (device.as_str(), seq))
    }

    /// Number of devices of which something is held.
    pub fn len(&self) -> usize {
        self.seqs.len()
    }

    /// Whether nothing of any device is held.
    pub fn is_empty(&self) -> bool {
        self.seqs.is_empty()
    }

    /// Total number of entries held (sum of the components).
    pub fn entries_total(&self) -> u64 {
        self.seqs
            .values()
            .fold(0, |total, &seq| total.saturating_add(seq))
    }

    /// The wire form, devices in id order.
    pub fn to_proto(&self) -> VersionVectorMsg {
        VersionVectorMsg {
            devices: self
                .iter()
                .map(|(device_id, seq)| DeviceSeq {
                    device_id: device_id.to_owned(),
                    seq,
                })
                .collect(),
        }
    }

    /// Reads the wire form. Components with `seq` 0 mean "nothing held" and are skipped.
    ///
    /// # Errors
    /// [`SyncError::MalformedMessage`] when the message names more than
    /// [`VERSION_VECTOR_DEVICES_MAX`] devices, names a device twice, or has an empty device id.
    pub fn from_proto(message: &VersionVectorMsg) -> Result<Self, SyncError> {
        let malformed = |reason: String| SyncError::MalformedMessage { reason };
        if message.devices.len() > VERSION_VECTOR_DEVICES_MAX {
            return Err(malformed(format!(
                "version vector names {} devices, the limit is {VERSION_VECTOR_DEVICES_MAX}",
                message.devices.len()
            )));
        }
        let mut vector = VersionVector::new();
        let mut seen = std::collections::BTreeSet::new();
        for component in &message.devices {
            if component.device_id.is_empty() {
                return Err(malformed("version vector names an empty device id".into()));
            }
            if !seen.insert(component.device_id.as_str()) {
                return Err(malformed(format!(
                    "version vector names device {:?} twice",
                    component.device_id
                )));
            }
            vector.advance(&component.device_id, component.seq);
        }
        Ok(vector)
    }
}

impl FromIterator<(String, u64)> for VersionVector {
    /// Collects `(device_id, seq)` pairs; a device named twice keeps the higher `seq`.
    fn from_iter<I: IntoIterator<Item = (String, u64)>>(iter: I) -> Self {
        let mut vector = VersionVector::new();
        for (device_id, seq) in iter {
            vector.advance(&device_id, seq);
        }
        vector
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn vv(pairs: &[(&str, u64)]) -> VersionVector {
        pairs.iter().map(|(d, s)| ((*d).to_owned(), *s)).collect()
    }

    #[test]
    fn merge_takes_the_pointwise_maximum() {
        let mut a = vv(&[("till-1", 5), ("till-2", 1)]);
        a.merge(&vv(&[("till-2", 7), ("kiosk", 3)]));
        assert_eq!(a, vv(&[("till-1", 5), ("till-2", 7), ("kiosk", 3)]));
    }

    #[test]
    fn advance_never_goes_down_and_zero_is_absent() {
        let mut a = VersionVector::new();
        assert!(!a.advance("till-1", 0));
        assert!(a.is_empty());
        assert!(a.advance("till-1", 4));
        assert!(!a.advance("till-1", 3));
        assert_eq!(a.get("till-1"), 4);
        assert_eq!(a.get("unknown"), 0);
    }

    #[test]
    fn dominates_is_componentwise() {
        let a = vv(&[("till-1", 5), ("till-2", 2)]);
        assert!(a.dominates(&vv(&[("till-1", 5)])));
        assert!(a.dominates(&VersionVector::new()));
        assert!(!a.dominates(&vv(&[("till-2", 3)])));
        assert!(!a.dominates(&vv(&[("kiosk", 1)])));
        // Concurrent vectors: neither dominates.
        let b = vv(&[("till-1", 6)]);
        assert!(!a.dominates(&b) && !b.dominates(&a));
    }

    #[test]
    fn missing_from_names_the_ranges_the_other_lacks() {
        let local = vv(&[("kiosk", 2), ("till-1", 5), ("till-2", 3)]);
        let peer = vv(&[("till-1", 5), ("till-2", 1), ("till-9", 8)]);
        assert_eq!(
            local.missing_from(&peer),
            vec![("kiosk".to_owned(), 0, 2), ("till-2".to_owned(), 1, 3)]
        );
        assert_eq!(peer.missing_from(&local), vec![("till-9".to_owned(), 0, 8)]);
        assert!(local.missing_from(&local).is_empty());
    }

    #[test]
    fn proto_round_trip_and_malformed_vectors() {
        let a = vv(&[("till-1", 5), ("kiosk", 3)]);
        let wire = a.to_proto();
        assert_eq!(wire.devices[0].device_id, "kiosk", "device id order");
        assert_eq!(VersionVector::from_proto(&wire), Ok(a));

        let mut twice = wire.clone();
        twice.devices.push(twice.devices[0].clone());
        assert!(matches!(
            VersionVector::from_proto(&twice),
            Err(SyncError::MalformedMessage { .. })
        ));
        let empty_id = VersionVectorMsg {
            devices: vec![DeviceSeq {
                device_id: String::new(),
                seq: 1,
            }],
        };
        assert!(VersionVector::from_proto(&empty_id).is_err());
        let too_many = VersionVectorMsg {
            devices: (0..=VERSION_VECTOR_DEVICES_MAX)
                .map(|i| DeviceSeq {
                    device_id: format!("d{i}"),
                    seq: 1,
                })
                .collect(),
        };
        assert!(VersionVector::from_proto(&too_many).is_err());
        let zero = VersionVectorMsg {
            devices: vec![DeviceSeq {
                device_id: "till-1".into(),
                seq: 0,
            }],
        };
        assert_eq!(VersionVector::from_proto(&zero), Ok(VersionVector::new()));
    }

    fn arb_vv() -> impl Strategy<Value = VersionVector> {
        proptest::collection::vec((0..4u8, 0..6u64), 0..6).prop_map(|pairs| {
            pairs
                .into_iter()
                .map(|(d, s)| (format!("d{d}"), s))
                .collect()
        })
    }

    proptest! {
        /// Merge is a join: commutative, associative, idempotent, an upper bound; and
        /// `missing_from` is exactly what a merge would add.
        #[test]
        fn merge_is_a_semilattice_join(a in arb_vv(), b in arb_vv(), c in arb_vv()) {
            let join = |x: &VersionVector, y: &VersionVector| {
                let mut z = x.clone();
                z.merge(y);
                z
            };
            prop_assert_eq!(join(&a, &b), join(&b, &a));
            prop_assert_eq!(join(&join(&a, &b), &c), join(&a, &join(&b, &c)));
            prop_assert_eq!(join(&a, &a), a.clone());
            let ab = join(&a, &b);
            prop_assert!(ab.dominates(&a) && ab.dominates(&b));
            let mut patched = b.clone();
            for (device, after, up_to) in a.missing_from(&b) {
                prop_assert_eq!(after, b.get(&device));
                patched.advance(&device, up_to);
            }
            prop_assert_eq!(patched, ab);
        }
    }
}
