//! [`CloudService`]: the cloud's answer to each device call, over a [`CloudStore`].
//!
//! The caller's store comes from its verified certificate, never from the request. An
//! upload is decided by the sans-IO [`plan_ingest`] against the stored cursor and appended
//! in one atomic write; uploads of one store are serialised (a lock per store), so the same
//! range uploaded by every device at once is stored once and the others are answered as
//! duplicates (guarantee 4).
//!
//! Store-wide certificate revocations: each device's `Hello` carries the revocations its
//! store's Raft group committed ([`CertificateRevocation`]); the cloud keeps them per
//! store ([`CloudStore::add_revocations`]) and from then refuses every call of a caller
//! whose certificate serial is revoked for its store ([`CERTIFICATE_REVOKED_CODE`],
//! counted in `posmesh_cloud_calls_refused_total{reason="certificate_revoked"}`). Never
//! retroactive: what the cloud accepted before stays.
//!
//! Whose revocations the cloud believes: it cannot judge one. It holds no Raft state of the
//! store, and refusing a serial it has never seen would drop the revocation of a device
//! that never reached it (a till lost before it uploaded), which must still be refused if
//! it connects later. So it stores what any device of the store with a valid, unrevoked
//! certificate reports — which gives that device no power it lacks, as it could commit the
//! same `RevokeCertificate` through its store's Raft (a store's devices are trusted
//! peers). The claim is bounded: a device reports for its own store only (the store comes
//! from its certificate, never from the request); a revoked device's `Hello` is refused
//! before it is read; serials are checked canonical ([`crate::api::revocations::check_serial`])
//! and indexes non-zero; a revocation is never lifted and keeps the index first reported;
//! one `Hello` carries at most [`REVOCATIONS_PER_HELLO_MAX`]. Across `Hello`s the table
//! is not capped: only the store's own trusted devices grow it, as they grow its ledger.
//!
//! Ledger cuts (a device's certificate revoked or the device retired,
//! [`posmesh_consensus::ledger_cut`]) come the same way (`Hello.ledger_cuts`): from then on
//! the cloud refuses the device's entries beyond its cut whoever uploads them (`beyond_cut`,
//! counted in `posmesh_cloud_uploads_refused_total{reason="beyond_cut"}`, logged once per
//! device), and keeps those up to it.

use super::store::{CloudStore, CloudStoreError};
use crate::clock::wall_clock_ms;
use crate::consensus::own_revocation::CERTIFICATE_REVOKED_CODE;
use crate::replication::key_conflicts::{self, KEY_CONFLICT_CODE};
use posmesh_mesh::tls::{AcceptPolicy, ChainTrust};
use posmesh_mesh::{PeerIdentity, Role};
use posmesh_proto::cloud::v1::{
    cloud_request, cloud_response, CertificateRevocation, CloudError, CloudRequest, CloudResponse,
    CloudState, LedgerCut, SnapshotAck, UploadAck,
};
use posmesh_proto::mesh::v1 as wire;
use posmesh_sync::chain_head::PUBLIC_KEY_LEN;
use posmesh_sync::cloud::{plan_ingest, IngestPlan, IngestRefusal};
use posmesh_sync::replication::key_pinning::{judge_key, KeyClaim, KeyConflict, KeyVerdict};
use posmesh_sync::replication::SigningKeys;
use prost::Message;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// Largest Raft snapshot a store may upload, bytes.
pub const SNAPSHOT_BYTES_MAX: usize = 16 << 20;

/// Most certificate revocations one `Hello` may carry.
pub const REVOCATIONS_PER_HELLO_MAX: usize = 10_000;

/// Most ledger cuts one `Hello` may carry.
pub const LEDGER_CUTS_PER_HELLO_MAX: usize = 10_000;

/// The cloud's request handling, shared by every connection.
pub struct CloudService {
    store: Arc<dyn CloudStore>,
    trust: Arc<ChainTrust>,
    policy: AcceptPolicy,
    /// One lock per store id: uploads of one store run one at a time.
    store_locks: Mutex<BTreeMap<String, Arc<Mutex<()>>>>,
    /// `(store, device)` whose uploads beyond the ledger cut were refused, logged once each.
    beyond_cut_logged: Mutex<BTreeSet<(String, String)>>,
}

/// The chain-head key of the one device a batch belongs to.
struct OneKey {
    device_id: String,
    key: Option<[u8; PUBLIC_KEY_LEN]>,
}

impl SigningKeys for OneKey {
    fn public_key(&self, device_id: &str) -> Option<[u8; PUBLIC_KEY_LEN]> {
        self.key.filter(|_| device_id == self.device_id)
    }
}

fn refuse(code: &str, message: impl Into<String>) -> CloudResponse {
    CloudResponse {
        kind: Some(cloud_response::Kind::Error(CloudError {
            code: code.to_owned(),
            message: message.into(),
        })),
    }
}

/// The pinned key of a stored attestation (verified when it was stored); `None` if its
/// key is not 32 bytes (never stored so).
fn claim_of(attestation: &wire::KeyAttestation) -> Option<KeyClaim> {
    Some(KeyClaim {
        incarnation: attestation.device_incarnation,
        public_key: attestation.signing_public_key.as_slice().try_into().ok()?,
    })
}

/// Refuses an upload whose key conflicts with the device's pinned one
/// ([`KEY_CONFLICT_CODE`], the code of the peers' alert): logged as an ERROR, counted.
fn key_conflict(
    store_id: &str,
    device_id: &str,
    conflict: &KeyConflict,
    caller: &PeerIdentity,
) -> CloudResponse {
    let message = key_conflicts::describe(device_id, conflict, &caller.to_string());
    tracing::error!(
        code = KEY_CONFLICT_CODE,
        store = store_id,
        device = device_id,
        "{message}"
    );
    metrics::counter!("posmesh_cloud_uploads_refused_total", "reason" => KEY_CONFLICT_CODE)
        .increment(1);
    refuse(KEY_CONFLICT_CODE, message)
}

fn storage_error(error: &CloudStoreError) -> CloudResponse {
    tracing::error!(%error, "cloud storage failed");
    metrics::counter!("posmesh_cloud_storage_errors_total").increment(1);
    refuse("storage", error.to_string())
}

impl CloudService {
    /// A service over `store`, verifying device key attestations against `trust` with the
    /// cloud's accept `policy` (any store of the chain).
    pub fn new(store: Arc<dyn CloudStore>, trust: Arc<ChainTrust>, policy: AcceptPolicy) -> Self {
        Self {
            store,
            trust,
            policy,
            store_locks: Mutex::new(BTreeMap::new()),
            beyond_cut_logged: Mutex::new(BTreeSet::new()),
        }
    }

    /// The storage behind the service (reports, the admin API).
    pub fn store(&self) -> &Arc<dyn CloudStore> {
        &self.store
    }

    fn store_lock(&self, store_id: &str) -> Arc<Mutex<()>> {
        self.store_locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry(store_id.to_owned())
            .or_default()
            .clone()
    }

    /// Answers one encoded request from `caller` (a verified device certificate of serial
    /// `serial`, lowercase hex; `None` if unreadable). Blocking (storage): run it off the
    /// async threads.
    pub fn handle_bytes(
        &self,
        caller: &PeerIdentity,
        serial: Option<&str>,
        request: &[u8],
    ) -> Vec<u8> {
        let response = match CloudRequest::decode(request) {
            Ok(request) => self.handle(caller, serial, request),
            Err(error) => refuse("malformed", format!("request does not decode: {error}")),
        };
        response.encode_to_vec()
    }

    /// The refusal of a caller whose certificate serial its store revoked, with the Raft
    /// log index it is revoked from (logged at WARN, counted); `None` if it is not revoked
    /// (or its serial is unknown, as at the mesh).
    ///
    /// # Errors
    /// Storage errors, as a refusal.
    pub fn revoked_caller(
        &self,
        caller: &PeerIdentity,
        serial: Option<&str>,
    ) -> Result<Option<(u64, CloudResponse)>, CloudResponse> {
        let (Some(store_id), Some(serial)) = (caller.store_id(), serial) else {
            return Ok(None);
        };
        let Some(index) = self
            .store
            .revoked_at(store_id, serial)
            .map_err(|e| storage_error(&e))?
        else {
            return Ok(None);
        };
        let message = format!(
            "the certificate of {caller} (serial {serial}) is revoked store-wide from Raft log \
             index {index}: the cloud refuses its calls (what it uploaded before stays)"
        );
        tracing::warn!(code = CERTIFICATE_REVOKED_CODE, store = store_id, %serial, "{message}");
        metrics::counter!("posmesh_cloud_calls_refused_total", "reason" => CERTIFICATE_REVOKED_CODE)
            .increment(1);
        Ok(Some((index, refuse(CERTIFICATE_REVOKED_CODE, message))))
    }

    /// Keeps the revocations a device of `store_id` reports its Raft group committed.
    /// Checked whole before anything is stored.
    fn learn_revocations(
        &self,
        store_id: &str,
        revocations: &[CertificateRevocation],
    ) -> Result<(), CloudResponse> {
        if revocations.is_empty() {
            return Ok(());
        }
        if revocations.len() > REVOCATIONS_PER_HELLO_MAX {
            return Err(refuse(
                "too_large",
                format!(
                    "{} revocations in one Hello exceed {REVOCATIONS_PER_HELLO_MAX}",
                    revocations.len()
                ),
            ));
        }
        let mut learned = Vec::with_capacity(revocations.len());
        for revocation in revocations {
            crate::api::revocations::check_serial(&revocation.serial).map_err(|why| {
                refuse(
                    "malformed",
                    format!("revocation of serial {:?}: {why}", revocation.serial),
                )
            })?;
            if revocation.effective_index == 0 {
                return Err(refuse(
                    "malformed",
                    format!(
                        "revocation of serial {}: Raft log indexes start at 1",
                        revocation.serial
                    ),
                ));
            }
            learned.push((revocation.serial.clone(), revocation.effective_index));
        }
        let added = self
            .store
            .add_revocations(store_id, &learned)
            .map_err(|e| storage_error(&e))?;
        if added > 0 {
            tracing::info!(
                store = store_id,
                added,
                "learned store-wide certificate revocations"
            );
        }
        Ok(())
    }

    /// Keeps the ledger cuts a device of `store_id` reports its Raft group committed.
    /// Checked whole before anything is stored.
    fn learn_ledger_cuts(&self, store_id: &str, cuts: &[LedgerCut]) -> Result<(), CloudResponse> {
        if cuts.is_empty() {
            return Ok(());
        }
        if cuts.len() > LEDGER_CUTS_PER_HELLO_MAX {
            return Err(refuse(
                "too_large",
                format!(
                    "{} ledger cuts in one Hello exceed {LEDGER_CUTS_PER_HELLO_MAX}",
                    cuts.len()
                ),
            ));
        }
        let mut learned = Vec::with_capacity(cuts.len());
        for cut in cuts {
            if cut.device_id.is_empty()
                || cut.device_id.len() > posmesh_consensus::state::MAX_ID_BYTES
            {
                return Err(refuse(
                    "malformed",
                    format!(
                        "ledger cut of device {:?}: a device id is 1 to {} bytes",
                        cut.device_id,
                        posmesh_consensus::state::MAX_ID_BYTES
                    ),
                ));
            }
            if cut.cut_at_index == 0 {
                return Err(refuse(
                    "malformed",
                    format!(
                        "ledger cut of device {}: Raft log indexes start at 1",
                        cut.device_id
                    ),
                ));
            }
            learned.push((cut.device_id.clone(), cut.up_to_seq, cut.cut_at_index));
        }
        let added = self
            .store
            .add_ledger_cuts(store_id, &learned)
            .map_err(|e| storage_error(&e))?;
        if added > 0 {
            tracing::info!(store = store_id, added, "learned ledger cuts");
        }
        Ok(())
    }

    /// Answers one request from `caller` (certificate serial `serial`, lowercase hex).
    pub fn handle(
        &self,
        caller: &PeerIdentity,
        serial: Option<&str>,
        request: CloudRequest,
    ) -> CloudResponse {
        let (Role::Device, Some(store_id)) = (caller.role(), caller.store_id()) else {
            return refuse("malformed", format!("{caller} is not a store device"));
        };
        match self.revoked_caller(caller, serial) {
            Ok(Some((_, refusal))) | Err(refusal) => return refusal,
            Ok(None) => {}
        }
        if let Err(error) = self
            .store
            .record_contact(store_id, i64::try_from(wall_clock_ms()).unwrap_or(i64::MAX))
        {
            return storage_error(&error);
        }
        match request.kind {
            Some(cloud_request::Kind::Hello(hello)) => {
                // Cuts first: once a revocation is visible here, its cut is too.
                if let Err(refusal) = self.learn_ledger_cuts(store_id, &hello.ledger_cuts) {
                    return refusal;
                }
                if let Err(refusal) = self.learn_revocations(store_id, &hello.revocations) {
                    return refusal;
                }
                // Its own revocation, just learned.
                match self.revoked_caller(caller, serial) {
                    Ok(Some((_, refusal))) | Err(refusal) => return refusal,
                    Ok(None) => {}
                }
                self.hello(store_id, hello.catalog_version)
            }
            Some(cloud_request::Kind::Upload(upload)) => {
                let lock = self.store_lock(store_id);
                let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
                self.upload(store_id, caller, upload.attestation, upload.batch)
            }
            Some(cloud_request::Kind::Snapshot(snapshot)) => {
                if snapshot.state.len() > SNAPSHOT_BYTES_MAX {
                    return refuse(
                        "too_large",
                        format!(
                            "snapshot of {} bytes exceeds {SNAPSHOT_BYTES_MAX}",
                            snapshot.state.len()
                        ),
                    );
                }
                match self
                    .store
                    .put_snapshot(store_id, snapshot.raft_log_index, &snapshot.state)
                {
                    Ok(index) => CloudResponse {
                        kind: Some(cloud_response::Kind::SnapshotAck(SnapshotAck {
                            raft_log_index: index,
                        })),
                    },
                    Err(error) => storage_error(&error),
                }
            }
            None => refuse("unknown_request", "a request kind this cloud does not know"),
        }
    }

    fn hello(&self, store_id: &str, catalog_version: u64) -> CloudResponse {
        let state = (|| {
            let vector = self.store.version_vector(store_id)?;
            let catalog = self
                .store
                .catalog(store_id)?
                .filter(|c| c.version > catalog_version);
            let snapshot_index = self.store.snapshot(store_id)?.map_or(0, |(i, _)| i);
            Ok::<_, CloudStoreError>(CloudState {
                version_vector: Some(vector.to_proto()),
                catalog,
                snapshot_index,
            })
        })();
        match state {
            Ok(state) => CloudResponse {
                kind: Some(cloud_response::Kind::State(state)),
            },
            Err(error) => storage_error(&error),
        }
    }

    /// The key that verifies `device_id`'s heads of `incarnation`, by the peers' pinning
    /// rule ([`posmesh_sync::replication::key_pinning`]): the first verified key is pinned;
    /// another key is refused ([`KEY_CONFLICT_CODE`]) — a till wiped and restarted under
    /// its old id (a new key, a newer incarnation, a new chain from seq 1) is an impostor
    /// of its past — except a key of an older incarnation while the cloud holds none of
    /// the device's entries (`held_seq` 0), which replaces the pinned one so the cloud
    /// converges with the peers whatever order attestations arrive in. A batch signed by
    /// an incarnation other than the pinned key's is refused the same way, also when it
    /// holds nothing new.
    fn device_key(
        &self,
        store_id: &str,
        caller: &PeerIdentity,
        device_id: &str,
        held_seq: u64,
        incarnation: u64,
        offered: Option<wire::KeyAttestation>,
    ) -> Result<Option<[u8; PUBLIC_KEY_LEN]>, CloudResponse> {
        let stored = self
            .store
            .key_attestation(store_id, device_id)
            .map_err(|e| storage_error(&e))?;
        // Verified when stored.
        let mut pinned = stored.as_ref().and_then(claim_of);
        if let Some(attestation) = offered.filter(|a| Some(a) != stored.as_ref()) {
            let offered = KeyClaim {
                incarnation: attestation.device_incarnation,
                public_key: self
                    .verify_attestation(store_id, device_id, &attestation)
                    .map_err(|message| refuse("bad_attestation", message))?,
            };
            match judge_key(pinned.as_ref(), held_seq, &offered) {
                KeyVerdict::Known => {}
                KeyVerdict::Adopt | KeyVerdict::Replace(_) => {
                    self.store
                        .put_key_attestation(store_id, device_id, &attestation)
                        .map_err(|e| storage_error(&e))?;
                    pinned = Some(offered);
                }
                KeyVerdict::Refuse(conflict) => {
                    return Err(key_conflict(store_id, device_id, &conflict, caller));
                }
            }
        }
        match pinned {
            Some(pinned) if pinned.incarnation == incarnation => Ok(Some(pinned.public_key)),
            Some(pinned) => {
                // Signed by a key the cloud never accepted: its attestation was refused
                // before, or not sent.
                let conflict = KeyConflict {
                    kept: pinned,
                    refused: KeyClaim {
                        incarnation,
                        public_key: [0; PUBLIC_KEY_LEN],
                    },
                    entries_held: held_seq,
                };
                Err(key_conflict(store_id, device_id, &conflict, caller))
            }
            None => Ok(None),
        }
    }

    fn verify_attestation(
        &self,
        store_id: &str,
        device_id: &str,
        attestation: &wire::KeyAttestation,
    ) -> Result<[u8; PUBLIC_KEY_LEN], String> {
        let attested = crate::replication::device_keys::verify_device_attestation(
            &self.trust,
            &self.policy,
            attestation,
        )?;
        let identity = &attested.identity;
        if identity.store_id() != Some(store_id) || identity.device_id() != device_id {
            return Err(format!(
                "the attestation is for {identity}, not device {device_id} of store {store_id}"
            ));
        }
        Ok(attested.signing_public_key)
    }

    /// An upload of `device_id`'s entries beyond its ledger cut was refused: a WARN the
    /// first time per store and device, then DEBUG (every uplink that holds them tries).
    fn log_beyond_cut(
        &self,
        store_id: &str,
        device_id: &str,
        caller: &PeerIdentity,
        refusal: &IngestRefusal,
    ) {
        let first = self
            .beyond_cut_logged
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert((store_id.to_owned(), device_id.to_owned()));
        if first {
            tracing::warn!(store = store_id, device = device_id, uploader = %caller, %refusal, "refused upload beyond the device's ledger cut; further ones are counted in posmesh_cloud_uploads_refused_total{{reason=\"beyond_cut\"}}, not logged");
        } else {
            tracing::debug!(store = store_id, device = device_id, uploader = %caller, %refusal, "refused upload beyond the device's ledger cut");
        }
    }

    fn upload(
        &self,
        store_id: &str,
        caller: &PeerIdentity,
        attestation: Option<wire::KeyAttestation>,
        batch: Option<posmesh_proto::sync::v1::EntryBatch>,
    ) -> CloudResponse {
        let Some(batch) = batch else {
            return refuse("malformed", "upload without a batch");
        };
        let device_id = batch.device_id.clone();
        let cursor = match self.store.cursor(store_id, &device_id) {
            Ok(cursor) => cursor,
            Err(error) => return storage_error(&error),
        };
        let incarnation = batch.head.as_ref().map_or(0, |h| h.device_incarnation);
        // Checked also for a batch holding nothing new: an impostor's entries 1..n must
        // not be acknowledged as held.
        let key = match self.device_key(
            store_id,
            caller,
            &device_id,
            cursor.held_seq,
            incarnation,
            attestation,
        ) {
            Ok(key) => key,
            Err(response) => return response,
        };
        let keys = OneKey {
            device_id: device_id.clone(),
            key,
        };
        let cut = match self.store.ledger_cut(store_id, &device_id) {
            Ok(cut) => cut,
            Err(error) => return storage_error(&error),
        };
        let plan = match plan_ingest(batch, cursor.held_seq, cursor.chain_hash, cut, &keys) {
            Ok(plan) => plan,
            Err(refusal) => {
                let code = refusal.code();
                if matches!(refusal, IngestRefusal::BeyondCut { .. }) {
                    self.log_beyond_cut(store_id, &device_id, caller, &refusal);
                } else {
                    tracing::warn!(store = store_id, device = %device_id, %refusal, "refused upload");
                }
                metrics::counter!("posmesh_cloud_uploads_refused_total", "reason" => code)
                    .increment(1);
                let message = if code == "unknown_device" {
                    format!("no verified key attestation for device {device_id} incarnation {incarnation}")
                } else {
                    refusal.to_string()
                };
                return refuse(code, message);
            }
        };
        let (held_seq, stored_entries) = match plan {
            IngestPlan::Duplicate { held_seq } => {
                metrics::counter!("posmesh_cloud_uploads_duplicate_total").increment(1);
                (held_seq, 0)
            }
            IngestPlan::Append(upload) => {
                if let Err(error) = self.store.append(store_id, &upload) {
                    return storage_error(&error);
                }
                let count = upload.entries.len() as u64;
                metrics::counter!("posmesh_cloud_entries_ingested_total").increment(count);
                (upload.last_seq(), count)
            }
        };
        CloudResponse {
            kind: Some(cloud_response::Kind::Ack(UploadAck {
                device_id,
                held_seq,
                stored_entries,
            })),
        }
    }
}
