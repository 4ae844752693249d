//! The store mesh: who a node is, whom it trusts, and how it talks to its peers.
//!
//! # Layout
//! - [`identity`]: [`PeerIdentity`] (chain, store, role, device) and its DNS-SAN encoding.
//! - [`pki`]: the chain CA ([`pki::ChainCa`]): issues ECDSA P-256 node certificates, writes
//!   CRLs (RFC 5280), stores key files with mode 0600.
//! - [`tls`]: rustls 0.23 configurations (TLS 1.3 only, ring, ALPN `posmesh/1`) and the
//!   verifier that checks chain, CRL and [`tls::AcceptPolicy`], counting every refusal.
//! - [`frame`]: length-delimited frames and the sans-IO [`frame::FrameDecoder`].
//! - [`backoff`]: exponential backoff with full jitter, seeded, no clock.
//! - [`transport`]: quinn 0.11 endpoint and connections (QUIC, RFC 9000), streams per
//!   purpose, ping, and the simultaneous-dial rule.
//! - [`peer_table`]: the pure table of known peers and their connection state.
//! - [`error`]: [`MeshError`], the crate's one error type.
//!
//! Pure modules (`identity`, `frame`, `backoff`, `peer_table`, `tls::AcceptPolicy`) never
//! read a clock: time comes in as arguments. TLS validation uses the time rustls passes to
//! the verifier; the transport drivers use tokio's clock for timeouts and ping.

#![deny(clippy::disallowed_methods)]

pub mod backoff;
pub mod error;
pub mod frame;
pub mod identity;
pub mod peer_table;
pub mod pki;
pub mod tls;
pub mod transport;

pub use error::{MeshError, Result};
pub use identity::{PeerIdentity, Role};
