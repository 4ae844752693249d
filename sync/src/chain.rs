//! The per-device journal hash chain.
//!
//! Every journal entry carries `prev_hash`, the chain hash of the entry before it on the same
//! device (32 zero bytes for `seq` 1). The chain hash of an entry is
//!
//! ```text
//! chain_hash = SHA-256("posmesh/journal-entry/v1" || 0x00 || stored entry bytes)
//! ```
//!
//! (SHA-256 as in FIPS 180-4). Because the stored bytes include `prev_hash`, the hash of the
//! newest entry commits to the device's whole history. The hash is taken over the bytes as
//! stored and sent, never over a re-encoding, so entries written by a newer schema (with
//! fields this version does not know) still verify.
//!
//! [`ChainVerifier`] walks a device's entries in sequence order and names the first broken
//! link. It is pure: the caller reads the entries from wherever they live.

use posmesh_proto::journal::v1::JournalEntry;
use prost::Message;
use sha2::{Digest, Sha256};
use std::fmt;

/// Length of a chain hash, bytes.
pub const CHAIN_HASH_LEN: usize = 32;

/// A SHA-256 chain hash.
pub type ChainHash = [u8; CHAIN_HASH_LEN];

/// `prev_hash` of the first entry (`seq` 1) of every device.
pub const GENESIS_PREV_HASH: ChainHash = [0; CHAIN_HASH_LEN];

/// Domain-separation prefix of the entry hash (so the hash of an entry can never be confused
/// with a hash of any other structure).
const ENTRY_HASH_DOMAIN: &[u8] = b"posmesh/journal-entry/v1\0";

/// The chain hash of one stored entry (see the module docs for the construction).
pub fn entry_hash(entry_bytes: &[u8]) -> ChainHash {
    let mut hasher = Sha256::new();
    hasher.update(ENTRY_HASH_DOMAIN);
    hasher.update(entry_bytes);
    hasher.finalize().into()
}

/// Links `entry` to its predecessor and encodes it: sets `prev_hash`, and returns the bytes
/// to store together with their chain hash.
pub fn link_entry(entry: &mut JournalEntry, prev_hash: &ChainHash) -> (Vec<u8>, ChainHash) {
    entry.prev_hash = prev_hash.to_vec();
    let bytes = entry.encode_to_vec();
    let hash = entry_hash(&bytes);
    (bytes, hash)
}

/// What is wrong at a broken link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BreakKind {
    /// The stored bytes are not a `JournalEntry`.
    Undecodable(String),
    /// The entry's `seq` is not the one after the previous entry.
    SequenceGap {
        /// The sequence number the chain expected.
        expected: u64,
        /// The sequence number found (storage key or the entry's own field).
        found: u64,
    },
    /// The entry is stored under one sequence number but names another.
    KeyMismatch {
        /// Sequence number of the storage key.
        key_seq: u64,
        /// Sequence number inside the entry.
        entry_seq: u64,
    },
    /// `prev_hash` is not the chain hash of the previous entry.
    PrevHashMismatch {
        /// Chain hash of the previous entry, hex.
        expected: String,
        /// `prev_hash` found in the entry, hex.
        found: String,
    },
    /// The entry names another device than the chain it is stored in.
    DeviceMismatch {
        /// The device id found in the entry.
        found: String,
    },
    /// The entry names another store or device incarnation than the entries before it.
    IdentityChanged {
        /// Which field changed: `store_id` or `device_incarnation`.
        field: &'static str,
    },
}

impl fmt::Display for BreakKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BreakKind::Undecodable(reason) => write!(f, "entry does not decode ({reason})"),
            BreakKind::SequenceGap { expected, found } => {
                write!(f, "sequence gap: expected seq {expected}, found {found}")
            }
            BreakKind::KeyMismatch { key_seq, entry_seq } => {
                write!(
                    f,
                    "stored under seq {key_seq} but the entry says seq {entry_seq}"
                )
            }
            BreakKind::PrevHashMismatch { expected, found } => {
                write!(
                    f,
                    "prev_hash {found} does not match the previous entry's hash {expected}"
                )
            }
            BreakKind::DeviceMismatch { found } => {
                write!(f, "entry belongs to device {found:?}")
            }
            BreakKind::IdentityChanged { field } => write!(f, "{field} changed within the chain"),
        }
    }
}

/// The first broken link of a device's chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainBreak {
    /// Device whose chain is broken.
    pub device_id: String,
    /// Sequence number (storage key) of the first entry that does not verify.
    pub seq: u64,
    /// What is wrong.
    pub kind: BreakKind,
}

/// Walks one device's journal entries in sequence order, checking every link.
///
/// Feed entries with [`ChainVerifier::push`]; the first error is the first broken link, and
/// the verifier does not advance past it.
#[derive(Clone, Debug)]
pub struct ChainVerifier {
    device_id: String,
    store_id: Option<String>,
    device_incarnation: Option<u64>,
    last_seq: u64,
    head: ChainHash,
}

impl ChainVerifier {
    /// A verifier for the chain of `device_id` from its first entry.
    pub fn new(device_id: &str) -> Self {
        Self::resume(device_id, 0, GENESIS_PREV_HASH)
    }

    /// A verifier that continues after an already verified entry `last_seq` whose chain hash
    /// is `head`.
    pub fn resume(device_id: &str, last_seq: u64, head: ChainHash) -> Self {
        Self {
            device_id: device_id.to_owned(),
            store_id: None,
            device_incarnation: None,
            last_seq,
            head,
        }
    }

    /// The last verified sequence number (0 before any) and its chain hash.
    pub fn head(&self) -> (u64, ChainHash) {
        (self.last_seq, self.head)
    }

    /// Verifies the entry stored under `key_seq` with bytes `entry_bytes`, and returns it
    /// decoded. On error the verifier is unchanged.
    pub fn push(&mut self, key_seq: u64, entry_bytes: &[u8]) -> Result<JournalEntry, ChainBreak> {
        let entry = JournalEntry::decode(entry_bytes)
            .map_err(|e| self.break_at(key_seq, BreakKind::Undecodable(e.to_string())))?;
        self.check_position(key_seq, &entry)?;
        self.check_identity(key_seq, &entry)?;
        if entry.prev_hash.as_slice() != self.head.as_slice() {
            return Err(self.break_at(
                key_seq,
                BreakKind::PrevHashMismatch {
                    expected: hex::encode(self.head),
                    found: hex::encode(&entry.prev_hash),
                },
            ));
        }
        self.store_id = Some(entry.store_id.clone());
        self.device_incarnation = Some(entry.device_incarnation);
        self.last_seq = key_seq;
        self.head = entry_hash(entry_bytes);
        Ok(entry)
    }

    fn check_position(&self, key_seq: u64, entry: &JournalEntry) -> Result<(), ChainBreak> {
        let expected = self.last_seq.saturating_add(1);
        if key_seq != expected {
            return Err(self.break_at(
                key_seq,
                BreakKind::SequenceGap {
                    expected,
                    found: key_seq,
                },
            ));
        }
        if entry.seq != key_seq {
            return Err(self.break_at(
                key_seq,
                BreakKind::KeyMismatch {
                    key_seq,
                    entry_seq: entry.seq,
                },
            ));
        }
        Ok(())
    }

    fn check_identity(&self, key_seq: u64, entry: &JournalEntry) -> Result<(), ChainBreak> {
        if entry.device_id != self.device_id {
            return Err(self.break_at(
                key_seq,
                BreakKind::DeviceMismatch {
                    found: entry.device_id.clone(),
                },
            ));
        }
        if self
            .store_id
            .as_deref()
            .is_some_and(|s| s != entry.store_id)
        {
            return Err(self.break_at(key_seq, BreakKind::IdentityChanged { field: "store_id" }));
        }
        if self
            .device_incarnation
            .is_some_and(|i| i != entry.device_incarnation)
        {
            return Err(self.break_at(
                key_seq,
                BreakKind::IdentityChanged {
                    field: "device_incarnation",
                },
            ));
        }
        Ok(())
    }

    fn break_at(&self, seq: u64, kind: BreakKind) -> ChainBreak {
        ChainBreak {
            device_id: self.device_id.clone(),
            seq,
            kind,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64) -> JournalEntry {
        JournalEntry {
            store_id: "store-1".into(),
            device_id: "till-1".into(),
            device_incarnation: 7,
            seq,
            ..Default::default()
        }
    }

    /// A valid chain of `n` entries: (seq, bytes).
    fn chain(n: u64) -> Vec<(u64, Vec<u8>)> {
        let mut head = GENESIS_PREV_HASH;
        (1..=n)
            .map(|seq| {
                let (bytes, hash) = link_entry(&mut entry(seq), &head);
                head = hash;
                (seq, bytes)
            })
            .collect()
    }

    fn verify(entries: &[(u64, Vec<u8>)]) -> Result<(u64, ChainHash), ChainBreak> {
        let mut verifier = ChainVerifier::new("till-1");
        for (seq, bytes) in entries {
            verifier.push(*seq, bytes)?;
        }
        Ok(verifier.head())
    }

    #[test]
    fn a_valid_chain_verifies_to_the_hash_of_its_last_entry() {
        let entries = chain(5);
        let (seq, head) = verify(&entries).expect("valid chain");
        assert_eq!(seq, 5);
        assert_eq!(head, entry_hash(&entries[4].1));
    }

    #[test]
    fn a_flipped_byte_breaks_the_next_link() {
        let mut entries = chain(5);
        // Change the payload of entry 3 (store id) without touching its prev_hash.
        let mut tampered = JournalEntry::decode(entries[2].1.as_slice()).expect("decodes");
        tampered.operator_id = "mallory".into();
        entries[2].1 = tampered.encode_to_vec();
        let err = verify(&entries).expect_err("tampering detected");
        assert_eq!(err.seq, 4);
        assert!(matches!(err.kind, BreakKind::PrevHashMismatch { .. }));
    }

    #[test]
    fn a_missing_entry_is_a_sequence_gap() {
        let mut entries = chain(5);
        entries.remove(1);
        let err = verify(&entries).expect_err("gap detected");
        assert_eq!(
            err.kind,
            BreakKind::SequenceGap {
                expected: 2,
                found: 3
            }
        );
    }

    #[test]
    fn garbage_bytes_are_undecodable() {
        let mut entries = chain(2);
        entries[1].1 = vec![0xff, 0xff, 0xff];
        let err = verify(&entries).expect_err("garbage detected");
        assert_eq!(err.seq, 2);
        assert!(matches!(err.kind, BreakKind::Undecodable(_)));
    }

    #[test]
    fn an_entry_of_another_device_is_refused() {
        let mut other = entry(1);
        other.device_id = "till-2".into();
        let (bytes, _) = link_entry(&mut other, &GENESIS_PREV_HASH);
        let err = verify(&[(1, bytes)]).expect_err("foreign entry");
        assert!(matches!(err.kind, BreakKind::DeviceMismatch { .. }));
    }

    #[test]
    fn a_changed_incarnation_within_a_chain_is_refused() {
        let mut entries = chain(1);
        let head = entry_hash(&entries[0].1);
        let mut second = entry(2);
        second.device_incarnation = 8;
        entries.push((2, link_entry(&mut second, &head).0));
        let err = verify(&entries).expect_err("incarnation change");
        assert_eq!(
            err.kind,
            BreakKind::IdentityChanged {
                field: "device_incarnation"
            }
        );
    }

    #[test]
    fn a_failed_push_leaves_the_verifier_unchanged() {
        let entries = chain(3);
        let mut verifier = ChainVerifier::new("till-1");
        verifier.push(1, &entries[0].1).expect("first entry");
        let before = verifier.head();
        assert!(verifier.push(3, &entries[2].1).is_err());
        assert_eq!(verifier.head(), before);
        verifier
            .push(2, &entries[1].1)
            .expect("continues after the refusal");
    }

    #[test]
    fn unknown_fields_still_verify() {
        // An entry written by a newer schema: field 999 is unknown to this version.
        let mut bytes = link_entry(&mut entry(1), &GENESIS_PREV_HASH).0;
        bytes.extend_from_slice(&[0xb8, 0x3e, 0x01]); // field 999, varint, value 1
        let mut verifier = ChainVerifier::new("till-1");
        verifier.push(1, &bytes).expect("tolerates unknown fields");
        assert_eq!(verifier.head().1, entry_hash(&bytes));
    }
}
