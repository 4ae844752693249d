//! [`Ledger`]: what a simulated device holds durably — every device's journal (entries, chain
//! hashes, signed heads) and the directory of the devices' verifying keys. It implements the
//! production traits [`LedgerRead`] and [`SigningKeys`] that the [`Replicator`] reads, with
//! real hash chains and Ed25519 heads, and refuses (panics on) any write that would break
//! their obligations (a gap, an overlap, a head that does not name the last entry).
//!
//! [`Replicator`]: posmesh_sync::replication::Replicator

use posmesh_proto::journal::v1::ChainHeadSignature;
use posmesh_sync::chain::{entry_hash, ChainHash};
use posmesh_sync::chain_head::PUBLIC_KEY_LEN;
use posmesh_sync::replication::{LedgerRead, SigningKeys, VersionVector};
use std::collections::BTreeMap;

/// One device's journal as held by some node.
#[derive(Clone, Debug, Default)]
struct Journal {
    entries: Vec<Vec<u8>>,
    hashes: Vec<ChainHash>,
    heads: BTreeMap<u64, ChainHeadSignature>,
}

/// One node's durable ledger: every device's journal and the key directory.
#[derive(Clone, Debug, Default)]
pub struct Ledger {
    public_keys: BTreeMap<String, [u8; PUBLIC_KEY_LEN]>,
    journals: BTreeMap<String, Journal>,
}

impl Ledger {
    /// An empty ledger that knows the verifying keys `public_keys` (device id → key).
    pub fn new(public_keys: BTreeMap<String, [u8; PUBLIC_KEY_LEN]>) -> Self {
        Self {
            public_keys,
            journals: BTreeMap::new(),
        }
    }

    /// Appends a run of `device_id`'s entries and the signed head at its last entry.
    ///
    /// # Panics
    /// When the entries do not start right after what is held, have a gap, or the head does
    /// not name the last entry and its chain hash: the replicator and the journal writer must
    /// never ask for any of these (the simulation reports the panic as a bug).
    pub fn append(
        &mut self,
        device_id: &str,
        entries: &[(u64, Vec<u8>)],
        head: &ChainHeadSignature,
    ) {
        let journal = self.journals.entry(device_id.to_owned()).or_default();
        let held = journal.entries.len() as u64;
        assert!(!entries.is_empty(), "empty write of {device_id}");
        for (offset, (seq, bytes)) in (1u64..).zip(entries) {
            assert_eq!(
                *seq,
                held + offset,
                "write of {device_id} must continue after {held} without a gap"
            );
            journal.entries.push(bytes.clone());
            journal.hashes.push(entry_hash(bytes));
        }
        let last = journal.entries.len() as u64;
        assert_eq!(head.seq, last, "head names the last entry");
        assert_eq!(
            Some(head.chain_hash.as_slice()),
            journal.hashes.last().map(|h| h.as_slice()),
            "head names the last entry's chain hash"
        );
        journal.heads.insert(last, head.clone());
    }

    /// Highest seq of `device_id` held (0: none).
    pub fn held(&self, device_id: &str) -> u64 {
        self.journals
            .get(device_id)
            .map_or(0, |j| j.entries.len() as u64)
    }

    /// The stored entries of `device_id`, seq 1 first.
    pub fn entries(&self, device_id: &str) -> &[Vec<u8>] {
        self.journals.get(device_id).map_or(&[], |j| &j.entries)
    }

    /// The chain hashes of the stored entries of `device_id`, seq 1 first.
    pub fn hashes(&self, device_id: &str) -> &[ChainHash] {
        self.journals.get(device_id).map_or(&[], |j| &j.hashes)
    }

    /// The stored signed head of `device_id` at exactly `seq`.
    pub fn head_at(&self, device_id: &str, seq: u64) -> Option<&ChainHeadSignature> {
        self.journals.get(device_id)?.heads.get(&seq)
    }

    /// The seqs at which `device_id` has a stored signed head, ascending.
    pub fn head_seqs(&self, device_id: &str) -> Vec<u64> {
        self.journals
            .get(device_id)
            .map_or_else(Vec::new, |j| j.heads.keys().copied().collect())
    }

    /// The devices of which something is held, in id order.
    pub fn devices(&self) -> impl Iterator<Item = &str> {
        self.journals.keys().map(String::as_str)
    }
}

impl LedgerRead for Ledger {
    fn version_vector(&self) -> VersionVector {
        self.journals
            .iter()
            .map(|(d, j)| (d.clone(), j.entries.len() as u64))
            .collect()
    }

    fn entries_after(&self, device_id: &str, after_seq: u64, limit: usize) -> Vec<(u64, Vec<u8>)> {
        let entries = self.entries(device_id);
        let skip = usize::try_from(after_seq).unwrap_or(usize::MAX);
        (after_seq + 1..)
            .zip(entries.iter().skip(skip))
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

impl SigningKeys for Ledger {
    fn public_key(&self, device_id: &str) -> Option<[u8; PUBLIC_KEY_LEN]> {
        self.public_keys.get(device_id).copied()
    }
}
