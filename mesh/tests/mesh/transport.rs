//! QUIC + mutual TLS on 127.0.0.1: connect, ping, streams, and every refusal in both
//! directions. Every step is bounded by a tokio timeout.

use std::future::Future;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use super::common::*;
use posmesh_mesh::pki::{IssuedIdentity, NodeCredentials};
use posmesh_mesh::tls::{AcceptPolicy, MeshTls, RefusalReason};
use posmesh_mesh::transport::{
    keep_connection, quinn_client_config, quinn_server_config, DialDirection, MeshEndpoint,
    StreamPurpose,
};
use posmesh_mesh::{MeshError, PeerIdentity};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateRevocationListDer;

/// Whole-test limit.
const TEST_LIMIT: Duration = Duration::from_secs(60);

async fn bounded<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_LIMIT, future)
        .await
        .expect("test exceeded its time limit")
}

async fn step<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP, future)
        .await
        .expect("step exceeded its time limit")
}

/// A node that presents `issued`'s certificate but trusts `trust_ca_pem` and accepts any
/// device of `chain_id`: it gets far enough for the other side to judge its certificate.
fn impostor_tls(cert_pem: &str, key_pem: &str, trust_ca_pem: &str, chain_id: &str) -> MeshTls {
    let creds = NodeCredentials::from_pem(
        cert_pem.as_bytes(),
        key_pem.as_bytes(),
        trust_ca_pem.as_bytes(),
        None,
    )
    .expect("impostor credentials");
    MeshTls::new(
        creds,
        AcceptPolicy::AnyStoreOfChain {
            chain_id: chain_id.to_owned(),
        },
    )
    .expect("impostor tls")
}

fn impostor_from(issued: &IssuedIdentity, trust: &Chain) -> MeshTls {
    impostor_tls(
        &issued.cert_pem,
        &issued.key_pem,
        trust.ca.cert_pem(),
        trust.ca.chain_id(),
    )
}

/// The good side of every refusal test: a serving device and a dialing device of store s1.
struct Store {
    chain: Chain,
    server: MeshEndpoint,
    client: MeshEndpoint,
}

fn store() -> Store {
    let chain = chain("acme");
    let server = bind(
        good_tls(&issue(&chain.ca, &device("acme", "s1", "server"))),
        1,
    );
    let client = bind(
        good_tls(&issue(&chain.ca, &device("acme", "s1", "client"))),
        2,
    );
    Store {
        chain,
        server,
        client,
    }
}

/// The serving endpoint still accepts a good peer, and the good client still dials.
async fn good_peer_still_served(s: &Store) {
    let (dialed, accepted) =
        step(async { tokio::join!(s.client.connect(addr(&s.server)), s.server.accept()) }).await;
    let dialed = dialed.expect("good client connects");
    let accepted = accepted.expect("server accepts");
    assert_eq!(
        accepted.peer_identity(),
        &device("acme", "s1", "client"),
        "the refused peer never reached accept()"
    );
    assert_eq!(dialed.peer_identity(), &device("acme", "s1", "server"));
    step(dialed.ping()).await.expect("ping after refusals");
}

/// `bad` dials our server (server must refuse), then our client dials `bad` (client must
/// refuse); `reason` is counted on the refusing side each time.
async fn refused_both_ways(s: &Store, bad: MeshEndpoint, reason: RefusalReason) {
    // 1. Server refuses the bad client.
    let err = step(bad.connect(addr(&s.server)))
        .await
        .expect_err("server must refuse the bad client");
    assert!(
        matches!(err, MeshError::RefusedByPeer { .. }),
        "client side sees the refusal, got {err:?}"
    );
    assert_eq!(
        s.server.counters().get(reason),
        1,
        "server counted {reason}"
    );
    assert_eq!(s.server.counters().total(), 1);
    good_peer_still_served(s).await;

    // 2. Client refuses the bad server.
    let err = step(s.client.connect(addr(&bad)))
        .await
        .expect_err("client must refuse the bad server");
    assert!(
        matches!(err, MeshError::RefusedPeer { .. }),
        "client refused locally, got {err:?}"
    );
    assert_eq!(
        s.client.counters().get(reason),
        1,
        "client counted {reason}"
    );
    assert_eq!(s.client.counters().total(), 1);
    good_peer_still_served(s).await;
}

#[tokio::test]
async fn same_store_connects_pings_and_streams_both_directions() {
    bounded(async {
        let c = chain("acme");
        let a_id = device("acme", "s1", "till-a");
        let b_id = device("acme", "s1", "till-b");
        let a = bind(good_tls(&issue(&c.ca, &a_id)), 1);
        let b = bind(good_tls(&issue(&c.ca, &b_id)), 2);

        // A dials B.
        let (ab, ba) = step(async { tokio::join!(a.connect(addr(&b)), b.accept()) }).await;
        let (ab, ba) = (ab.expect("A dials B"), ba.expect("B accepts A"));
        assert_eq!(ab.peer_identity(), &b_id);
        assert_eq!(ba.peer_identity(), &a_id);
        assert!(step(ab.ping()).await.expect("A pings B") < STEP);
        assert!(step(ba.ping()).await.expect("B pings A") < STEP);
        assert!(ab.rtt() < STEP);

        // A stream per purpose, both ways; each purpose has its own queue, so an unread
        // Raft stream opened first does not hold back the Sync reader.
        let mut early_raft = step(ab.open_stream(StreamPurpose::Raft))
            .await
            .expect("open");
        early_raft.send_frame(b"vote").await.expect("send");
        let mut sync = step(ab.open_stream(StreamPurpose::Sync))
            .await
            .expect("open");
        sync.send_frame(b"hello").await.expect("send");
        let mut sync_in = step(ba.accept_stream_of(StreamPurpose::Sync))
            .await
            .expect("accept stream");
        assert_eq!(sync_in.purpose(), StreamPurpose::Sync);
        assert_eq!(
            step(sync_in.recv_frame()).await.expect("recv"),
            Some(b"hello".to_vec())
        );
        sync_in.send_frame(b"world").await.expect("reply");
        sync_in.finish();
        assert_eq!(
            step(sync.recv_frame()).await.expect("recv reply"),
            Some(b"world".to_vec())
        );
        assert_eq!(step(sync.recv_frame()).await.expect("end"), None);

        let mut raft = step(ba.open_stream(StreamPurpose::Raft))
            .await
            .expect("open");
        raft.send_frame(b"append").await.expect("send");
        let mut early_raft_in = step(ba.accept_stream_of(StreamPurpose::Raft))
            .await
            .expect("accept the earlier stream");
        assert_eq!(
            step(early_raft_in.recv_frame()).await.expect("recv"),
            Some(b"vote".to_vec())
        );
        assert!(ba.accept_stream_of(StreamPurpose::Ping).await.is_err());
        let mut raft_in = step(ab.accept_stream_of(StreamPurpose::Raft))
            .await
            .expect("accept stream");
        assert_eq!(raft_in.purpose(), StreamPurpose::Raft);
        assert_eq!(
            step(raft_in.recv_frame()).await.expect("recv"),
            Some(b"append".to_vec())
        );

        // B dials A too (a second connection; the simultaneous-dial rule picks one).
        let (b2, a2) = step(async { tokio::join!(b.connect(addr(&a)), a.accept()) }).await;
        let (b2, a2) = (b2.expect("B dials A"), a2.expect("A accepts B"));
        assert!(step(b2.ping()).await.is_ok());
        assert!(step(a2.ping()).await.is_ok());
        let keep_ab = keep_connection(a_id.device_id(), b_id.device_id(), DialDirection::Outgoing);
        let keep_ba = keep_connection(a_id.device_id(), b_id.device_id(), DialDirection::Incoming);
        assert!(keep_ab && !keep_ba, "till-a < till-b: A's dial wins");
        assert_eq!(a.counters().total() + b.counters().total(), 0);
    })
    .await;
}

#[tokio::test]
async fn other_chain_refused_both_ways() {
    bounded(async {
        let s = store();
        let other = chain("zeta");
        let issued = issue(&other.ca, &device("zeta", "s1", "intruder"));
        let bad = bind(impostor_from(&issued, &s.chain), 3);
        refused_both_ways(&s, bad, RefusalReason::OtherChain).await;
    })
    .await;
}

#[tokio::test]
async fn other_store_refused_both_ways() {
    bounded(async {
        let s = store();
        let issued = issue(&s.chain.ca, &device("acme", "s2", "neighbour"));
        let bad = bind(impostor_from(&issued, &s.chain), 3);
        refused_both_ways(&s, bad, RefusalReason::OtherStore).await;
    })
    .await;
}

#[tokio::test]
async fn revoked_refused_both_ways() {
    bounded(async {
        let s = store();
        let issued = issue(&s.chain.ca, &device("acme", "s1", "stolen"));
        let crl_pem = s
            .chain
            .ca
            .revoke(&[&issued.serial_hex], utc(2025), utc(2026))
            .expect("revoke");
        let crl = CertificateRevocationListDer::from_pem_slice(crl_pem.as_bytes()).expect("crl");
        // The CRL's nextUpdate (2026) may be past: posmesh honours it anyway.
        s.server.tls().trust().set_crl(&crl).expect("server CRL");
        s.client.tls().trust().set_crl(&crl).expect("client CRL");
        let bad = bind(impostor_from(&issued, &s.chain), 3);
        refused_both_ways(&s, bad, RefusalReason::Revoked).await;
        // What an operator reads (e.g. in `posmesh status`): words, then the alert number.
        let bad = bind(impostor_from(&issued, &s.chain), 4);
        let text = step(bad.connect(addr(&s.server)))
            .await
            .expect_err("refused")
            .to_string();
        assert!(
            text.contains("our certificate is revoked")
                && text.contains("TLS alert 44 certificate_revoked"),
            "{text}"
        );
    })
    .await;
}

#[tokio::test]
async fn expired_refused_both_ways() {
    bounded(async {
        let s = store();
        let issued = s
            .chain
            .ca
            .issue(&device("acme", "s1", "old"), utc(2020), utc(2021))
            .expect("issue expired");
        let bad = bind(impostor_from(&issued, &s.chain), 3);
        refused_both_ways(&s, bad, RefusalReason::Expired).await;
    })
    .await;
}

#[tokio::test]
async fn self_signed_refused_both_ways() {
    bounded(async {
        let s = store();
        let name = device("acme", "s1", "forger").to_dns_name();
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let mut params = rcgen::CertificateParams::new(vec![name]).expect("params");
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.self_signed(&key).expect("self-signed");
        let bad = bind(
            impostor_tls(
                &cert.pem(),
                &key.serialize_pem(),
                s.chain.ca.cert_pem(),
                "acme",
            ),
            3,
        );
        refused_both_ways(&s, bad, RefusalReason::SelfSigned).await;
    })
    .await;
}

#[tokio::test]
async fn wrong_alpn_refused_both_ways() {
    bounded(async {
        let s = store();
        let wrong = b"posmesh/0".to_vec();

        // 1. Our server refuses a client offering another ALPN.
        let mut tls = s.client.tls().client_config().expect("client tls");
        tls.alpn_protocols = vec![wrong.clone()];
        let config = quinn_client_config(tls, s.client.settings()).expect("quinn client");
        let err = step(s.client.connect_with(addr(&s.server), config))
            .await
            .expect_err("server must refuse the ALPN");
        assert!(
            matches!(err, MeshError::RefusedByPeer { alert: 120 }),
            "{err:?}"
        );
        assert_eq!(s.server.counters().get(RefusalReason::WrongAlpn), 1);
        good_peer_still_served(&s).await;

        // 2. Our client meets a server speaking another ALPN. QUIC servers refuse first
        // (RFC 9001 §8.1); the client counts it all the same.
        let before = s.client.counters().get(RefusalReason::WrongAlpn);
        let other = issue(&s.chain.ca, &device("acme", "s1", "legacy"));
        let mut server_tls = good_tls(&other).server_config().expect("server tls");
        server_tls.alpn_protocols = vec![wrong];
        let server_config = quinn_server_config(server_tls, s.client.settings()).expect("quinn");
        let legacy = quinn::Endpoint::server(server_config, SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("legacy endpoint");
        let legacy_addr = legacy.local_addr().expect("addr");
        let legacy_task = tokio::spawn(async move {
            // Drive at most one incoming handshake.
            if let Some(incoming) = legacy.accept().await {
                let _ = incoming.await;
            }
        });
        let err = step(s.client.connect(legacy_addr))
            .await
            .expect_err("ALPN mismatch must fail");
        assert!(
            matches!(err, MeshError::RefusedByPeer { alert: 120 }),
            "{err:?}"
        );
        assert_eq!(
            s.client.counters().get(RefusalReason::WrongAlpn),
            before + 1
        );
        legacy_task.abort();
        good_peer_still_served(&s).await;
    })
    .await;
}

#[tokio::test]
async fn garbage_datagrams_do_not_stop_the_endpoint() {
    bounded(async {
        let s = store();
        let target = addr(&s.server);
        let socket = UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0))).expect("udp");
        // Deterministic junk: short, long, and QUIC-long-header-looking datagrams.
        let mut state: u64 = 0x5eed;
        for i in 0..200usize {
            let len = [1, 7, 40, 1200, 1500][i % 5];
            let mut datagram: Vec<u8> = (0..len)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    (state >> 56) as u8
                })
                .collect();
            if i % 3 == 0 && len >= 5 {
                // Long header, QUIC v1 (RFC 9000 §17.2), then junk.
                datagram[0] = 0xc0;
                datagram[1..5].copy_from_slice(&1u32.to_be_bytes());
            }
            socket.send_to(&datagram, target).expect("send junk");
        }
        good_peer_still_served(&s).await;
        assert_eq!(s.server.counters().total(), 0);
    })
    .await;
}

#[tokio::test]
async fn cloud_accepts_every_store_and_devices_accept_their_cloud() {
    bounded(async {
        let c = chain("acme");
        let cloud_id = PeerIdentity::new_cloud("acme", "hq").expect("cloud id");
        let cloud = bind(good_tls(&issue(&c.ca, &cloud_id)), 1);
        let d1 = bind(good_tls(&issue(&c.ca, &device("acme", "s1", "t1"))), 2);
        let d2 = bind(good_tls(&issue(&c.ca, &device("acme", "s2", "t1"))), 3);

        for (dev, store) in [(&d1, "s1"), (&d2, "s2")] {
            let (dialed, accepted) =
                step(async { tokio::join!(dev.connect(addr(&cloud)), cloud.accept()) }).await;
            let dialed = dialed.expect("device dials the cloud");
            let accepted = accepted.expect("cloud accepts the device");
            assert_eq!(dialed.peer_identity(), &cloud_id);
            assert_eq!(accepted.peer_identity().store_id(), Some(store));
            assert!(step(accepted.ping()).await.is_ok());
        }

        // The cloud dials a device: the device's SameStore policy admits its chain's cloud.
        let (dialed, accepted) =
            step(async { tokio::join!(cloud.connect(addr(&d1)), d1.accept()) }).await;
        assert_eq!(
            dialed.expect("cloud dials").peer_identity(),
            &device("acme", "s1", "t1")
        );
        assert_eq!(accepted.expect("device accepts").peer_identity(), &cloud_id);

        // Another cloud node is not a peer of the cloud (AnyStoreOfChain admits devices).
        let cloud2 = bind(
            good_tls(&issue(
                &c.ca,
                &PeerIdentity::new_cloud("acme", "hq2").expect("id"),
            )),
            4,
        );
        let err = step(cloud2.connect(addr(&cloud)))
            .await
            .expect_err("cloud to cloud");
        assert!(matches!(err, MeshError::RefusedPeer { .. }), "{err:?}");
        assert_eq!(cloud2.counters().get(RefusalReason::WrongRole), 1);
        assert_eq!(
            cloud.counters().total(),
            0,
            "the dialing cloud refused first (TLS 1.3: server certificate comes first)"
        );
    })
    .await;
}

#[tokio::test]
async fn calls_get_their_own_answers_concurrently_and_time_out() {
    bounded(async {
        let c = chain("acme");
        let a = bind(good_tls(&issue(&c.ca, &device("acme", "s1", "till-a"))), 1);
        let b = bind(good_tls(&issue(&c.ca, &device("acme", "s1", "till-b"))), 2);
        let (ab, ba) = step(async { tokio::join!(a.connect(addr(&b)), b.accept()) }).await;
        let (ab, ba) = (
            std::sync::Arc::new(ab.expect("A dials B")),
            std::sync::Arc::new(ba.expect("B accepts A")),
        );
        let handler: posmesh_mesh::transport::RpcHandler = std::sync::Arc::new(|request| {
            Box::pin(async move {
                if request == b"slow" {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                [b"re:".as_slice(), &request].concat()
            })
        });
        let server = ba.clone();
        let serving =
            tokio::spawn(async move { server.serve_calls(StreamPurpose::Raft, handler).await });
        let calls = (0..20).map(|i| {
            let ab = ab.clone();
            async move {
                let request = format!("vote-{i}");
                let answer = ab
                    .call(StreamPurpose::Raft, request.as_bytes(), STEP)
                    .await
                    .expect("call answered");
                assert_eq!(answer, format!("re:{request}").into_bytes());
            }
        });
        let mut running = tokio::task::JoinSet::new();
        for call in calls {
            running.spawn(call);
        }
        while let Some(done) = running.join_next().await {
            done.expect("call task");
        }
        let slow = ab
            .call(StreamPurpose::Raft, b"slow", Duration::from_millis(100))
            .await;
        assert!(
            matches!(slow, Err(MeshError::Timeout { .. })),
            "a slow answer times out: {slow:?}"
        );
        // The timed-out call's stream is not reused: its late answer is nobody's.
        tokio::time::sleep(Duration::from_millis(2_100)).await;
        let after = ab
            .call(StreamPurpose::Raft, b"after-slow", STEP)
            .await
            .expect("call after a timeout");
        assert_eq!(after, b"re:after-slow".to_vec());
        // Sync streams are not taken by the Raft server.
        let mut sync = step(ab.open_stream(StreamPurpose::Sync))
            .await
            .expect("open");
        sync.send_frame(b"ledger").await.expect("send");
        let mut sync_in = step(ba.accept_stream_of(StreamPurpose::Sync))
            .await
            .expect("sync stream still ours");
        assert_eq!(
            step(sync_in.recv_frame()).await.expect("recv"),
            Some(b"ledger".to_vec())
        );
        ab.close(0, b"done");
        let stopped = step(serving).await.expect("server task");
        assert!(matches!(stopped, MeshError::Connection(_)), "{stopped:?}");
    })
    .await;
}

/// Calls one after another go on one stream: the server reads them all from the first
/// stream it accepted (a client opening a stream per call would leave the second call
/// unanswered here).
#[tokio::test]
async fn consecutive_calls_reuse_one_stream() {
    bounded(async {
        let c = chain("acme");
        let a = bind(good_tls(&issue(&c.ca, &device("acme", "s1", "till-a"))), 1);
        let b = bind(good_tls(&issue(&c.ca, &device("acme", "s1", "till-b"))), 2);
        let (ab, ba) = step(async { tokio::join!(a.connect(addr(&b)), b.accept()) }).await;
        let (ab, ba) = (ab.expect("A dials B"), ba.expect("B accepts A"));
        let server = async {
            let mut stream = ba
                .accept_stream_of(StreamPurpose::Raft)
                .await
                .expect("first stream");
            for _ in 0..3 {
                let request = stream.recv_frame().await.expect("recv").expect("a call");
                stream
                    .send_frame(&[b"re:".as_slice(), &request].concat())
                    .await
                    .expect("answer");
            }
        };
        let client = async {
            for i in 0..3 {
                let request = format!("append-{i}");
                let answer = ab
                    .call(StreamPurpose::Raft, request.as_bytes(), STEP)
                    .await
                    .expect("answered on the same stream");
                assert_eq!(answer, format!("re:{request}").into_bytes());
            }
        };
        step(async { tokio::join!(server, client) }).await;
    })
    .await;
}

/// A peer that answers one call per stream and then finishes it (as posmesh did before
/// streams were reused) still gets every call: a reused stream found finished before its
/// request was handled is replaced by a new one.
#[tokio::test]
async fn a_peer_answering_one_call_per_stream_gets_every_call() {
    bounded(async {
        let c = chain("acme");
        let a = bind(good_tls(&issue(&c.ca, &device("acme", "s1", "till-a"))), 1);
        let b = bind(good_tls(&issue(&c.ca, &device("acme", "s1", "till-b"))), 2);
        let (ab, ba) = step(async { tokio::join!(a.connect(addr(&b)), b.accept()) }).await;
        let (ab, ba) = (ab.expect("A dials B"), ba.expect("B accepts A"));
        let server = async {
            for _ in 0..3 {
                let mut stream = ba
                    .accept_stream_of(StreamPurpose::Raft)
                    .await
                    .expect("a stream per call");
                let request = stream.recv_frame().await.expect("recv").expect("a call");
                stream
                    .send_frame(&[b"re:".as_slice(), &request].concat())
                    .await
                    .expect("answer");
                stream.finish();
            }
        };
        let client = async {
            for i in 0..3 {
                // Let the finish of the previous stream arrive first.
                tokio::time::sleep(Duration::from_millis(50)).await;
                let request = format!("vote-{i}");
                let answer = ab
                    .call(StreamPurpose::Raft, request.as_bytes(), STEP)
                    .await
                    .expect("answered");
                assert_eq!(answer, format!("re:{request}").into_bytes());
            }
        };
        step(async { tokio::join!(server, client) }).await;
    })
    .await;
}
