//! [`ReplicationService`]: the tokio driver of the sans-IO [`Replicator`].

use super::catch_up::{CatchUp, Progress, PROGRESS_INTERVAL};
use super::device_keys::{DeviceKeys, Offer, VerifiedKey};
use super::identity_conflict::{
    IdentityConflictNotice, IdentityConflictReport, IDENTITY_CONFLICT_CODE,
};
use super::key_conflicts::{self, KeyConflictLog, KEY_CONFLICT_CODE};
use super::node_ledger::NodeLedger;
use super::own_id_refusals::OwnIdRefusals;
use super::peer_link::{self, PeerLink};
use crate::clock;
use crate::orders::{OrderSyncSink, OrdersService};
use crate::peers::ConnectionObserver;
use crate::storage::replica_effects::ReplicaEffects;
use crate::storage::JournalStore;
use anyhow::Context;
use posmesh_mesh::tls::{AcceptPolicy, ChainTrust};
use posmesh_mesh::transport::MeshConnection;
use posmesh_proto::journal::v1::ChainHeadSignature;
use posmesh_proto::mesh::v1::{sync_frame, KeyAttestation};
use posmesh_proto::sync::v1::{sync_message, OrderSyncMessage, SyncMessage};
use posmesh_sync::replication::{
    own_identity_conflict, IdentityEvidence, KeyClaim, KeyConflict, LedgerRead, PeerId,
    RefusalReason, ReplicationEvent, Replicator, ReplicatorConfig, ReplicatorStats, VersionVector,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};

/// What the management API shows of the service.
#[derive(Clone, Debug)]
pub struct ReplicationSnapshot {
    /// Peers with a sync link, in order.
    pub peers: Vec<String>,
    /// Devices whose chain-head key is known (verified attestation), own included.
    pub known_keys: Vec<String>,
    /// Batches and frames refused since start.
    pub refused_total: u64,
    /// The replicator's path counters.
    pub stats: ReplicatorStats,
    /// Entries peers advertised that this node does not hold yet.
    pub entries_behind: u64,
    /// Why this device must not sell under its id, once a peer showed it
    /// ([`super::identity_conflict`]).
    pub identity_conflict: Option<String>,
}

/// Replicates the sales ledger with every connected peer of the store: drives the sans-IO
/// [`Replicator`] with time, peer messages and local commits; carries out its transmits
/// (one `Sync` stream per direction per connection, [`peer_link`]) and its events
/// (persisting `Store`s in `spawn_blocking`, logging and counting `Refused`); and keeps the
/// devices' chain-head keys ([`DeviceKeys`]) from verified, relayed attestations.
///
/// Locks: `replicator` may be held while taking `links`, the ledger's vector or the keys;
/// never the other way round, and never across an `.await`.
pub struct ReplicationService {
    local_device: String,
    pub(super) store: Arc<JournalStore>,
    ledger: NodeLedger,
    keys: DeviceKeys,
    replicator: Mutex<Replicator>,
    links: Mutex<BTreeMap<PeerId, PeerLink>>,
    /// `poll_timeout` may have moved: the timer task recomputes its deadline.
    wake: Notify,
    /// Time origin of the replicator's `now_ms`.
    origin: Instant,
    refused_total: AtomicU64,
    /// Shared orders: their sync rides on the same links.
    orders: Arc<OrdersService>,
    /// How far behind the peers' advertised vectors this node is.
    catch_up: Mutex<CatchUp>,
    /// This node's own key, as peers' claims to its id are compared with it.
    own_claim: KeyClaim,
    /// Whether a peer showed that this device's id has history it does not hold.
    identity_conflict: IdentityConflictNotice,
    /// Second keys claimed for other devices, reported once each.
    key_conflicts: KeyConflictLog,
    /// Peers whose pushes of this device's own entries were refused, logged once each.
    own_id_refusals: OwnIdRefusals,
    /// Devices whose entries beyond their ledger cut were refused, logged once each.
    beyond_cut_logged: Mutex<BTreeSet<String>>,
}

impl ReplicationService {
    /// Starts the service for the node's `store`, whose own device and key are `own`
    /// (already signed by this node's certificate). Loads and re-verifies the stored
    /// attestations of other devices with `trust` and `policy`, and starts the timer task,
    /// which also follows the writer's `commits` until `stop` turns true.
    ///
    /// # Errors
    /// Storage errors reading the ledger; an invalid replicator configuration.
    pub fn start(
        store: Arc<JournalStore>,
        own: VerifiedKey,
        trust: Arc<ChainTrust>,
        policy: AcceptPolicy,
        commits: watch::Receiver<u64>,
        stop: watch::Receiver<bool>,
        orders: Arc<OrdersService>,
    ) -> anyhow::Result<Arc<Self>> {
        let local_device = own.device_id.clone();
        let own_claim = own.claim();
        let ledger = NodeLedger::open(store.clone()).context("cannot read the ledger")?;
        let keys = DeviceKeys::new(&local_device, trust, policy, own);
        let held = ledger.version_vector();
        for (device, attestation) in store.key_attestations()? {
            match keys.verify(&attestation) {
                Ok(key) if key.device_id == device => {
                    keys.offer(key, held.get(&device));
                }
                Ok(key) => tracing::warn!(stored_as = %device, device = %key.device_id,
                    "stored key attestation names another device; ignored"),
                Err(reason) => tracing::warn!(%device, %reason,
                    "stored key attestation no longer verifies; ignored"),
            }
        }
        let replicator = Replicator::new(&local_device, ReplicatorConfig::default())?;
        let service = Arc::new(Self {
            local_device,
            store,
            ledger,
            keys,
            replicator: Mutex::new(replicator),
            links: Mutex::new(BTreeMap::new()),
            wake: Notify::new(),
            origin: clock::monotonic_now(),
            refused_total: AtomicU64::new(0),
            orders,
            catch_up: Mutex::new(CatchUp::default()),
            own_claim,
            identity_conflict: IdentityConflictNotice::default(),
            key_conflicts: KeyConflictLog::default(),
            own_id_refusals: OwnIdRefusals::default(),
            beyond_cut_logged: Mutex::new(BTreeSet::new()),
        });
        let sink: Arc<dyn OrderSyncSink> = service.clone();
        service.orders.attach_sink(Arc::downgrade(&sink));
        tracing::info!(devices = ?service.keys.devices(), "replication started");
        tokio::spawn(service.clone().run_timer(commits, stop));
        Ok(service)
    }

    /// What the management API shows.
    pub fn snapshot(&self) -> ReplicationSnapshot {
        // One lock at a time: a guard in a field expression would live to the end of the
        // whole expression, and `links` must never be held while taking `replicator`.
        let stats = self.lock_replicator().stats().clone();
        let peers = self.lock_links().keys().map(|p| p.0.clone()).collect();
        let held = self.ledger.version_vector();
        let entries_behind = self.lock_catch_up().behind(&held);
        ReplicationSnapshot {
            entries_behind,
            peers,
            known_keys: self.keys.devices(),
            refused_total: self.refused_total.load(Ordering::Relaxed),
            stats,
            identity_conflict: self.identity_conflict().map(ToString::to_string),
        }
    }

    /// Reads the devices' ledger cuts through `cuts` from now on (the store's Raft state;
    /// set once, when it is started): entries beyond a device's cut are neither accepted
    /// nor sent ([`posmesh_sync::replication::LedgerRead::cut`]).
    pub fn set_ledger_cuts(&self, cuts: super::node_ledger::LedgerCuts) {
        self.ledger.set_cuts(cuts);
    }

    /// Why this device must not sell under its id, once a peer showed it (the sales API
    /// refuses writes with 409 `device_identity_conflict`).
    pub fn identity_conflict(&self) -> Option<&IdentityConflictReport> {
        self.identity_conflict.get()
    }

    /// Judges what `peer` showed about this device's own id; records a conflict the
    /// first time (ERROR, lasting alert).
    fn check_own_identity(&self, peer: &PeerId, evidence: &IdentityEvidence) {
        if self.identity_conflict.get().is_some() {
            return;
        }
        let own_last_seq = self.ledger.version_vector().get(&self.local_device);
        let Some(conflict) = own_identity_conflict(&self.own_claim, own_last_seq, evidence) else {
            return;
        };
        let report = IdentityConflictReport {
            device_id: self.local_device.clone(),
            conflict,
            learned_from: peer.0.clone(),
        };
        let message = report.to_string();
        if self.identity_conflict.record(report) {
            crate::runtime::raise_alert_now(
                &self.store,
                IDENTITY_CONFLICT_CODE,
                &self.local_device,
                message,
            );
            metrics::counter!("posmesh_alerts_raised_total", "kind" => IDENTITY_CONFLICT_CODE)
                .increment(1);
        }
    }

    /// Reports a second key claimed for `device` by `peer`, once per refused key: an
    /// ERROR and a lasting alert.
    async fn report_key_conflict(&self, peer: &PeerId, device: &str, conflict: &KeyConflict) {
        if !self.key_conflicts.first(device, conflict) {
            return;
        }
        let message = key_conflicts::describe(device, conflict, &peer.0);
        tracing::error!(code = KEY_CONFLICT_CODE, %device, %peer, "{message}");
        crate::runtime::raise_alert_blocking(&self.store, KEY_CONFLICT_CODE, device, message).await;
    }

    /// The replicator's clock: ms since the service started (monotonic).
    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn lock_replicator(&self) -> MutexGuard<'_, Replicator> {
        // Every replicator call either completes or panics before changing state
        // (raft-rs style), so a poisoned lock still holds a consistent replicator.
        self.replicator
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_catch_up(&self) -> MutexGuard<'_, CatchUp> {
        self.catch_up
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Logs catch-up progress when a line is due, and exports how far behind this node is.
    fn report_catch_up(&self) {
        let held = self.ledger.version_vector();
        let mut catch_up = self.lock_catch_up();
        let behind = catch_up.behind(&held);
        metrics::gauge!("posmesh_replication_entries_behind").set(behind as f64);
        match catch_up.tick(&held, clock::monotonic_now()) {
            Some(Progress::Started { behind }) => {
                tracing::info!(behind, "catching up: {behind} entries to fetch from peers");
            }
            Some(Progress::Running {
                fetched,
                behind,
                rate_per_s,
            }) => {
                let total = fetched + behind;
                let percent = if total == 0 {
                    100.0
                } else {
                    fetched as f64 * 100.0 / total as f64
                };
                tracing::info!(fetched, behind, "catching up: {fetched} of {total} entries ({percent:.0} %), {rate_per_s:.0} entries/s");
            }
            Some(Progress::Done { fetched, took }) => {
                tracing::info!(
                    fetched,
                    took_ms = took.as_millis() as u64,
                    "caught up: {fetched} entries fetched in {:.1} s",
                    took.as_secs_f64()
                );
            }
            None => {}
        }
    }

    fn lock_links(&self) -> MutexGuard<'_, BTreeMap<PeerId, PeerLink>> {
        self.links
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether connection `connection_id` is the current link to `peer`.
    pub(super) fn is_current(&self, peer: &PeerId, connection_id: u64) -> bool {
        self.lock_links()
            .get(peer)
            .is_some_and(|link| link.connection_id == connection_id)
    }

    /// A replication message from `peer`.
    pub(super) fn on_sync_message(self: &Arc<Self>, peer: &PeerId, message: SyncMessage) {
        if let Some(sync_message::Kind::VersionVector(wire)) = &message.kind {
            if let Ok(vector) = VersionVector::from_proto(wire) {
                let entries = vector.get(&self.local_device);
                self.check_own_identity(peer, &IdentityEvidence::PeerHolds { entries });
                // Entries beyond a ledger cut are never fetched: not "behind" either.
                let fetchable: VersionVector = vector
                    .iter()
                    .map(|(device, seq)| {
                        let seq = self.ledger.cut(device).map_or(seq, |cut| seq.min(cut));
                        (device.to_owned(), seq)
                    })
                    .collect();
                self.lock_catch_up().observe(&fetchable);
                self.report_catch_up();
            }
        }
        let now_ms = self.now_ms();
        let mut replicator = self.lock_replicator();
        replicator.handle_message(peer, message, now_ms, &self.ledger, &self.keys);
        self.pump(&mut replicator);
    }

    /// An order sync message from `peer`.
    pub(super) fn on_order_sync(&self, peer: &PeerId, message: OrderSyncMessage) {
        self.orders.on_message(peer, &message);
    }

    /// A key attestation from `peer`: verified, then judged ([`DeviceKeys::offer`]):
    /// stored and relayed to every peer when it is pinned; reported when it conflicts with
    /// the pinned key; compared with this device's own key when it claims this device.
    pub(super) async fn on_attestation(
        self: &Arc<Self>,
        peer: &PeerId,
        attestation: KeyAttestation,
    ) {
        let key = match self.keys.verify(&attestation) {
            Ok(key) => key,
            Err(reason) => {
                tracing::warn!(%peer, %reason, "refused key attestation");
                self.count_refused("attestation");
                return;
            }
        };
        let device = key.device_id.clone();
        let incarnation = key.device_incarnation;
        if device == self.local_device {
            self.check_own_identity(peer, &IdentityEvidence::Attested(key.claim()));
            return;
        }
        let held = self.ledger.version_vector().get(&device);
        match self.keys.offer(key, held) {
            Offer::Adopted => {
                tracing::info!(%peer, %device, incarnation, "learnt a device's chain-head key");
            }
            Offer::Replaced(conflict) => {
                self.report_key_conflict(peer, &device, &conflict).await;
                tracing::info!(%peer, %device, incarnation, "replaced a device's chain-head key by its older incarnation's");
            }
            Offer::Conflict(conflict) => {
                self.count_refused("key_conflict");
                self.report_key_conflict(peer, &device, &conflict).await;
                return;
            }
            Offer::Known | Offer::Ignored => return,
        }
        let store = self.store.clone();
        let stored = attestation.clone();
        let device_for_store = device.clone();
        let persisted = tokio::task::spawn_blocking(move || {
            store.put_key_attestation(&device_for_store, &stored)
        })
        .await;
        match persisted {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(%device, %error, "cannot store a key attestation"),
            Err(error) => tracing::error!(%device, %error, "key attestation store task failed"),
        }
        let frame = peer_link::encode(sync_frame::Kind::Attestation(attestation));
        for link in self.lock_links().values() {
            link.send(frame.clone());
        }
    }

    /// Drains the replicator's transmits and events after a `handle_*` call.
    fn pump(self: &Arc<Self>, replicator: &mut Replicator) {
        {
            let links = self.lock_links();
            while let Some((peer, message)) = replicator.poll_transmit() {
                // A peer that is gone: the message is dropped (the core re-sends as needed).
                if let Some(link) = links.get(&peer) {
                    link.send(peer_link::encode(sync_frame::Kind::Sync(message)));
                }
            }
        }
        while let Some(event) = replicator.poll_event() {
            match event {
                ReplicationEvent::Store {
                    from_peer,
                    device_id,
                    entries,
                    head,
                } => self.spawn_store(from_peer, device_id, entries, head),
                ReplicationEvent::Refused {
                    peer,
                    device_id,
                    reason,
                } => {
                    // A wiped device refuses its own id's entries at every round: once
                    // per peer at WARN (it is an alert already). Entries beyond a ledger
                    // cut come again from every peer that holds them: once per device.
                    let beyond_cut = matches!(reason, RefusalReason::BeyondCut { .. });
                    if beyond_cut {
                        let first = self
                            .beyond_cut_logged
                            .lock()
                            .unwrap_or_else(|poisoned| poisoned.into_inner())
                            .insert(device_id.clone());
                        if first {
                            tracing::warn!(%peer, device = %device_id, %reason, "refused replicated batch: the device's journal is cut (certificate revoked or device retired); further refusals of it are counted in posmesh_replication_refused_total{{reason=\"beyond_cut\"}}, not logged");
                        } else {
                            tracing::debug!(%peer, device = %device_id, %reason, "refused replicated batch");
                        }
                    } else if device_id != self.local_device || self.own_id_refusals.first(&peer.0)
                    {
                        tracing::warn!(%peer, device = %device_id, %reason, "refused replicated batch");
                    } else {
                        tracing::debug!(%peer, device = %device_id, %reason, "refused replicated batch");
                    }
                    self.count_refused(reason_label(&reason));
                }
            }
        }
        self.wake.notify_one();
    }

    /// Sends `frame` to every connected peer.
    pub(super) fn send_to_all(&self, frame: &[u8]) {
        for link in self.lock_links().values() {
            link.send(frame.to_vec());
        }
    }

    /// Sends `frame` to `peer` if connected.
    pub(super) fn send_to(&self, peer: &PeerId, frame: &[u8]) {
        if let Some(link) = self.lock_links().get(peer) {
            link.send(frame.to_vec());
        }
    }

    /// A frame from `peer` did not decode.
    pub(super) fn on_malformed_frame(&self, peer: &PeerId, error: &prost::DecodeError) {
        tracing::warn!(%peer, %error, "refused replicated batch: malformed sync frame");
        self.count_refused("malformed_frame");
    }

    fn count_refused(&self, reason: &'static str) {
        self.refused_total.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("posmesh_replication_refused_total", "reason" => reason).increment(1);
    }

    /// Persists a verified batch (one synced WriteBatch, off the async threads), then makes
    /// it visible in the ledger and confirms it; or reports the failure.
    fn spawn_store(
        self: &Arc<Self>,
        from_peer: PeerId,
        device_id: String,
        entries: Vec<(u64, Vec<u8>)>,
        head: ChainHeadSignature,
    ) {
        let service = self.clone();
        tokio::spawn(async move {
            let last_seq = entries.last().map_or(0, |(seq, _)| *seq);
            let count = entries.len() as u64;
            let store = service.store.clone();
            let local = service.local_device.clone();
            let device = device_id.clone();
            let written = tokio::task::spawn_blocking(move || {
                store.store_replica_batch(&local, &device, &entries, &head)
            })
            .await;
            let failure = match written {
                Ok(Ok(effects)) => {
                    service.after_store(effects);
                    None
                }
                Ok(Err(error)) => Some(error.to_string()),
                Err(error) => Some(error.to_string()),
            };
            let now_ms = service.now_ms();
            let mut replicator = service.lock_replicator();
            match failure {
                None => {
                    service.ledger.advance(&device_id, last_seq);
                    replicator.handle_stored(&device_id, last_seq, now_ms);
                    metrics::counter!("posmesh_replication_entries_stored_total").increment(count);
                    tracing::debug!(peer = %from_peer, device = %device_id, up_to = last_seq, "stored replicated batch");
                }
                Some(error) => {
                    tracing::error!(peer = %from_peer, device = %device_id, %error, "cannot store replicated batch");
                    metrics::counter!("posmesh_replication_store_failures_total").increment(1);
                    replicator.handle_store_failed(&device_id);
                }
            }
            service.pump(&mut replicator);
        });
    }

    /// Acts on what a stored batch changed beyond the journal: alerts raised on merge are
    /// logged and counted; orders that gained a closing sale are settled.
    fn after_store(&self, effects: ReplicaEffects) {
        for alert in &effects.alerts {
            tracing::warn!(kind = %alert.kind, subject = %alert.subject, message = %alert.message,
                "manager alert raised on merge");
            metrics::counter!("posmesh_alerts_raised_total", "kind" => alert.kind.clone())
                .increment(1);
        }
        if !effects.orders_closed.is_empty() {
            let orders = effects.orders_closed.into_iter().collect();
            tokio::spawn(self.orders.clone().on_orders_closed(orders));
        }
    }

    /// Runs `handle_timeout` when the replicator asks, and `handle_local_append` after
    /// every local group commit, until `stop`.
    async fn run_timer(
        self: Arc<Self>,
        mut commits: watch::Receiver<u64>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut commits_open = true;
        let mut progress = tokio::time::interval(PROGRESS_INTERVAL / 4);
        progress.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let due_ms = self.lock_replicator().poll_timeout();
            let deadline = due_ms
                .map(|ms| tokio::time::Instant::from_std(self.origin + Duration::from_millis(ms)));
            tokio::select! {
                () = sleep_until(deadline) => {
                    let now_ms = self.now_ms();
                    let mut replicator = self.lock_replicator();
                    replicator.handle_timeout(now_ms, &self.ledger);
                    self.pump(&mut replicator);
                }
                () = self.wake.notified() => {}
                _ = progress.tick() => self.report_catch_up(),
                changed = commits.changed(), if commits_open => match changed {
                    Ok(()) => {
                        let last_seq = *commits.borrow_and_update();
                        self.ledger.advance(&self.local_device, last_seq);
                        let now_ms = self.now_ms();
                        let mut replicator = self.lock_replicator();
                        replicator.handle_local_append(now_ms);
                        self.pump(&mut replicator);
                    }
                    Err(_) => commits_open = false, // the writer stopped (shutdown)
                },
                _ = stop.wait_for(|stopped| *stopped) => return,
            }
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The metric label of a refusal.
fn reason_label(reason: &RefusalReason) -> &'static str {
    match reason {
        RefusalReason::Malformed { .. } => "malformed",
        RefusalReason::ChainBroken(_) => "chain_broken",
        RefusalReason::HeadMismatch { .. } => "head_mismatch",
        RefusalReason::UnknownDevice => "unknown_device",
        RefusalReason::BadSignature { .. } => "bad_signature",
        RefusalReason::LocalDevice => "local_device",
        RefusalReason::BeyondCut { .. } => "beyond_cut",
        _ => "other",
    }
}

impl crate::consensus::ledger_cut::LedgerPositions for ReplicationService {
    fn device_of_serial(&self, serial_hex: &str) -> Option<String> {
        self.keys.device_of_serial(serial_hex)
    }

    fn held(&self, device_id: &str) -> u64 {
        self.ledger.version_vector().get(device_id)
    }
}

impl ConnectionObserver for ReplicationService {
    fn connected(
        self: Arc<Self>,
        device_id: &str,
        connection_id: u64,
        connection: Arc<MeshConnection>,
    ) {
        let peer = PeerId(device_id.to_owned());
        let (link, outbound) = PeerLink::new(connection_id);
        // Keys first: they precede every sync message on the stream.
        for attestation in self.keys.attestations() {
            link.send(peer_link::encode(sync_frame::Kind::Attestation(
                attestation,
            )));
        }
        self.lock_links().insert(peer.clone(), link);
        self.orders.connected(&peer);
        {
            let now_ms = self.now_ms();
            let mut replicator = self.lock_replicator();
            replicator.handle_connected(peer.clone(), now_ms);
            self.pump(&mut replicator);
        }
        tokio::spawn(peer_link::send_loop(
            connection.clone(),
            peer.clone(),
            outbound,
        ));
        tokio::spawn(peer_link::receive_loop(
            self,
            connection,
            peer,
            connection_id,
        ));
    }

    fn closed(self: Arc<Self>, device_id: &str, connection_id: u64) {
        let peer = PeerId(device_id.to_owned());
        let removed = {
            let mut links = self.lock_links();
            let current = links
                .get(&peer)
                .is_some_and(|link| link.connection_id == connection_id);
            current && links.remove(&peer).is_some()
        };
        if removed {
            self.orders.disconnected(&peer);
            let mut replicator = self.lock_replicator();
            replicator.handle_disconnected(&peer);
            self.pump(&mut replicator);
        }
    }
}

impl OrderSyncSink for ReplicationService {
    fn send_order_sync(&self, peer: &PeerId, message: OrderSyncMessage) {
        if let Some(link) = self.lock_links().get(peer) {
            link.send(peer_link::encode(sync_frame::Kind::OrderSync(message)));
        }
    }
}
