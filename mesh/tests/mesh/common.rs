//! Shared fixtures: CAs in temporary directories, fixed validity windows (no clock), and
//! endpoints on 127.0.0.1.
#![allow(dead_code, missing_docs)]

use std::net::SocketAddr;
use std::time::Duration;

use posmesh_mesh::pki::{ChainCa, IssuedIdentity, NodeCredentials};
use posmesh_mesh::tls::{AcceptPolicy, MeshTls};
use posmesh_mesh::transport::{MeshEndpoint, TransportSettings};
use posmesh_mesh::PeerIdentity;
use time::{Date, Month, OffsetDateTime, Time};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Limit on every network step of a test.
pub const STEP: Duration = Duration::from_secs(10);

pub fn utc(year: i32) -> OffsetDateTime {
    let date = Date::from_calendar_date(year, Month::January, 1).expect("valid date");
    OffsetDateTime::new_utc(date, Time::MIDNIGHT)
}

/// A validity window around any plausible "now" of the test machine.
pub fn valid_window() -> (OffsetDateTime, OffsetDateTime) {
    (utc(2024), utc(2099))
}

pub struct Chain {
    pub ca: ChainCa,
    pub dir: tempfile::TempDir,
}

pub fn chain(chain_id: &str) -> Chain {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = ChainCa::init(chain_id, dir.path()).expect("init CA");
    Chain { ca, dir }
}

pub fn issue(ca: &ChainCa, identity: &PeerIdentity) -> IssuedIdentity {
    let (nb, na) = valid_window();
    ca.issue(identity, nb, na).expect("issue")
}

pub fn device(chain: &str, store: &str, dev: &str) -> PeerIdentity {
    PeerIdentity::new_device(chain, store, dev).expect("identity")
}

/// TLS state of a well-behaved node.
pub fn good_tls(issued: &IssuedIdentity) -> MeshTls {
    let creds = NodeCredentials::from_issued(issued).expect("credentials");
    let policy = AcceptPolicy::for_identity(&creds.identity);
    MeshTls::new(creds, policy).expect("tls")
}

pub fn settings(seed: u8) -> TransportSettings {
    TransportSettings {
        rng_seed: Some([seed; 32]),
        handshake_timeout: Duration::from_secs(5),
        ..TransportSettings::default()
    }
}

pub fn bind(tls: MeshTls, seed: u8) -> MeshEndpoint {
    MeshEndpoint::bind(SocketAddr::from(([127, 0, 0, 1], 0)), tls, settings(seed)).expect("bind")
}

pub fn addr(endpoint: &MeshEndpoint) -> SocketAddr {
    endpoint.local_addr().expect("local addr")
}
