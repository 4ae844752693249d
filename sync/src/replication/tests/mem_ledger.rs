//! `MemLedger`: an in-memory ledger implementing [`LedgerRead`] and [`SigningKeys`], with
//! real hash chains and Ed25519 heads (deterministic keys derived from device names).

use crate::chain::{entry_hash, link_entry, ChainHash, GENESIS_PREV_HASH};
use crate::chain_head::{public_key, signing_key, ChainHead, PUBLIC_KEY_LEN};
use crate::replication::{LedgerRead, SigningKeys, VersionVector};
use ed25519_dalek::SigningKey;
use posmesh_proto::journal::v1::{ChainHeadSignature, JournalEntry};
use std::collections::BTreeMap;

/// The store every test device belongs to.
pub const STORE_ID: &str = "store-1";
/// Incarnation of every test device.
pub const INCARNATION: u64 = 1;

/// The deterministic signing key of a device (from its name).
pub fn key_of(device_id: &str) -> SigningKey {
    signing_key(&entry_hash(format!("test-key/{device_id}").as_bytes()))
}

/// A journal entry of `device_id` at `seq` (not yet linked).
pub fn entry(device_id: &str, seq: u64) -> JournalEntry {
    JournalEntry {
        store_id: STORE_ID.into(),
        device_id: device_id.into(),
        device_incarnation: INCARNATION,
        seq,
        operator_id: format!("op-{}", seq % 7),
        idempotency_key: format!("{device_id}/{seq}"),
        ..Default::default()
    }
}

/// The signed head of `device_id` at `seq` whose entry has `chain_hash`, signed by `key`.
pub fn sign_head(
    device_id: &str,
    seq: u64,
    chain_hash: ChainHash,
    key: &SigningKey,
) -> ChainHeadSignature {
    let head = ChainHead {
        store_id: STORE_ID.into(),
        device_id: device_id.into(),
        device_incarnation: INCARNATION,
        seq,
        chain_hash,
    };
    ChainHeadSignature {
        device_id: device_id.into(),
        device_incarnation: INCARNATION,
        seq,
        chain_hash: chain_hash.to_vec(),
        signature: head.sign(key).to_vec(),
    }
}

#[derive(Clone, Debug, Default)]
struct Journal {
    entries: Vec<Vec<u8>>,
    hashes: Vec<ChainHash>,
    heads: BTreeMap<u64, ChainHeadSignature>,
}

/// One node's ledger: every device's journal, the key directory, and counters.
#[derive(Clone, Debug, Default)]
pub struct MemLedger {
    public_keys: BTreeMap<String, [u8; PUBLIC_KEY_LEN]>,
    journals: BTreeMap<String, Journal>,
    /// Entries written through [`MemLedger::store`] (received from peers).
    pub entries_stored: u64,
}

impl MemLedger {
    /// A ledger that knows the keys of `devices`.
    pub fn new<'a>(devices: impl IntoIterator<Item = &'a str>) -> Self {
        let public_keys = devices
            .into_iter()
            .map(|d| (d.to_owned(), public_key(&key_of(d))))
            .collect();
        Self {
            public_keys,
            ..Self::default()
        }
    }

    /// The local writer appends `count` entries of `device_id` as one batch and signs its head.
    pub fn append_local(&mut self, device_id: &str, count: u64) {
        assert!(count > 0);
        let journal = self.journals.entry(device_id.to_owned()).or_default();
        let mut prev = journal.hashes.last().copied().unwrap_or(GENESIS_PREV_HASH);
        for _ in 0..count {
            let seq = journal.entries.len() as u64 + 1;
            let (bytes, hash) = link_entry(&mut entry(device_id, seq), &prev);
            journal.entries.push(bytes);
            journal.hashes.push(hash);
            prev = hash;
        }
        let seq = journal.entries.len() as u64;
        let head = sign_head(device_id, seq, prev, &key_of(device_id));
        journal.heads.insert(seq, head);
    }

    /// Persists a received batch; panics on a duplicate or a gap (the replicator must never
    /// ask for either) or a head that does not name the last entry.
    pub fn store(
        &mut self,
        device_id: &str,
        entries: &[(u64, Vec<u8>)],
        head: &ChainHeadSignature,
    ) {
        let journal = self.journals.entry(device_id.to_owned()).or_default();
        let held = journal.entries.len() as u64;
        assert!(!entries.is_empty(), "empty store");
        assert_eq!(
            entries[0].0,
            held + 1,
            "store of {device_id} must start after {held}"
        );
        for (offset, (seq, bytes)) in (0u64..).zip(entries) {
            assert_eq!(*seq, held + 1 + offset, "gap inside a store");
            journal.entries.push(bytes.clone());
            journal.hashes.push(entry_hash(bytes));
        }
        let last = journal.entries.len() as u64;
        assert_eq!(head.seq, last, "head names the last entry");
        assert_eq!(
            head.chain_hash.as_slice(),
            journal.hashes[journal.hashes.len() - 1]
        );
        journal.heads.insert(last, head.clone());
        self.entries_stored += entries.len() as u64;
    }

    /// The stored entries of `device_id`, seq 1 first.
    pub fn entries(&self, device_id: &str) -> &[Vec<u8>] {
        self.journals.get(device_id).map_or(&[], |j| &j.entries)
    }

    /// The stored head signatures of `device_id`, by seq.
    pub fn heads(&self, device_id: &str) -> Vec<u64> {
        self.journals
            .get(device_id)
            .map_or_else(Vec::new, |j| j.heads.keys().copied().collect())
    }
}

impl LedgerRead for MemLedger {
    fn version_vector(&self) -> VersionVector {
        self.journals
            .iter()
            .map(|(d, j)| (d.clone(), j.entries.len() as u64))
            .collect()
    }

    fn entries_after(&self, device_id: &str, after_seq: u64, limit: usize) -> Vec<(u64, Vec<u8>)> {
        let entries = self.entries(device_id);
        (after_seq + 1..)
            .zip(entries.iter().skip(after_seq as usize))
            .take(limit)
            .map(|(seq, bytes)| (seq, bytes.clone()))
            .collect()
    }

    fn head_signature_at_or_before(&self, device_id: &str, seq: u64) -> Option<ChainHeadSignature> {
        let journal = self.journals.get(device_id)?;
        journal
            .heads
            .range(..=seq)
            .next_back()
            .map(|(_, h)| h.clone())
    }

    fn chain_hash(&self, device_id: &str, seq: u64) -> Option<ChainHash> {
        let index = usize::try_from(seq.checked_sub(1)?).ok()?;
        self.journals.get(device_id)?.hashes.get(index).copied()
    }
}

impl SigningKeys for MemLedger {
    fn public_key(&self, device_id: &str) -> Option<[u8; PUBLIC_KEY_LEN]> {
        self.public_keys.get(device_id).copied()
    }
}
