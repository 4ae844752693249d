//! `posmesh cloud serve`: the chain's cloud — the QUIC endpoint every store's devices dial
//! (mutual TLS, a cloud-role certificate, devices of any store of the chain) and the HTTP
//! admin API (catalog publishing, the chain report, store snapshots; loopback by default,
//! bearer-token authenticated: [`super::admin_token`] — put it behind TLS before exposing
//! it beyond the host).

use super::admin_token::{self, AdminToken};
use super::report::chain_report;
use super::rocks_store::RocksCloudStore;
use super::service::CloudService;
use super::store::{CloudStore, CloudStoreError};
use anyhow::Context;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use clap::Args;
use posmesh_mesh::tls::{AcceptPolicy, MeshTls};
use posmesh_mesh::transport::{MeshEndpoint, RpcHandler, StreamPurpose, TransportSettings};
use posmesh_mesh::Role;
use posmesh_proto::cloud::v1::CatalogRelease;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// `posmesh cloud serve` flags.
#[derive(Args, Clone, Debug)]
pub struct CloudServeArgs {
    /// Directory of the cloud's database (created on first start).
    #[arg(long, env = "POSMESH_CLOUD_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Directory with the cloud's certificate (`posmesh ca issue-cloud`).
    #[arg(long, env = "POSMESH_CLOUD_IDENTITY_DIR")]
    pub identity_dir: PathBuf,
    /// UDP address of the QUIC endpoint the stores dial.
    #[arg(long, env = "POSMESH_CLOUD_LISTEN", default_value = "0.0.0.0:7443")]
    pub listen: SocketAddr,
    /// Address of the HTTP admin API (catalog publishing, chain report).
    #[arg(
        long,
        env = "POSMESH_CLOUD_HTTP_LISTEN",
        default_value = "127.0.0.1:7090"
    )]
    pub http_listen: SocketAddr,
    /// Once listening, write `{"quic": ADDR, "http": ADDR, "pid": N}` to this file.
    #[arg(long, env = "POSMESH_CLOUD_READY_FILE")]
    pub ready_file: Option<PathBuf>,
    /// The admin API's bearer token file (mode 0600; created with a random token if
    /// missing). Default: `<data-dir>/admin-token`.
    #[arg(long, env = "POSMESH_CLOUD_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
}

/// The admin token and the opened data directory. A token file given with
/// `--admin-token-file` is checked before anything is created; a data directory this run
/// created is removed again if the cloud cannot start in it (no empty directory is left
/// behind); a directory locked by a running cloud is named as such.
///
/// # Errors
/// The token file is refused, the directory cannot be created, or its database cannot be
/// opened (another cloud holds it, or RocksDB fails).
fn open_data_dir(args: &CloudServeArgs) -> anyhow::Result<(AdminToken, RocksCloudStore)> {
    let explicit_token = match &args.admin_token_file {
        Some(file) => Some(admin_token::read_or_create(file)?),
        None => None,
    };
    let created = !args.data_dir.exists();
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    let opened = (|| {
        let store =
            RocksCloudStore::open(&args.data_dir).map_err(|e| open_error(&args.data_dir, e))?;
        let token = match explicit_token {
            Some(token) => token,
            None => admin_token::read_or_create(&admin_token::default_path(&args.data_dir))?,
        };
        Ok((token, store))
    })();
    if opened.is_err() && created {
        // Ours, from this run: nothing of a cloud is in it yet.
        let _ = std::fs::remove_dir_all(&args.data_dir);
    }
    opened
}

/// RocksDB's lock error said plainly: another cloud process runs on `dir`.
fn open_error(dir: &std::path::Path, error: CloudStoreError) -> anyhow::Error {
    let text = error.to_string();
    if text.contains("LOCK")
        && (text.contains("temporarily unavailable") || text.contains("lock hold"))
    {
        anyhow::anyhow!(
            "another cloud is using {} (it holds the database's lock): stop it first, or give another --data-dir",
            dir.display()
        )
    } else {
        anyhow::Error::new(error).context(format!("cannot open {}", dir.display()))
    }
}

/// Runs the cloud until SIGTERM or Ctrl-C.
///
/// # Errors
/// A certificate that is not a cloud's, a database in use, an address in use.
pub async fn run_cloud(args: CloudServeArgs) -> anyhow::Result<()> {
    let credentials = posmesh_mesh::pki::load_identity(&args.identity_dir).with_context(|| {
        format!(
            "cannot load the cloud identity from {}",
            args.identity_dir.display()
        )
    })?;
    let local = credentials.identity.clone();
    if local.role() != Role::Cloud {
        anyhow::bail!(
            "the certificate in {} is for {local}, not a cloud (use `posmesh ca issue-cloud`)",
            args.identity_dir.display()
        );
    }
    let (token, store) = open_data_dir(&args)?;
    let store: Arc<dyn CloudStore> = Arc::new(store);
    let policy = AcceptPolicy::for_identity(&local);
    let tls = MeshTls::new(credentials, policy.clone())?;
    let service = Arc::new(CloudService::new(store, tls.trust().clone(), policy));
    let endpoint = Arc::new(
        MeshEndpoint::bind(args.listen, tls, TransportSettings::default())
            .with_context(|| format!("cannot bind the cloud endpoint on {}", args.listen))?,
    );
    let quic_addr = endpoint.local_addr()?;
    let http = tokio::net::TcpListener::bind(args.http_listen)
        .await
        .with_context(|| format!("cannot listen on {} (cloud HTTP API)", args.http_listen))?;
    let http_addr = http.local_addr()?;
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    tracing::info!(identity = %local, quic = %quic_addr, http = %http_addr, "cloud ready");
    if let Some(path) = &args.ready_file {
        let ready = serde_json::json!({
            "quic": quic_addr.to_string(), "http": http_addr.to_string(),
            "pid": std::process::id(),
        });
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, ready.to_string())?;
        std::fs::rename(&tmp, path)?;
    }
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let accept = tokio::spawn(accept_loop(endpoint.clone(), service.clone()));
    // `GET /metrics` (Prometheus text, `posmesh_cloud_*`), behind the token like the rest:
    // a scraper sends it with `authorization.credentials_file`.
    let metrics_route = Router::new()
        .route("/metrics", get(move || async move { metrics.render() }))
        .route_layer(axum::middleware::from_fn_with_state(
            token.clone(),
            admin_token::require_bearer,
        ));
    let router = admin_router(service, token).merge(metrics_route);
    let server = axum::serve(http, router).with_graceful_shutdown(async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    });
    let server = tokio::spawn(async move { server.await });
    shutdown_signal().await;
    tracing::info!("cloud stopping");
    let _ = stop_tx.send(true);
    endpoint.close();
    accept.abort();
    server.await??;
    Ok(())
}

/// Serves every verified connection's `Cloud` calls.
async fn accept_loop(endpoint: Arc<MeshEndpoint>, service: Arc<CloudService>) {
    loop {
        let connection = match endpoint.accept().await {
            Ok(connection) => Arc::new(connection),
            Err(error) => {
                tracing::info!(%error, "cloud endpoint stops accepting");
                return;
            }
        };
        let caller = connection.peer_identity().clone();
        let serial = connection.peer_serial_hex().map(str::to_owned);
        tracing::info!(peer = %caller, remote = %connection.remote_address(), "store device connected");
        metrics::counter!("posmesh_cloud_connections_total").increment(1);
        // A certificate its store revoked: closed at once, as the store's mesh does; the
        // calls of a connection made before the cloud learned it are refused one by one.
        let revoked = {
            let (service, caller, serial) = (service.clone(), caller.clone(), serial.clone());
            tokio::task::spawn_blocking(move || service.revoked_caller(&caller, serial.as_deref()))
                .await
        };
        if let (Ok(Ok(Some((index, _)))), Some(serial)) = (revoked, serial.as_deref()) {
            connection.close(
                crate::peers::retired_gate::CLOSE_REVOKED,
                &crate::peers::retired_gate::revoked_close_reason(index, serial),
            );
            continue;
        }
        let service = service.clone();
        let handler: RpcHandler = Arc::new(move |request: Vec<u8>| {
            let service = service.clone();
            let caller = caller.clone();
            let serial = serial.clone();
            Box::pin(async move {
                let answered = tokio::task::spawn_blocking(move || {
                    service.handle_bytes(&caller, serial.as_deref(), &request)
                })
                .await;
                answered.unwrap_or_default()
            })
        });
        tokio::spawn(async move {
            let reason = connection.serve_calls(StreamPurpose::Cloud, handler).await;
            tracing::info!(peer = %connection.peer_identity(), %reason, "store device disconnected");
        });
    }
}

/// `PUT /v1/stores/{store}/catalog` body: a catalog release.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PublishCatalogBody {
    /// Version, above the store's current one.
    pub version: u64,
    /// Unix ms from which sales use it (0: at once).
    #[serde(default)]
    pub effective_at_ms: i64,
    /// The catalog file's text (TOML, prices in minor units).
    pub catalog_toml: String,
}

fn error(status: StatusCode, code: &str, message: String) -> Response {
    (
        status,
        Json(serde_json::json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

/// [`error`] naming the offending `field` of the request body, as the device API does.
fn error_at(status: StatusCode, code: &str, message: String, field: &str) -> Response {
    (
        status,
        Json(serde_json::json!({"error": {"code": code, "message": message, "field": field}})),
    )
        .into_response()
}

/// The admin API: every route needs the bearer token ([`admin_token`]) except
/// `GET /v1/health`.
pub fn admin_router(service: Arc<CloudService>, token: AdminToken) -> Router {
    Router::new()
        .route("/v1/reports/chain", get(report))
        .route("/v1/stores/{store}/catalog", put(publish).get(catalog))
        .route("/v1/stores/{store}/snapshot", get(snapshot))
        .route(
            "/v1/stores/{store}/journal",
            get(super::journal_routes::store_journal),
        )
        .route(
            "/v1/stores/{store}/journal/{device}/entries",
            get(super::journal_routes::device_entries),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            token,
            admin_token::require_bearer,
        ))
        .route("/v1/health", get(|| async { "ok" }))
        .with_state(service)
}

async fn report(State(service): State<Arc<CloudService>>) -> Response {
    let store = service.store().clone();
    match tokio::task::spawn_blocking(move || chain_report(store.as_ref())).await {
        Ok(Ok(report)) => Json(report).into_response(),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, "storage", e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}

/// The store's newest Raft snapshot: `{"raft_log_index": N, "state": {…}}` (the
/// `StoreState` JSON a restore starts from).
async fn snapshot(
    State(service): State<Arc<CloudService>>,
    UrlPath(store_id): UrlPath<String>,
) -> Response {
    match service.store().snapshot(&store_id) {
        Ok(Some((index, state))) => match serde_json::from_slice::<serde_json::Value>(&state) {
            Ok(state) => {
                Json(serde_json::json!({"raft_log_index": index, "state": state})).into_response()
            }
            Err(e) => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "corrupt_snapshot",
                e.to_string(),
            ),
        },
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "no_snapshot",
            format!("no Raft snapshot of store {store_id}"),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "storage", e.to_string()),
    }
}

async fn catalog(
    State(service): State<Arc<CloudService>>,
    UrlPath(store_id): UrlPath<String>,
) -> Response {
    match service.store().catalog(&store_id) {
        Ok(Some(release)) => Json(PublishCatalogBody {
            version: release.version,
            effective_at_ms: release.effective_at_ms,
            catalog_toml: release.catalog_toml,
        })
        .into_response(),
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "no_catalog",
            format!("no catalog published for store {store_id}"),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "storage", e.to_string()),
    }
}

async fn publish(
    State(service): State<Arc<CloudService>>,
    UrlPath(store_id): UrlPath<String>,
    body: Result<Json<PublishCatalogBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(body) = match body {
        Ok(body) => body,
        Err(rejection) => {
            return error(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                rejection.body_text(),
            )
        }
    };
    if let Err(e) = posmesh_mesh::identity::validate_id(&store_id) {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_store_id",
            format!("store id {store_id:?}: {e}"),
        );
    }
    if body.version == 0 {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_version",
            "catalog versions start at 1".to_owned(),
        );
    }
    if body.catalog_toml.len() > posmesh_consensus::CATALOG_TOML_BYTES_MAX {
        return error_at(
            StatusCode::PAYLOAD_TOO_LARGE,
            "catalog_too_large",
            format!(
                "the catalog is {} bytes; a store takes at most {} bytes of catalog TOML",
                body.catalog_toml.len(),
                posmesh_consensus::CATALOG_TOML_BYTES_MAX
            ),
            "catalog_toml",
        );
    }
    match crate::catalog_file::parse_catalog(&body.catalog_toml) {
        Err(e) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_catalog",
                e.to_string(),
            )
        }
        Ok(catalog) if catalog.version() == body.version => {
            // A store never changes currency: a release in another one than the store's
            // last would be committed and then ignored by every device.
            let previous = match service.store().catalog(&store_id) {
                Ok(previous) => previous,
                Err(e) => {
                    return error(StatusCode::INTERNAL_SERVER_ERROR, "storage", e.to_string())
                }
            };
            let previous_currency = previous
                .and_then(|release| crate::catalog_file::parse_catalog(&release.catalog_toml).ok())
                .map(|previous| previous.currency());
            if let Some(previous_currency) = previous_currency {
                if previous_currency != catalog.currency() {
                    return error(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "currency_changed",
                        format!(
                            "the catalog is priced in {}, the store's releases so far in {}: a store keeps its currency",
                            catalog.currency().code(),
                            previous_currency.code()
                        ),
                    );
                }
            }
        }
        Ok(catalog) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "version_mismatch",
                format!(
                    "the body's version {} is not the catalog file's version {}",
                    body.version,
                    catalog.version()
                ),
            )
        }
    }
    let release = CatalogRelease {
        version: body.version,
        effective_at_ms: body.effective_at_ms,
        catalog_toml: body.catalog_toml,
    };
    // A store no device of which has called yet may be a typo, or a store opening soon:
    // published either way, and the answer says so.
    let store_known = match service.store().stores() {
        Ok(stores) => stores.iter().any(|s| s.store_id == store_id),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, "storage", e.to_string()),
    };
    match service.store().publish_catalog(&store_id, &release) {
        Ok(()) => {
            tracing::info!(store = %store_id, version = release.version, store_known, "catalog published");
            let mut answer = serde_json::json!({"store_id": store_id, "version": release.version, "store_known": store_known});
            if !store_known {
                answer["warning"] = serde_json::json!(format!(
                    "no device of store {store_id} has contacted this cloud yet: check the store id; the catalog waits for the store's first connection"
                ));
            }
            (StatusCode::OK, Json(answer)).into_response()
        }
        Err(e @ CloudStoreError::CatalogVersion { .. }) => {
            error(StatusCode::CONFLICT, "stale_version", e.to_string())
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "storage", e.to_string()),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
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
