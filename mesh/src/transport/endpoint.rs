//! [`MeshEndpoint`]: a node's one QUIC endpoint, dialing and accepting.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use quinn::{ConnectionError, TransportErrorCode, VarInt};
use rustls_pki_types::CertificateDer;
use tokio::sync::{mpsc, Mutex, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

use super::connection::{MeshConnection, CLOSE_NORMAL};
use super::TransportSettings;
use crate::error::{MeshError, Result};
use crate::identity::PeerIdentity;
use crate::tls::{identity_of_chain, MeshTls, RefusalCounters, RefusalReason};

/// The server name a dialer sends (SNI). posmesh ignores it: peers are authorized by the
/// identity in their certificate and the accept policy, not by the dialed name.
pub const DIAL_SERVER_NAME: &str = "mesh.posmesh";

/// TLS alert `no_application_protocol` (RFC 7301 §3.2).
const ALERT_NO_APPLICATION_PROTOCOL: u8 = 120;

/// Verified connections waiting for [`MeshEndpoint::accept`].
const ACCEPTED_QUEUE_MAX: usize = 16;

/// One QUIC endpoint per node: a UDP socket with both server and client configurations,
/// so the node accepts and dials on the same port. Dropping it closes every connection it
/// made or accepted.
#[derive(Debug)]
pub struct MeshEndpoint {
    endpoint: quinn::Endpoint,
    tls: Arc<MeshTls>,
    client_config: quinn::ClientConfig,
    settings: TransportSettings,
    accepted: Mutex<mpsc::Receiver<MeshConnection>>,
    acceptor: JoinHandle<()>,
}

impl Drop for MeshEndpoint {
    fn drop(&mut self) {
        self.acceptor.abort();
        self.endpoint
            .close(VarInt::from_u32(CLOSE_NORMAL), b"endpoint dropped");
    }
}

/// A quinn server configuration from a rustls one and the transport settings.
///
/// # Errors
/// [`MeshError::QuicCrypto`] when the TLS configuration is unusable for QUIC (no TLS 1.3
/// or no AES-128-GCM initial suite), [`MeshError::Settings`].
pub fn quinn_server_config(
    tls: rustls::ServerConfig,
    settings: &TransportSettings,
) -> Result<quinn::ServerConfig> {
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|e| MeshError::QuicCrypto(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(Arc::new(settings.quinn_transport()?));
    Ok(config)
}

/// A quinn client configuration from a rustls one and the transport settings.
///
/// # Errors
/// As [`quinn_server_config`].
pub fn quinn_client_config(
    tls: rustls::ClientConfig,
    settings: &TransportSettings,
) -> Result<quinn::ClientConfig> {
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| MeshError::QuicCrypto(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(Arc::new(settings.quinn_transport()?));
    Ok(config)
}

/// The TLS alert inside a QUIC CRYPTO_ERROR code (0x0100–0x01ff, RFC 9000 §20.1).
fn crypto_alert(code: TransportErrorCode) -> Option<u8> {
    let code = u64::from(code);
    (0x100..0x200).contains(&code).then(|| (code - 0x100) as u8)
}

/// Turns a failed handshake into an error that says who refused whom; counts a local
/// ALPN refusal (certificate refusals are counted by the verifier).
fn handshake_error(error: ConnectionError, counters: &RefusalCounters) -> MeshError {
    match &error {
        ConnectionError::TransportError(e) => {
            if let Some(alert) = crypto_alert(e.code) {
                if alert == ALERT_NO_APPLICATION_PROTOCOL {
                    counters.record(RefusalReason::WrongAlpn);
                    tracing::warn!(reason = %RefusalReason::WrongAlpn, "refused peer");
                }
                return MeshError::RefusedPeer { alert };
            }
        }
        ConnectionError::ConnectionClosed(close) => {
            if let Some(alert) = crypto_alert(close.error_code) {
                // QUIC servers refuse a missing ALPN before a client can (RFC 9001 §8.1), so a
                // peer without `posmesh/1` is counted by whichever side learns of it.
                if alert == ALERT_NO_APPLICATION_PROTOCOL {
                    counters.record(RefusalReason::WrongAlpn);
                    tracing::warn!(reason = %RefusalReason::WrongAlpn, "peer refused our ALPN");
                }
                return MeshError::RefusedByPeer { alert };
            }
        }
        _ => {}
    }
    MeshError::Connection(error)
}

/// Runs `future` with a limit.
async fn timed<T>(
    what: &'static str,
    limit: Duration,
    future: impl Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(limit, future).await {
        Ok(result) => result,
        Err(_) => Err(MeshError::Timeout {
            what,
            after_ms: u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
        }),
    }
}

fn peer_identity_of(connection: &quinn::Connection) -> Result<PeerIdentity> {
    let chain = connection
        .peer_identity()
        .and_then(|any| any.downcast::<Vec<CertificateDer<'static>>>().ok())
        .ok_or(MeshError::NoPeerCertificate)?;
    identity_of_chain(&chain)
}

/// After a failed first exchange: the close reason explains it better than the stream
/// error.
fn first_exchange_error(
    connection: &MeshConnection,
    error: MeshError,
    counters: &RefusalCounters,
) -> MeshError {
    match connection.close_reason() {
        Some(reason) => handshake_error(reason, counters),
        None => error,
    }
}

impl MeshEndpoint {
    /// Binds `addr` (UDP) and starts accepting. Must run inside a tokio runtime.
    ///
    /// # Errors
    /// [`MeshError::Settings`], [`MeshError::Bind`], TLS/QUIC configuration errors.
    pub fn bind(addr: SocketAddr, tls: MeshTls, settings: TransportSettings) -> Result<Self> {
        settings.validate()?;
        let server_config = quinn_server_config(tls.server_config()?, &settings)?;
        let client_config = quinn_client_config(tls.client_config()?, &settings)?;
        let mut endpoint_config = quinn::EndpointConfig::default();
        endpoint_config.rng_seed(settings.rng_seed);
        let socket =
            std::net::UdpSocket::bind(addr).map_err(|source| MeshError::Bind { addr, source })?;
        let endpoint = quinn::Endpoint::new(
            endpoint_config,
            Some(server_config),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(|source| MeshError::Bind { addr, source })?;
        let tls = Arc::new(tls);
        let (tx, rx) = mpsc::channel(ACCEPTED_QUEUE_MAX);
        let acceptor = tokio::spawn(accept_loop(
            endpoint.clone(),
            tls.clone(),
            settings.clone(),
            tx,
        ));
        Ok(Self {
            endpoint,
            tls,
            client_config,
            settings,
            accepted: Mutex::new(rx),
            acceptor,
        })
    }

    /// The bound UDP address (with the real port when bound to port 0).
    ///
    /// # Errors
    /// [`MeshError::Io`] from the socket.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.endpoint.local_addr().map_err(|source| MeshError::Io {
            op: "local address of",
            path: "quic endpoint".into(),
            source,
        })
    }

    /// Our identity.
    pub fn local_identity(&self) -> &PeerIdentity {
        self.tls.local_identity()
    }

    /// The TLS state (trust, CRL, counters).
    pub fn tls(&self) -> &MeshTls {
        &self.tls
    }

    /// Refusals counted by this endpoint's verifiers and handshakes.
    pub fn counters(&self) -> &Arc<RefusalCounters> {
        self.tls.counters()
    }

    /// The transport settings in force.
    pub fn settings(&self) -> &TransportSettings {
        &self.settings
    }

    /// Dials `addr` with our client configuration. Returns only after the handshake AND a
    /// first ping exchange: with TLS 1.3 the server checks our certificate after our side of
    /// the handshake completed, so a refusal surfaces only there (never treat a completed
    /// QUIC handshake as authorization).
    ///
    /// # Errors
    /// [`MeshError::RefusedPeer`] (we refused the server), [`MeshError::RefusedByPeer`]
    /// (the server refused us), [`MeshError::Timeout`] after
    /// [`TransportSettings::handshake_timeout`], connection errors.
    pub async fn connect(&self, addr: SocketAddr) -> Result<MeshConnection> {
        self.connect_with(addr, self.client_config.clone()).await
    }

    /// As [`MeshEndpoint::connect`] with another client configuration (tests, migrations).
    ///
    /// # Errors
    /// As [`MeshEndpoint::connect`].
    pub async fn connect_with(
        &self,
        addr: SocketAddr,
        config: quinn::ClientConfig,
    ) -> Result<MeshConnection> {
        let counters = self.counters().clone();
        let limit = self.settings.handshake_timeout;
        let connecting = self.endpoint.connect_with(config, addr, DIAL_SERVER_NAME)?;
        let connection = timed("handshake", limit, async {
            connecting.await.map_err(|e| handshake_error(e, &counters))
        })
        .await?;
        let peer = peer_identity_of(&connection)?;
        let connection = MeshConnection::new(connection, peer);
        match timed("first ping", limit, connection.ping()).await {
            Ok(rtt) => {
                tracing::debug!(peer = %connection.peer_identity(), ?rtt, "connected");
                Ok(connection)
            }
            Err(e) => Err(first_exchange_error(&connection, e, &counters)),
        }
    }

    /// The next verified incoming connection: its peer passed the verifier and the accept
    /// policy, and sent its first ping (so it accepted our certificate too). Failed
    /// handshakes are logged, counted and skipped; the endpoint keeps serving.
    ///
    /// # Errors
    /// [`MeshError::EndpointClosed`] once the endpoint is closed.
    pub async fn accept(&self) -> Result<MeshConnection> {
        let mut accepted = self.accepted.lock().await;
        accepted.recv().await.ok_or(MeshError::EndpointClosed)
    }

    /// Closes every connection and stops accepting.
    pub fn close(&self) {
        self.acceptor.abort();
        self.endpoint
            .close(VarInt::from_u32(CLOSE_NORMAL), b"endpoint closed");
    }
}

/// Accepts incoming connections until the endpoint closes; each handshake runs in its own
/// task, at most `pending_handshakes_max` at once.
async fn accept_loop(
    endpoint: quinn::Endpoint,
    tls: Arc<MeshTls>,
    settings: TransportSettings,
    accepted: mpsc::Sender<MeshConnection>,
) {
    let permits = Arc::new(Semaphore::new(settings.pending_handshakes_max));
    let mut tasks = JoinSet::new();
    while let Some(incoming) = endpoint.accept().await {
        while tasks.try_join_next().is_some() {}
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(remote = %incoming.remote_address(), "too many handshakes, refusing");
            incoming.refuse();
            continue;
        };
        let tls = tls.clone();
        let accepted = accepted.clone();
        let limit = settings.handshake_timeout;
        tasks.spawn(async move {
            let _permit = permit;
            let remote = incoming.remote_address();
            match handshake_incoming(incoming, tls.counters(), limit).await {
                Ok(connection) => {
                    if accepted.send(connection).await.is_err() {
                        tracing::debug!("endpoint dropped while a connection was pending");
                    }
                }
                Err(error) => tracing::info!(%remote, %error, "incoming connection failed"),
            }
        });
    }
    tasks.shutdown().await;
}

/// Server side of a handshake: TLS (the verifier refuses bad clients), then wait for the
/// client's first ping, which proves it accepted our certificate.
async fn handshake_incoming(
    incoming: quinn::Incoming,
    counters: &RefusalCounters,
    limit: Duration,
) -> Result<MeshConnection> {
    let connecting = incoming
        .accept()
        .map_err(|e| handshake_error(e, counters))?;
    let connection = timed("handshake", limit, async {
        connecting.await.map_err(|e| handshake_error(e, counters))
    })
    .await?;
    let peer = peer_identity_of(&connection)?;
    let connection = MeshConnection::new(connection, peer);
    match timed("first ping", limit, connection.peer_pinged()).await {
        Ok(()) => Ok(connection),
        Err(e) => Err(first_exchange_error(&connection, e, counters)),
    }
}
