//! [`ChainCa`]: the chain's certificate authority.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    NameConstraints, RevocationReason, RevokedCertParams, SanType, SerialNumber,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};
use sha2::{Digest, Sha256};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use super::files::{self, KEY_FILE_MODE, PUBLIC_FILE_MODE};
use super::issued::IssuedIdentity;
use super::{CA_CERT_FILE, CA_KEY_FILE, CRL_FILE, SERIAL_FILE};
use crate::error::{MeshError, Result};
use crate::identity::{validate_id, PeerIdentity, IDENTITY_TLD};

/// Start of the CA certificate's validity: 2024-01-01T00:00:00Z.
///
/// The CA's validity is fixed rather than read from the clock, so `init` stays
/// deterministic; the CA's real lifetime ends when its key is rotated.
pub const CA_NOT_BEFORE: OffsetDateTime = OffsetDateTime::new_utc(
    match Date::from_calendar_date(2024, Month::January, 1) {
        Ok(d) => d,
        Err(_) => panic!("valid date"),
    },
    Time::MIDNIGHT,
);

/// End of the CA certificate's validity: 2124-01-01T00:00:00Z.
pub const CA_NOT_AFTER: OffsetDateTime = OffsetDateTime::new_utc(
    match Date::from_calendar_date(2124, Month::January, 1) {
        Ok(d) => d,
        Err(_) => panic!("valid date"),
    },
    Time::MIDNIGHT,
);

/// The CA of one chain: issues node certificates and CRLs, stored in one directory.
///
/// Not safe for concurrent use of the same directory by two processes (the serial counter
/// is read-modify-write); `posmesh ca …` runs one command at a time.
pub struct ChainCa {
    chain_id: String,
    dir: PathBuf,
    issuer: Issuer<'static, KeyPair>,
    cert_der: CertificateDer<'static>,
    cert_pem: String,
}

impl std::fmt::Debug for ChainCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainCa")
            .field("chain_id", &self.chain_id)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The DNS SAN the CA certificate carries, which names its chain: `ca.<chain>.posmesh`.
fn ca_dns_name(chain_id: &str) -> String {
    format!("ca.{chain_id}.{IDENTITY_TLD}")
}

/// CA parameters. Everything an [`Issuer`] uses (subject DN, key usages, key id method) is
/// a pure function of `chain_id`, which is how [`ChainCa::load`] rebuilds the issuer
/// without an X.509 parser.
fn ca_params(chain_id: &str) -> Result<CertificateParams> {
    let mut params = CertificateParams::new(vec![ca_dns_name(chain_id)])?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "posmesh");
    params
        .distinguished_name
        .push(DnType::CommonName, format!("posmesh chain CA {chain_id}"));
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.key_identifier_method = KeyIdMethod::Sha256;
    // Name constraints (RFC 5280 §4.2.1.10): this CA can only vouch for names of its chain,
    // which rustls-webpki enforces on every path.
    params.name_constraints = Some(NameConstraints {
        permitted_subtrees: vec![GeneralSubtree::DnsName(format!(
            "{chain_id}.{IDENTITY_TLD}"
        ))],
        excluded_subtrees: vec![],
    });
    params.not_before = CA_NOT_BEFORE;
    params.not_after = CA_NOT_AFTER;
    Ok(params)
}

fn serial_bytes(serial: u64) -> Vec<u8> {
    let bytes = serial.to_be_bytes();
    let first = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len() - 1);
    bytes[first..].to_vec()
}

fn parse_pem_cert(pem: &[u8], what: &'static str) -> Result<CertificateDer<'static>> {
    CertificateDer::from_pem_slice(pem).map_err(|e| MeshError::Pem {
        what,
        detail: e.to_string(),
    })
}

impl ChainCa {
    /// Creates the CA of `chain_id` in `dir` (created if missing): a fresh ECDSA P-256 key
    /// in `ca.key` (mode 0600), a self-signed CA certificate in `ca.pem`, valid from
    /// [`CA_NOT_BEFORE`] to [`CA_NOT_AFTER`], name-constrained to `<chain>.posmesh`, and the
    /// serial counter (serial 1 is the CA's own).
    ///
    /// # Errors
    /// [`MeshError::InvalidId`] for a bad chain id, [`MeshError::AlreadyExists`] when the
    /// directory already holds a CA (nothing is overwritten), I/O and generation errors.
    pub fn init(chain_id: &str, dir: &Path) -> Result<Self> {
        validate_id(chain_id).map_err(|error| MeshError::InvalidId {
            kind: "chain",
            id: chain_id.to_owned(),
            error,
        })?;
        files::ensure_dir(dir)?;
        for name in [CA_KEY_FILE, CA_CERT_FILE, SERIAL_FILE] {
            let path = dir.join(name);
            if path.exists() {
                return Err(MeshError::AlreadyExists { path });
            }
        }
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = ca_params(chain_id)?;
        params.serial_number = Some(SerialNumber::from_slice(&serial_bytes(1)));
        let cert = params.self_signed(&key)?;
        // Key first: a crash leaves a key without a certificate, never the reverse.
        files::write_new(
            &dir.join(CA_KEY_FILE),
            key.serialize_pem().as_bytes(),
            KEY_FILE_MODE,
        )?;
        files::write_new(&dir.join(SERIAL_FILE), b"1\n", PUBLIC_FILE_MODE)?;
        files::write_new(
            &dir.join(CA_CERT_FILE),
            cert.pem().as_bytes(),
            PUBLIC_FILE_MODE,
        )?;
        Ok(Self {
            chain_id: chain_id.to_owned(),
            dir: dir.to_path_buf(),
            cert_der: cert.der().clone(),
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads the CA written by [`ChainCa::init`] from `dir`, and checks that key and
    /// certificate belong together by issuing a probe certificate and verifying it.
    ///
    /// # Errors
    /// I/O, PEM and certificate errors; [`MeshError::NotAnIdentity`] when `ca.pem` does not
    /// name a chain (`ca.<chain>.posmesh`).
    pub fn load(dir: &Path) -> Result<Self> {
        let cert_pem_bytes = files::read(&dir.join(CA_CERT_FILE))?;
        let cert_der = parse_pem_cert(&cert_pem_bytes, "ca.pem")?;
        let chain_id = {
            let parsed = webpki::EndEntityCert::try_from(&cert_der)?;
            let name = parsed
                .valid_dns_names()
                .find_map(|n| {
                    n.strip_prefix("ca.")
                        .and_then(|rest| rest.strip_suffix(&format!(".{IDENTITY_TLD}")))
                        .map(str::to_owned)
                })
                .ok_or(MeshError::NotAnIdentity {
                    name: "ca.pem".to_owned(),
                    why: "no ca.<chain>.posmesh name",
                })?;
            validate_id(&name).map_err(|error| MeshError::InvalidId {
                kind: "chain",
                id: name.clone(),
                error,
            })?;
            name
        };
        let key_pem = files::read_key(&dir.join(CA_KEY_FILE))?;
        let key_pem = String::from_utf8(key_pem).map_err(|e| MeshError::Pem {
            what: "ca.key",
            detail: e.to_string(),
        })?;
        let key = KeyPair::from_pem(&key_pem)?;
        let ca = Self {
            issuer: Issuer::new(ca_params(&chain_id)?, key),
            chain_id,
            dir: dir.to_path_buf(),
            cert_der,
            cert_pem: String::from_utf8_lossy(&cert_pem_bytes).into_owned(),
        };
        ca.self_check()?;
        Ok(ca)
    }

    /// Issues a throw-away certificate (not counted in the serials) and verifies it
    /// against `ca.pem`: proves the key and the rebuilt issuer match the stored certificate.
    fn self_check(&self) -> Result<()> {
        let probe = PeerIdentity::new_cloud(&self.chain_id, "self-check")?;
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let params = leaf_params(&probe, CA_NOT_BEFORE, CA_NOT_AFTER, &serial_bytes(1))?;
        let cert = params.signed_by(&key, &self.issuer)?;
        let anchor = webpki::anchor_from_trusted_cert(&self.cert_der)?;
        let ee = webpki::EndEntityCert::try_from(cert.der())?;
        let at = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            u64::try_from(CA_NOT_BEFORE.unix_timestamp()).unwrap_or(0) + 1,
        ));
        ee.verify_for_usage(
            rustls::crypto::ring::default_provider()
                .signature_verification_algorithms
                .all,
            &[anchor],
            &[],
            at,
            webpki::KeyUsage::client_auth(),
            None,
            None,
        )?;
        Ok(())
    }

    /// The chain this CA serves.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// The CA directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The CA certificate (DER), the trust anchor of every node of the chain.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The CA certificate (PEM), as written to `ca.pem`.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Takes the next serial number from the `serial` counter file (monotonic, persisted
    /// before use so a crash never reuses a serial).
    fn next_serial(&self) -> Result<u64> {
        let path = self.dir.join(SERIAL_FILE);
        let text = files::read(&path)?;
        let bad = |detail: String| MeshError::SerialCounter {
            path: path.clone(),
            detail,
        };
        let last: u64 = std::str::from_utf8(&text)
            .map_err(|e| bad(e.to_string()))?
            .trim()
            .parse()
            .map_err(|e: std::num::ParseIntError| bad(e.to_string()))?;
        // RFC 5280 §4.1.2.2 wants positive serials of at most 20 octets; u64 below 2^63
        // keeps them at 8 octets without a sign byte.
        let next = last
            .checked_add(1)
            .filter(|n| *n < (1 << 63))
            .ok_or_else(|| bad("exhausted".to_owned()))?;
        files::replace(&path, format!("{next}\n").as_bytes(), PUBLIC_FILE_MODE)?;
        Ok(next)
    }

    /// Issues a certificate for `identity`, valid from `not_before` to `not_after`, with a
    /// fresh ECDSA P-256 key, the identity as its only DNS SAN, and both TLS web server and
    /// client EKUs (every node dials and accepts).
    ///
    /// # Errors
    /// [`MeshError::NotAnIdentity`] when `identity` is of another chain,
    /// [`MeshError::Validity`] when `not_after <= not_before`, counter and generation errors.
    pub fn issue(
        &self,
        identity: &PeerIdentity,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> Result<IssuedIdentity> {
        if identity.chain_id() != self.chain_id {
            return Err(MeshError::NotAnIdentity {
                name: identity.to_dns_name(),
                why: "belongs to another chain than this CA",
            });
        }
        if not_after <= not_before {
            return Err(MeshError::Validity("not_after must be after not_before"));
        }
        let serial = serial_bytes(self.next_serial()?);
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let params = leaf_params(identity, not_before, not_after, &serial)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(IssuedIdentity {
            identity: identity.clone(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            ca_cert_pem: self.cert_pem.clone(),
            serial_hex: hex::encode(&serial),
            fingerprint_sha256_hex: hex::encode(Sha256::digest(cert.der())),
        })
    }

    /// Writes a CRL (RFC 5280 §5) signed by this CA that revokes `serials_hex` (as
    /// [`IssuedIdentity::serial_hex`]), to `crl.pem` (replaced atomically), and returns it
    /// as PEM. A CRL is complete: pass every serial that is still revoked. Its CRL number
    /// comes from the same monotonic counter as certificate serials.
    ///
    /// # Errors
    /// [`MeshError::Validity`] when `next_update <= this_update` or a serial is not hex,
    /// counter, generation and I/O errors.
    pub fn revoke(
        &self,
        serials_hex: &[&str],
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> Result<String> {
        if next_update <= this_update {
            return Err(MeshError::Validity("next_update must be after this_update"));
        }
        let mut revoked_certs = Vec::with_capacity(serials_hex.len());
        for serial in serials_hex {
            let bytes = hex::decode(serial)
                .map_err(|_| MeshError::Validity("serial is not hexadecimal"))?;
            revoked_certs.push(RevokedCertParams {
                serial_number: SerialNumber::from_slice(&bytes),
                revocation_time: this_update,
                reason_code: Some(RevocationReason::Unspecified),
                invalidity_date: None,
            });
        }
        let params = CertificateRevocationListParams {
            this_update,
            next_update,
            crl_number: SerialNumber::from_slice(&serial_bytes(self.next_serial()?)),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl_pem = params.signed_by(&self.issuer)?.pem()?;
        files::replace(
            &self.dir.join(CRL_FILE),
            crl_pem.as_bytes(),
            PUBLIC_FILE_MODE,
        )?;
        Ok(crl_pem)
    }
}

fn leaf_params(
    identity: &PeerIdentity,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    serial: &[u8],
) -> Result<CertificateParams> {
    let name = identity.to_dns_name();
    let mut params = CertificateParams::default();
    params.subject_alt_names = vec![SanType::DnsName(name.clone().try_into()?)];
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(SerialNumber::from_slice(serial));
    params.not_before = truncate_to_seconds(not_before);
    params.not_after = truncate_to_seconds(not_after);
    Ok(params)
}

/// X.509 times have one-second resolution (RFC 5280 §4.1.2.5).
fn truncate_to_seconds(t: OffsetDateTime) -> OffsetDateTime {
    let time = t.time();
    match Time::from_hms(time.hour(), time.minute(), time.second()) {
        Ok(whole) => PrimitiveDateTime::new(t.date(), whole).assume_offset(t.offset()),
        Err(_) => t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_bytes_are_minimal() {
        assert_eq!(serial_bytes(1), vec![1]);
        assert_eq!(serial_bytes(256), vec![1, 0]);
        assert_eq!(serial_bytes(0), vec![0]);
    }
}
