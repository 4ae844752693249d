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
//! index).

use quinn::ConnectionError;
use std::sync::Arc;

/// QUIC application close code of a connection refused because the peer device was
/// retired from the store; the reason is `device_retired at <Raft log index>`.
pub const CLOSE_RETIRED: u32 = 3;

/// QUIC application close code of a connection refused because the peer's certificate
/// was revoked through the store's Raft; the reason is `certificate_revoked at <index>`.
pub const CLOSE_REVOKED: u32 = 4;

const REASON_PREFIX: &str = "device_retired at ";

const REVOKED_PREFIX: &str = "certificate_revoked at ";

/// The Raft log index a certificate (serial, lowercase hex) was revoked at, if the state
/// applied here holds the revocation.
pub type RevokedAt = Arc<dyn Fn(&str) -> Option<u64> + Send + Sync>;

/// The Raft log index a device was retired at, if the state applied here holds it.
pub type RetiredAt = Arc<dyn Fn(&str) -> Option<u64> + Send + Sync>;

/// Told that a peer (first argument) refused this device as retired at a Raft log index.
pub type RefusedAsRetired = Arc<dyn Fn(&str, u64) + Send + Sync>;

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
    /// A peer (first argument) closed our connection with [`CLOSE_REVOKED`]: this device's
    /// certificate was revoked at the given Raft log index
    /// ([`crate::consensus::own_revocation`]).
    pub on_revoked: RefusedAsRetired,
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
    let index = serial_hex.and_then(|serial| (gate.revoked_at)(serial))?;
    Some((
        CLOSE_REVOKED,
        format!("{REVOKED_PREFIX}{index}").into_bytes(),
    ))
}

/// The close reason sent to a device retired at `retired_at_index`.
pub fn close_reason(retired_at_index: u64) -> Vec<u8> {
    format!("{REASON_PREFIX}{retired_at_index}").into_bytes()
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

/// The revocation index a peer's close carries, when it closed with [`CLOSE_REVOKED`]
/// (this device's own certificate was revoked store-wide).
pub fn refused_as_revoked(error: &ConnectionError) -> Option<u64> {
    let ConnectionError::ApplicationClosed(close) = error else {
        return None;
    };
    if close.error_code.into_inner() != u64::from(CLOSE_REVOKED) {
        return None;
    }
    std::str::from_utf8(&close.reason)
        .ok()?
        .strip_prefix(REVOKED_PREFIX)?
        .parse()
        .ok()
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
            Some((CLOSE_REVOKED, b"certificate_revoked at 12".to_vec()))
        );
        assert_eq!(refusal(&gate, "till-3", Some("0d")), None);
        assert_eq!(refusal(&gate, "till-3", None), None);
        // A revocation close is not read as a retirement (the device is not told it was
        // removed from the store).
        let (code, reason) = refusal(&gate, "till-3", Some("0c")).expect("refused");
        assert_eq!(refused_as_retired(&closed(code, &reason)), None);
        assert_eq!(refused_as_revoked(&closed(code, &reason)), Some(12));
        assert_eq!(
            refused_as_revoked(&closed(CLOSE_RETIRED, &close_reason(7))),
            None
        );
        assert_eq!(
            refused_as_revoked(&closed(CLOSE_REVOKED, b"certificate_revoked at x")),
            None
        );
        assert_eq!(refused_as_revoked(&ConnectionError::TimedOut), None);
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
