//! [`UplinkService`]: the device's connection to the cloud and its upload loop.
//!
//! One round: `Hello` → the cloud's version vector (and a newer catalog, if one was
//! published); then for every device where this node holds more than the cloud, batches of
//! at most [`UploadLimits`] entries cut at signed heads, each answered with the cloud's
//! held seq, from which the next batch starts. Everything is idempotent at the cloud, so a
//! lost answer, a cloud restart mid-batch or several devices uploading the same range at
//! once only costs a re-send. Connection failures back off with full jitter (0.5 s → 15 s).
//!
//! Store-wide certificate revocations (committed through the store's Raft group): every
//! `Hello` carries them, so the cloud refuses revoked devices too; the uplink refuses a
//! cloud whose certificate serial is revoked (it closes the connection after the
//! handshake, uploads nothing, logs an ERROR and raises the alert
//! [`CLOUD_CERTIFICATE_REVOKED_CODE`] once per serial, and retries at the backoff's pace in
//! case the cloud gets a new certificate); and a device whose own certificate is revoked
//! ([`crate::consensus::own_revocation`]) stops its uplink for good. `posmesh status` says
//! which ([`UplinkStatus::refused`]).
//!
//! Ledger cuts (a device's certificate revoked or the device retired,
//! [`posmesh_consensus::ledger_cut`]): every `Hello` carries those the store committed, so
//! the cloud refuses the device's entries beyond its cut whoever uploads them; the uplink
//! uploads nothing beyond a cut it knows, and a cloud's `beyond_cut` refusal (a cut this
//! device does not know yet) skips that device's entries for the round, logged once.

use super::catalog_proposal::CatalogProposal;
use crate::clock::{monotonic_now, wall_clock_ms};
use crate::consensus::own_revocation::OwnRevocation;
use crate::consensus::RaftService;
use crate::replication::key_conflicts::KEY_CONFLICT_CODE;
use crate::replication::NodeLedger;
use crate::storage::JournalStore;
use anyhow::{anyhow, bail, Context};
use posmesh_mesh::backoff::Backoff;
use posmesh_mesh::transport::{MeshConnection, MeshEndpoint, StreamPurpose};
use posmesh_mesh::Role;
use posmesh_proto::cloud::v1::{
    cloud_request, cloud_response, CertificateRevocation, CloudRequest, CloudResponse, CloudState,
    Hello, LedgerCut, StoreSnapshot, UploadBatch,
};
use posmesh_proto::mesh::v1::KeyAttestation;
use posmesh_sync::cloud::{upload_batch, UploadLimits};
use posmesh_sync::replication::{LedgerRead, VersionVector};
use prost::Message;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// How long one cloud call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// The cloud's refusal code of entries beyond a device's ledger cut
/// ([`posmesh_sync::cloud::IngestRefusal::BeyondCut`]).
const BEYOND_CUT_CODE: &str = "beyond_cut";

/// Pause between rounds when the cloud holds everything.
const IDLE_ROUND: Duration = Duration::from_millis(1_000);
/// Reconnect backoff window, ms.
const BACKOFF_INITIAL_MS: u64 = 500;
const BACKOFF_MAX_MS: u64 = 15_000;
/// Batches uploaded per round before the cloud's vector is asked again (bounds a round).
const BATCHES_PER_ROUND_MAX: usize = 256;

/// Code of the alert and log line when the cloud presents a certificate the store revoked.
pub const CLOUD_CERTIFICATE_REVOKED_CODE: &str = "cloud_certificate_revoked";

/// What `posmesh status` shows of the uplink.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct UplinkStatus {
    /// The cloud's address.
    pub cloud: String,
    /// Whether a verified connection to the cloud is up.
    pub connected: bool,
    /// Entries this device holds that the cloud lacked at the last round (all devices).
    pub entries_pending: u64,
    /// Entries the cloud stored from this device's uploads since start.
    pub entries_uploaded_total: u64,
    /// Batches sent since start (stored or duplicate).
    pub batches_sent_total: u64,
    /// Batches the cloud already held (another device, or a re-send).
    pub batches_duplicate_total: u64,
    /// Unix ms of the last successful round.
    pub last_round_ms: Option<i64>,
    /// The last error, if the last attempt failed.
    pub last_error: Option<String>,
    /// The cloud's version vector of this store at the last round.
    pub cloud_version_vector: BTreeMap<String, u64>,
    /// Raft log index of the store snapshot the cloud holds.
    pub snapshot_index: u64,
    /// Newest catalog version received from the cloud and committed through Raft.
    pub catalog_version_applied: u64,
    /// Why the uplink uploads nothing, when it refuses to: the cloud's certificate, or this
    /// device's own, is revoked store-wide.
    #[serde(default)]
    pub refused: Option<String>,
}

/// The uplink of one device (see the module docs).
pub struct UplinkService {
    cloud: SocketAddr,
    endpoint: MeshEndpoint,
    store: Arc<JournalStore>,
    own_attestation: KeyAttestation,
    local_device: String,
    raft: Option<Arc<RaftService>>,
    /// The store's currency (its catalog file's): a published catalog in another one is
    /// not proposed.
    currency: posmesh_domain::Currency,
    limits: UploadLimits,
    status: Mutex<UplinkStatus>,
    /// Devices whose key the cloud refused ([`KEY_CONFLICT_CODE`]), reported once each.
    key_conflicts: Mutex<BTreeSet<String>>,
    /// Serials of cloud certificates found revoked, reported once each.
    revoked_clouds: Mutex<BTreeSet<String>>,
    /// Devices whose entries the cloud refused as beyond their ledger cut, logged once each.
    beyond_cut: Mutex<BTreeSet<String>>,
    /// Whether this device proposes the cloud's newest catalog release now.
    catalog_proposal: Mutex<CatalogProposal>,
}

/// Why the uplink refuses to upload (each reported once, where it is found).
#[derive(Debug, thiserror::Error)]
enum Refused {
    /// The cloud's certificate is revoked store-wide.
    #[error("{0}")]
    CloudRevoked(String),
    /// This device's own certificate is revoked store-wide: the uplink stops.
    #[error("this device's certificate is revoked store-wide")]
    OwnRevoked,
}

/// The cloud's refusal of a call: its code and message.
#[derive(Debug, thiserror::Error)]
#[error("the cloud refused: {message} ({code})")]
struct CloudRefusal {
    code: String,
    message: String,
}

impl UplinkService {
    /// Starts the uplink to `cloud` on `endpoint` (a client endpoint with the device's
    /// certificate) until `stop`.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        cloud: SocketAddr,
        endpoint: MeshEndpoint,
        store: Arc<JournalStore>,
        own_attestation: KeyAttestation,
        local_device: &str,
        raft: Option<Arc<RaftService>>,
        currency: posmesh_domain::Currency,
        limits: UploadLimits,
        stop: watch::Receiver<bool>,
    ) -> Arc<Self> {
        let service = Arc::new(Self {
            cloud,
            endpoint,
            store,
            own_attestation,
            local_device: local_device.to_owned(),
            raft,
            currency,
            limits,
            status: Mutex::new(UplinkStatus {
                cloud: cloud.to_string(),
                ..UplinkStatus::default()
            }),
            key_conflicts: Mutex::new(BTreeSet::new()),
            beyond_cut: Mutex::new(BTreeSet::new()),
            revoked_clouds: Mutex::new(BTreeSet::new()),
            catalog_proposal: Mutex::new(CatalogProposal::default()),
        });
        tokio::spawn(service.clone().run(stop));
        service
    }

    /// The uplink's state now.
    pub fn status(&self) -> UplinkStatus {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, UplinkStatus> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut backoff = Backoff::new(BACKOFF_INITIAL_MS, BACKOFF_MAX_MS, rand::random());
        loop {
            if *stop.borrow() {
                break;
            }
            if let Some(revocation) = self.raft.as_ref().and_then(|r| r.own_revocation()) {
                self.stop_for_own_revocation(&revocation);
                break;
            }
            let outcome = tokio::select! {
                outcome = self.session(&mut backoff) => outcome,
                _ = stop.wait_for(|s| *s) => break,
            };
            if let Err(error) = outcome {
                let text = format!("{error:#}");
                let refused = error.downcast_ref::<Refused>();
                if matches!(refused, Some(Refused::OwnRevoked)) {
                    continue; // stopped at the top of the loop
                }
                if refused.is_none() {
                    tracing::info!(cloud = %self.cloud, error = %text, "cloud uplink interrupted");
                }
                metrics::counter!("posmesh_uplink_errors_total").increment(1);
                let mut status = self.lock();
                status.connected = false;
                status.refused = refused.map(|_| text.clone());
                status.last_error = Some(text);
            }
            metrics::gauge!("posmesh_uplink_connected").set(0.0);
            self.count_pending_offline().await;
            let delay = Duration::from_millis(backoff.next_delay_ms());
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        self.endpoint.close();
    }

    /// Stops the uplink for good: this device's certificate is revoked store-wide, so
    /// nothing it signs is accepted any more (said once in the log and in the status; the
    /// alert is [`crate::consensus::own_revocation`]'s).
    fn stop_for_own_revocation(&self, revocation: &OwnRevocation) {
        let why = format!(
            "the uplink to the cloud stopped: this device's certificate (serial {}) is revoked \
             store-wide from Raft log index {}; what it uploaded before stays at the cloud",
            revocation.serial, revocation.revoked_at_index
        );
        tracing::error!(
            code = crate::consensus::own_revocation::CERTIFICATE_REVOKED_CODE,
            cloud = %self.cloud,
            "{why}"
        );
        metrics::gauge!("posmesh_uplink_connected").set(0.0);
        let mut status = self.lock();
        status.connected = false;
        status.refused = Some(why.clone());
        status.last_error = Some(why);
    }

    /// Whether this connection may carry uploads: not when this device's own certificate
    /// is revoked, nor when the cloud's is (reported once per serial: ERROR, alert).
    async fn check_revocations(&self, connection: &MeshConnection) -> Result<(), Refused> {
        let Some(raft) = &self.raft else {
            return Ok(());
        };
        if raft.own_revocation().is_some() {
            return Err(Refused::OwnRevoked);
        }
        let Some(serial) = connection.peer_serial_hex() else {
            return Ok(());
        };
        let Some(index) = raft.revoked_at(serial) else {
            return Ok(());
        };
        let peer = connection.peer_identity().to_string();
        let why = format!(
            "the cloud at {} ({peer}) presents certificate {serial}, which the store revoked \
             from Raft log index {index}: the uplink refuses it and uploads nothing (give the \
             cloud a new certificate with `posmesh ca issue-cloud`)",
            self.cloud
        );
        connection.close(
            crate::peers::retired_gate::CLOSE_REVOKED,
            &crate::peers::retired_gate::revoked_close_reason(index, serial),
        );
        let first = self
            .revoked_clouds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(serial.to_owned());
        if first {
            tracing::error!(code = CLOUD_CERTIFICATE_REVOKED_CODE, cloud = %self.cloud, "{why}");
            crate::runtime::raise_alert_blocking(
                &self.store,
                CLOUD_CERTIFICATE_REVOKED_CODE,
                &peer,
                why.clone(),
            )
            .await;
        }
        Err(Refused::CloudRevoked(why))
    }

    /// The revocations the store's Raft group committed (as applied here), newest first
    /// and at most what a `Hello` may carry.
    fn committed_revocations(&self) -> Vec<CertificateRevocation> {
        let Some(raft) = &self.raft else {
            return Vec::new();
        };
        let mut revocations: Vec<CertificateRevocation> = raft.read(|state| {
            state
                .revocations
                .iter()
                .map(|(serial, index)| CertificateRevocation {
                    serial: serial.clone(),
                    effective_index: *index,
                })
                .collect()
        });
        revocations.sort_by_key(|r| std::cmp::Reverse(r.effective_index));
        revocations.truncate(crate::cloud::service::REVOCATIONS_PER_HELLO_MAX);
        revocations
    }

    /// The ledger cuts the store's Raft group committed (as applied here), newest first
    /// and at most what a `Hello` may carry.
    fn committed_ledger_cuts(&self) -> Vec<LedgerCut> {
        let Some(raft) = &self.raft else {
            return Vec::new();
        };
        let mut cuts: Vec<LedgerCut> = raft.read(|state| {
            state
                .ledger_cuts
                .iter()
                .map(|(device_id, cut)| LedgerCut {
                    device_id: device_id.clone(),
                    up_to_seq: cut.up_to_seq,
                    cut_at_index: cut.cut_at_index,
                })
                .collect()
        });
        cuts.sort_by_key(|cut| std::cmp::Reverse(cut.cut_at_index));
        cuts.truncate(crate::cloud::service::LEDGER_CUTS_PER_HELLO_MAX);
        cuts
    }

    /// While the cloud is out of reach: entries pending = what this device holds beyond
    /// the cloud's version vector as last seen (the status and the metric keep growing
    /// during an outage instead of showing the last connected round's figure).
    async fn count_pending_offline(&self) {
        let known: BTreeMap<String, u64> = self.lock().cloud_version_vector.clone();
        let store = self.store.clone();
        let local = match tokio::task::spawn_blocking(move || NodeLedger::open(store)).await {
            Ok(Ok(ledger)) => ledger.version_vector(),
            _ => return, // the next connected round counts again
        };
        let pending: u64 = local
            .iter()
            .map(|(device, upto)| {
                // Nothing beyond a device's ledger cut is uploaded.
                let cut = self.raft.as_ref().and_then(|raft| raft.ledger_cut(device));
                let upto = cut.map_or(upto, |cut| upto.min(cut));
                upto.saturating_sub(known.get(device).copied().unwrap_or(0))
            })
            .sum();
        metrics::gauge!("posmesh_uplink_entries_pending").set(pending as f64);
        self.lock().entries_pending = pending;
    }

    /// One connection: rounds until an error.
    async fn session(&self, backoff: &mut Backoff) -> anyhow::Result<()> {
        let connection = tokio::time::timeout(CALL_TIMEOUT, self.endpoint.connect(self.cloud))
            .await
            .map_err(|_| anyhow!("timed out connecting to the cloud at {}", self.cloud))?
            .with_context(|| format!("cannot connect to the cloud at {}", self.cloud))?;
        if connection.peer_identity().role() != Role::Cloud {
            bail!(
                "{} at {} is not a cloud",
                connection.peer_identity(),
                self.cloud
            );
        }
        self.check_revocations(&connection).await?;
        tracing::info!(cloud = %self.cloud, peer = %connection.peer_identity(), "cloud uplink connected");
        {
            let mut status = self.lock();
            status.connected = true;
            status.last_error = None;
            status.refused = None;
        }
        metrics::gauge!("posmesh_uplink_connected").set(1.0);
        // The backoff starts over only once the cloud answered a round: a cloud that
        // accepts the handshake and then refuses every call (this device's certificate
        // revoked there, a key conflict) is retried at the backoff's pace, not at once.
        let mut answered = false;
        loop {
            let idle = self.round(&connection).await?;
            if !answered {
                backoff.reset();
                answered = true;
            }
            if idle {
                tokio::time::sleep(IDLE_ROUND).await;
            }
        }
    }

    async fn call(
        &self,
        connection: &MeshConnection,
        kind: cloud_request::Kind,
    ) -> anyhow::Result<cloud_response::Kind> {
        let request = CloudRequest { kind: Some(kind) }.encode_to_vec();
        let bytes = connection
            .call(StreamPurpose::Cloud, &request, CALL_TIMEOUT)
            .await?;
        let response = CloudResponse::decode(bytes.as_slice())
            .context("the cloud's answer does not decode")?;
        match response.kind {
            Some(cloud_response::Kind::Error(error)) => Err(CloudRefusal {
                code: error.code,
                message: error.message,
            }
            .into()),
            Some(kind) => Ok(kind),
            None => bail!("the cloud answered with a kind this version does not know"),
        }
    }

    /// One round; returns whether there was nothing to upload.
    async fn round(&self, connection: &MeshConnection) -> anyhow::Result<bool> {
        // A revocation committed while connected ends the session.
        self.check_revocations(connection).await?;
        let catalog_version = self.raft.as_ref().map_or(0, |r| r.catalog_version());
        let revocations = self.committed_revocations();
        let ledger_cuts = self.committed_ledger_cuts();
        let state = match self
            .call(
                connection,
                cloud_request::Kind::Hello(Hello {
                    catalog_version,
                    revocations,
                    ledger_cuts,
                }),
            )
            .await?
        {
            cloud_response::Kind::State(state) => state,
            other => bail!("the cloud answered Hello with {other:?}"),
        };
        let cloud_vector =
            VersionVector::from_proto(&state.version_vector.clone().unwrap_or_default())
                .context("the cloud's version vector is malformed")?;
        self.apply_catalog(&state).await;
        let store = self.store.clone();
        let ledger = tokio::task::spawn_blocking(move || NodeLedger::open(store))
            .await?
            .context("cannot read the ledger")?;
        if let Some(raft) = &self.raft {
            let raft = Arc::downgrade(raft);
            ledger.set_cuts(Arc::new(move |device| {
                raft.upgrade().and_then(|raft| raft.ledger_cut(device))
            }));
        }
        let ledger = Arc::new(ledger);
        let local = ledger.version_vector();
        // Nothing beyond a device's ledger cut is uploaded (nor counted as pending).
        let missing: Vec<(String, u64, u64)> = local
            .missing_from(&cloud_vector)
            .into_iter()
            .filter_map(|(device, after, upto)| {
                let upto = ledger.cut(&device).map_or(upto, |cut| upto.min(cut));
                (upto > after).then_some((device, after, upto))
            })
            .collect();
        let pending: u64 = missing.iter().map(|(_, after, upto)| upto - after).sum();
        metrics::gauge!("posmesh_uplink_entries_pending").set(pending as f64);
        {
            let mut status = self.lock();
            status.entries_pending = pending;
            status.cloud_version_vector = vector_map(&cloud_vector);
            status.snapshot_index = state.snapshot_index;
        }
        let mut batches = 0usize;
        for (device, after, upto) in missing {
            let mut cloud_seq = after;
            while cloud_seq < upto && batches < BATCHES_PER_ROUND_MAX {
                let reader = ledger.clone();
                let limits = self.limits;
                let device_for_cut = device.clone();
                let batch = tokio::task::spawn_blocking(move || {
                    upload_batch(reader.as_ref(), &device_for_cut, cloud_seq, limits)
                })
                .await?;
                let Some(batch) = batch else {
                    break; // no signed head stored yet within the limits
                };
                let attestation = self.attestation_of(&device).await;
                let answer = self
                    .call(
                        connection,
                        cloud_request::Kind::Upload(UploadBatch {
                            attestation,
                            batch: Some(batch),
                        }),
                    )
                    .await;
                let ack = match answer {
                    Ok(cloud_response::Kind::Ack(ack)) => ack,
                    Ok(other) => bail!("the cloud answered an upload with {other:?}"),
                    // The cloud pins another key for the device: this device's entries of
                    // it are an impostor's (or the cloud's are): never uploaded, the others
                    // go on.
                    Err(error) => match error.downcast::<CloudRefusal>() {
                        Ok(refusal) if refusal.code == KEY_CONFLICT_CODE => {
                            self.report_key_conflict(&device, &refusal).await;
                            break;
                        }
                        // A ledger cut this device does not know yet: the cloud keeps
                        // none of the device's entries beyond it; the others go on.
                        Ok(refusal) if refusal.code == BEYOND_CUT_CODE => {
                            self.report_beyond_cut(&device, &refusal);
                            break;
                        }
                        Ok(refusal) => return Err(refusal.into()),
                        Err(error) => return Err(error),
                    },
                };
                batches += 1;
                if ack.held_seq <= cloud_seq && ack.stored_entries == 0 {
                    bail!("the cloud did not advance {device} past {cloud_seq}");
                }
                cloud_seq = ack.held_seq;
                metrics::counter!("posmesh_uplink_entries_uploaded_total")
                    .increment(ack.stored_entries);
                let mut status = self.lock();
                status.batches_sent_total += 1;
                status.entries_uploaded_total += ack.stored_entries;
                if ack.stored_entries == 0 {
                    status.batches_duplicate_total += 1;
                }
                status.entries_pending = status
                    .entries_pending
                    .saturating_sub(ack.held_seq.saturating_sub(cloud_vector.get(&device)));
                status
                    .cloud_version_vector
                    .insert(device.clone(), ack.held_seq);
            }
        }
        self.upload_snapshot(connection, state.snapshot_index)
            .await?;
        self.lock().last_round_ms = Some(i64::try_from(wall_clock_ms()).unwrap_or(i64::MAX));
        Ok(batches == 0)
    }

    /// The cloud refused `device`'s entries as beyond its ledger cut: a WARN once per
    /// device since start, then DEBUG (the cut is committed store-wide: nothing to fix).
    fn report_beyond_cut(&self, device: &str, refusal: &CloudRefusal) {
        let first = self
            .beyond_cut
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(device.to_owned());
        if first {
            tracing::warn!(code = BEYOND_CUT_CODE, %device, cloud = %self.cloud, "the cloud refuses the entries of {device} this device holds beyond its ledger cut (its certificate was revoked or it was retired): {}", refusal.message);
        } else {
            tracing::debug!(code = BEYOND_CUT_CODE, %device, "cloud refused entries beyond the ledger cut: {}", refusal.message);
        }
    }

    /// The cloud refused `device`'s entries for a key conflict: an ERROR and a lasting
    /// alert ([`KEY_CONFLICT_CODE`], as on peers), once per device since start.
    async fn report_key_conflict(&self, device: &str, refusal: &CloudRefusal) {
        let first = self
            .key_conflicts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(device.to_owned());
        if !first {
            return;
        }
        let message = format!(
            "the cloud refused the entries of {device} this device holds: {}",
            refusal.message
        );
        tracing::error!(code = KEY_CONFLICT_CODE, %device, cloud = %self.cloud, "{message}");
        crate::runtime::raise_alert_blocking(&self.store, KEY_CONFLICT_CODE, device, message).await;
    }

    /// The key attestation of `device`: this device's own, or one learnt from peers.
    async fn attestation_of(&self, device: &str) -> Option<KeyAttestation> {
        if device == self.local_device {
            return Some(self.own_attestation.clone());
        }
        let store = self.store.clone();
        let device = device.to_owned();
        tokio::task::spawn_blocking(move || {
            store
                .key_attestations()
                .ok()
                .and_then(|mut keys| keys.remove(&device))
        })
        .await
        .ok()
        .flatten()
    }

    /// Uploads the store's Raft state when it is newer than the cloud's copy.
    async fn upload_snapshot(
        &self,
        connection: &MeshConnection,
        cloud_index: u64,
    ) -> anyhow::Result<()> {
        let Some(raft) = &self.raft else {
            return Ok(());
        };
        let Some((index, state)) = raft.state_snapshot(cloud_index) else {
            return Ok(());
        };
        match self
            .call(
                connection,
                cloud_request::Kind::Snapshot(StoreSnapshot {
                    raft_log_index: index,
                    state,
                }),
            )
            .await?
        {
            cloud_response::Kind::SnapshotAck(ack) => {
                self.lock().snapshot_index = ack.raft_log_index;
                Ok(())
            }
            other => bail!("the cloud answered a snapshot with {other:?}"),
        }
    }

    /// Commits a catalog the cloud published through the store's Raft group: the leader's
    /// uplink at once, a follower's only if it is still not committed after a grace
    /// ([`CatalogProposal`]). Another device of the store may commit the same release
    /// first: that one counts as applied.
    async fn apply_catalog(&self, state: &CloudState) {
        let Some(raft) = &self.raft else {
            return;
        };
        if let Some(release) = &state.catalog {
            if release.version <= raft.catalog_version() {
                self.lock().catalog_version_applied = raft.catalog_version();
                return;
            }
            let propose = self
                .catalog_proposal
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .should_propose(release.version, raft.leads(), monotonic_now());
            if !propose {
                tracing::debug!(
                    version = release.version,
                    "catalog from the cloud left to the leader's uplink for now"
                );
                return;
            }
            match raft.publish_catalog(release, self.currency).await {
                Ok(()) => {
                    tracing::info!(
                        version = release.version,
                        "catalog from the cloud committed through Raft"
                    );
                }
                Err(error)
                    if raft.catalog_version() >= release.version
                        || error.contains("CatalogVersionNotNewer") =>
                {
                    tracing::debug!(version = release.version, %error, "catalog committed by another device");
                }
                Err(error) => {
                    tracing::warn!(version = release.version, %error, "cannot commit the cloud's catalog yet");
                }
            }
        }
        self.lock().catalog_version_applied = raft.catalog_version();
    }
}

fn vector_map(vector: &VersionVector) -> BTreeMap<String, u64> {
    vector
        .missing_from(&VersionVector::new())
        .into_iter()
        .map(|(device, _, seq)| (device, seq))
        .collect()
}
