//! [`CloudService`]: the cloud's answer to each device call, over a [`CloudStore`].
//!
//! The caller's store comes from its verified certificate, never from the request. An
//! upload is decided by the sans-IO [`plan_ingest`] against the stored cursor and appended
//! in one atomic write; uploads of one store are serialised (a lock per store), so the same
//! range uploaded by every device at once is stored once and the others are answered as
//! duplicates (guarantee 4).

use super::store::{CloudStore, CloudStoreError};
use crate::clock::wall_clock_ms;
use posmesh_mesh::tls::{AcceptPolicy, ChainTrust};
use posmesh_mesh::{PeerIdentity, Role};
use posmesh_proto::cloud::v1::{
    cloud_request, cloud_response, CloudError, CloudRequest, CloudResponse, CloudState,
    SnapshotAck, UploadAck,
};
use posmesh_proto::mesh::v1 as wire;
use posmesh_sync::chain_head::PUBLIC_KEY_LEN;
use posmesh_sync::cloud::{plan_ingest, IngestPlan};
use posmesh_sync::replication::SigningKeys;
use prost::Message;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Largest Raft snapshot a store may upload, bytes.
pub const SNAPSHOT_BYTES_MAX: usize = 16 << 20;

/// The cloud's request handling, shared by every connection.
pub struct CloudService {
    store: Arc<dyn CloudStore>,
    trust: Arc<ChainTrust>,
    policy: AcceptPolicy,
    /// One lock per store id: uploads of one store run one at a time.
    store_locks: Mutex<BTreeMap<String, Arc<Mutex<()>>>>,
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

    /// Answers one encoded request from `caller` (a verified device certificate). Blocking
    /// (storage): run it off the async threads.
    pub fn handle_bytes(&self, caller: &PeerIdentity, request: &[u8]) -> Vec<u8> {
        let response = match CloudRequest::decode(request) {
            Ok(request) => self.handle(caller, request),
            Err(error) => refuse("malformed", format!("request does not decode: {error}")),
        };
        response.encode_to_vec()
    }

    /// Answers one request from `caller`.
    pub fn handle(&self, caller: &PeerIdentity, request: CloudRequest) -> CloudResponse {
        let (Role::Device, Some(store_id)) = (caller.role(), caller.store_id()) else {
            return refuse("malformed", format!("{caller} is not a store device"));
        };
        if let Err(error) = self
            .store
            .record_contact(store_id, i64::try_from(wall_clock_ms()).unwrap_or(i64::MAX))
        {
            return storage_error(&error);
        }
        match request.kind {
            Some(cloud_request::Kind::Hello(hello)) => self.hello(store_id, hello.catalog_version),
            Some(cloud_request::Kind::Upload(upload)) => {
                let lock = self.store_lock(store_id);
                let _guard = lock.lock().unwrap_or_else(|p| p.into_inner());
                self.upload(store_id, upload.attestation, upload.batch)
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

    /// The key that verifies `device_id`'s heads of `incarnation`: from the attestation in
    /// the call (verified now, stored when new) or the stored one.
    fn device_key(
        &self,
        store_id: &str,
        device_id: &str,
        incarnation: u64,
        offered: Option<wire::KeyAttestation>,
    ) -> Result<Option<[u8; PUBLIC_KEY_LEN]>, CloudResponse> {
        let stored = self
            .store
            .key_attestation(store_id, device_id)
            .map_err(|e| storage_error(&e))?;
        let candidates = offered.iter().chain(stored.iter());
        for attestation in candidates {
            if attestation.device_incarnation != incarnation {
                continue;
            }
            let is_stored = stored.as_ref() == Some(attestation);
            let key = self
                .verify_attestation(store_id, device_id, attestation)
                .map_err(|message| refuse("bad_attestation", message))?;
            if !is_stored {
                self.store
                    .put_key_attestation(store_id, device_id, attestation)
                    .map_err(|e| storage_error(&e))?;
            }
            return Ok(Some(key));
        }
        Ok(None)
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

    fn upload(
        &self,
        store_id: &str,
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
        // The key is looked up only when the batch holds something new.
        let needs_key = batch
            .entries
            .last()
            .is_some_and(|e| e.seq > cursor.held_seq);
        let key = if needs_key {
            match self.device_key(store_id, &device_id, incarnation, attestation) {
                Ok(key) => key,
                Err(response) => return response,
            }
        } else {
            None
        };
        let keys = OneKey {
            device_id: device_id.clone(),
            key,
        };
        let plan = match plan_ingest(batch, cursor.held_seq, cursor.chain_hash, &keys) {
            Ok(plan) => plan,
            Err(refusal) => {
                let code = refusal.code();
                tracing::warn!(store = store_id, device = %device_id, %refusal, "refused upload");
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
