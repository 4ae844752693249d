//! Wiring of a device node: open storage, start the journal writer, serve the sales and
//! management APIs, stop cleanly on SIGTERM / Ctrl-C.

use crate::catalog_file::load_catalog;
use crate::config::DeviceConfig;
use crate::ledger::business_date::BusinessCalendar;
use crate::storage::writer::JournalWriter;
use crate::storage::JournalStore;
use crate::{api, clock, mgmt};
use anyhow::Context;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use posmesh_domain::Catalog;
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
}

/// Runs a device node until SIGTERM or Ctrl-C.
pub async fn run_device(config: DeviceConfig) -> anyhow::Result<()> {
    let calendar = config.validate()?;
    let catalog = load_catalog(&config.catalog)?;
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
        i64::try_from(now_ms).unwrap_or(i64::MAX),
    )?;
    let (writer, writer_thread) = JournalWriter::spawn(store.clone(), identity.clone())?;
    let metrics = PrometheusBuilder::new()
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    let node = Arc::new(NodeContext {
        store: store.clone(),
        writer,
        catalog: Arc::new(catalog),
        calendar,
        identity: identity.clone(),
        store_name: config.store_name.clone(),
        metrics,
        started: clock::monotonic_now(),
    });
    let api_listener = tokio::net::TcpListener::bind(config.api_listen)
        .await
        .with_context(|| format!("cannot listen on {} (sales API)", config.api_listen))?;
    let mgmt_listener = tokio::net::TcpListener::bind(config.mgmt_listen)
        .await
        .with_context(|| format!("cannot listen on {} (management API)", config.mgmt_listen))?;
    let api_addr = api_listener.local_addr()?;
    let mgmt_addr = mgmt_listener.local_addr()?;
    let head = store.head()?;
    tracing::info!(
        store = %identity.store_id, device = %identity.device_id,
        incarnation = identity.device_incarnation, last_seq = head.last_seq,
        api = %api_addr, mgmt = %mgmt_addr, "device node ready"
    );
    if let Some(path) = &config.ready_file {
        let ready = serde_json::json!({
            "api": api_addr.to_string(), "mgmt": mgmt_addr.to_string(), "pid": std::process::id(),
        });
        write_atomically(path, ready.to_string().as_bytes())
            .with_context(|| format!("cannot write ready file {}", path.display()))?;
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let api_server = serve(api_listener, api::router(node.clone()), stop_rx.clone());
    let mgmt_server = serve(mgmt_listener, mgmt::router(node.clone()), stop_rx);
    let api_task = tokio::spawn(api_server);
    let mgmt_task = tokio::spawn(mgmt_server);
    shutdown_signal().await;
    tracing::info!("stopping: finishing requests in flight");
    let _ = stop_tx.send(true);
    api_task.await??;
    mgmt_task.await??;
    // Dropping the last writer handle closes its queue; the thread finishes its group.
    drop(node);
    let _ = writer_thread.join();
    tracing::info!("stopped");
    Ok(())
}

async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
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
fn new_incarnation(now_ms: u64) -> u64 {
    (now_ms << 16) | u64::from(rand::random::<u16>())
}

fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
