//! Every refusal reason, from a forger connected as a peer: the batch is refused with the
//! right reason and nothing is stored; afterwards the honest path still converges.

use super::harness::{Cluster, Faults};
use super::mem_ledger::{entry, key_of, sign_head};
use crate::chain::{link_entry, BreakKind, ChainHash, GENESIS_PREV_HASH};
use crate::replication::{LedgerRead, PeerId, RefusalReason, ReplicatorConfig};
use posmesh_proto::journal::v1::JournalEntry;
use posmesh_proto::sync::v1::{sync_message::Kind, EntryBatch, EntryBytes, SyncMessage};
use prost::Message;

const FORGER: &str = "mallory";

/// Node 0 (`till-1`) cut off from the honest peers and connected to the forger; `till-2`
/// has written 9 entries in batches of 3, 2 and 4; `till-3` 2 entries.
fn setup() -> Cluster {
    let config = ReplicatorConfig {
        batch_entries_max: 4,
        ..ReplicatorConfig::default()
    };
    let mut cluster = Cluster::new(&["till-1", "till-2", "till-3"], &config, 7, Faults::NONE);
    cluster.set_link(0, 1, false);
    cluster.set_link(0, 2, false);
    cluster.nodes[0]
        .replicator
        .handle_connected(PeerId::from(FORGER), 0);
    for count in [3, 2, 4] {
        cluster.append(1, count);
    }
    cluster.append(2, 2);
    cluster
}

/// The honest batch of `device_id` entries `after + 1 ..= up_to` from `node`'s ledger.
fn honest(cluster: &Cluster, node: usize, device_id: &str, after: u64, up_to: u64) -> EntryBatch {
    let ledger = &cluster.nodes[node].ledger;
    let entries = ledger
        .entries_after(device_id, after, (up_to - after) as usize)
        .into_iter()
        .map(|(seq, bytes)| EntryBytes { seq, bytes })
        .collect();
    let head = ledger
        .head_signature_at_or_before(device_id, up_to)
        .expect("a signed head");
    assert_eq!(head.seq, up_to, "tests cut batches at signed heads");
    EntryBatch {
        device_id: device_id.into(),
        entries,
        head: Some(head),
    }
}

/// A chain of `device_id` entries `first ..= last` linked from `prev`, its head signed by the
/// key of `signer`.
fn forged_chain(
    device_id: &str,
    first: u64,
    last: u64,
    prev: ChainHash,
    signer: &str,
) -> EntryBatch {
    let mut prev = prev;
    let entries = (first..=last)
        .map(|seq| {
            let mut e = entry(device_id, seq);
            e.operator_id = "forged".into();
            let (bytes, hash) = link_entry(&mut e, &prev);
            prev = hash;
            EntryBytes { seq, bytes }
        })
        .collect();
    EntryBatch {
        device_id: device_id.into(),
        entries,
        head: Some(sign_head(device_id, last, prev, &key_of(signer))),
    }
}

fn batch(b: EntryBatch) -> SyncMessage {
    SyncMessage {
        kind: Some(Kind::EntryBatch(b)),
    }
}

/// Injects `forged` into node 0 and returns the one refusal it caused; asserts that node 0's
/// ledger did not change.
fn refuse(cluster: &mut Cluster, forged: EntryBatch) -> RefusalReason {
    let before = cluster.nodes[0].ledger.version_vector();
    let stored_before = cluster.nodes[0].ledger.entries_stored;
    let device = forged.device_id.clone();
    cluster.inject(0, FORGER, batch(forged));
    cluster.run_until(cluster.now_ms + 50);
    let node = &mut cluster.nodes[0];
    assert_eq!(node.ledger.version_vector(), before, "nothing stored");
    assert_eq!(node.ledger.entries_stored, stored_before, "nothing stored");
    assert_eq!(
        node.refusals.len(),
        1,
        "exactly one refusal: {:?}",
        node.refusals
    );
    let (peer, device_id, reason) = node.refusals.remove(0);
    assert_eq!(peer, PeerId::from(FORGER));
    assert_eq!(device_id, device);
    reason
}

fn tamper(bytes: &[u8]) -> Vec<u8> {
    let mut e = JournalEntry::decode(bytes).expect("decodes");
    e.operator_id = "mallory".into();
    e.encode_to_vec()
}

fn assert_break(reason: &RefusalReason, seq: u64, kind: impl Fn(&BreakKind) -> bool) {
    match reason {
        RefusalReason::ChainBroken(b) if b.seq == seq && kind(&b.kind) => {}
        other => panic!("expected a chain break at seq {seq}, got {other:?}"),
    }
}

#[test]
fn every_forgery_is_refused_with_its_reason_and_the_honest_path_converges() {
    let mut c = setup();

    // A tampered entry in the middle: the next entry no longer links to it.
    let mut b = honest(&c, 1, "till-2", 0, 3);
    b.entries[1].bytes = tamper(&b.entries[1].bytes);
    let reason = refuse(&mut c, b);
    assert_break(&reason, 3, |k| {
        matches!(k, BreakKind::PrevHashMismatch { .. })
    });

    // A tampered last entry: the chain links, but the head names another hash.
    let mut b = honest(&c, 1, "till-2", 0, 3);
    b.entries[2].bytes = tamper(&b.entries[2].bytes);
    assert!(matches!(
        refuse(&mut c, b),
        RefusalReason::HeadMismatch { .. }
    ));

    // Honest entries, head signed with another key.
    let mut b = honest(&c, 1, "till-2", 0, 3);
    let chain_hash: ChainHash = b.head.as_ref().expect("head").chain_hash[..]
        .try_into()
        .expect("32 bytes");
    b.head = Some(sign_head("till-2", 3, chain_hash, &key_of(FORGER)));
    assert!(matches!(
        refuse(&mut c, b),
        RefusalReason::BadSignature { .. }
    ));

    // A whole chain forged from the genesis, signed by the forger.
    let b = forged_chain("till-2", 1, 3, GENESIS_PREV_HASH, FORGER);
    assert!(matches!(
        refuse(&mut c, b),
        RefusalReason::BadSignature { .. }
    ));

    // Entries naming another device inside a till-2 batch.
    let mut b = honest(&c, 2, "till-3", 0, 2);
    b.device_id = "till-2".into();
    b.head.as_mut().expect("head").device_id = "till-2".into();
    assert_break(&refuse(&mut c, b), 1, |k| {
        matches!(k, BreakKind::DeviceMismatch { .. })
    });

    // A seq gap inside the batch.
    let mut b = honest(&c, 1, "till-2", 0, 5);
    b.entries.remove(2);
    assert_break(&refuse(&mut c, b), 4, |k| {
        matches!(
            k,
            BreakKind::SequenceGap {
                expected: 3,
                found: 4
            }
        )
    });

    // A device nobody knows.
    let b = forged_chain("till-9", 1, 2, GENESIS_PREV_HASH, "till-9");
    assert_eq!(refuse(&mut c, b), RefusalReason::UnknownDevice);

    // Entries of node 0's own device that it never wrote.
    let b = forged_chain("till-1", 1, 2, GENESIS_PREV_HASH, "till-1");
    assert_eq!(refuse(&mut c, b), RefusalReason::LocalDevice);

    // Malformed: no head; no entries; a head at another seq than the last entry.
    let mut b = honest(&c, 1, "till-2", 0, 3);
    b.head = None;
    assert!(matches!(refuse(&mut c, b), RefusalReason::Malformed { .. }));
    let mut b = honest(&c, 1, "till-2", 0, 3);
    b.entries.clear();
    assert!(matches!(refuse(&mut c, b), RefusalReason::Malformed { .. }));
    let mut b = honest(&c, 1, "till-2", 0, 5);
    b.entries.pop();
    assert!(matches!(
        refuse(&mut c, b),
        RefusalReason::HeadMismatch { .. }
    ));

    // Nothing above reached the disk. Now an honest batch relayed by the forger is stored
    // (data is trusted for its signatures, not for who carries it)…
    c.inject(0, FORGER, batch(honest(&c, 1, "till-2", 0, 3)));
    c.run_until(c.now_ms + 50);
    assert_eq!(
        c.nodes[0].ledger.entries("till-2"),
        &c.nodes[1].ledger.entries("till-2")[..3]
    );

    // …and a continuation that does not link to what node 0 holds is refused, even when
    // signed with the device's real key (a fork).
    let fork = forged_chain("till-2", 4, 5, [9; 32], "till-2");
    assert_break(&refuse(&mut c, fork), 4, |k| {
        matches!(k, BreakKind::PrevHashMismatch { .. })
    });

    // The honest path still converges.
    c.heal();
    let converged = c.run_until_done(c.now_ms + 10_000, Cluster::converged);
    assert!(converged.is_some(), "no convergence after the forgeries");
    assert_eq!(c.check_convergence(), Vec::<String>::new());
}

#[test]
fn a_malformed_version_vector_is_refused_and_changes_nothing() {
    use posmesh_proto::sync::v1::{DeviceSeq, VersionVectorMsg};
    let mut c = setup();
    let twice = DeviceSeq {
        device_id: "till-2".into(),
        seq: 1,
    };
    let message = SyncMessage {
        kind: Some(Kind::VersionVector(VersionVectorMsg {
            devices: vec![twice.clone(), twice],
        })),
    };
    c.inject(0, FORGER, message);
    let (_, device_id, reason) = c.nodes[0].refusals.remove(0);
    assert_eq!(device_id, "");
    assert!(matches!(reason, RefusalReason::Malformed { .. }));
    // A message kind from a newer version is ignored.
    c.inject(0, FORGER, SyncMessage { kind: None });
    assert!(c.nodes[0].refusals.is_empty());
    assert_eq!(c.nodes[0].replicator.stats().messages_unknown_kind, 1);
}
