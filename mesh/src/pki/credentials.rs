//! [`NodeCredentials`]: what a node needs for mutual TLS, parsed and checked.

use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

use super::files;
use super::issued::IssuedIdentity;
use super::{CA_CERT_FILE, CRL_FILE, NODE_CERT_FILE, NODE_KEY_FILE};
use crate::error::{MeshError, Result};
use crate::identity::PeerIdentity;

/// A node's certificate, key, the chain CA and the latest CRL, parsed.
#[derive(Debug)]
pub struct NodeCredentials {
    /// The identity in the node's certificate.
    pub identity: PeerIdentity,
    /// The node's certificate (DER).
    pub cert: CertificateDer<'static>,
    /// The node's private key (PKCS#8 DER). Secret; its `Debug` does not print it.
    pub key: PrivateKeyDer<'static>,
    /// The chain CA certificate (DER), the only trust anchor.
    pub ca_cert: CertificateDer<'static>,
    /// The latest CRL (DER), if any revocation was published.
    pub crl: Option<CertificateRevocationListDer<'static>>,
}

fn pem_err(what: &'static str) -> impl Fn(rustls_pki_types::pem::Error) -> MeshError {
    move |e| MeshError::Pem {
        what,
        detail: e.to_string(),
    }
}

impl NodeCredentials {
    /// Parses PEM texts; the identity is read back from the certificate's DNS SAN.
    ///
    /// # Errors
    /// [`MeshError::Pem`] for unparsable PEM, [`MeshError::Cert`] /
    /// [`MeshError::NotAnIdentity`] when the certificate names no posmesh identity.
    pub fn from_pem(
        cert_pem: &[u8],
        key_pem: &[u8],
        ca_pem: &[u8],
        crl_pem: Option<&[u8]>,
    ) -> Result<Self> {
        let cert = CertificateDer::from_pem_slice(cert_pem).map_err(pem_err("certificate"))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(pem_err("private key"))?;
        let ca_cert = CertificateDer::from_pem_slice(ca_pem).map_err(pem_err("CA certificate"))?;
        let crl = crl_pem
            .map(|pem| CertificateRevocationListDer::from_pem_slice(pem).map_err(pem_err("CRL")))
            .transpose()?;
        let identity = crate::tls::identity_of_cert(&cert)?;
        Ok(Self {
            identity,
            cert,
            key,
            ca_cert,
            crl,
        })
    }

    /// The credentials of a freshly issued identity (no CRL).
    ///
    /// # Errors
    /// As [`NodeCredentials::from_pem`].
    pub fn from_issued(issued: &IssuedIdentity) -> Result<Self> {
        Self::from_pem(
            issued.cert_pem.as_bytes(),
            issued.key_pem.as_bytes(),
            issued.ca_cert_pem.as_bytes(),
            None,
        )
    }
}

/// Loads a node directory written by [`IssuedIdentity::write_identity`]: `node.pem`,
/// `node.key`, `ca.pem`, and `crl.pem` when present.
///
/// # Errors
/// I/O errors (a missing file names its path) and the errors of
/// [`NodeCredentials::from_pem`].
pub fn load_identity(dir: &Path) -> Result<NodeCredentials> {
    let cert = files::read(&dir.join(NODE_CERT_FILE))?;
    let key = files::read_key(&dir.join(NODE_KEY_FILE))?;
    let ca = files::read(&dir.join(CA_CERT_FILE))?;
    let crl = files::read_optional(&dir.join(CRL_FILE))?;
    NodeCredentials::from_pem(&cert, &key, &ca, crl.as_deref())
}
