//! Wiring of a device node: open storage, start the journal writer, join the store mesh
//! and replicate the ledger (with an identity), serve the sales and management APIs, stop
//! cleanly on SIGTERM / Ctrl-C.

use crate::catalog_file::load_catalog;
use crate::config::DeviceConfig;
use crate::consensus::network::RaftLinks;
use crate::consensus::RaftService;
use crate::ledger::business_date::BusinessCalendar;
use crate::orders::OrdersService;
use crate::peers::{ConnectionObserver, PeerManager};
use crate::replication::{ReplicationService, VerifiedKey};
use crate::storage::writer::JournalWriter;
use crate::storage::JournalStore;
use crate::uplink::UplinkService;
use crate::{api, clock, mgmt};
use anyhow::Context;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use posmesh_domain::Catalog;
use posmesh_mesh::discovery::{
    CertFingerprint, DiscoveryConfig, DiscoveryEvent, DiscoveryFilter, MdnsDiscovery,
    ServiceAnnouncement,
};
use posmesh_mesh::peer_table::PeerSource;
use posmesh_mesh::tls::{AcceptPolicy, KeyAttestation, MeshTls};
use posmesh_mesh::transport::{MeshEndpoint, TransportSettings};
use posmesh_mesh::Role;
use posmesh_proto::storage::v1::LocalIdentity;
use std::sync::Arc;
use std::time::Instant;

/// Everything a request handler needs.
pub struct NodeContext {
    /// The database.
    pub store: Arc<JournalStore>,
    /// The journal writer.
    pub writer: JournalWriter,
    /// The catalog in force.
    pub catalog: Arc<Catalog>,
    /// The store's calendar.
    pub calendar: BusinessCalendar,
    /// Who this node is.
    pub identity: LocalIdentity,
    /// Store name for receipts.
    pub store_name: String,
    /// Prometheus metrics.
    pub metrics: PrometheusHandle,
    /// When the node started.
    pub started: Instant,
    /// The store mesh, when the device has an identity (`--identity-dir`).
    pub peers: Option<Arc<PeerManager>>,
    /// Ledger replication over the mesh, when the device has an identity.
    pub replication: Option<Arc<ReplicationService>>,
    /// Shared orders (open tabs).
    pub orders: Arc<OrdersService>,
    /// The store's Raft group, when the device has an identity.
    pub raft: Option<Arc<RaftService>>,
    /// Card payments: acquirer connection, offline limits, card-data keys.
    pub payments: Arc<crate::payments::PaymentsService>,
    /// The upload to the chain's cloud, with `--cloud`.
    pub uplink: Option<Arc<crate::uplink::UplinkService>>,
    /// Which catalog prices the next sale (Raft-committed, else the file's).
    pub catalog_in_force: crate::catalog_in_force::CatalogInForce,
    /// Wrong-PIN counts per operator on this device (verify-pin lockout).
    pub pin_lockout: crate::pin_lockout::PinLockout,
}

impl NodeContext {
    /// The catalog that prices a sale now: the one committed through the store's Raft group
    /// once effective, else the catalog file's.
    pub fn catalog_now(&self) -> Arc<Catalog> {
        let now_ms = i64::try_from(clock::wall_clock_ms()).unwrap_or(i64::MAX);
        self.catalog_in_force.current(self.raft.as_deref(), now_ms)
    }

    /// The catalog that prices a sale that happened at `at_ms` (ms since the Unix epoch):
    /// [`NodeContext::catalog_now`] with the VAT rates of the store-wide tax version in
    /// force at `at_ms`, as applied on this device (see [`crate::tax_in_force`]).
    pub fn catalog_for_sale(&self, at_ms: i64) -> Arc<Catalog> {
        self.catalog_in_force
            .tax
            .apply(self.raft.as_deref(), self.catalog_now(), at_ms)
    }
}

/// Runs a device node until SIGTERM or Ctrl-C.
pub async fn run_device(config: DeviceConfig) -> anyhow::Result<()> {
    let calendar = config.validate()?;
    let catalog = load_catalog(&config.catalog)?;
    // What can be checked without the data directory is checked before it is created, so a
    // refused start (the wrong certificate, a port in use) leaves no directory bound to the
    // refused ids behind.
    let mut bound_mesh = match &config.identity_dir {
        Some(dir) => Some(bind_mesh(&config, dir)?),
        None => None,
    };
    let api_listener = tokio::net::TcpListener::bind(config.api_listen)
        .await
        .with_context(|| format!("cannot listen on {} (sales API)", config.api_listen))?;
    let mgmt_listener = tokio::net::TcpListener::bind(config.mgmt_listen)
        .await
        .with_context(|| format!("cannot listen on {} (management API)", config.mgmt_listen))?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let store = Arc::new(
        JournalStore::open(&config.data_dir)
            .with_context(|| format!("cannot open {}", config.data_dir.display()))?,
    );
    let now_ms = clock::wall_clock_ms();
    let identity = store.ensure_identity(
        &config.store_id,
        &config.device_id,
        new_incarnation(now_ms),
        rand::random(),
        i64::try_from(now_ms).unwrap_or(i64::MAX),
    )?;
    crate::catalog_file::check_catalog_currency(
        &catalog,
        &config.catalog,
        &store,
        &identity.device_id,
    )?;
    let (writer, writer_thread) = JournalWriter::spawn(store.clone(), identity.clone())?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let orders = OrdersService::start(
        store.clone(),
        writer.clone(),
        calendar,
        &identity.device_id,
        identity.device_incarnation,
        stop_rx.clone(),
    )?;
    let (peers, replication, discovery, raft, uplink) = match bound_mesh.take() {
        Some(bound) => {
            let mesh = start_mesh(
                &config,
                bound,
                &store,
                &identity,
                &writer,
                orders.clone(),
                catalog.currency(),
                stop_rx.clone(),
            )
            .await?;
            (
                Some(mesh.peers),
                Some(mesh.replication),
                mesh.discovery,
                Some(mesh.raft),
                mesh.uplink,
            )
        }
        None => {
            if config.raft_bootstrap {
                anyhow::bail!(
                    "--raft-bootstrap needs --identity-dir: Raft runs over the store mesh"
                );
            }
            tracing::info!("no --identity-dir: running alone, without the store mesh");
            (None, None, None, None, None)
        }
    };
    let payments = Arc::new(crate::payments::PaymentsService::new(
        &config.payments,
        &identity.store_id,
        &identity.device_id,
        catalog.currency(),
    )?);
    let metrics = PrometheusBuilder::new()
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    let catalog = Arc::new(catalog);
    let node = Arc::new(NodeContext {
        store: store.clone(),
        writer,
        catalog_in_force: crate::catalog_in_force::CatalogInForce::new(catalog.clone()),
        catalog,
        uplink,
        calendar,
        identity: identity.clone(),
        store_name: config.store_name.clone(),
        metrics,
        started: clock::monotonic_now(),
        peers: peers.clone(),
        replication,
        orders,
        raft: raft.clone(),
        payments,
        pin_lockout: crate::pin_lockout::PinLockout::restored(
            store
                .pin_attempts()
                .context("cannot read the wrong-PIN counts")?,
        ),
    });
    let api_addr = api_listener.local_addr()?;
    let mgmt_addr = mgmt_listener.local_addr()?;
    let head = store.head()?;
    let mesh_addr = peers.as_ref().and_then(|p| p.local_addr());
    tracing::info!(
        store = %identity.store_id, device = %identity.device_id,
        incarnation = identity.device_incarnation, last_seq = head.last_seq,
        api = %api_addr, mgmt = %mgmt_addr, mesh = ?mesh_addr, "device node ready"
    );
    if let Some(path) = &config.ready_file {
        let ready = serde_json::json!({
            "api": api_addr.to_string(), "mgmt": mgmt_addr.to_string(),
            "mesh": mesh_addr.map(|a| a.to_string()), "pid": std::process::id(),
        });
        write_atomically(path, ready.to_string().as_bytes())
            .with_context(|| format!("cannot write ready file {}", path.display()))?;
    }
    let forwarder = tokio::spawn(crate::payments::forwarder::run(
        node.clone(),
        stop_rx.clone(),
    ));
    let reversals = tokio::spawn(crate::payments::card_tender::run_pending_reversals(
        node.clone(),
        stop_rx.clone(),
    ));
    let api_server = serve(api_listener, api::router(node.clone()), stop_rx.clone());
    let mgmt_server = serve(mgmt_listener, mgmt::router(node.clone()), stop_rx);
    let api_task = tokio::spawn(api_server);
    let mgmt_task = tokio::spawn(mgmt_server);
    shutdown_signal().await;
    tracing::info!("stopping: finishing requests in flight");
    let _ = stop_tx.send(true);
    api_task.await??;
    mgmt_task.await??;
    let _ = forwarder.await;
    let _ = reversals.await;
    if let Some(discovery) = discovery {
        if let Err(error) = discovery.shutdown().await {
            tracing::warn!(%error, "mDNS shutdown");
        }
    }
    if let Some(raft) = &raft {
        raft.stop().await;
    }
    if let Some(peers) = &peers {
        peers.close();
    }
    // Dropping the last writer handle closes its queue; the thread finishes its group.
    node.orders.shutdown();
    drop(node);
    let _ = writer_thread.join();
    tracing::info!("stopped");
    Ok(())
}

/// The device's credentials from its identity directory `dir`, checked to name this node
/// (a device of `config`'s store with `config`'s device id).
///
/// # Errors
/// The files cannot be read or parsed; the certificate names another node.
fn own_credentials(
    config: &DeviceConfig,
    dir: &std::path::Path,
) -> anyhow::Result<posmesh_mesh::pki::NodeCredentials> {
    let credentials = posmesh_mesh::pki::load_identity(dir)
        .with_context(|| format!("cannot load the device identity from {}", dir.display()))?;
    let local = &credentials.identity;
    if local.role() != Role::Device
        || local.store_id() != Some(config.store_id.as_str())
        || local.device_id() != config.device_id
    {
        anyhow::bail!(
            "the certificate in {} is for {local}, but this node is store {:?} device {:?}",
            dir.display(),
            config.store_id,
            config.device_id
        );
    }
    Ok(credentials)
}

/// The mesh endpoint bound before the data directory is made (so a mesh port in use refuses
/// the start before it leaves anything behind), with what [`start_mesh`] needs of the
/// identity directory.
struct BoundMesh {
    /// The device's credentials (checked to name this node), for the key attestation.
    credentials: posmesh_mesh::pki::NodeCredentials,
    /// Which peers' certificates the mesh accepts.
    policy: AcceptPolicy,
    /// The chain's trust (CA, CRL) the endpoint checks peers against.
    trust: Arc<posmesh_mesh::tls::ChainTrust>,
    /// The bound QUIC endpoint.
    endpoint: MeshEndpoint,
    /// TLS for the uplink to the cloud, with `--cloud`.
    uplink_tls: Option<MeshTls>,
}

/// Loads and checks the identity in `dir` ([`own_credentials`]) and binds the mesh
/// endpoint on `--mesh-listen`.
///
/// # Errors
/// The identity is unreadable or names another node; the mesh port cannot be bound.
fn bind_mesh(config: &DeviceConfig, dir: &std::path::Path) -> anyhow::Result<BoundMesh> {
    let credentials = own_credentials(config, dir)?;
    let policy = AcceptPolicy::for_identity(&credentials.identity);
    let uplink_tls = match config.cloud {
        Some(_) => Some(MeshTls::new(own_credentials(config, dir)?, policy.clone())?),
        None => None,
    };
    let tls = MeshTls::new(own_credentials(config, dir)?, policy.clone())?;
    let trust = tls.trust().clone();
    let endpoint = MeshEndpoint::bind(config.mesh_listen, tls, TransportSettings::default())
        .with_context(|| format!("cannot bind the mesh endpoint on {}", config.mesh_listen))?;
    Ok(BoundMesh {
        credentials,
        policy,
        trust,
        endpoint,
        uplink_tls,
    })
}

/// What [`start_mesh`] started.
struct Mesh {
    peers: Arc<PeerManager>,
    replication: Arc<ReplicationService>,
    discovery: Option<MdnsDiscovery>,
    raft: Arc<RaftService>,
    uplink: Option<Arc<UplinkService>>,
}

/// On the endpoint [`bind_mesh`] bound with the device's checked certificate: attests the
/// chain-head key, starts ledger replication, the peer manager and, on the configured interfaces, mDNS
/// discovery.
#[allow(clippy::too_many_arguments)]
async fn start_mesh(
    config: &DeviceConfig,
    bound: BoundMesh,
    store: &Arc<JournalStore>,
    identity: &LocalIdentity,
    writer: &JournalWriter,
    orders: Arc<OrdersService>,
    currency: posmesh_domain::Currency,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Mesh> {
    let BoundMesh {
        credentials,
        policy,
        trust,
        endpoint,
        uplink_tls,
    } = bound;
    let fingerprint = CertFingerprint::of_der(credentials.cert.as_ref());
    let own_serial = posmesh_mesh::tls::serial_hex_of_der(credentials.cert.as_ref());
    let local = credentials.identity.clone();
    let signing_public_key: [u8; 32] = identity
        .signing_public_key
        .as_slice()
        .try_into()
        .context("the stored chain-head public key is not 32 bytes")?;
    let attestation = KeyAttestation::sign(
        &credentials,
        identity.device_incarnation,
        signing_public_key,
    )
    .context("cannot attest the chain-head key with the device certificate")?;
    let own_key = VerifiedKey {
        device_id: identity.device_id.clone(),
        device_incarnation: identity.device_incarnation,
        public_key: signing_public_key,
        attestation: posmesh_proto::mesh::v1::KeyAttestation {
            cert_der: attestation.cert_der,
            device_incarnation: attestation.device_incarnation,
            signing_public_key: attestation.signing_public_key.to_vec(),
            signature: attestation.signature,
        },
    };
    tracing::info!(identity = %local, listen = %config.mesh_listen, static_peers = config.peers.len(), "store mesh started");
    let own_attestation = own_key.attestation.clone();
    let replication = ReplicationService::start(
        store.clone(),
        own_key,
        trust,
        policy,
        writer.subscribe_commits(),
        stop.clone(),
        orders,
    )?;
    let raft_links = Arc::new(RaftLinks::default());
    // The leader fills a revocation's or retirement's ledger cut from this ledger
    // ([`crate::consensus::ledger_cut`]).
    raft_links.set_ledger_positions(replication.clone());
    let alerts = store.clone();
    raft_links.on_conflict(Arc::new(move |conflict| {
        raise_alert_now(
            &alerts,
            posmesh_consensus::group::GroupConflict::CODE,
            &conflict.peer,
            conflict.to_string(),
        );
    }));
    let alerts = store.clone();
    raft_links
        .retirement()
        .on_retired(Arc::new(move |retirement| {
            raise_alert_now(
                &alerts,
                crate::consensus::retirement::RETIRED_CODE,
                &retirement.device_id,
                retirement.to_string(),
            );
        }));
    // This device's own certificate revoked store-wide ([`crate::consensus::own_revocation`]).
    if let Some(serial) = own_serial {
        raft_links.own_revocation().set_own_serial(serial);
    }
    // Kept across restarts until the device presents another certificate (taken back, or
    // forgotten with its alert, before the Raft service and the API start).
    crate::consensus::own_revocation::restore_at_start(
        store,
        raft_links.own_revocation(),
        &config.device_id,
    )
    .context("cannot read whether this device's certificate was revoked")?;
    let alerts = store.clone();
    raft_links
        .own_revocation()
        .on_revoked(Arc::new(move |revocation| {
            if let Err(error) = alerts.put_own_revocation(Some(revocation)) {
                tracing::error!(%error, "cannot record the revocation of this device's certificate: a restart would forget it until a peer refuses the device again");
            }
            raise_alert_now(
                &alerts,
                crate::consensus::own_revocation::CERTIFICATE_REVOKED_CODE,
                &revocation.device_id,
                revocation.to_string(),
            );
        }));
    let alerts = store.clone();
    raft_links.seat_loss().on_lost(Arc::new(move |loss| {
        raise_alert_now(
            &alerts,
            crate::consensus::seat::SEAT_LOST_CODE,
            &loss.device_id,
            loss.to_string(),
        );
    }));
    let alerts = store.clone();
    raft_links.lost_members().on_lost(Arc::new(move |member| {
        raise_alert_now(
            &alerts,
            crate::consensus::lost_member::MEMBER_LOST_CODE,
            &member.device_id,
            member.to_string(),
        );
    }));
    // A device whose id is in `device_identity_conflict` refuses its Raft seat too.
    let conflicted = Arc::downgrade(&replication);
    raft_links.bar_seat_when(Arc::new(move || {
        conflicted
            .upgrade()
            .is_some_and(|replication| replication.identity_conflict().is_some())
    }));
    let raft = RaftService::start(
        &config.data_dir,
        &config.store_id,
        &config.device_id,
        config.raft_bootstrap,
        posmesh_consensus::RaftTimings {
            snapshot_every_entries: config.raft_snapshot_every_entries,
            keep_logs_in_snapshot: config.raft_snapshot_keep_entries,
            ..posmesh_consensus::RaftTimings::STORE
        },
        raft_links.clone(),
        stop.clone(),
    )
    .await
    .context("cannot start the store's Raft group")?;
    // Ledger replication refuses and stops sending entries beyond a committed ledger cut.
    let cut_source = Arc::downgrade(&raft);
    replication.set_ledger_cuts(Arc::new(move |device| {
        cut_source
            .upgrade()
            .and_then(|raft| raft.ledger_cut(device))
    }));
    let uplink = match (config.cloud, uplink_tls) {
        (Some(cloud), Some(tls)) => {
            let bind: std::net::SocketAddr = if cloud.is_ipv4() {
                ([0, 0, 0, 0], 0).into()
            } else {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            };
            let endpoint = MeshEndpoint::bind(bind, tls, TransportSettings::default())
                .context("cannot bind the cloud uplink's endpoint")?;
            tracing::info!(%cloud, "cloud uplink started");
            Some(UplinkService::start(
                cloud,
                endpoint,
                store.clone(),
                own_attestation,
                &config.device_id,
                Some(raft.clone()),
                currency,
                posmesh_sync::cloud::UploadLimits {
                    batch_entries_max: config.cloud_batch_entries_max.max(1),
                    ..posmesh_sync::cloud::UploadLimits::default()
                },
                stop.clone(),
            ))
        }
        _ => None,
    };
    let observers: Vec<Arc<dyn ConnectionObserver>> = vec![replication.clone(), raft_links];
    let gate = crate::peers::RetiredGate {
        retired_at: {
            let raft = Arc::downgrade(&raft);
            Arc::new(move |device| raft.upgrade().and_then(|raft| raft.retired_at(device)))
        },
        on_refused: {
            let raft = Arc::downgrade(&raft);
            Arc::new(move |peer, index| {
                if let Some(raft) = raft.upgrade() {
                    raft.refused_as_retired(peer, index);
                }
            })
        },
        revoked_at: {
            let raft = Arc::downgrade(&raft);
            Arc::new(move |serial| raft.upgrade().and_then(|raft| raft.revoked_at(serial)))
        },
        on_revoked: {
            let raft = Arc::downgrade(&raft);
            Arc::new(move |peer, claim| {
                if let Some(raft) = raft.upgrade() {
                    raft.refused_as_revoked(peer, claim);
                }
            })
        },
    };
    let peers = PeerManager::start_gated(
        endpoint,
        &config.peers,
        rand::random(),
        stop,
        observers,
        Some(gate),
    );
    if config.mdns_interfaces.is_empty() {
        tracing::info!("no --mdns-interface: discovery off, static peers only");
        return Ok(Mesh {
            peers,
            replication,
            discovery: None,
            raft,
            uplink,
        });
    }
    let port = peers.local_addr().map(|a| a.port()).unwrap_or(0);
    let discovery_config = DiscoveryConfig {
        interfaces: config.mdns_interfaces.clone(),
        announcement: ServiceAnnouncement::new(&local, fingerprint, port)?,
        filter: DiscoveryFilter::new(&local)?,
        hostname: format!("{}.local.", local.device_id()),
    };
    let (discovery, mut events) =
        MdnsDiscovery::start(discovery_config).context("cannot start mDNS discovery")?;
    tracing::info!(interfaces = ?config.mdns_interfaces, "mDNS discovery started");
    let learner = peers.clone();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                DiscoveryEvent::Upserted(peer) => {
                    if let Some(addr) = peer.addrs.first() {
                        learner.learned(&peer.device_id, *addr, PeerSource::Mdns);
                    }
                }
                // A withdrawn announcement is only a hint; the connection's own liveness
                // (pings, idle timeout) decides.
                DiscoveryEvent::Removed(device) => {
                    tracing::info!(peer = %device, "mDNS announcement withdrawn");
                }
            }
        }
    });
    Ok(Mesh {
        peers,
        replication,
        discovery: Some(discovery),
        raft,
        uplink,
    })
}

/// Raises a manager's alert of `kind` about `subject`, dated now; a failure to store it is
/// logged (the condition is logged by its raiser too).
pub(crate) fn raise_alert_now(store: &JournalStore, kind: &str, subject: &str, message: String) {
    let alert = posmesh_proto::storage::v1::Alert {
        kind: kind.to_owned(),
        subject: subject.to_owned(),
        message,
        raised_at_ms: i64::try_from(crate::clock::wall_clock_ms()).unwrap_or(i64::MAX),
    };
    if let Err(error) = store.raise_alert(&alert) {
        tracing::warn!(%error, kind, "cannot raise the alert");
    }
}

/// [`raise_alert_now`] off the async threads (the alert is a synced journal write), and
/// counted in `posmesh_alerts_raised_total`; a failed task is logged.
pub(crate) async fn raise_alert_blocking(
    store: &Arc<JournalStore>,
    kind: &'static str,
    subject: &str,
    message: String,
) {
    metrics::counter!("posmesh_alerts_raised_total", "kind" => kind).increment(1);
    let store = store.clone();
    let owned_subject = subject.to_owned();
    let raised = tokio::task::spawn_blocking(move || {
        raise_alert_now(&store, kind, &owned_subject, message);
    })
    .await;
    if let Err(error) = raised {
        tracing::error!(kind, subject, %error, "alert task failed");
    }
}

async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // Answers are small and a till waits for each one: send them at once (no Nagle delay
    // behind an unacknowledged segment of the same connection).
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY on an API connection");
        }
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        })
        .await
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// A new device incarnation: the creation time in ms, shifted, plus random low bits, so a
/// wiped device never gets an earlier incarnation back (clocks permitting) and two devices
/// initialised in the same millisecond still differ.
pub(crate) fn new_incarnation(now_ms: u64) -> u64 {
    (now_ms << 16) | u64::from(rand::random::<u16>())
}

fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
