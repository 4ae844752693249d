//! TLS alerts (RFC 8446 §6.2) that end a mesh handshake, said for an operator: what the
//! number means for a posmesh device and what to do, the number and its RFC name kept for
//! searching logs.

/// The RFC 8446 name of a TLS alert the mesh sends or receives, if it is one of them.
pub fn alert_name(alert: u8) -> Option<&'static str> {
    Some(match alert {
        42 => "bad_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        48 => "unknown_ca",
        49 => "access_denied",
        120 => "no_application_protocol",
        _ => return None,
    })
}

fn alert_ref(alert: u8) -> String {
    match alert_name(alert) {
        Some(name) => format!("TLS alert {alert} {name}"),
        None => format!("TLS alert {alert}"),
    }
}

/// Why the peer refused our handshake with `alert`, for status pages and logs.
pub fn refused_by_peer_text(alert: u8) -> String {
    let meaning = match alert {
        44 => "our certificate is revoked (it is on the chain CA's revocation list the peer holds): this device needs a new certificate, `posmesh ca issue`",
        48 => "our certificate is unknown to the peer (issued by another chain CA)",
        42 | 46 => "the peer does not accept our certificate",
        45 => "our certificate has expired: renew it with `posmesh ca issue`",
        49 => "the peer refuses our role or store (e.g. a device of another store)",
        120 => "the peer does not speak posmesh/1 (ALPN)",
        _ => "the peer ended the handshake",
    };
    format!("refused by peer: {meaning} ({})", alert_ref(alert))
}

/// Why we refused the peer's handshake with `alert`.
pub fn refused_peer_text(alert: u8) -> String {
    let meaning = match alert {
        44 => "its certificate is revoked",
        48 => "its certificate is unknown here (issued by another chain CA)",
        42 | 46 => "its certificate is not acceptable",
        45 => "its certificate has expired",
        49 => "its role or store is not accepted here",
        120 => "it does not speak posmesh/1 (ALPN)",
        _ => "its handshake was refused",
    };
    format!("we refused the peer: {meaning} ({})", alert_ref(alert))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoked_and_unknown_ca_are_said_in_words_with_the_number() {
        let revoked = refused_by_peer_text(44);
        assert!(revoked.contains("certificate is revoked"), "{revoked}");
        assert!(
            revoked.contains("TLS alert 44 certificate_revoked"),
            "{revoked}"
        );
        let unknown = refused_by_peer_text(48);
        assert!(unknown.contains("unknown to the peer"), "{unknown}");
        assert!(unknown.contains("TLS alert 48 unknown_ca"), "{unknown}");
        assert_eq!(
            refused_peer_text(44),
            "we refused the peer: its certificate is revoked (TLS alert 44 certificate_revoked)"
        );
        assert!(refused_by_peer_text(7).ends_with("(TLS alert 7)"));
    }
}
