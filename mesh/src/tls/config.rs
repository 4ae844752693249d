//! [`MeshTls`]: builds the rustls client and server configurations of a node.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, ServerConfig};

use super::policy::AcceptPolicy;
use super::refusal::RefusalCounters;
use super::trust::ChainTrust;
use super::verifier::MeshVerifier;
use super::ALPN_POSMESH;
use crate::error::Result;
use crate::identity::PeerIdentity;
use crate::pki::NodeCredentials;

/// Everything a node needs for mutual TLS: its certificate and key, the chain trust, the
/// accept policy and the refusal counters. TLS 1.3 only (RFC 8446; QUIC requires it,
/// RFC 9001 §4.2), ring provider, ALPN `posmesh/1`.
#[derive(Debug)]
pub struct MeshTls {
    local: PeerIdentity,
    credentials: NodeCredentials,
    trust: Arc<ChainTrust>,
    counters: Arc<RefusalCounters>,
    verifier: Arc<MeshVerifier>,
    provider: Arc<CryptoProvider>,
}

impl MeshTls {
    /// Builds the TLS state from `credentials`, accepting peers by `policy` (usually
    /// [`AcceptPolicy::for_identity`] of our own identity).
    ///
    /// # Errors
    /// [`crate::MeshError::Cert`] when the CA certificate or CRL cannot be parsed.
    pub fn new(credentials: NodeCredentials, policy: AcceptPolicy) -> Result<Self> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let trust = Arc::new(ChainTrust::new(
            &credentials.ca_cert,
            credentials.crl.as_ref().map(|c| c.as_ref()),
        )?);
        let counters = Arc::new(RefusalCounters::new());
        let verifier = Arc::new(MeshVerifier::new(
            trust.clone(),
            policy,
            counters.clone(),
            provider.clone(),
        ));
        Ok(Self {
            local: credentials.identity.clone(),
            credentials,
            trust,
            counters,
            verifier,
            provider,
        })
    }

    /// Our own identity.
    pub fn local_identity(&self) -> &PeerIdentity {
        &self.local
    }

    /// The chain trust (replace the CRL with [`ChainTrust::set_crl`]).
    pub fn trust(&self) -> &Arc<ChainTrust> {
        &self.trust
    }

    /// The refusal counters shared with the verifiers and the transport.
    pub fn counters(&self) -> &Arc<RefusalCounters> {
        &self.counters
    }

    /// The rustls server configuration: mandatory client certificates verified by
    /// [`MeshVerifier`], ALPN `posmesh/1`.
    ///
    /// # Errors
    /// [`crate::MeshError::Tls`] when the key does not suit the certificate.
    pub fn server_config(&self) -> Result<ServerConfig> {
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(self.verifier.clone())
            .with_single_cert(
                vec![self.credentials.cert.clone()],
                self.credentials.key.clone_key(),
            )?;
        config.alpn_protocols = vec![ALPN_POSMESH.to_vec()];
        Ok(config)
    }

    /// The rustls client configuration: our certificate for client authentication, server
    /// certificates verified by [`MeshVerifier`], ALPN `posmesh/1`.
    ///
    /// # Errors
    /// [`crate::MeshError::Tls`] when the key does not suit the certificate.
    pub fn client_config(&self) -> Result<ClientConfig> {
        let mut config = ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(self.verifier.clone())
            .with_client_auth_cert(
                vec![self.credentials.cert.clone()],
                self.credentials.key.clone_key(),
            )?;
        config.alpn_protocols = vec![ALPN_POSMESH.to_vec()];
        Ok(config)
    }
}
