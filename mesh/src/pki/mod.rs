//! The chain's private PKI: one CA per chain issues device and cloud certificates and
//! revokes them with a CRL (RFC 5280 §5).
//!
//! Keys are ECDSA P-256 with SHA-256 signatures (`ecdsa_secp256r1_sha256`, RFC 8446
//! §4.2.3): rcgen generates and signs them with ring, and the ring provider of rustls and
//! rustls-webpki verify them.
//!
//! Files of a CA directory: `ca.pem` (CA certificate), `ca.key` (its PKCS#8 key, mode 0600),
//! `serial` (last serial number used, decimal), `crl.pem` (latest CRL).
//! Files of a node directory: `node.pem` (certificate), `node.key` (key, mode 0600), `ca.pem`
//! (the chain CA), and optionally `crl.pem` (copied from the CA when revocations exist).

mod ca;
mod credentials;
mod files;
mod issued;

pub use ca::{ChainCa, CA_NOT_AFTER, CA_NOT_BEFORE};
pub use credentials::{load_identity, NodeCredentials};
pub use files::{KEY_FILE_MODE, PUBLIC_FILE_MODE};
pub use issued::IssuedIdentity;

/// Certificate of a CA directory.
pub const CA_CERT_FILE: &str = "ca.pem";
/// Private key of a CA directory.
pub const CA_KEY_FILE: &str = "ca.key";
/// Serial counter of a CA directory.
pub const SERIAL_FILE: &str = "serial";
/// Certificate revocation list, in the CA directory and optionally in a node directory.
pub const CRL_FILE: &str = "crl.pem";
/// Certificate of a node directory.
pub const NODE_CERT_FILE: &str = "node.pem";
/// Private key of a node directory.
pub const NODE_KEY_FILE: &str = "node.key";
