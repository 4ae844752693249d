//! The sans-IO contract of one replicator, input by input.

use super::support::{append_local, ledger, Ledger};
use crate::replication::{
    LedgerRead, PeerId, ReplicationEvent, Replicator, ReplicatorConfig, VersionVector,
};
use posmesh_proto::sync::v1::{sync_message::Kind, BatchAck, EntryBatch, EntryBytes, SyncMessage};

const DEVICES: [&str; 3] = ["till-1", "till-2", "till-3"];

fn config() -> ReplicatorConfig {
    ReplicatorConfig {
        anti_entropy_interval_ms: 1_000,
        ack_timeout_ms: 100,
        batch_entries_max: 4,
        batch_bytes_max: 1 << 16,
        batches_in_flight_max: 2,
    }
}

fn peer(name: &str) -> PeerId {
    PeerId::from(name)
}

fn vector_msg(vector: &VersionVector) -> SyncMessage {
    SyncMessage {
        kind: Some(Kind::VersionVector(vector.to_proto())),
    }
}

fn ack(device_id: &str, up_to_seq: u64) -> SyncMessage {
    SyncMessage {
        kind: Some(Kind::BatchAck(BatchAck {
            device_id: device_id.into(),
            up_to_seq,
        })),
    }
}

fn drain(r: &mut Replicator) -> Vec<(PeerId, SyncMessage)> {
    std::iter::from_fn(|| r.poll_transmit()).collect()
}

fn events(r: &mut Replicator) -> Vec<ReplicationEvent> {
    std::iter::from_fn(|| r.poll_event()).collect()
}

/// `(first, last)` of every batch in `sent`.
fn batch_ranges(sent: &[(PeerId, SyncMessage)]) -> Vec<(u64, u64)> {
    sent.iter()
        .filter_map(|(_, m)| match &m.kind {
            Some(Kind::EntryBatch(b)) => {
                Some((b.entries[0].seq, b.entries[b.entries.len() - 1].seq))
            }
            _ => None,
        })
        .collect()
}

/// A ledger where `device` wrote batches of the given sizes.
fn ledger_with(device: &str, batches: &[u64]) -> Ledger {
    let mut ledger = ledger(&DEVICES);
    for &count in batches {
        append_local(&mut ledger, device, count);
    }
    ledger
}

fn batch_of(source: &Ledger, device: &str, after: u64, up_to: u64) -> SyncMessage {
    let entries = source
        .entries_after(device, after, (up_to - after) as usize)
        .into_iter()
        .map(|(seq, bytes)| EntryBytes { seq, bytes })
        .collect();
    let head = source.head_signature_at_or_before(device, up_to);
    SyncMessage {
        kind: Some(Kind::EntryBatch(EntryBatch {
            device_id: device.into(),
            entries,
            head,
        })),
    }
}

#[test]
fn the_vector_goes_out_on_connect_and_nothing_is_pushed_before_the_peers_vector() {
    let ledger = ledger_with("till-1", &[3]);
    let mut r = Replicator::new("till-1", config()).expect("valid");
    assert_eq!(r.poll_timeout(), None, "idle without peers");
    r.handle_connected(peer("till-2"), 10);
    assert_eq!(r.poll_timeout(), Some(10));
    r.handle_timeout(10, &ledger);
    let sent = drain(&mut r);
    assert_eq!(
        sent,
        vec![(peer("till-2"), vector_msg(&ledger.version_vector()))]
    );
    assert_eq!(r.poll_timeout(), Some(1_010), "next anti-entropy round");
    r.handle_local_append(20);
    assert_eq!(
        r.poll_timeout(),
        Some(20),
        "a local append is pushed at once"
    );
    r.handle_timeout(20, &ledger);
    assert!(
        drain(&mut r).is_empty(),
        "the peer's position is unknown yet"
    );
    r.handle_message(
        &peer("till-2"),
        vector_msg(&VersionVector::new()),
        30,
        &ledger,
        &ledger,
    );
    assert_eq!(batch_ranges(&drain(&mut r)), vec![(1, 3)]);
}

#[test]
fn batches_end_at_signed_heads_and_the_window_bounds_what_is_in_flight() {
    let ledger = ledger_with("till-1", &[3, 3, 3, 3]);
    let mut r = Replicator::new("till-1", config()).expect("valid");
    r.handle_connected(peer("till-2"), 0);
    r.handle_timeout(0, &ledger);
    assert_eq!(drain(&mut r).len(), 1, "our vector");
    r.handle_message(
        &peer("till-2"),
        vector_msg(&VersionVector::new()),
        0,
        &ledger,
        &ledger,
    );
    // batch_entries_max 4 cuts back to the heads at 3 and 6; the window holds two.
    assert_eq!(batch_ranges(&drain(&mut r)), vec![(1, 3), (4, 6)]);
    r.handle_message(&peer("till-2"), ack("till-1", 3), 5, &ledger, &ledger);
    assert_eq!(batch_ranges(&drain(&mut r)), vec![(7, 9)]);
    // A duplicated or reordered older ack changes nothing.
    r.handle_message(&peer("till-2"), ack("till-1", 1), 6, &ledger, &ledger);
    assert!(drain(&mut r).is_empty());
    // No ack for 100 ms after the oldest in-flight batch (sent at 0): go back to 3.
    assert_eq!(r.poll_timeout(), Some(100));
    r.handle_timeout(100, &ledger);
    let resent = batch_ranges(&drain(&mut r));
    assert_eq!(resent, vec![(4, 6), (7, 9)]);
    assert_eq!(r.stats().go_backs, 1);
}

#[test]
fn a_batch_without_a_signed_head_in_reach_is_not_sent() {
    // One writer batch of 6 entries, larger than batch_entries_max 4: nothing can be cut.
    let ledger = ledger_with("till-1", &[6]);
    let mut r = Replicator::new("till-1", config()).expect("valid");
    r.handle_connected(peer("till-2"), 0);
    r.handle_message(
        &peer("till-2"),
        vector_msg(&VersionVector::new()),
        0,
        &ledger,
        &ledger,
    );
    assert!(batch_ranges(&drain(&mut r)).is_empty());
    assert_eq!(r.stats().batches_stalled_without_head, 1);
}

#[test]
fn a_duplicate_is_acked_an_overlap_trimmed_and_a_gap_ignored() {
    let source = ledger_with("till-2", &[3, 2, 2]);
    let mut local = ledger(&DEVICES);
    let mut r = Replicator::new("till-1", config()).expect("valid");
    let p = peer("till-2");
    r.handle_connected(p.clone(), 0);

    // A gap: 4..5 before 1..3.
    r.handle_message(&p, batch_of(&source, "till-2", 3, 5), 1, &local, &local);
    assert!(events(&mut r).is_empty());
    assert_eq!(r.stats().batches_gap_ignored, 1);

    r.handle_message(&p, batch_of(&source, "till-2", 0, 3), 2, &local, &local);
    let [ReplicationEvent::Store { entries, head, .. }] = &events(&mut r)[..] else {
        panic!("one store");
    };
    assert!(
        drain(&mut r).is_empty(),
        "no ack before the store is durable"
    );
    local.append("till-2", entries, head);
    r.handle_stored("till-2", 3, 3);
    assert_eq!(drain(&mut r), vec![(p.clone(), ack("till-2", 3))]);

    // All held: no store, an ack of what is held.
    r.handle_message(&p, batch_of(&source, "till-2", 0, 3), 4, &local, &local);
    assert!(events(&mut r).is_empty());
    assert_eq!(drain(&mut r), vec![(p.clone(), ack("till-2", 3))]);

    // Overlapping: 1..5 is trimmed to 4..5.
    r.handle_message(&p, batch_of(&source, "till-2", 0, 5), 5, &local, &local);
    let [ReplicationEvent::Store { entries, .. }] = &events(&mut r)[..] else {
        panic!("one store");
    };
    assert_eq!(entries.iter().map(|e| e.0).collect::<Vec<_>>(), vec![4, 5]);
    assert_eq!(r.stats().batches_trimmed, 1);
}

#[test]
fn a_pending_store_parks_its_continuation_and_acks_every_sender_it_covers() {
    let source = ledger_with("till-2", &[3, 2]);
    let mut local = ledger(&DEVICES);
    let mut r = Replicator::new("till-1", config()).expect("valid");
    let (a, b) = (peer("till-2"), peer("till-3"));
    r.handle_connected(a.clone(), 0);
    r.handle_connected(b.clone(), 0);
    r.handle_message(&a, batch_of(&source, "till-2", 0, 3), 1, &local, &local);
    let first = events(&mut r);
    assert_eq!(first.len(), 1);
    // The same range from another peer while the store is pending: no second store.
    r.handle_message(&b, batch_of(&source, "till-2", 0, 3), 2, &local, &local);
    // The continuation: verified and parked, not yet a store.
    r.handle_message(&b, batch_of(&source, "till-2", 0, 5), 3, &local, &local);
    assert!(events(&mut r).is_empty());
    assert_eq!(r.stats().batches_parked, 1);

    let ReplicationEvent::Store { entries, head, .. } = &first[0] else {
        panic!("a store");
    };
    local.append("till-2", entries, head);
    r.handle_stored("till-2", 3, 4);
    let acks: Vec<_> = drain(&mut r)
        .into_iter()
        .filter(|(_, m)| matches!(m.kind, Some(Kind::BatchAck(_))))
        .collect();
    assert_eq!(
        acks,
        vec![(a.clone(), ack("till-2", 3)), (b.clone(), ack("till-2", 3))]
    );
    let [ReplicationEvent::Store {
        from_peer, entries, ..
    }] = &events(&mut r)[..]
    else {
        panic!("the parked batch becomes the next store");
    };
    assert_eq!(from_peer, &b);
    assert_eq!(entries.iter().map(|e| e.0).collect::<Vec<_>>(), vec![4, 5]);

    // The disk fails: the store is dropped and the range can come again.
    r.handle_store_failed("till-2");
    r.handle_message(&a, batch_of(&source, "till-2", 3, 5), 5, &local, &local);
    assert_eq!(events(&mut r).len(), 1);
    assert_eq!(r.stats().stores_failed, 1);
}

#[test]
fn messages_from_peers_that_are_not_connected_are_ignored() {
    let source = ledger_with("till-2", &[2]);
    let local = ledger(&DEVICES);
    let mut r = Replicator::new("till-1", config()).expect("valid");
    r.handle_message(
        &peer("till-2"),
        batch_of(&source, "till-2", 0, 2),
        0,
        &local,
        &local,
    );
    r.handle_connected(peer("till-2"), 1);
    r.handle_disconnected(&peer("till-2"));
    r.handle_message(
        &peer("till-2"),
        batch_of(&source, "till-2", 0, 2),
        2,
        &local,
        &local,
    );
    assert!(events(&mut r).is_empty());
    assert!(drain(&mut r).is_empty());
    assert_eq!(r.stats().messages_from_unknown_peer, 2);
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn an_invalid_config_is_refused() {
    let bad = ReplicatorConfig {
        ack_timeout_ms: 0,
        ..config()
    };
    assert!(Replicator::new("till-1", bad).is_err());
    assert!(Replicator::new("", config()).is_err());
}

#[test]
fn messages_with_unknown_fields_decode_and_unknown_kinds_are_ignored() {
    use prost::Message;
    let mut vector = VersionVector::new();
    vector.advance("till-2", 4);
    let mut bytes = vector_msg(&vector).encode_to_vec();
    // A field 99 (varint) of a newer SyncMessage, after the known oneof member.
    bytes.extend_from_slice(&[0x98, 0x06, 0x01]);
    let decoded = SyncMessage::decode(bytes.as_slice()).expect("unknown fields tolerated");
    assert_eq!(decoded, vector_msg(&vector));
    // A oneof member this version does not know decodes to no kind.
    let newer = SyncMessage::decode(&[0x98, 0x06, 0x01][..]).expect("decodes");
    assert_eq!(newer.kind, None);
    let ledger = ledger(&DEVICES);
    let mut r = Replicator::new("till-1", config()).expect("valid");
    r.handle_connected(peer("till-2"), 0);
    r.handle_message(&peer("till-2"), newer, 0, &ledger, &ledger);
    assert!(events(&mut r).is_empty());
    assert_eq!(r.stats().messages_unknown_kind, 1);
}
