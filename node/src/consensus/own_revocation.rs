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
//!
//! # Kept across restarts, until re-enrolment
//! The runtime's listener also records the revocation in the device's own database
//! (`device_meta`, [`crate::storage::own_revocation`]): learned from a peer's close it is
//! in no Raft state this device applied, and a restarted device must not sell again. At
//! start, before the API opens, [`restore_at_start`] takes the record back when it names
//! this device's id — the same refusals, the same status — whatever certificate the device
//! now presents: the store cut the id's journal at the revocation
//! ([`posmesh_consensus::ledger_cut`]), so a till is enrolled again as a new device (new id,
//! empty data directory, where no record exists). A `certificate_revoked` alert without a
//! record (raised by an older version) is cleared at start. A revocation the Raft state
//! holds is found again from that state at start either way.
//!
//! # Whose claim is believed
//! A peer's close code 4 is a claim this device cannot check (it holds no newer Raft
//! state). It is believed because it gives the peer no power it lacks: a device with a
//! valid certificate of this store can already commit `RevokeCertificate` through Raft (the
//! devices of a store are trusted peers; the state machine cannot check an admin's PIN),
//! and the revocation then reaches this device the same way. [`judge_claim`] only accepts
//! a claim naming the serial of the certificate this device presents (a close of this
//! version carries it); a claim about another serial is ignored with a WARN. A close of an
//! older version names no serial: it is taken as being about the certificate presented on
//! that connection, which is this device's current one. Who claimed it is logged (WARN) and
//! kept in [`OwnRevocation::learned_from`].

use crate::peers::retired_gate::RevokedClaim;
use crate::storage::{JournalStore, StorageError};
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
             refuses every entry it makes beyond its journal's cut (README, section \"Store \
             consensus\": certificate revocation). Sales recorded here before stay in the store's \
             ledger as far as they had reached the leader",
            self.device_id, self.serial, self.revoked_at_index, self.learned_from, self.device_id
        )
    }
}

/// Whether a peer's close claiming this device's certificate is revoked is believed, for a
/// device presenting the certificate of serial `own_serial` (see the module docs): `Ok`
/// with how it was learned ([`OwnRevocation::learned_from`]), or `Err` with why the claim
/// is ignored.
///
/// # Errors
/// The claim names another serial than `own_serial`.
pub fn judge_claim(own_serial: &str, peer: &str, claim: &RevokedClaim) -> Result<String, String> {
    match claim.serial.as_deref() {
        Some(serial) if serial == own_serial => Ok(format!("refused at the mesh by {peer}")),
        Some(serial) => Err(format!(
            "{peer} closed this device's mesh connection saying certificate {serial} is \
             revoked from Raft log index {}, but this device presents certificate \
             {own_serial}: the claim is ignored",
            claim.revoked_at_index
        )),
        None => Ok(format!(
            "refused at the mesh by {peer}, whose close named no serial (an older version): \
             taken as about the certificate this device presents"
        )),
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
        let Some(revocation) = self.set_once(revocation, "") else {
            return false;
        };
        if let Some(listener) = self.listener.get() {
            listener(revocation);
        }
        true
    }

    /// Sets the revocation if none was, logging it at ERROR (with `note` after it); the
    /// one set, or `None` when one was already.
    fn set_once(&self, revocation: OwnRevocation, note: &str) -> Option<&OwnRevocation> {
        self.revoked.set(revocation).ok()?;
        let revocation = self.revoked.get()?;
        tracing::error!(
            code = CERTIFICATE_REVOKED_CODE,
            serial = %revocation.serial,
            "{revocation}{note}"
        );
        Some(revocation)
    }

    /// The revocation, once learned.
    pub fn get(&self) -> Option<&OwnRevocation> {
        self.revoked.get()
    }

    /// Takes back a revocation recorded before this start: logged at ERROR, not told to
    /// the listener (its alert is raised already). True when it was taken.
    fn restore(&self, revocation: OwnRevocation) -> bool {
        self.set_once(revocation, " (recorded before this start)")
            .is_some()
    }
}

/// At start, before the Raft service and the API: takes back the revocation recorded in
/// `store` when it names `device_id`, whatever certificate serial `notice` now holds (the
/// device id stays revoked: its journal is cut); otherwise forgets the record and clears
/// `device_id`'s `certificate_revoked` alert — no record, or an alert raised by an older
/// version that kept none (a revocation still in the Raft state is found again, and
/// alerted again, when the Raft service starts). True when a revocation was taken back.
///
/// # Errors
/// Storage errors: the device cannot tell whether it was revoked, so it must not start.
pub fn restore_at_start(
    store: &JournalStore,
    notice: &OwnRevocationNotice,
    device_id: &str,
) -> Result<bool, StorageError> {
    let recorded = store.own_revocation()?;
    if let Some(revocation) = recorded.clone() {
        if revocation.device_id == device_id {
            if Some(revocation.serial.as_str()) != notice.own_serial() {
                // The store cut this device id's journal at the revocation: a new
                // certificate for the same id takes no sale the store would keep.
                tracing::warn!(
                    old_serial = %revocation.serial,
                    serial = notice.own_serial().unwrap_or("unknown"),
                    "this device presents a new certificate under a revoked device id: it \
                     stays revoked (enrol it as a new device with a new id)"
                );
            }
            return Ok(notice.restore(revocation));
        }
        store.put_own_revocation(None)?;
        tracing::info!(
            old_device = %revocation.device_id,
            device = device_id,
            "this data directory now belongs to another device id: the revocation of the old \
             one no longer applies here"
        );
    }
    if store.clear_alert(CERTIFICATE_REVOKED_CODE, device_id)? {
        tracing::info!(
            serial = notice.own_serial().unwrap_or("unknown"),
            "cleared the certificate_revoked alert: this device's certificate is not revoked"
        );
    }
    Ok(false)
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

    #[test]
    fn only_a_claim_about_the_presented_certificate_is_believed() {
        let claim = |serial: Option<&str>| RevokedClaim {
            revoked_at_index: 42,
            serial: serial.map(str::to_owned),
        };
        assert_eq!(
            judge_claim("0c", "till-1", &claim(Some("0c"))).as_deref(),
            Ok("refused at the mesh by till-1")
        );
        let ignored = judge_claim("0c", "till-1", &claim(Some("0d"))).expect_err("another serial");
        assert!(
            ignored.contains("till-1") && ignored.contains("0d") && ignored.contains("ignored"),
            "{ignored}"
        );
        let older = judge_claim("0c", "till-1", &claim(None)).expect("an older peer's close");
        assert!(
            older.starts_with("refused at the mesh by till-1"),
            "{older}"
        );
    }

    /// A store holding `recorded` and a raised `certificate_revoked` alert for till-3.
    fn store_with(dir: &std::path::Path, recorded: &OwnRevocation) -> JournalStore {
        let store = JournalStore::open(dir).expect("open");
        store.put_own_revocation(Some(recorded)).expect("record");
        crate::runtime::raise_alert_now(
            &store,
            CERTIFICATE_REVOKED_CODE,
            "till-3",
            recorded.to_string(),
        );
        store
    }

    fn revoked_alerts(store: &JournalStore) -> usize {
        store
            .alerts()
            .expect("alerts")
            .iter()
            .filter(|a| a.kind == CERTIFICATE_REVOKED_CODE && a.subject == "till-3")
            .count()
    }

    #[test]
    fn a_recorded_revocation_of_the_presented_certificate_is_taken_back_at_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        let recorded = revocation("refused at the mesh by till-1");
        let store = store_with(dir.path(), &recorded);
        let notice = OwnRevocationNotice::default();
        notice.set_own_serial("0c".into());
        let told = Arc::new(Mutex::new(0));
        let seen = told.clone();
        notice.on_revoked(Arc::new(move |_: &OwnRevocation| {
            *seen.lock().expect("lock") += 1;
        }));
        assert!(restore_at_start(&store, &notice, "till-3").expect("restore"));
        assert_eq!(notice.get(), Some(&recorded));
        assert_eq!(
            *told.lock().expect("lock"),
            0,
            "its alert is raised already"
        );
        assert_eq!(revoked_alerts(&store), 1);
        assert_eq!(store.own_revocation().expect("read"), Some(recorded));
    }

    #[test]
    fn a_new_certificate_under_the_revoked_id_stays_revoked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let recorded = revocation("refused at the mesh by till-1");
        let store = store_with(dir.path(), &recorded);
        let notice = OwnRevocationNotice::default();
        notice.set_own_serial("0d".into());
        assert!(restore_at_start(&store, &notice, "till-3").expect("restore"));
        assert_eq!(notice.get(), Some(&recorded), "the id's journal is cut");
        assert_eq!(store.own_revocation().expect("read"), Some(recorded));
        assert_eq!(revoked_alerts(&store), 1, "the alert stays");
    }

    #[test]
    fn another_device_id_forgets_the_revocation_and_an_old_alert_is_cleared() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store_with(dir.path(), &revocation("refused at the mesh by till-1"));
        let notice = OwnRevocationNotice::default();
        notice.set_own_serial("0d".into());
        assert!(!restore_at_start(&store, &notice, "till-9").expect("restore"));
        assert_eq!(notice.get(), None);
        assert_eq!(store.own_revocation().expect("read"), None);
        // An alert of an older version, without a record, is cleared; nothing else is.
        crate::runtime::raise_alert_now(&store, CERTIFICATE_REVOKED_CODE, "till-3", "old".into());
        crate::runtime::raise_alert_now(&store, "device_retired", "till-3", "kept".into());
        assert!(!restore_at_start(&store, &notice, "till-3").expect("restore"));
        assert_eq!(revoked_alerts(&store), 0);
        assert_eq!(store.alerts().expect("alerts").len(), 1);
    }
}
