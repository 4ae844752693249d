//! The serial number of an X.509 certificate (RFC 5280 §4.1.2.2), read from its DER
//! (ITU-T X.690): `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] EXPLICIT
//! version OPTIONAL, serialNumber INTEGER, ... } ... }` — the two headers, the optional
//! version and the INTEGER, nothing else of the certificate is read. The mesh compares it
//! with the serials the store revoked through Raft. Sans-IO.

/// The serial of the DER certificate `der` as lowercase hex of its minimal big-endian
/// bytes (leading zero octets dropped; `"00"` for zero) — the form the chain CA prints
/// (`IssuedIdentity::serial_hex`) and `posmesh ca revoke` takes. `None` if `der` does not
/// start like a certificate.
pub fn serial_hex_of_der(der: &[u8]) -> Option<String> {
    let (certificate, _) = element(der, 0x30)?;
    let (tbs, _) = element(certificate, 0x30)?;
    let tbs = match element(tbs, 0xa0) {
        Some((_version, rest)) => rest,
        None => tbs,
    };
    let (serial, _) = element(tbs, 0x02)?;
    let first = serial.iter().position(|b| *b != 0).unwrap_or(serial.len());
    let minimal = &serial[first..];
    if serial.is_empty() {
        return None;
    }
    Some(if minimal.is_empty() {
        "00".to_owned()
    } else {
        hex::encode(minimal)
    })
}

/// The serial of the first certificate of the PEM text `pem` (a node's `node.pem`), as
/// [`serial_hex_of_der`]; `None` without a readable certificate.
pub fn serial_hex_of_pem(pem: &[u8]) -> Option<String> {
    use rustls_pki_types::pem::PemObject;
    let der = rustls_pki_types::CertificateDer::from_pem_slice(pem).ok()?;
    serial_hex_of_der(&der)
}

/// The content of the DER element of tag `tag` at the start of `input`, and what follows
/// it; `None` for another tag or a malformed length.
fn element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&found, rest) = input.split_first()?;
    if found != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let octets = usize::from(first & 0x7f);
        if octets == 0 || octets > std::mem::size_of::<usize>() || rest.len() < octets {
            return None;
        }
        let (bytes, rest) = rest.split_at(octets);
        let length = bytes
            .iter()
            .fold(0usize, |length, b| (length << 8) | usize::from(*b));
        (length, rest)
    };
    (rest.len() >= length).then(|| rest.split_at(length))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::ChainCa;
    use crate::PeerIdentity;
    use rustls_pki_types::pem::PemObject;

    #[test]
    fn the_serial_read_is_the_one_the_ca_issued() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = ChainCa::init("acme", &dir.path().join("ca")).expect("ca");
        let now = time::OffsetDateTime::now_utc();
        for device in ["till-1", "till-2", "till-3"] {
            let identity = PeerIdentity::new_device("acme", "s1", device).expect("identity");
            let issued = ca
                .issue(
                    &identity,
                    now - time::Duration::hours(1),
                    now + time::Duration::days(1),
                )
                .expect("issue");
            let der = rustls_pki_types::CertificateDer::from_pem_slice(issued.cert_pem.as_bytes())
                .expect("pem");
            assert_eq!(
                serial_hex_of_der(&der).as_deref(),
                Some(issued.serial_hex.as_str()),
                "{device}"
            );
            assert_eq!(
                serial_hex_of_pem(issued.cert_pem.as_bytes()),
                Some(issued.serial_hex.clone())
            );
        }
    }

    #[test]
    fn lengths_and_leading_zeros_are_read_by_the_rules() {
        // SEQUENCE { SEQUENCE { [0] { INTEGER 2 }, INTEGER 00 80 } }: long-form outer
        // length, a version, a serial with the sign octet.
        let der = [
            0x30, 0x81, 0x0b, 0x30, 0x09, 0xa0, 0x03, 0x02, 0x01, 0x02, 0x02, 0x02, 0x00, 0x80,
        ];
        assert_eq!(serial_hex_of_der(&der).as_deref(), Some("80"));
        // No version.
        let der = [0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x2a];
        assert_eq!(serial_hex_of_der(&der).as_deref(), Some("2a"));
        for bad in [
            &[][..],
            &[0x31, 0x00],
            &[0x30, 0x05, 0x30, 0x03, 0x02, 0x05, 0x2a],
            &[0x30, 0x80],
            &[0x30, 0x02, 0x30, 0x00],
            &[0x30, 0x04, 0x30, 0x02, 0x02, 0x00],
        ] {
            assert_eq!(serial_hex_of_der(bad), None, "{bad:?}");
        }
    }
}
