//! [`ChainTrust`]: the chain CA as trust anchor plus the current CRL, and the path
//! validation every verifier runs.

use std::sync::{Arc, RwLock};

use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, TrustAnchor, UnixTime};
use webpki::{
    EndEntityCert, ExpirationPolicy, KeyUsage, OwnedCertRevocationList, RevocationCheckDepth,
    RevocationOptionsBuilder, UnknownStatusPolicy,
};

use super::policy::AcceptPolicy;
use super::refusal::RefusalReason;
use crate::error::{MeshError, Result};
use crate::identity::PeerIdentity;

/// The trust of one node: its chain's CA certificate and the latest CRL (replaceable at
/// runtime, e.g. when a revocation commits through Raft).
#[derive(Debug)]
pub struct ChainTrust {
    anchor: TrustAnchor<'static>,
    crl: RwLock<Option<Arc<webpki::CertRevocationList<'static>>>>,
}

/// The first posmesh identity among a certificate's DNS SANs, without verifying anything.
fn claimed_identity(cert: &EndEntityCert<'_>) -> Option<PeerIdentity> {
    cert.valid_dns_names()
        .find_map(|name| PeerIdentity::from_dns_name(name).ok())
}

impl ChainTrust {
    /// Trusts `ca_cert` (DER) and, if given, honours `crl` (DER).
    ///
    /// # Errors
    /// [`MeshError::Cert`] when the CA certificate or the CRL cannot be parsed.
    pub fn new(ca_cert: &CertificateDer<'_>, crl: Option<&[u8]>) -> Result<Self> {
        let anchor = webpki::anchor_from_trusted_cert(ca_cert)?.to_owned();
        let crl = crl
            .map(OwnedCertRevocationList::from_der)
            .transpose()?
            .map(|c| Arc::new(webpki::CertRevocationList::Owned(c)));
        Ok(Self {
            anchor,
            crl: RwLock::new(crl),
        })
    }

    /// Replaces the CRL (DER) used for every later handshake. The CRL's signature is
    /// checked during path validation; a CRL not signed by the chain CA makes every
    /// handshake fail closed ([`RefusalReason::Invalid`]).
    ///
    /// # Errors
    /// [`MeshError::Cert`] when the CRL cannot be parsed; the old CRL stays in force.
    pub fn set_crl(&self, crl_der: &[u8]) -> Result<()> {
        let crl = Arc::new(webpki::CertRevocationList::Owned(
            OwnedCertRevocationList::from_der(crl_der)?,
        ));
        match self.crl.write() {
            Ok(mut guard) => *guard = Some(crl),
            Err(poisoned) => *poisoned.into_inner() = Some(crl),
        }
        Ok(())
    }

    /// Validates `end_entity` (RFC 5280 §6 via rustls-webpki) at `now` for `usage`: chain
    /// to the CA, validity period, EKU, revocation by the CRL (end entity only; an expired
    /// CRL is still honoured, since a store offline for weeks must keep working), then the
    /// identity in its DNS SAN against `policy`.
    ///
    /// # Errors
    /// The [`RefusalReason`] to log, count and report.
    pub fn verify(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
        usage: KeyUsage,
        sig_algs: &[&dyn SignatureVerificationAlgorithm],
        policy: &AcceptPolicy,
    ) -> Result<PeerIdentity, RefusalReason> {
        let cert = EndEntityCert::try_from(end_entity).map_err(|_| RefusalReason::Malformed)?;
        let claimed = claimed_identity(&cert);
        let crl = match self.crl.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let crls: Vec<&webpki::CertRevocationList<'static>> = crl.as_deref().into_iter().collect();
        let options = if crls.is_empty() {
            None
        } else {
            Some(
                RevocationOptionsBuilder::new(&crls)
                    .map_err(|_| RefusalReason::Invalid)?
                    .with_depth(RevocationCheckDepth::EndEntity)
                    .with_status_policy(UnknownStatusPolicy::Deny)
                    .with_expiration_policy(ExpirationPolicy::Ignore)
                    .build(),
            )
        };
        let verified = cert.verify_for_usage(
            sig_algs,
            std::slice::from_ref(&self.anchor),
            intermediates,
            now,
            usage,
            options,
            None,
        );
        if let Err(error) = verified {
            return Err(self.classify(&error, &cert, claimed.as_ref(), policy));
        }
        let identity = claimed.ok_or(RefusalReason::NoIdentity)?;
        policy.check(&identity)?;
        Ok(identity)
    }

    fn classify(
        &self,
        error: &webpki::Error,
        cert: &EndEntityCert<'_>,
        claimed: Option<&PeerIdentity>,
        policy: &AcceptPolicy,
    ) -> RefusalReason {
        use webpki::Error as E;
        match error {
            E::CertExpired { .. } => RefusalReason::Expired,
            E::CertNotValidYet { .. } => RefusalReason::NotYetValid,
            E::CertRevoked => RefusalReason::Revoked,
            E::NameConstraintViolation => RefusalReason::OtherChain,
            E::UnknownIssuer => {
                if claimed.is_some_and(|c| c.chain_id() != policy.chain_id()) {
                    RefusalReason::OtherChain
                } else if cert.issuer() == cert.subject() {
                    RefusalReason::SelfSigned
                } else {
                    RefusalReason::UnknownIssuer
                }
            }
            E::BadDer | E::BadDerTime | E::TrailingData(_) => RefusalReason::Malformed,
            _ => RefusalReason::Invalid,
        }
    }
}

/// Reads the posmesh identity from a certificate's DNS SAN (no verification: use it on
/// certificates that a verifier already accepted, or on our own).
///
/// # Errors
/// [`MeshError::Cert`] when the certificate cannot be parsed, [`MeshError::NotAnIdentity`]
/// when no DNS SAN follows the scheme of [`crate::identity`].
pub fn identity_of_cert(cert: &CertificateDer<'_>) -> Result<PeerIdentity> {
    let parsed = EndEntityCert::try_from(cert)?;
    claimed_identity(&parsed).ok_or(MeshError::NotAnIdentity {
        name: parsed.valid_dns_names().collect::<Vec<_>>().join(","),
        why: "no DNS SAN is a posmesh identity",
    })
}
