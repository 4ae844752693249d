//! Every refusal reason, from a forger connected as a peer: the batch is refused with the
//! right reason and nothing is stored; afterwards the honest path still converges.

use super::support::SEED;
use crate::chain::{link_entry, BreakKind, ChainHash, GENESIS_PREV_HASH};
use crate::replication::{LedgerRead, PeerId, RefusalReason};
use posmesh_proto::journal::v1::JournalEntry;
use posmesh_proto::sync::v1::{sync_message::Kind, EntryBatch, EntryBytes, SyncMessage};
use posmesh_simulations::sim::keys::{device_key, sign_head, INCARNATION, STORE_ID};
use posmesh_simulations::sim::rng::SimRng;
use posmesh_simulations::sim::{checkers, SimConfig, World};
use prost::Message;

const FORGER: &str = "mallory";

fn key_of(device: &str) -> ed25519_dalek::SigningKey {
    device_key(SEED, device)
}

/// A bare journal entry of `device_id` at `seq` (not yet linked).
fn entry(device_id: &str, seq: u64) -> JournalEntry {
    JournalEntry {
        store_id: STORE_ID.into(),
        device_id: device_id.into(),
        device_incarnation: INCARNATION,
        seq,
        ..Default::default()
    }
}

/// Node 0 (`till-1`) cut off from the honest peers and connected to the forger; `till-2`
/// has written 9 entries in groups of 3, 2 and 4; `till-3` 2 entries. No faults, no skew.
fn setup() -> World {
    let mut config = SimConfig::quick();
    config.skew_max_ms = 0;
    config.disk_latency_max_ms = 1;
    config.replicator.batch_entries_max = 4;
    let names: Vec<String> = ["till-1", "till-2", "till-3"].map(String::from).to_vec();
    let mut world = World::new(SEED, config, None, &names, SimRng::new(SEED), false);
    world.message_faults = false;
    world.cut(0, 1);
    world.cut(0, 2);
    world.devices[0]
        .replicator
        .as_mut()
        .expect("up")
        .handle_connected(PeerId::from(FORGER), 0);
    for count in [3, 2, 4] {
        world.request_sales(1, count);
        world.run_until(world.now_ms + 20);
    }
    world.request_sales(2, 2);
    world.run_until(world.now_ms + 50);
    world
}

/// The honest batch of `device_id` entries `after + 1 ..= up_to` from `node`'s ledger.
fn honest(world: &World, node: usize, device_id: &str, after: u64, up_to: u64) -> EntryBatch {
    let ledger = world.devices[node].disk.durable();
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
fn refuse(world: &mut World, forged: EntryBatch) -> RefusalReason {
    let before = world.devices[0].disk.durable().version_vector();
    let refusals_before = world.history.refusals.len();
    let device = forged.device_id.clone();
    world.inject(0, FORGER, batch(forged), true);
    assert!(world.devices[0].stores.is_empty(), "nothing to store");
    world.run_until(world.now_ms + 50);
    assert_eq!(
        world.devices[0].disk.durable().version_vector(),
        before,
        "nothing stored"
    );
    let new = &world.history.refusals[refusals_before..];
    assert_eq!(new.len(), 1, "exactly one refusal: {new:?}");
    assert_eq!(new[0].device, 0);
    assert_eq!(new[0].peer, FORGER);
    assert_eq!(new[0].author, device);
    new[0].reason.clone()
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
    let relayed = batch(honest(&c, 1, "till-2", 0, 3));
    c.inject(0, FORGER, relayed, false);
    c.run_until(c.now_ms + 50);
    assert_eq!(
        c.devices[0].disk.durable().entries("till-2"),
        &c.devices[1].disk.durable().entries("till-2")[..3]
    );

    // …and a continuation that does not link to what node 0 holds is refused, even when
    // signed with the device's real key (a fork).
    let fork = forged_chain("till-2", 4, 5, [9; 32], "till-2");
    assert_break(&refuse(&mut c, fork), 4, |k| {
        matches!(k, BreakKind::PrevHashMismatch { .. })
    });

    // The honest path still converges.
    c.heal();
    let converged = c.run_until_converged(c.now_ms + 10_000);
    assert!(converged.is_some(), "no convergence after the forgeries");
    c.history.converged_at_ms = converged;
    assert_eq!(checkers::convergence::check(&c), vec![]);
    assert_eq!(checkers::tamper_refusal::check(&c), vec![]);
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
    c.inject(0, FORGER, message, true);
    let refusal = c.history.refusals.pop().expect("refused");
    let (device_id, reason) = (refusal.author, refusal.reason);
    assert_eq!(device_id, "");
    assert!(matches!(reason, RefusalReason::Malformed { .. }));
    // A message kind from a newer version is ignored.
    c.inject(0, FORGER, SyncMessage { kind: None }, false);
    assert!(c.history.refusals.is_empty());
    let stats = c.devices[0].replicator.as_ref().expect("up").stats();
    assert_eq!(stats.messages_unknown_kind, 1);
}
