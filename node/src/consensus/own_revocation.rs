//! A device whose own certificate was revoked store-wide finds out. An admin's `posmesh
//! store revoke-certificate SERIAL` commits
//! [`posmesh_consensus::StoreCommand::RevokeCertificate`] through Raft; every device that
//! applied it closes the connections of a peer presenting that certificate
//! ([`crate::peers::retired_gate`], close code 4). The revoked device applies the same
//! entry (it was connected when it committed) or, cut off, is refused by a peer with that
//! close code; either way it learns that its own certificate (the serial of the
//! certificate it loaded at start, [`posmesh_mesh::tls::serial_hex_of_der`]) is revoked.
//!
//! Once it knows, a device logs an ERROR once, raises the manager alert
//! [`CERTIFICATE_REVOKED_CODE`] (listener set by the runtime), shows it first in `posmesh
//! status`, and its sales API refuses every write with 403 `certificate_revoked`
//! ([`crate::api::write_bar`]): the rest of the store no longer accepts what it signs, so
//! a sale taken here would never reach the store's ledger. Sales it recorded before the
//! revocation's log index stay valid (never retroactive).

use serde::{Deserialize, Serialize};
use std::sync::{Arc, OnceLock};

/// Code of the alert, of the API refusal and of the log line.
pub const CERTIFICATE_REVOKED_CODE: &str = "certificate_revoked";

/// The revocation of this device's own certificate, as it learned it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnRevocation {
    /// This device's id.
    pub device_id: String,
    /// Serial of this device's certificate (lowercase hex).
    pub serial: String,
    /// Raft log index of the `RevokeCertificate` entry.
    pub revoked_at_index: u64,
    /// How it was learned: `applied here` or `refused at the mesh by <peer>`.
    pub learned_from: String,
}

impl std::fmt::Display for OwnRevocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the certificate of {} (serial {}) was revoked store-wide (Raft log index {}; {}): \
             the other devices refuse its mesh connections, so it takes no more sales. Enrol \
             the till as a new device: a certificate for a new id (`posmesh ca issue … \
             --device <new id>`) and an empty data directory; under its old id ({}) the store \
             refuses every entry it makes beyond its journal's cut (README: certificates and \
             revocation). Sales recorded here before stay in the store's ledger as far as \
             they had reached the leader",
            self.device_id, self.serial, self.revoked_at_index, self.learned_from, self.device_id
        )
    }
}

/// Told once, when this device learns its certificate was revoked (raises the alert).
pub type RevocationListener = Arc<dyn Fn(&OwnRevocation) + Send + Sync>;

/// This device's certificate serial and whether it was revoked, recorded once.
#[derive(Default)]
pub struct OwnRevocationNotice {
    serial: OnceLock<String>,
    revoked: OnceLock<OwnRevocation>,
    listener: OnceLock<RevocationListener>,
}

impl OwnRevocationNotice {
    /// Sets this device's certificate serial (lowercase hex; once, at start).
    pub fn set_own_serial(&self, serial_hex: String) {
        let _ = self.serial.set(serial_hex);
    }

    /// This device's certificate serial (lowercase hex), once set.
    pub fn own_serial(&self) -> Option<&str> {
        self.serial.get().map(String::as_str)
    }

    /// Sets who is told of the revocation (once).
    pub fn on_revoked(&self, listener: RevocationListener) {
        let _ = self.listener.set(listener);
    }

    /// Records the revocation: the first time it is logged at ERROR and passed to the
    /// listener; later records change nothing. True when this was the first.
    pub fn record(&self, revocation: OwnRevocation) -> bool {
        if self.revoked.set(revocation).is_err() {
            return false;
        }
        if let Some(revocation) = self.revoked.get() {
            tracing::error!(
                code = CERTIFICATE_REVOKED_CODE,
                serial = %revocation.serial,
                "{revocation}"
            );
            if let Some(listener) = self.listener.get() {
                listener(revocation);
            }
        }
        true
    }

    /// The revocation, once learned.
    pub fn get(&self) -> Option<&OwnRevocation> {
        self.revoked.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn revocation(learned_from: &str) -> OwnRevocation {
        OwnRevocation {
            device_id: "till-3".into(),
            serial: "0c".into(),
            revoked_at_index: 42,
            learned_from: learned_from.into(),
        }
    }

    #[test]
    fn the_first_revocation_learned_is_kept_and_told_once() {
        let notice = OwnRevocationNotice::default();
        assert_eq!(notice.own_serial(), None);
        notice.set_own_serial("0c".into());
        notice.set_own_serial("0d".into());
        assert_eq!(notice.own_serial(), Some("0c"));
        assert_eq!(notice.get(), None);
        let told = Arc::new(Mutex::new(Vec::new()));
        let seen = told.clone();
        notice.on_revoked(Arc::new(move |r: &OwnRevocation| {
            seen.lock().expect("lock").push(r.learned_from.clone());
        }));
        assert!(notice.record(revocation("applied here")));
        assert!(!notice.record(revocation("refused at the mesh by till-1")));
        assert_eq!(*told.lock().expect("lock"), vec!["applied here"]);
        let text = notice.get().expect("revoked").to_string();
        assert!(
            text.contains("serial 0c") && text.contains("index 42"),
            "{text}"
        );
        assert!(text.contains("posmesh ca issue"), "{text}");
    }
}
