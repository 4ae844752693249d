//! The cloud's ingest end to end without the network: a real CA, device certificates,
//! signed hash chains, [`CloudService`] over [`RocksCloudStore`]. Duplicates store nothing;
//! every bad upload is refused with a precise code and changes nothing.

use super::rocks_store::RocksCloudStore;
use super::service::CloudService;
use super::store::CloudStore;
use posmesh_mesh::pki::{ChainCa, NodeCredentials};
use posmesh_mesh::tls::{AcceptPolicy, ChainTrust, KeyAttestation};
use posmesh_mesh::PeerIdentity;
use posmesh_proto::cloud::v1::{
    cloud_request, cloud_response, CloudRequest, CloudResponse, Hello, UploadBatch,
};
use posmesh_proto::journal::v1::{journal_entry::Payload, ChainHeadSignature, JournalEntry, Sale};
use posmesh_proto::mesh::v1 as wire;
use posmesh_proto::sync::v1::{EntryBatch, EntryBytes};
use posmesh_sync::chain::{link_entry, ChainHash, GENESIS_PREV_HASH};
use posmesh_sync::chain_head::{public_key, signing_key, ChainHead};
use std::sync::Arc;

const INCARNATION: u64 = 7;

struct Device {
    identity: PeerIdentity,
    /// Its certificate's serial (lowercase hex, as the cloud reads it from the TLS peer).
    serial: String,
    attestation: wire::KeyAttestation,
    key: ed25519_dalek::SigningKey,
    /// The incarnation of its data directory.
    incarnation: u64,
    /// `(seq, bytes, hash)` of every entry written.
    entries: Vec<(u64, Vec<u8>, ChainHash)>,
}

impl Device {
    fn new(ca: &ChainCa, store: &str, device: &str, secret: u8) -> Self {
        Self::of_incarnation(ca, store, device, secret, INCARNATION)
    }

    /// `device` with its data directory of `incarnation` (a wiped and restarted till has a
    /// newer one, and a new key).
    fn of_incarnation(
        ca: &ChainCa,
        store: &str,
        device: &str,
        secret: u8,
        incarnation: u64,
    ) -> Self {
        let identity = PeerIdentity::new_device("acme", store, device).expect("identity");
        let now = time::OffsetDateTime::now_utc();
        let issued = ca
            .issue(
                &identity,
                now - time::Duration::hours(1),
                now + time::Duration::days(1),
            )
            .expect("issue");
        let credentials = NodeCredentials::from_issued(&issued).expect("credentials");
        let key = signing_key(&[secret; 32]);
        let attested =
            KeyAttestation::sign(&credentials, incarnation, public_key(&key)).expect("attest");
        Self {
            identity,
            serial: posmesh_mesh::tls::serial_hex_of_pem(issued.cert_pem.as_bytes())
                .expect("serial"),
            attestation: wire::KeyAttestation {
                cert_der: attested.cert_der,
                device_incarnation: incarnation,
                signing_public_key: attested.signing_public_key.to_vec(),
                signature: attested.signature,
            },
            key,
            incarnation,
            entries: Vec::new(),
        }
    }

    /// Appends `count` cash sales of 1.00 each on `date`.
    fn write(&mut self, count: u64, date: &str) {
        for _ in 0..count {
            let seq = self.entries.len() as u64 + 1;
            let prev = self.entries.last().map_or(GENESIS_PREV_HASH, |e| e.2);
            let mut entry = JournalEntry {
                store_id: self.identity.store_id().unwrap_or_default().to_owned(),
                device_id: self.identity.device_id().to_owned(),
                device_incarnation: self.incarnation,
                seq,
                receipt_no: seq,
                business_date: date.to_owned(),
                payload: Some(Payload::Sale(Sale {
                    currency: "GBP".into(),
                    total_minor: 100,
                    ..Sale::default()
                })),
                ..JournalEntry::default()
            };
            let (bytes, hash) = link_entry(&mut entry, &prev);
            self.entries.push((seq, bytes, hash));
        }
    }

    /// Entries `first ..= last` with the signed head at `last`.
    fn batch(&self, first: u64, last: u64) -> EntryBatch {
        let (_, _, hash) = &self.entries[usize::try_from(last - 1).expect("index")];
        let head = ChainHead {
            store_id: self.identity.store_id().unwrap_or_default().to_owned(),
            device_id: self.identity.device_id().to_owned(),
            device_incarnation: self.incarnation,
            seq: last,
            chain_hash: *hash,
        };
        EntryBatch {
            device_id: self.identity.device_id().to_owned(),
            entries: self.entries
                [usize::try_from(first - 1).expect("index")..usize::try_from(last).expect("index")]
                .iter()
                .map(|(seq, bytes, _)| EntryBytes {
                    seq: *seq,
                    bytes: bytes.clone(),
                })
                .collect(),
            head: Some(ChainHeadSignature {
                device_id: head.device_id.clone(),
                device_incarnation: self.incarnation,
                seq: last,
                chain_hash: hash.to_vec(),
                signature: head.sign(&self.key).to_vec(),
            }),
        }
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    ca: ChainCa,
    store: Arc<RocksCloudStore>,
    service: CloudService,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = ChainCa::init("acme", &dir.path().join("ca")).expect("ca");
    let store = Arc::new(RocksCloudStore::open(&dir.path().join("cloud")).expect("open"));
    let trust = Arc::new(ChainTrust::new(ca.cert_der(), None).expect("trust"));
    let policy = AcceptPolicy::AnyStoreOfChain {
        chain_id: "acme".into(),
    };
    let service = CloudService::new(store.clone(), trust, policy);
    Fixture {
        _dir: dir,
        ca,
        store,
        service,
    }
}

fn upload(
    service: &CloudService,
    caller: &PeerIdentity,
    attestation: Option<wire::KeyAttestation>,
    batch: EntryBatch,
) -> CloudResponse {
    service.handle(
        caller,
        None,
        CloudRequest {
            kind: Some(cloud_request::Kind::Upload(UploadBatch {
                attestation,
                batch: Some(batch),
            })),
        },
    )
}

/// `(held_seq, stored_entries)` of an ack; panics with the refusal otherwise.
fn ack(response: CloudResponse) -> (u64, u64) {
    match response.kind {
        Some(cloud_response::Kind::Ack(ack)) => (ack.held_seq, ack.stored_entries),
        other => panic!("expected an ack, got {other:?}"),
    }
}

fn refusal(response: CloudResponse) -> String {
    match response.kind {
        Some(cloud_response::Kind::Error(error)) => error.code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn the_same_range_from_every_device_is_stored_once() {
    let f = fixture();
    let mut till1 = Device::new(&f.ca, "s1", "till-1", 1);
    let till2 = Device::new(&f.ca, "s1", "till-2", 2);
    let till3 = Device::new(&f.ca, "s1", "till-3", 3);
    till1.write(10, "2026-11-30");
    // till-1's entries, uploaded by all three devices (relayed), overlapping ranges.
    let a = till1.attestation.clone();
    assert_eq!(
        ack(upload(
            &f.service,
            &till2.identity,
            Some(a.clone()),
            till1.batch(1, 6)
        )),
        (6, 6)
    );
    assert_eq!(
        ack(upload(
            &f.service,
            &till3.identity,
            Some(a.clone()),
            till1.batch(1, 6)
        )),
        (6, 0)
    );
    assert_eq!(
        ack(upload(
            &f.service,
            &till1.identity,
            Some(a.clone()),
            till1.batch(3, 10)
        )),
        (10, 4)
    );
    assert_eq!(
        ack(upload(
            &f.service,
            &till2.identity,
            None,
            till1.batch(1, 10)
        )),
        (10, 0)
    );
    assert_eq!(f.store.version_vector("s1").expect("vv").get("till-1"), 10);
    let stored = f
        .store
        .entries_after("s1", "till-1", 0, 100)
        .expect("entries");
    assert_eq!(stored.len(), 10, "every entry once");
    for ((seq, bytes), (want_seq, want_bytes, _)) in stored.iter().zip(&till1.entries) {
        assert_eq!(
            (seq, bytes),
            (want_seq, want_bytes),
            "stored bytes are the device's"
        );
    }
    // Hello tells the store its vector.
    let state = f.service.handle(
        &till3.identity,
        Some(&till3.serial),
        CloudRequest {
            kind: Some(cloud_request::Kind::Hello(Hello {
                catalog_version: 0,
                revocations: Vec::new(),
                ledger_cuts: Vec::new(),
            })),
        },
    );
    let Some(cloud_response::Kind::State(state)) = state.kind else {
        panic!("hello answered {state:?}");
    };
    let vector = state.version_vector.expect("vector");
    assert_eq!(vector.devices.len(), 1);
    assert_eq!(
        (vector.devices[0].device_id.as_str(), vector.devices[0].seq),
        ("till-1", 10)
    );
}

#[test]
fn bad_uploads_are_refused_precisely_and_change_nothing() {
    let f = fixture();
    let mut till1 = Device::new(&f.ca, "s1", "till-1", 1);
    let other_store = Device::new(&f.ca, "s2", "till-1", 4);
    till1.write(8, "2026-11-30");
    let a = till1.attestation.clone();
    assert_eq!(
        ack(upload(
            &f.service,
            &till1.identity,
            Some(a.clone()),
            till1.batch(1, 4)
        )),
        (4, 4)
    );
    let before = f
        .store
        .entries_after("s1", "till-1", 0, 100)
        .expect("entries");

    // A tampered entry: its bytes no longer hash to what the next entry links to.
    let mut tampered = till1.batch(5, 8);
    tampered.entries[1].bytes[3] ^= 0x01;
    assert!(["chain_broken", "head_mismatch"].contains(
        &refusal(upload(
            &f.service,
            &till1.identity,
            Some(a.clone()),
            tampered
        ))
        .as_str()
    ));
    // A forged head: signed by another key.
    let mut forged = till1.batch(5, 8);
    if let Some(head) = forged.head.as_mut() {
        let other = ChainHead {
            store_id: "s1".into(),
            device_id: "till-1".into(),
            device_incarnation: INCARNATION,
            seq: 8,
            chain_hash: head.chain_hash.clone().try_into().expect("32 bytes"),
        };
        head.signature = other.sign(&signing_key(&[9; 32])).to_vec();
    }
    assert_eq!(
        refusal(upload(&f.service, &till1.identity, Some(a.clone()), forged)),
        "bad_signature"
    );
    // A gap: the cloud holds 1..=4, the batch starts at 6.
    assert_eq!(
        refusal(upload(
            &f.service,
            &till1.identity,
            Some(a.clone()),
            till1.batch(6, 8)
        )),
        "gap"
    );
    // Another store's device key cannot vouch for this store's till-1.
    assert_eq!(
        refusal(upload(
            &f.service,
            &till1.identity,
            Some(other_store.attestation.clone()),
            till1.batch(5, 8)
        )),
        "bad_attestation",
        "another store's certificate cannot vouch for this store's device"
    );
    // Entries of a device with no attestation at all.
    let mut till9 = Device::new(&f.ca, "s1", "till-9", 5);
    till9.write(2, "2026-11-30");
    assert_eq!(
        refusal(upload(&f.service, &till1.identity, None, till9.batch(1, 2))),
        "unknown_device"
    );
    // A head that names another entry than the batch's last.
    let mut short_head = till1.batch(5, 8);
    short_head.head = till1.batch(5, 7).head;
    assert_eq!(
        refusal(upload(&f.service, &till1.identity, None, short_head)),
        "head_mismatch"
    );
    // A request that does not decode.
    let answer = f
        .service
        .handle_bytes(&till1.identity, Some(&till1.serial), &[0xff, 0xff, 0xff]);
    let answer: CloudResponse =
        prost::Message::decode(answer.as_slice()).expect("response decodes");
    assert_eq!(refusal(answer), "malformed");

    assert_eq!(
        f.store
            .entries_after("s1", "till-1", 0, 100)
            .expect("entries"),
        before,
        "nothing stored"
    );
    assert_eq!(f.store.version_vector("s1").expect("vv").get("till-1"), 4);
    assert_eq!(f.store.version_vector("s1").expect("vv").get("till-9"), 0);
    // The good rest still goes in afterwards.
    assert_eq!(
        ack(upload(&f.service, &till1.identity, None, till1.batch(5, 8))),
        (8, 4)
    );
}

#[test]
fn stores_are_kept_apart() {
    let f = fixture();
    let mut s1 = Device::new(&f.ca, "s1", "till-1", 1);
    let mut s2 = Device::new(&f.ca, "s2", "till-1", 2);
    s1.write(3, "2026-11-30");
    s2.write(5, "2026-11-30");
    assert_eq!(
        ack(upload(
            &f.service,
            &s1.identity,
            Some(s1.attestation.clone()),
            s1.batch(1, 3)
        )),
        (3, 3)
    );
    assert_eq!(
        ack(upload(
            &f.service,
            &s2.identity,
            Some(s2.attestation.clone()),
            s2.batch(1, 5)
        )),
        (5, 5)
    );
    // s1's device uploading s2's till-1 entries: they do not continue s1's till-1 chain.
    assert_eq!(
        refusal(upload(&f.service, &s1.identity, None, s2.batch(1, 5))),
        "chain_broken"
    );
    assert_eq!(f.store.version_vector("s1").expect("vv").get("till-1"), 3);
    assert_eq!(f.store.version_vector("s2").expect("vv").get("till-1"), 5);
    let report = super::report::chain_report(f.store.as_ref()).expect("report");
    assert_eq!(report.stores.len(), 2);
    let s1_report = report.store("s1").expect("s1");
    assert_eq!(s1_report.entries, 3);
    assert_eq!(s1_report.days.len(), 1);
    assert_eq!(s1_report.days[0].sales, 3);
    assert_eq!(report.store("s2").expect("s2").days[0].sales, 5);
}

#[test]
fn an_impostor_of_a_device_is_refused_by_the_pinning_rule() {
    let f = fixture();
    let mut till1 = Device::new(&f.ca, "s1", "till-1", 1);
    till1.write(5, "2026-11-30");
    let till2 = Device::new(&f.ca, "s1", "till-2", 2);
    assert_eq!(
        ack(upload(
            &f.service,
            &till1.identity,
            Some(till1.attestation.clone()),
            till1.batch(1, 5)
        )),
        (5, 5)
    );
    let pinned = f.store.key_attestation("s1", "till-1").expect("read");
    // till-1 wiped and restarted under its old id: a new key, a newer incarnation, a new
    // chain from seq 1 — a batch holding "nothing new" (seqs the cloud holds) and one
    // going beyond.
    let mut impostor = Device::of_incarnation(&f.ca, "s1", "till-1", 9, INCARNATION + 1);
    impostor.write(7, "2026-12-01");
    for (first, last) in [(1, 3), (1, 7), (6, 7)] {
        let refused = upload(
            &f.service,
            &impostor.identity,
            Some(impostor.attestation.clone()),
            impostor.batch(first, last),
        );
        let Some(cloud_response::Kind::Error(error)) = refused.kind else {
            panic!("accepted {first}..={last}: {refused:?}");
        };
        assert_eq!(error.code, "device_key_conflict", "{first}..={last}");
        assert!(
            error
                .message
                .contains(&format!("incarnation {INCARNATION} is kept")),
            "{}",
            error.message
        );
        // Without its attestation (already refused): refused too, not "unknown device".
        let refused = upload(
            &f.service,
            &till2.identity,
            None,
            impostor.batch(first, last),
        );
        assert_eq!(refusal(refused), "device_key_conflict");
    }
    // Nothing changed: the original key is still pinned, its entries intact and its
    // chain still extends.
    assert_eq!(
        f.store.key_attestation("s1", "till-1").expect("read"),
        pinned
    );
    assert_eq!(f.store.version_vector("s1").expect("vv").get("till-1"), 5);
    till1.write(2, "2026-11-30");
    assert_eq!(
        ack(upload(&f.service, &till2.identity, None, till1.batch(4, 7))),
        (7, 2)
    );
}

#[test]
fn an_older_key_replaces_a_pinned_one_only_while_nothing_is_held() {
    let f = fixture();
    let mut newer = Device::of_incarnation(&f.ca, "s1", "till-1", 9, INCARNATION + 1);
    newer.write(3, "2026-11-30");
    let mut older = Device::new(&f.ca, "s1", "till-1", 1);
    older.write(3, "2026-11-30");
    // The newer key reaches the cloud first, with a batch refused for its gap: pinned,
    // nothing held.
    let refused = upload(
        &f.service,
        &newer.identity,
        Some(newer.attestation.clone()),
        newer.batch(2, 3),
    );
    assert_eq!(refusal(refused), "gap");
    // The older incarnation's key replaces it (as on peers: they converge), and its
    // entries are stored.
    assert_eq!(
        ack(upload(
            &f.service,
            &older.identity,
            Some(older.attestation.clone()),
            older.batch(1, 3)
        )),
        (3, 3)
    );
    assert_eq!(
        f.store.key_attestation("s1", "till-1").expect("read"),
        Some(older.attestation.clone())
    );
    // Entries are held now: the newer key is refused.
    let refused = upload(
        &f.service,
        &newer.identity,
        Some(newer.attestation.clone()),
        newer.batch(1, 3),
    );
    assert_eq!(refusal(refused), "device_key_conflict");
    assert_eq!(f.store.version_vector("s1").expect("vv").get("till-1"), 3);
}

/// `device` (its certificate, serial and all) uploads `batch` with its attestation.
fn upload_as(service: &CloudService, device: &Device, batch: EntryBatch) -> CloudResponse {
    service.handle(
        &device.identity,
        Some(&device.serial),
        CloudRequest {
            kind: Some(cloud_request::Kind::Upload(UploadBatch {
                attestation: Some(device.attestation.clone()),
                batch: Some(batch),
            })),
        },
    )
}

/// `device` says hello, reporting `revocations` `(serial, effective index)`.
fn hello_as(service: &CloudService, device: &Device, revocations: &[(&str, u64)]) -> CloudResponse {
    hello_reporting(service, device, revocations, &[])
}

/// `device` says hello, reporting ledger `cuts` `(device, up_to_seq, cut_at_index)`.
fn hello_cuts(service: &CloudService, device: &Device, cuts: &[(&str, u64, u64)]) -> CloudResponse {
    hello_reporting(service, device, &[], cuts)
}

/// `device` says hello, reporting `revocations` and ledger `cuts`.
fn hello_reporting(
    service: &CloudService,
    device: &Device,
    revocations: &[(&str, u64)],
    cuts: &[(&str, u64, u64)],
) -> CloudResponse {
    use posmesh_proto::cloud::v1::{CertificateRevocation, LedgerCut};
    let revocations = revocations
        .iter()
        .map(|(serial, index)| CertificateRevocation {
            serial: (*serial).to_owned(),
            effective_index: *index,
        })
        .collect();
    let ledger_cuts = cuts
        .iter()
        .map(|(device_id, up_to_seq, cut_at_index)| LedgerCut {
            device_id: (*device_id).to_owned(),
            up_to_seq: *up_to_seq,
            cut_at_index: *cut_at_index,
        })
        .collect();
    service.handle(
        &device.identity,
        Some(&device.serial),
        CloudRequest {
            kind: Some(cloud_request::Kind::Hello(Hello {
                catalog_version: 0,
                revocations,
                ledger_cuts,
            })),
        },
    )
}

#[test]
fn entries_beyond_a_ledger_cut_are_refused_whoever_uploads_them() {
    let f = fixture();
    let till1 = Device::new(&f.ca, "s1", "till-1", 1);
    let mut till3 = Device::new(&f.ca, "s1", "till-3", 3);
    // 2 entries before its revocation (cut at 2), 3 after.
    till3.write(5, "2026-11-30");
    assert_eq!(
        ack(upload_as(&f.service, &till3, till3.batch(1, 1))),
        (1, 1)
    );
    // Bad cut reports are refused whole: nothing learned.
    for bad in [vec![("till-3", 2, 12), ("", 2, 12)], vec![("till-3", 2, 0)]] {
        assert_eq!(
            refusal(hello_cuts(&f.service, &till1, &bad)),
            "malformed",
            "{bad:?}"
        );
    }
    assert_eq!(f.store.ledger_cut("s1", "till-3").expect("read"), None);
    assert!(matches!(
        hello_cuts(&f.service, &till1, &[("till-3", 2, 12)]).kind,
        Some(cloud_response::Kind::State(_))
    ));
    assert_eq!(f.store.ledger_cut("s1", "till-3").expect("read"), Some(2));
    // Relayed by till-1: beyond the cut refused (whole batch), nothing stored.
    let relay = |first, last| {
        upload(
            &f.service,
            &till1.identity,
            Some(till3.attestation.clone()),
            till3.batch(first, last),
        )
    };
    assert_eq!(refusal(relay(2, 5)), "beyond_cut");
    assert_eq!(refusal(relay(3, 3)), "beyond_cut");
    assert_eq!(f.store.version_vector("s1").expect("vv").get("till-3"), 1);
    // Up to the cut: stored (never retroactive); held entries still answer as held.
    assert_eq!(ack(relay(2, 2)), (2, 1));
    assert_eq!(ack(relay(1, 2)), (2, 0));
    assert_eq!(refusal(relay(3, 5)), "beyond_cut");
    assert_eq!(f.store.version_vector("s1").expect("vv").get("till-3"), 2);
    // A cut never moves; another store is not affected.
    assert!(matches!(
        hello_cuts(&f.service, &till1, &[("till-3", 5, 20)]).kind,
        Some(cloud_response::Kind::State(_))
    ));
    assert_eq!(f.store.ledger_cut("s1", "till-3").expect("read"), Some(2));
    assert_eq!(f.store.ledger_cut("s2", "till-3").expect("read"), None);
}

#[test]
fn a_device_revoked_store_wide_is_refused_once_the_store_says_so() {
    let f = fixture();
    let mut till1 = Device::new(&f.ca, "s1", "till-1", 1);
    let mut till3 = Device::new(&f.ca, "s1", "till-3", 3);
    let mut other_store = Device::new(&f.ca, "s2", "till-3", 4);
    till1.write(2, "2026-11-30");
    till3.write(6, "2026-11-30");
    other_store.write(1, "2026-11-30");
    assert_eq!(
        ack(upload_as(&f.service, &till3, till3.batch(1, 4))),
        (4, 4)
    );

    // Bad revocation reports are refused whole: nothing learned, till-3 still accepted.
    for bad in [
        vec![(till3.serial.as_str(), 9), ("0C", 9)],
        vec![(till3.serial.as_str(), 9), ("", 9)],
        vec![(till3.serial.as_str(), 0)],
    ] {
        assert_eq!(
            refusal(hello_as(&f.service, &till1, &bad)),
            "malformed",
            "{bad:?}"
        );
    }
    assert_eq!(f.store.revoked_at("s1", &till3.serial).expect("read"), None);

    // till-1 reports the store's committed revocation of till-3's certificate.
    let state = hello_as(&f.service, &till1, &[(till3.serial.as_str(), 9)]);
    assert!(
        matches!(state.kind, Some(cloud_response::Kind::State(_))),
        "{state:?}"
    );
    assert_eq!(
        f.store.revoked_at("s1", &till3.serial).expect("read"),
        Some(9)
    );
    // From then on every call of till-3's certificate is refused, precisely.
    let refused = upload_as(&f.service, &till3, till3.batch(5, 6));
    let Some(cloud_response::Kind::Error(error)) = refused.kind else {
        panic!("expected a refusal, got {refused:?}");
    };
    assert_eq!(error.code, "certificate_revoked");
    assert!(
        error.message.contains(&till3.serial) && error.message.contains("index 9"),
        "{}",
        error.message
    );
    assert_eq!(
        refusal(hello_as(&f.service, &till3, &[])),
        "certificate_revoked"
    );
    let bytes = f
        .service
        .handle_bytes(&till3.identity, Some(&till3.serial), &[]);
    let answer: CloudResponse = prost::Message::decode(bytes.as_slice()).expect("decodes");
    assert_eq!(refusal(answer), "certificate_revoked");
    // Never retroactive: its 4 entries accepted before stay.
    assert_eq!(f.store.version_vector("s1").expect("vv").get("till-3"), 4);
    assert_eq!(
        f.store
            .entries_after("s1", "till-3", 0, 100)
            .expect("entries")
            .len(),
        4
    );
    // The rest of the store goes on; till-1 may still relay till-3's entries signed before
    // (they are the store's ledger), and another store is not affected.
    assert_eq!(
        ack(upload_as(&f.service, &till1, till1.batch(1, 2))),
        (2, 2)
    );
    assert_eq!(
        ack(upload(
            &f.service,
            &till1.identity,
            Some(till3.attestation.clone()),
            till3.batch(5, 6)
        )),
        (6, 2)
    );
    assert_eq!(
        ack(upload_as(&f.service, &other_store, other_store.batch(1, 1))),
        (1, 1)
    );
    // Sent again with another index: the revocation's index never moves.
    assert!(matches!(
        hello_as(&f.service, &till1, &[(till3.serial.as_str(), 3)]).kind,
        Some(cloud_response::Kind::State(_))
    ));
    assert_eq!(
        f.store.revoked_at("s1", &till3.serial).expect("read"),
        Some(9)
    );
}

#[test]
fn a_device_reporting_its_own_revocation_is_refused_at_once() {
    let f = fixture();
    let till2 = Device::new(&f.ca, "s1", "till-2", 2);
    assert_eq!(
        refusal(hello_as(&f.service, &till2, &[(till2.serial.as_str(), 5)])),
        "certificate_revoked"
    );
    assert_eq!(
        f.store.revoked_at("s1", &till2.serial).expect("read"),
        Some(5)
    );
}
