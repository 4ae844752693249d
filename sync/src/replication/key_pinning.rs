//! Key pinning: which Ed25519 chain-head key verifies a device's journal, and how a device
//! finds out that another data directory uses its id.
//!
//! A device's journal is one hash chain signed by one key (the key is made with the data
//! directory and never changes). A device whose data directory was wiped and that restarts
//! under its old id (same certificate) makes a new key, a new incarnation and a new chain
//! from seq 1: an impostor of its own past. Were the new key to replace the old one on
//! peers, the original entries would stop verifying on devices that join later and the
//! store's ledgers would fork. So a key, once it verifies a device's history, is **pinned**:
//!
//! - [`judge_key`] decides, on a peer, what to do with a verified key attestation for a
//!   device: adopt it (first key), keep it (same key), or refuse it as a
//!   [`KeyConflict`] — another key for a device whose entries are held, or a newer
//!   incarnation than the pinned one. There is no key rotation: a device that needs a new
//!   key is enrolled as a new device with a new id (DESIGN: a replaced till gets a new id).
//! - The one exception keeps devices that have not stored anything of the device yet
//!   convergent whatever order attestations reach them in: a key of an **older**
//!   incarnation (incarnations grow with the creation time of the data directory) replaces
//!   a pinned key that verifies nothing held here. It is still reported as a conflict.
//! - [`own_identity_conflict`] decides, on a device, whether what a peer shows proves that
//!   its id has history its own journal does not hold: a peer holding more of its entries
//!   than it has written, or an attestation of its id under another key of an older
//!   incarnation. Such a device must not take sales under that id.

use crate::chain_head::PUBLIC_KEY_LEN;

/// A device's chain-head key as a verified attestation states it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyClaim {
    /// The incarnation of the data directory that made the key (grows with its creation
    /// time: ms shifted, plus random low bits).
    pub incarnation: u64,
    /// The Ed25519 public key (RFC 8032).
    pub public_key: [u8; PUBLIC_KEY_LEN],
}

/// Two keys claim one device id (see [`judge_key`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyConflict {
    /// The key that stays in use for the device afterwards.
    pub kept: KeyClaim,
    /// The key that is refused.
    pub refused: KeyClaim,
    /// Entries of the device held here (its last seq) when judged.
    pub entries_held: u64,
}

/// What to do with a verified key attestation of another device ([`judge_key`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyVerdict {
    /// No key known for the device: pin this one.
    Adopt,
    /// The pinned key itself: nothing to do.
    Known,
    /// Another key of an older incarnation while no entry of the device is held: it
    /// replaces the pinned one (the conflict is still reported).
    Replace(KeyConflict),
    /// Another key refused; the pinned one stays.
    Refuse(KeyConflict),
}

/// Judges `offered` for a device whose pinned key is `pinned` (if any) and of which
/// `entries_held` entries (its last seq) are held here.
pub fn judge_key(pinned: Option<&KeyClaim>, entries_held: u64, offered: &KeyClaim) -> KeyVerdict {
    let Some(pinned) = pinned else {
        return KeyVerdict::Adopt;
    };
    if pinned.public_key == offered.public_key {
        return KeyVerdict::Known;
    }
    if entries_held == 0 && offered.incarnation < pinned.incarnation {
        return KeyVerdict::Replace(KeyConflict {
            kept: *offered,
            refused: *pinned,
            entries_held,
        });
    }
    KeyVerdict::Refuse(KeyConflict {
        kept: *pinned,
        refused: *offered,
        entries_held,
    })
}

/// What a peer showed about this device's own id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentityEvidence {
    /// The peer's version vector: it holds this many entries (last seq) of this device.
    PeerHolds {
        /// The peer's last seq of this device.
        entries: u64,
    },
    /// A verified attestation of this device's id.
    Attested(KeyClaim),
}

/// This device's id has history elsewhere that its journal does not hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentityConflict {
    /// A peer holds more entries of this device than it ever wrote here.
    HistoryMissing {
        /// The peer's last seq of this device.
        peer_holds: u64,
        /// This device's own last seq.
        held_here: u64,
    },
    /// The id is attested with another key, of an older incarnation than this one.
    OlderKey {
        /// The other key's incarnation.
        other_incarnation: u64,
        /// This device's incarnation.
        own_incarnation: u64,
    },
}

impl std::fmt::Display for IdentityConflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::HistoryMissing {
                peer_holds,
                held_here,
            } => write!(
                f,
                "a peer holds {peer_holds} entries of this device id, this journal only \
                 {held_here}: its data directory was wiped or replaced"
            ),
            Self::OlderKey {
                other_incarnation,
                own_incarnation,
            } => write!(
                f,
                "peers know this device id with another chain-head key, of an older \
                 incarnation ({other_incarnation}, this one is {own_incarnation}): its data \
                 directory was wiped or replaced"
            ),
        }
    }
}

/// Whether `evidence` from a peer proves that this device (key `own`, last seq
/// `own_last_seq`) is not the one whose history the store holds under its id.
///
/// A newer incarnation's key for this id is not proof against this device (peers keep the
/// older key, [`judge_key`]); it is a conflict the peers report.
pub fn own_identity_conflict(
    own: &KeyClaim,
    own_last_seq: u64,
    evidence: &IdentityEvidence,
) -> Option<IdentityConflict> {
    match evidence {
        IdentityEvidence::PeerHolds { entries } if *entries > own_last_seq => {
            Some(IdentityConflict::HistoryMissing {
                peer_holds: *entries,
                held_here: own_last_seq,
            })
        }
        IdentityEvidence::PeerHolds { .. } => None,
        IdentityEvidence::Attested(other) => (other.public_key != own.public_key
            && other.incarnation < own.incarnation)
            .then_some(IdentityConflict::OlderKey {
                other_incarnation: other.incarnation,
                own_incarnation: own.incarnation,
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(incarnation: u64, key: u8) -> KeyClaim {
        KeyClaim {
            incarnation,
            public_key: [key; PUBLIC_KEY_LEN],
        }
    }

    #[test]
    fn the_first_key_is_adopted_and_the_same_key_is_known() {
        assert_eq!(judge_key(None, 0, &claim(5, 1)), KeyVerdict::Adopt);
        assert_eq!(judge_key(None, 7, &claim(5, 1)), KeyVerdict::Adopt);
        assert_eq!(
            judge_key(Some(&claim(5, 1)), 7, &claim(5, 1)),
            KeyVerdict::Known
        );
    }

    #[test]
    fn a_key_that_verifies_held_entries_is_never_replaced() {
        let pinned = claim(5, 1);
        // A wiped device's new key: newer incarnation.
        let newer = claim(9, 2);
        assert_eq!(
            judge_key(Some(&pinned), 3, &newer),
            KeyVerdict::Refuse(KeyConflict {
                kept: pinned,
                refused: newer,
                entries_held: 3
            })
        );
        // Not even by an older incarnation (clock skew, or a forged claim of age).
        let older = claim(2, 3);
        assert_eq!(
            judge_key(Some(&pinned), 3, &older),
            KeyVerdict::Refuse(KeyConflict {
                kept: pinned,
                refused: older,
                entries_held: 3
            })
        );
        // Nor by another key of the same incarnation.
        assert!(matches!(
            judge_key(Some(&pinned), 0, &claim(5, 4)),
            KeyVerdict::Refuse(_)
        ));
    }

    #[test]
    fn with_nothing_held_the_older_incarnation_wins_in_any_order() {
        let original = claim(5, 1);
        let impostor = claim(9, 2);
        // Heard the impostor first: the original replaces it.
        assert_eq!(
            judge_key(Some(&impostor), 0, &original),
            KeyVerdict::Replace(KeyConflict {
                kept: original,
                refused: impostor,
                entries_held: 0
            })
        );
        // Heard the original first: the impostor is refused.
        assert!(matches!(
            judge_key(Some(&original), 0, &impostor),
            KeyVerdict::Refuse(KeyConflict { kept, .. }) if kept == original
        ));
    }

    #[test]
    fn a_device_learns_its_id_has_history_it_does_not_hold() {
        let own = claim(9, 2);
        let missing = own_identity_conflict(&own, 0, &IdentityEvidence::PeerHolds { entries: 3 });
        assert_eq!(
            missing,
            Some(IdentityConflict::HistoryMissing {
                peer_holds: 3,
                held_here: 0
            })
        );
        assert!(missing
            .map(|c| c.to_string())
            .is_some_and(|text| text.contains("3 entries")));
        // A peer that holds what this device wrote, or less, proves nothing.
        for entries in [0, 2, 3] {
            assert_eq!(
                own_identity_conflict(&own, 3, &IdentityEvidence::PeerHolds { entries }),
                None
            );
        }
        // An older incarnation under another key: this device is the impostor.
        assert_eq!(
            own_identity_conflict(&own, 4, &IdentityEvidence::Attested(claim(5, 1))),
            Some(IdentityConflict::OlderKey {
                other_incarnation: 5,
                own_incarnation: 9
            })
        );
        // Its own key relayed back, or a newer impostor of it: not its conflict.
        assert_eq!(
            own_identity_conflict(&own, 0, &IdentityEvidence::Attested(own)),
            None
        );
        assert_eq!(
            own_identity_conflict(&own, 0, &IdentityEvidence::Attested(claim(12, 3))),
            None
        );
    }
}
