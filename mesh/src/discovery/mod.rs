//! mDNS / DNS-SD discovery (RFC 6762 / RFC 6763) of the devices of one store on its LAN.
//!
//! Every device registers one service instance of type [`SERVICE_TYPE`] whose instance
//! name is its device id, and browses for the others. The TXT record carries a
//! [`ServiceAnnouncement`]: chain, store and device ids, protocol version, the SHA-256
//! fingerprint of the device certificate and its QUIC port.
//!
//! # TXT is a hint, mTLS decides
//! mDNS is unauthenticated: anyone on the LAN can announce anything. An announcement only
//! tells a node *where to dial*; whom it talks to is decided by the mutual-TLS handshake
//! ([`crate::tls`]), which checks the chain CA, the CRL and the store and device named in
//! the certificate. A forged announcement therefore costs at most a failed dial (and a
//! backoff); it can neither admit a stranger nor evict a real peer from the mesh. The
//! [`DiscoveryFilter`] only saves useless dials (other stores, other chains, ourselves,
//! versions we do not speak).
//!
//! # Layout
//! - [`ServiceAnnouncement`] (pure): TXT encoding and parsing, size bounds.
//! - [`CertFingerprint`] (pure): SHA-256 of a certificate, hex on the wire.
//! - [`DiscoveryFilter`] (pure): which resolved services become a [`DiscoveredPeer`], and
//!   [`peer_socket_addrs`], the address selection rule.
//! - [`DiscoveryTracker`] (pure): turns mdns-sd's repeated `ServiceResolved` and
//!   `ServiceRemoved` into deduplicated [`DiscoveryEvent`]s.
//! - [`MdnsDiscovery`] (driver): owns the mdns-sd daemon, registers, browses, drains.

mod addrs;
mod announcement;
mod driver;
mod filter;
mod fingerprint;
mod tracker;

pub use addrs::{peer_socket_addrs, ResolvedAddr};
pub use announcement::{ServiceAnnouncement, TxtError, TXT_BYTES_MAX};
pub use driver::{DiscoveryConfig, MdnsDiscovery};
pub use filter::{DiscoveredPeer, DiscoveryFilter, Ignored};
pub use fingerprint::CertFingerprint;
pub use tracker::DiscoveryTracker;

/// The DNS-SD service type of posmesh (RFC 6763 §7; `_posmesh` is 7 bytes, within the
/// 15-byte limit of §7.2). QUIC runs over UDP, hence `_udp`.
pub const SERVICE_TYPE: &str = "_posmesh._udp.local.";

/// The discovery protocol version this build speaks (`pv=1` in the TXT record).
/// Announcements of other versions are ignored.
pub const PROTOCOL_VERSION: u16 = 1;

/// What discovery reports to the node, in order, on [`MdnsDiscovery`]'s channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiscoveryEvent {
    /// A peer of our store was announced, or its announcement changed (addresses,
    /// fingerprint, port). Replaces whatever was known of this device id.
    Upserted(DiscoveredPeer),
    /// The last announcement of this device id was withdrawn (mDNS goodbye or expiry), or
    /// it changed into one we ignore.
    Removed(String),
}
