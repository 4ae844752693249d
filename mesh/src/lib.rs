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
//! - [`discovery`]: mDNS / DNS-SD (RFC 6762/6763) service `_posmesh._udp.local.`: the pure
//!   TXT announcement, filter and event tracker, and the mdns-sd 0.21.7 driver
//!   ([`discovery::MdnsDiscovery`]) restricted to configured interfaces. TXT is a hint;
//!   mTLS decides.
//! - [`error`]: [`MeshError`], the crate's one error type.
//!
//! Pure modules (`identity`, `frame`, `backoff`, `peer_table`, `tls::AcceptPolicy`, and
//! `discovery`'s announcement, filter and tracker) never read a clock: time comes in as
//! arguments. TLS validation uses the time rustls passes to the verifier; the transport
//! drivers use tokio's clock for timeouts and ping, the discovery driver for its re-browse
//! delay.

#![deny(clippy::disallowed_methods)]

pub mod backoff;
pub mod discovery;
pub mod error;
pub mod frame;
pub mod identity;
pub mod peer_table;
pub mod pki;
pub mod tls;
pub mod transport;

pub use error::{MeshError, Result};
pub use identity::{PeerIdentity, Role};
