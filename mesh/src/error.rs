//! The crate's one error type.

use std::path::PathBuf;

use crate::identity::IdError;

/// Every error of the mesh crate.
///
/// Operating errors (a peer refused, a frame was malformed, a connection was lost) are
/// expected in the field and handled by reconnecting with backoff; fatal errors (CA files
/// missing or corrupt, key generation failed) stop the node from starting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MeshError {
    /// An id (chain, store, device, cloud name) is not a valid DNS label.
    #[error("invalid {kind} id {id:?}: {error}")]
    InvalidId {
        /// Which id: "chain", "store", "device" or "cloud".
        kind: &'static str,
        /// The rejected id.
        id: String,
        /// Why it was rejected.
        error: IdError,
    },
    /// A DNS name does not follow the posmesh identity scheme (see [`crate::identity`]).
    #[error("DNS name {name:?} is not a posmesh identity: {why}")]
    NotAnIdentity {
        /// The rejected DNS name.
        name: String,
        /// Why it was rejected.
        why: &'static str,
    },
    /// A file or directory could not be read or written.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("read", "write", "create", …).
        op: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A CA or identity file already exists; posmesh never overwrites key material.
    #[error("refusing to overwrite existing {path}")]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// A PEM file holds no usable certificate, key or CRL.
    #[error("bad PEM in {what}: {detail}")]
    Pem {
        /// What was being parsed.
        what: &'static str,
        /// The parser's complaint.
        detail: String,
    },
    /// Certificate, key or CRL generation failed (rcgen).
    #[error("certificate generation: {0}")]
    CertGen(#[from] rcgen::Error),
    /// A certificate could not be parsed or verified (rustls-webpki).
    #[error("certificate: {0}")]
    Cert(#[from] webpki::Error),
    /// A validity window is empty or not representable.
    #[error("bad validity window: {0}")]
    Validity(&'static str),
    /// The CA directory's serial counter is corrupt or exhausted.
    #[error("serial counter {path}: {detail}")]
    SerialCounter {
        /// The counter file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// A TLS configuration could not be built (rustls).
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// A QUIC crypto configuration could not be built from the TLS one.
    #[error("QUIC crypto configuration: {0}")]
    QuicCrypto(String),
    /// A frame's length prefix exceeds [`crate::frame::FRAME_BYTES_MAX`].
    #[error("frame of {len_bytes} bytes exceeds the limit of {max_bytes} bytes")]
    FrameTooLarge {
        /// The announced length in bytes.
        len_bytes: u64,
        /// The limit in bytes.
        max_bytes: usize,
    },
    /// A frame's length prefix is not a valid varint (more than 10 bytes or overflowing u64).
    #[error("malformed frame length prefix")]
    FrameLengthMalformed,
    /// A stream ended in the middle of a frame.
    #[error("stream ended inside a frame ({buffered_bytes} bytes buffered)")]
    FrameTruncated {
        /// Bytes left in the decoder when the stream finished.
        buffered_bytes: usize,
    },
    /// The first frame of a stream does not name a known purpose.
    #[error("unknown stream purpose {0:?}")]
    StreamPurposeUnknown(Vec<u8>),
    /// A ping was answered with the wrong payload.
    #[error("ping answered with a wrong payload")]
    PingMismatch,
    /// Binding the UDP socket or building the endpoint failed.
    #[error("bind {addr}: {source}")]
    Bind {
        /// The address that was being bound.
        addr: std::net::SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Dialing failed before any packet was sent (bad address, endpoint closed…).
    #[error("connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    /// We refused the peer during the handshake: our verifier refused its certificate or
    /// it offered no common ALPN. The precise [`crate::tls::RefusalReason`] is logged and
    /// counted in [`crate::tls::RefusalCounters`]; here is the TLS alert (RFC 8446 §6) we sent.
    #[error("{}", crate::tls::alert::refused_peer_text(*alert))]
    RefusedPeer {
        /// The TLS alert number we sent.
        alert: u8,
    },
    /// The peer refused us: it closed the handshake with a TLS alert (RFC 8446 §6),
    /// carried in a QUIC CRYPTO_ERROR (RFC 9000 §20.1, code 0x100 + alert).
    #[error("{}", crate::tls::alert::refused_by_peer_text(*alert))]
    RefusedByPeer {
        /// The TLS alert number (e.g. 42 bad_certificate, 44 certificate_revoked,
        /// 45 certificate_expired, 48 unknown_ca, 49 access_denied, 120 no_application_protocol).
        alert: u8,
    },
    /// Transport settings are inconsistent.
    #[error("transport settings: {0}")]
    Settings(&'static str),
    /// The QUIC connection failed or was closed.
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    /// Writing to a stream failed.
    #[error("stream write: {0}")]
    Write(#[from] quinn::WriteError),
    /// Reading from a stream failed.
    #[error("stream read: {0}")]
    Read(#[from] quinn::ReadError),
    /// The peer's certificate chain is missing after the handshake (should not happen with
    /// mandatory client authentication).
    #[error("peer presented no certificate")]
    NoPeerCertificate,
    /// An operation did not finish in its time limit.
    #[error("{what} timed out after {after_ms} ms")]
    Timeout {
        /// What timed out.
        what: &'static str,
        /// The limit in milliseconds.
        after_ms: u64,
    },
    /// The endpoint was closed.
    #[error("endpoint closed")]
    EndpointClosed,
    /// The peer table has no such device.
    #[error("unknown peer {0:?}")]
    UnknownPeer(String),
    /// The peer table is full ([`crate::peer_table::PEERS_MAX`]).
    #[error("peer table full ({0} peers)")]
    PeerTableFull(usize),
    /// mDNS discovery was not started because no interface is configured (static peers
    /// only). Nothing was sent and no daemon was created.
    #[error("mDNS discovery not started: no interface configured")]
    DiscoveryDisabled,
    /// The discovery configuration is inconsistent (see [`crate::discovery::DiscoveryConfig`]).
    #[error("discovery {field} {value:?}: {why}")]
    InvalidDiscoveryConfig {
        /// The field: "interfaces", "hostname", "filter" or "announcement".
        field: &'static str,
        /// The offending value (cut to 64 characters).
        value: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The mDNS daemon (mdns-sd) failed to start or refused a command.
    #[error("mDNS: {0}")]
    Mdns(#[from] mdns_sd::Error),
    /// A key attestation could not be made.
    #[error("key attestation: {0}")]
    Attestation(String),
    /// A key attestation was refused: its certificate, or its signature.
    #[error("key attestation refused: {0}")]
    AttestationRefused(crate::tls::RefusalReason),
}

/// Result with [`MeshError`].
pub type Result<T, E = MeshError> = std::result::Result<T, E>;
