//! [`IssuedIdentity`]: a freshly issued node certificate with its key.

use std::path::Path;

use super::files::{self, KEY_FILE_MODE, PUBLIC_FILE_MODE};
use super::{CA_CERT_FILE, NODE_CERT_FILE, NODE_KEY_FILE};
use crate::error::Result;
use crate::identity::PeerIdentity;

/// A node certificate issued by [`super::ChainCa::issue`], with its private key.
#[derive(Clone)]
pub struct IssuedIdentity {
    /// The identity named in the certificate's DNS SAN.
    pub identity: PeerIdentity,
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PKCS#8 PEM. Secret.
    pub key_pem: String,
    /// The issuing CA's certificate, PEM.
    pub ca_cert_pem: String,
    /// The certificate's serial number, lower-case hex of its big-endian bytes (what
    /// [`super::ChainCa::revoke`] takes).
    pub serial_hex: String,
    /// SHA-256 of the certificate's DER, lower-case hex (published in mDNS TXT records).
    pub fingerprint_sha256_hex: String,
}

impl std::fmt::Debug for IssuedIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedIdentity")
            .field("identity", &self.identity)
            .field("serial_hex", &self.serial_hex)
            .field("fingerprint_sha256_hex", &self.fingerprint_sha256_hex)
            .finish_non_exhaustive()
    }
}

impl IssuedIdentity {
    /// Checks that `dir` holds none of the files [`IssuedIdentity::write_identity`] writes,
    /// so a caller can refuse before the CA spends a serial on a certificate it cannot
    /// write.
    ///
    /// # Errors
    /// [`crate::MeshError::AlreadyExists`] naming the first file found.
    pub fn check_absent(dir: &Path) -> Result<()> {
        for name in [NODE_KEY_FILE, NODE_CERT_FILE, CA_CERT_FILE] {
            let path = dir.join(name);
            if path.exists() {
                return Err(crate::MeshError::AlreadyExists { path });
            }
        }
        Ok(())
    }

    /// Writes `node.pem`, `node.key` (mode 0600) and `ca.pem` into `dir` (created if
    /// missing), refusing to overwrite any of them.
    ///
    /// # Errors
    /// [`crate::MeshError::AlreadyExists`] when a file exists (none is written then), I/O
    /// errors.
    pub fn write_identity(&self, dir: &Path) -> Result<()> {
        files::ensure_dir(dir)?;
        Self::check_absent(dir)?;
        files::write_new(
            &dir.join(NODE_KEY_FILE),
            self.key_pem.as_bytes(),
            KEY_FILE_MODE,
        )?;
        files::write_new(
            &dir.join(NODE_CERT_FILE),
            self.cert_pem.as_bytes(),
            PUBLIC_FILE_MODE,
        )?;
        files::write_new(
            &dir.join(CA_CERT_FILE),
            self.ca_cert_pem.as_bytes(),
            PUBLIC_FILE_MODE,
        )
    }
}
