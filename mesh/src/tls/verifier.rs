//! [`MeshVerifier`]: the rustls server- and client-certificate verifier of posmesh.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::policy::AcceptPolicy;
use super::refusal::{RefusalCounters, RefusalReason};
use super::trust::ChainTrust;

/// Verifies a peer's certificate against the chain CA and CRL ([`ChainTrust::verify`]),
/// then its identity against an [`AcceptPolicy`]; refusals are logged and counted.
/// The server name the client dialed is ignored: authorization is by identity and policy.
/// Handshake signatures (RFC 8446 §4.4.3) are checked with the provider's
/// `signature_verification_algorithms`.
#[derive(Debug)]
pub struct MeshVerifier {
    trust: Arc<ChainTrust>,
    policy: AcceptPolicy,
    counters: Arc<RefusalCounters>,
    provider: Arc<CryptoProvider>,
}

impl MeshVerifier {
    /// A verifier sharing `trust` (and its CRL) and `counters` with the endpoint.
    pub fn new(
        trust: Arc<ChainTrust>,
        policy: AcceptPolicy,
        counters: Arc<RefusalCounters>,
        provider: Arc<CryptoProvider>,
    ) -> Self {
        Self {
            trust,
            policy,
            counters,
            provider,
        }
    }

    fn verify(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
        usage: webpki::KeyUsage,
        side: &'static str,
    ) -> Result<(), rustls::Error> {
        match self.trust.verify(
            end_entity,
            intermediates,
            now,
            usage,
            self.provider.signature_verification_algorithms.all,
            &self.policy,
        ) {
            Ok(identity) => {
                tracing::debug!(peer = %identity, side, "peer certificate accepted");
                Ok(())
            }
            Err(reason) => {
                self.counters.record(reason);
                let claimed = super::identity_of_cert(end_entity)
                    .map(|i| i.to_string())
                    .unwrap_or_else(|_| "-".to_owned());
                tracing::warn!(%reason, claimed, side, "refused peer certificate");
                Err(rustls::Error::InvalidCertificate(certificate_error(reason)))
            }
        }
    }
}

/// The TLS alert a refusal maps to (through rustls): certificate_expired,
/// certificate_revoked, unknown_ca, access_denied or bad_certificate.
fn certificate_error(reason: RefusalReason) -> CertificateError {
    match reason {
        RefusalReason::Expired => CertificateError::Expired,
        RefusalReason::NotYetValid => CertificateError::NotValidYet,
        RefusalReason::Revoked => CertificateError::Revoked,
        RefusalReason::UnknownIssuer | RefusalReason::SelfSigned | RefusalReason::OtherChain => {
            CertificateError::UnknownIssuer
        }
        RefusalReason::Malformed => CertificateError::BadEncoding,
        _ => CertificateError::ApplicationVerificationFailure,
    }
}

/// Which TLS version's handshake signature rules apply.
#[derive(Clone, Copy)]
enum TlsVersion {
    Tls12,
    Tls13,
}

impl MeshVerifier {
    /// Checks a handshake signature with the provider's algorithms (the same for both
    /// sides of the connection).
    fn handshake_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
        version: TlsVersion,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        match version {
            TlsVersion::Tls12 => {
                rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
            }
            TlsVersion::Tls13 => {
                rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
            }
        }
    }
}

impl ServerCertVerifier for MeshVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verify(
            end_entity,
            intermediates,
            now,
            webpki::KeyUsage::server_auth(),
            "client",
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.handshake_signature(message, cert, dss, TlsVersion::Tls12)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.handshake_signature(message, cert, dss, TlsVersion::Tls13)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

impl ClientCertVerifier for MeshVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.verify(
            end_entity,
            intermediates,
            now,
            webpki::KeyUsage::client_auth(),
            "server",
        )?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.handshake_signature(message, cert, dss, TlsVersion::Tls12)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.handshake_signature(message, cert, dss, TlsVersion::Tls13)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
