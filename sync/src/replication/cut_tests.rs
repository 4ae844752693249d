//! Ledger cuts ([`LedgerRead::cut`]): a revoked or retired device's entries beyond its cut
//! are neither accepted nor sent, by the replicator and by the cloud's ingest; those up to
//! the cut are.

use super::{
    LedgerRead, PeerId, RefusalReason, ReplicationEvent, Replicator, ReplicatorConfig, SigningKeys,
    VersionVector,
};
use crate::chain::{link_entry, ChainHash, GENESIS_PREV_HASH};
use crate::chain_head::{public_key, signing_key, ChainHead, PUBLIC_KEY_LEN};
use crate::cloud::{plan_ingest, IngestPlan, IngestRefusal};
use ed25519_dalek::SigningKey;
use posmesh_proto::journal::v1::{ChainHeadSignature, JournalEntry};
use posmesh_proto::sync::v1::{sync_message::Kind, EntryBatch, EntryBytes, SyncMessage};
use std::collections::BTreeMap;

const REVOKED: &str = "till-3";

fn key() -> SigningKey {
    signing_key(&[3; 32])
}

/// One device's journal as written: entries with their chain hashes, and signed heads.
#[derive(Default)]
struct Journal {
    entries: Vec<(Vec<u8>, ChainHash)>,
    heads: BTreeMap<u64, ChainHeadSignature>,
}

impl Journal {
    /// `till-3` appends `count` entries as one signed group.
    fn write(&mut self, count: u64) {
        for _ in 0..count {
            let seq = self.entries.len() as u64 + 1;
            let prev = self.entries.last().map_or(GENESIS_PREV_HASH, |(_, h)| *h);
            let mut entry = JournalEntry {
                store_id: "s1".into(),
                device_id: REVOKED.into(),
                device_incarnation: 1,
                seq,
                ..Default::default()
            };
            self.entries.push(link_entry(&mut entry, &prev));
        }
        let seq = self.entries.len() as u64;
        let chain_hash = self.entries[self.entries.len() - 1].1;
        let head = ChainHead {
            store_id: "s1".into(),
            device_id: REVOKED.into(),
            device_incarnation: 1,
            seq,
            chain_hash,
        };
        self.heads.insert(
            seq,
            ChainHeadSignature {
                device_id: REVOKED.into(),
                device_incarnation: 1,
                seq,
                chain_hash: chain_hash.to_vec(),
                signature: head.sign(&key()).to_vec(),
            },
        );
    }

    /// The batch `after + 1 ..= up_to` (a head must be at `up_to`).
    fn batch(&self, after: u64, up_to: u64) -> EntryBatch {
        EntryBatch {
            device_id: REVOKED.into(),
            entries: (after + 1..=up_to)
                .map(|seq| EntryBytes {
                    seq,
                    bytes: self.entries[(seq - 1) as usize].0.clone(),
                })
                .collect(),
            head: Some(self.heads[&up_to].clone()),
        }
    }
}

/// A ledger holding `held` entries of the journal, with `till-3` cut at `cut`.
struct CutLedger<'a> {
    journal: &'a Journal,
    held: u64,
    cut: Option<u64>,
}

impl LedgerRead for CutLedger<'_> {
    fn version_vector(&self) -> VersionVector {
        let mut vector = VersionVector::new();
        vector.advance(REVOKED, self.held);
        vector
    }

    fn entries_after(&self, device_id: &str, after_seq: u64, limit: usize) -> Vec<(u64, Vec<u8>)> {
        if device_id != REVOKED {
            return Vec::new();
        }
        (after_seq + 1..=self.held)
            .take(limit)
            .map(|seq| (seq, self.journal.entries[(seq - 1) as usize].0.clone()))
            .collect()
    }

    fn head_signature_at_or_before(&self, device_id: &str, seq: u64) -> Option<ChainHeadSignature> {
        (device_id == REVOKED)
            .then(|| self.journal.heads.range(..=seq.min(self.held)).next_back())
            .flatten()
            .map(|(_, head)| head.clone())
    }

    fn chain_hash(&self, device_id: &str, seq: u64) -> Option<ChainHash> {
        (device_id == REVOKED && seq >= 1 && seq <= self.held)
            .then(|| self.journal.entries[(seq - 1) as usize].1)
    }

    fn cut(&self, device_id: &str) -> Option<u64> {
        self.cut.filter(|_| device_id == REVOKED)
    }
}

struct Keys;

impl SigningKeys for Keys {
    fn public_key(&self, device_id: &str) -> Option<[u8; PUBLIC_KEY_LEN]> {
        (device_id == REVOKED).then(|| public_key(&key()))
    }
}

/// `till-3` wrote 2 entries, was revoked with its journal cut at 2, then wrote 2 more.
fn journal() -> Journal {
    let mut journal = Journal::default();
    journal.write(2);
    journal.write(2);
    journal
}

fn receive(ledger: &CutLedger<'_>, batch: EntryBatch) -> Vec<ReplicationEvent> {
    let mut replicator = Replicator::new("till-1", ReplicatorConfig::default()).expect("new");
    let relay = PeerId::from("till-4");
    replicator.handle_connected(relay.clone(), 0);
    let message = SyncMessage {
        kind: Some(Kind::EntryBatch(batch)),
    };
    replicator.handle_message(&relay, message, 1, ledger, &Keys);
    std::iter::from_fn(|| replicator.poll_event()).collect()
}

#[test]
fn a_relayed_batch_beyond_the_cut_is_refused_and_one_up_to_it_is_stored() {
    let journal = journal();
    let relayed = |held, cut, after, up_to| {
        receive(
            &CutLedger {
                journal: &journal,
                held,
                cut,
            },
            journal.batch(after, up_to),
        )
    };
    // Without a cut the relayed entries 3..4 are stored (the bug this prevents).
    assert!(matches!(
        relayed(2, None, 2, 4).as_slice(),
        [ReplicationEvent::Store { entries, .. }] if entries.len() == 2
    ));
    // Beyond the cut: refused with the reason, nothing stored.
    let beyond = ReplicationEvent::Refused {
        peer: PeerId::from("till-4"),
        device_id: REVOKED.into(),
        reason: RefusalReason::BeyondCut {
            up_to_seq: 2,
            last_seq: 4,
        },
    };
    assert_eq!(relayed(2, Some(2), 2, 4), vec![beyond.clone()]);
    // A batch reaching across the cut is refused whole (its signed head is beyond it).
    assert_eq!(relayed(0, Some(2), 0, 4), vec![beyond]);
    // Up to the cut: stored (never retroactive).
    assert!(matches!(
        relayed(0, Some(2), 0, 2).as_slice(),
        [ReplicationEvent::Store { entries, .. }] if entries.len() == 2
    ));
}

#[test]
fn a_sender_holding_entries_beyond_the_cut_sends_up_to_it_only() {
    let journal = journal();
    let ledger = CutLedger {
        journal: &journal,
        held: 4,
        cut: Some(2),
    };
    let mut replicator = Replicator::new("till-4", ReplicatorConfig::default()).expect("new");
    let peer = PeerId::from("till-1");
    replicator.handle_connected(peer.clone(), 0);
    let empty = SyncMessage {
        kind: Some(Kind::VersionVector(VersionVector::new().to_proto())),
    };
    replicator.handle_message(&peer, empty, 1, &ledger, &Keys);
    replicator.handle_timeout(1, &ledger);
    let sent: Vec<(u64, u64)> = std::iter::from_fn(|| replicator.poll_transmit())
        .filter_map(|(_, message)| match message.kind {
            Some(Kind::EntryBatch(batch)) => Some((
                batch.entries.first().map_or(0, |e| e.seq),
                batch.entries.last().map_or(0, |e| e.seq),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(sent, vec![(1, 2)]);
}

#[test]
fn the_cloud_refuses_an_upload_beyond_the_cut_and_stores_one_up_to_it() {
    let journal = journal();
    let held_hash = journal.entries[1].1;
    assert_eq!(
        plan_ingest(journal.batch(2, 4), 2, held_hash, Some(2), &Keys),
        Err(IngestRefusal::BeyondCut {
            up_to_seq: 2,
            last_seq: 4
        })
    );
    let refusal = plan_ingest(journal.batch(0, 4), 0, GENESIS_PREV_HASH, Some(2), &Keys)
        .expect_err("across the cut");
    assert_eq!(refusal.code(), "beyond_cut");
    assert!(matches!(
        plan_ingest(journal.batch(0, 2), 0, GENESIS_PREV_HASH, Some(2), &Keys),
        Ok(IngestPlan::Append(upload)) if upload.last_seq() == 2
    ));
    // Held already: a duplicate, whatever the cut.
    assert!(matches!(
        plan_ingest(journal.batch(0, 2), 2, held_hash, Some(0), &Keys),
        Ok(IngestPlan::Duplicate { held_seq: 2 })
    ));
    // Without a cut the entries beyond are stored.
    assert!(matches!(
        plan_ingest(journal.batch(2, 4), 2, held_hash, None, &Keys),
        Ok(IngestPlan::Append(upload)) if upload.last_seq() == 4
    ));
}
