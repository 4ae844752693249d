//! Key attestation: a device's certificate key vouches for its Ed25519 chain-head key.
//!
//! A device signs the head of its journal with an Ed25519 key of its own (deterministic
//! signatures, RFC 8032; see `posmesh_sync::chain_head`). Entries reach other devices
//! directly or relayed, so a receiver must learn that key from something it can check
//! without trusting the relay: the device signs the statement
//!
//! ```text
//! "posmesh/signing-key-attestation/v1" 0x00 ‖ u16-BE length ‖ identity DNS name
//! ‖ u64-BE device incarnation ‖ 32-byte Ed25519 public key
//! ```
//!
//! with its certificate's private key (ECDSA P-256 / SHA-256), and ships the certificate
//! with it. The receiver validates the certificate against the chain CA and CRL exactly as
//! a TLS handshake would ([`ChainTrust::verify`]), applies its [`AcceptPolicy`], and checks
//! the signature with the certificate's public key.

use rustls::crypto::ring::sign::any_supported_type;
use rustls::SignatureScheme;
use rustls_pki_types::{CertificateDer, UnixTime};
use webpki::{EndEntityCert, KeyUsage};

use super::policy::AcceptPolicy;
use super::refusal::RefusalReason;
use super::trust::ChainTrust;
use crate::error::{MeshError, Result};
use crate::pki::NodeCredentials;
use crate::PeerIdentity;

/// Domain-separation prefix of the attested statement.
const ATTESTATION_DOMAIN: &[u8] = b"posmesh/signing-key-attestation/v1\0";

/// A certificate-signed statement binding a device (and incarnation) to its Ed25519
/// chain-head public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyAttestation {
    /// The device's certificate, DER.
    pub cert_der: Vec<u8>,
    /// The device incarnation the key belongs to.
    pub device_incarnation: u64,
    /// The Ed25519 public key, 32 bytes.
    pub signing_public_key: [u8; 32],
    /// ECDSA P-256 / SHA-256 signature (ASN.1 DER) by the certificate's key.
    pub signature: Vec<u8>,
}

/// The identity and key an attestation proved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttestedKey {
    /// Whose key it is (from the verified certificate).
    pub identity: PeerIdentity,
    /// Its incarnation.
    pub device_incarnation: u64,
    /// The Ed25519 public key.
    pub signing_public_key: [u8; 32],
}

fn statement(identity: &PeerIdentity, incarnation: u64, public_key: &[u8; 32]) -> Vec<u8> {
    let name = identity.to_dns_name();
    let mut message = Vec::with_capacity(ATTESTATION_DOMAIN.len() + name.len() + 42);
    message.extend_from_slice(ATTESTATION_DOMAIN);
    message.extend_from_slice(&u16::try_from(name.len()).unwrap_or(u16::MAX).to_be_bytes());
    message.extend_from_slice(name.as_bytes());
    message.extend_from_slice(&incarnation.to_be_bytes());
    message.extend_from_slice(public_key);
    message
}

impl KeyAttestation {
    /// Signs the binding of `signing_public_key` (for `device_incarnation`) to the identity
    /// of `credentials`, with the credentials' private key.
    ///
    /// # Errors
    /// [`MeshError::Attestation`] when the key cannot sign ECDSA P-256 / SHA-256.
    pub fn sign(
        credentials: &NodeCredentials,
        device_incarnation: u64,
        signing_public_key: [u8; 32],
    ) -> Result<Self> {
        let key = any_supported_type(&credentials.key)
            .map_err(|e| MeshError::Attestation(format!("unusable private key: {e}")))?;
        let signer = key
            .choose_scheme(&[SignatureScheme::ECDSA_NISTP256_SHA256])
            .ok_or_else(|| MeshError::Attestation("the key cannot sign ECDSA P-256".into()))?;
        let message = statement(
            &credentials.identity,
            device_incarnation,
            &signing_public_key,
        );
        let signature = signer
            .sign(&message)
            .map_err(|e| MeshError::Attestation(format!("signing failed: {e}")))?;
        Ok(Self {
            cert_der: credentials.cert.as_ref().to_vec(),
            device_incarnation,
            signing_public_key,
            signature,
        })
    }

    /// Verifies the attestation at `now`: the certificate against `trust` (chain, expiry,
    /// CRL) and `policy`, then the signature with the certificate's key.
    ///
    /// # Errors
    /// [`MeshError::AttestationRefused`] with the [`RefusalReason`] of the certificate, or
    /// `Invalid` for a signature that does not match.
    pub fn verify(
        &self,
        trust: &ChainTrust,
        policy: &AcceptPolicy,
        now: UnixTime,
    ) -> Result<AttestedKey> {
        let cert = CertificateDer::from(self.cert_der.as_slice());
        let algorithms = rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .all;
        let identity = trust
            .verify(&cert, &[], now, KeyUsage::client_auth(), algorithms, policy)
            .map_err(MeshError::AttestationRefused)?;
        let end_entity = EndEntityCert::try_from(&cert)
            .map_err(|_| MeshError::AttestationRefused(RefusalReason::Malformed))?;
        let message = statement(&identity, self.device_incarnation, &self.signing_public_key);
        end_entity
            .verify_signature(webpki::ring::ECDSA_P256_SHA256, &message, &self.signature)
            .map_err(|_| MeshError::AttestationRefused(RefusalReason::Invalid))?;
        Ok(AttestedKey {
            identity,
            device_incarnation: self.device_incarnation,
            signing_public_key: self.signing_public_key,
        })
    }
}
