//! Mutual TLS 1.3 (RFC 8446) for the mesh: certificate verifiers bound to the chain CA,
//! its CRL (RFC 5280 §5) and an [`AcceptPolicy`], and the rustls configurations built on
//! them.

pub mod alert;
mod attestation;
mod config;
mod policy;
mod refusal;
mod serial;
mod trust;
mod verifier;

pub use attestation::{AttestedKey, KeyAttestation};
pub use config::MeshTls;
pub use policy::AcceptPolicy;
pub use refusal::{RefusalCounters, RefusalReason};
pub use serial::{serial_hex_of_der, serial_hex_of_pem};
pub use trust::{identity_of_cert, ChainTrust};
pub use verifier::MeshVerifier;

use rustls_pki_types::CertificateDer;

use crate::error::{MeshError, Result};
use crate::identity::PeerIdentity;

/// The ALPN protocol id of posmesh (RFC 7301), version 1.
pub const ALPN_POSMESH: &[u8] = b"posmesh/1";

/// The identity of the end-entity certificate of a verified chain, as returned by
/// `quinn::Connection::peer_identity` (a `Vec<CertificateDer>`).
///
/// # Errors
/// [`MeshError::NoPeerCertificate`] for an empty chain, else as [`identity_of_cert`].
pub fn identity_of_chain(chain: &[CertificateDer<'_>]) -> Result<PeerIdentity> {
    let first = chain.first().ok_or(MeshError::NoPeerCertificate)?;
    identity_of_cert(first)
}
