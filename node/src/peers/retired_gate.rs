//! The mesh refuses devices retired from the store. A manager's removal
//! ([`posmesh_consensus::StoreCommand::RetireDevice`]) revokes the device's id at the mesh
//! from its committed point on: every device that applied it closes the device's
//! connections with the QUIC application code [`CLOSE_RETIRED`] — new ones at once (after
//! the TLS handshake, which checks the certificate and the CRL), live ones at the next
//! ping ([`super::manager::PING_INTERVAL`]) — so a removed till cannot re-join, not even
//! restarted with a wiped data directory under its old certificate. The close carries the
//! retirement's Raft log index, so the refused device learns it was retired
//! ([`crate::consensus::retirement`]) even when it holds no Raft state.

//!
//! The same gate enforces certificate revocations committed through Raft
//! ([`posmesh_consensus::StoreCommand::RevokeCertificate`], by serial): from the committed
//! point on, every device that applied the revocation closes the connections of a peer
//! presenting that certificate with [`CLOSE_REVOKED`] — new ones at once, live ones at the
//! next ping — on top of the CRL read at start. Never retroactive: entries the device
//! signed before stay valid in the ledger (DESIGN: revocation is effective from its log
//! index). The close names the revocation's index and the serial refused
//! (`certificate_revoked at <index> serial <serial>`), so the refused device checks the
//! claim is about the certificate it presents ([`crate::consensus::own_revocation`]); a
//! close of an older version names only the index ([`RevokedClaim::serial`] `None`).

use quinn::ConnectionError;
use std::sync::Arc;

/// QUIC application close code of a connection refused because the peer device was
/// retired from the store; the reason is `device_retired at <Raft log index>`.
pub const CLOSE_RETIRED: u32 = 3;

/// QUIC application close code of a connection refused because the peer's certificate
/// was revoked through the store's Raft; the reason is [`revoked_close_reason`].
pub const CLOSE_REVOKED: u32 = 4;

const REASON_PREFIX: &str = "device_retired at ";

const REVOKED_PREFIX: &str = "certificate_revoked at ";

const REVOKED_SERIAL: &str = " serial ";

/// The Raft log index a certificate (serial, lowercase hex) was revoked at, if the state
/// applied here holds the revocation.
pub type RevokedAt = Arc<dyn Fn(&str) -> Option<u64> + Send + Sync>;

/// The Raft log index a device was retired at, if the state applied here holds it.
pub type RetiredAt = Arc<dyn Fn(&str) -> Option<u64> + Send + Sync>;

/// Told that a peer (first argument) refused this device as retired at a Raft log index.
pub type RefusedAsRetired = Arc<dyn Fn(&str, u64) + Send + Sync>;

/// Told that a peer (first argument) closed this device's connection with
/// [`CLOSE_REVOKED`], and what its close claims.
pub type RefusedAsRevoked = Arc<dyn Fn(&str, &RevokedClaim) + Send + Sync>;

/// What a peer's [`CLOSE_REVOKED`] close claims: the certificate this device presented is
/// revoked store-wide.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedClaim {
    /// Raft log index of the revocation.
    pub revoked_at_index: u64,
    /// The serial the peer refused (canonical lowercase hex); `None` from a peer of an
    /// older version, whose close names only the index.
    pub serial: Option<String>,
}

/// What the [`super::PeerManager`] asks and tells about retirements.
#[derive(Clone)]
pub struct RetiredGate {
    /// The Raft log index `device_id` was retired at, if the state applied here holds its
    /// retirement.
    pub retired_at: RetiredAt,
    /// A peer (first argument) closed our connection because this device was retired at
    /// the given Raft log index.
    pub on_refused: RefusedAsRetired,
    /// The Raft log index a certificate serial was revoked at, if the state applied here
    /// holds the revocation.
    pub revoked_at: RevokedAt,
    /// A peer (first argument) closed our connection with [`CLOSE_REVOKED`]: it claims this
    /// device's certificate was revoked ([`crate::consensus::own_revocation`] judges it).
    pub on_revoked: RefusedAsRevoked,
}

/// Why the gate refuses a peer's connection: the QUIC close code and reason.
pub fn refusal(
    gate: &RetiredGate,
    device: &str,
    serial_hex: Option<&str>,
) -> Option<(u32, Vec<u8>)> {
    if let Some(index) = (gate.retired_at)(device) {
        return Some((CLOSE_RETIRED, close_reason(index)));
    }
    let serial = serial_hex?;
    let index = (gate.revoked_at)(serial)?;
    Some((CLOSE_REVOKED, revoked_close_reason(index, serial)))
}

/// The close reason sent with [`CLOSE_REVOKED`] to a peer presenting the certificate of
/// serial `serial_hex`, revoked at Raft log index `revoked_at_index`:
/// `certificate_revoked at <index> serial <serial>` (at most 91 bytes).
pub fn revoked_close_reason(revoked_at_index: u64, serial_hex: &str) -> Vec<u8> {
    format!("{REVOKED_PREFIX}{revoked_at_index}{REVOKED_SERIAL}{serial_hex}").into_bytes()
}

/// The close reason sent to a device retired at `retired_at_index`.
pub fn close_reason(retired_at_index: u64) -> Vec<u8> {
    format!("{REASON_PREFIX}{retired_at_index}").into_bytes()
}

/// The refusal code ([`CLOSE_RETIRED`] or [`CLOSE_REVOKED`]) when a peer closed the
/// connection because it refuses this device; `None` for any other end. Such a close is
/// not a failure that retrying soon can mend: the manager backs off to its longest delay.
pub fn refusal_code(error: &ConnectionError) -> Option<u32> {
    let ConnectionError::ApplicationClosed(close) = error else {
        return None;
    };
    [CLOSE_RETIRED, CLOSE_REVOKED]
        .into_iter()
        .find(|code| close.error_code.into_inner() == u64::from(*code))
}

/// The retirement index a peer's close carries, when it closed with [`CLOSE_RETIRED`].
pub fn refused_as_retired(error: &ConnectionError) -> Option<u64> {
    let ConnectionError::ApplicationClosed(close) = error else {
        return None;
    };
    if close.error_code.into_inner() != u64::from(CLOSE_RETIRED) {
        return None;
    }
    std::str::from_utf8(&close.reason)
        .ok()?
        .strip_prefix(REASON_PREFIX)?
        .parse()
        .ok()
}

/// What a peer's close claims, when it closed with [`CLOSE_REVOKED`] (this device's own
/// certificate revoked store-wide): the index and, from a peer of this version, the serial.
/// `None` for another close or a reason that does not parse (a serial not in canonical
/// form included: [`posmesh_consensus::serial::check_canonical`]).
pub fn refused_as_revoked(error: &ConnectionError) -> Option<RevokedClaim> {
    let ConnectionError::ApplicationClosed(close) = error else {
        return None;
    };
    if close.error_code.into_inner() != u64::from(CLOSE_REVOKED) {
        return None;
    }
    let claim = std::str::from_utf8(&close.reason)
        .ok()?
        .strip_prefix(REVOKED_PREFIX)?;
    let (index, serial) = match claim.split_once(REVOKED_SERIAL) {
        Some((index, serial)) => {
            posmesh_consensus::serial::check_canonical(serial).ok()?;
            (index, Some(serial.to_owned()))
        }
        None => (claim, None),
    };
    Some(RevokedClaim {
        revoked_at_index: index.parse().ok()?,
        serial,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use quinn::{ApplicationClose, VarInt};

    fn closed(code: u32, reason: &[u8]) -> ConnectionError {
        ConnectionError::ApplicationClosed(ApplicationClose {
            error_code: VarInt::from_u32(code),
            reason: reason.to_vec().into(),
        })
    }

    fn gate() -> RetiredGate {
        RetiredGate {
            retired_at: Arc::new(|device| (device == "till-9").then_some(7)),
            on_refused: Arc::new(|_, _| {}),
            revoked_at: Arc::new(|serial| (serial == "0c").then_some(12)),
            on_revoked: Arc::new(|_, _| {}),
        }
    }

    #[test]
    fn retired_devices_and_revoked_certificates_are_refused() {
        let gate = gate();
        assert_eq!(
            refusal(&gate, "till-9", Some("0c")),
            Some((CLOSE_RETIRED, close_reason(7)))
        );
        assert_eq!(
            refusal(&gate, "till-3", Some("0c")),
            Some((
                CLOSE_REVOKED,
                b"certificate_revoked at 12 serial 0c".to_vec()
            ))
        );
        assert_eq!(refusal(&gate, "till-3", Some("0d")), None);
        assert_eq!(refusal(&gate, "till-3", None), None);
        // A revocation close is not read as a retirement (the device is not told it was
        // removed from the store).
        let (code, reason) = refusal(&gate, "till-3", Some("0c")).expect("refused");
        assert_eq!(refused_as_retired(&closed(code, &reason)), None);
        assert_eq!(
            refused_as_revoked(&closed(code, &reason)),
            Some(RevokedClaim {
                revoked_at_index: 12,
                serial: Some("0c".into())
            })
        );
        assert_eq!(
            refused_as_revoked(&closed(CLOSE_RETIRED, &close_reason(7))),
            None
        );
        assert_eq!(refused_as_revoked(&ConnectionError::TimedOut), None);
    }

    #[test]
    fn a_revocation_close_names_the_serial_and_an_older_one_only_the_index() {
        // A peer of an older version names no serial.
        assert_eq!(
            refused_as_revoked(&closed(CLOSE_REVOKED, b"certificate_revoked at 12")),
            Some(RevokedClaim {
                revoked_at_index: 12,
                serial: None
            })
        );
        assert_eq!(
            refused_as_revoked(&closed(
                CLOSE_REVOKED,
                &revoked_close_reason(u64::MAX, &"ab".repeat(20))
            )),
            Some(RevokedClaim {
                revoked_at_index: u64::MAX,
                serial: Some("ab".repeat(20))
            })
        );
        for bad in [
            &b"certificate_revoked at x"[..],
            b"certificate_revoked at 12 serial 0C",
            b"certificate_revoked at 12 serial ",
            b"certificate_revoked at 12 serial 0c 0d",
            b"certificate_revoked at  serial 0c",
            b"device_retired at 12",
            b"\xff",
        ] {
            assert_eq!(
                refused_as_revoked(&closed(CLOSE_REVOKED, bad)),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            refused_as_revoked(&closed(CLOSE_RETIRED, &revoked_close_reason(12, "0c"))),
            None
        );
    }

    #[test]
    fn only_retired_and_revoked_closes_are_refusals() {
        assert_eq!(
            refusal_code(&closed(CLOSE_RETIRED, &close_reason(21))),
            Some(CLOSE_RETIRED)
        );
        assert_eq!(
            refusal_code(&closed(CLOSE_REVOKED, &revoked_close_reason(12, "0c"))),
            Some(CLOSE_REVOKED)
        );
        assert_eq!(refusal_code(&closed(2, b"duplicate connection")), None);
        assert_eq!(refusal_code(&closed(0, b"endpoint closed")), None);
        assert_eq!(refusal_code(&ConnectionError::TimedOut), None);
        assert_eq!(refusal_code(&ConnectionError::LocallyClosed), None);
    }

    #[test]
    fn a_retirement_close_carries_its_index_and_nothing_else_does() {
        assert_eq!(
            refused_as_retired(&closed(CLOSE_RETIRED, &close_reason(42))),
            Some(42)
        );
        assert_eq!(refused_as_retired(&closed(2, &close_reason(42))), None);
        assert_eq!(
            refused_as_retired(&closed(CLOSE_RETIRED, b"device_retired at x")),
            None
        );
        assert_eq!(refused_as_retired(&ConnectionError::LocallyClosed), None);
        assert_eq!(refused_as_retired(&ConnectionError::TimedOut), None);
    }
}
