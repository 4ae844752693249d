//! [`MeshConnection`]: a verified QUIC connection to one peer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use quinn::{Connection, ConnectionError, VarInt};
use tokio::sync::{mpsc, Mutex, Notify};
use tokio::task::{JoinHandle, JoinSet};

use super::stream::MeshStream;
use super::StreamPurpose;
use crate::error::{MeshError, Result};
use crate::frame::FrameDecoder;
use crate::identity::PeerIdentity;

/// Streams of one purpose opened by the peer and not yet taken with
/// [`MeshConnection::accept_stream_of`]; a further one waits (at most [`PURPOSE_TIMEOUT`])
/// until the reader catches up. The peer's open streams are bounded by QUIC's stream limit
/// (quinn: 100 bidirectional streams per connection), so waiting costs bounded memory.
const INCOMING_STREAMS_MAX: usize = 64;

/// The purposes whose streams are queued for readers (`Ping` is answered internally).
const QUEUED_PURPOSES: [StreamPurpose; 4] = [
    StreamPurpose::Raft,
    StreamPurpose::Sync,
    StreamPurpose::Api,
    StreamPurpose::Cloud,
];

/// How long an accepted stream may take to name its purpose.
const PURPOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Application close code when we close a connection normally (RFC 9000 §10.2).
pub const CLOSE_NORMAL: u32 = 0;

/// A QUIC connection (RFC 9000) whose peer passed mutual TLS and the accept policy.
///
/// A background task accepts the peer's streams: it answers `Ping` streams itself (so
/// round-trip measurement works whoever reads) and queues the others by purpose, one queue
/// each, for [`MeshConnection::accept_stream_of`] — so ledger sync and Raft each read their
/// own streams without one holding the other's. Dropping the connection stops that task
/// and closes the connection.
#[derive(Debug)]
pub struct MeshConnection {
    connection: Connection,
    peer: PeerIdentity,
    /// The serial of the peer's certificate, lowercase hex ([`crate::tls::serial_hex_of_der`]).
    peer_serial_hex: Option<String>,
    /// One queue per purpose of [`QUEUED_PURPOSES`], in that order.
    incoming: Vec<Mutex<mpsc::Receiver<MeshStream>>>,
    ping_answered: Arc<Notify>,
    ping_nonce: AtomicU64,
    responder: JoinHandle<()>,
    /// Call streams whose last call was answered, kept for the next call of their purpose
    /// ([`MeshConnection::call`]).
    pub(super) idle_call_streams: std::sync::Mutex<Vec<MeshStream>>,
}

impl Drop for MeshConnection {
    fn drop(&mut self) {
        self.responder.abort();
        self.connection
            .close(VarInt::from_u32(CLOSE_NORMAL), b"dropped");
    }
}

impl MeshConnection {
    /// Wraps a handshaken connection whose peer is `peer` and starts the stream responder.
    pub(crate) fn new(connection: Connection, peer: PeerIdentity) -> Self {
        let (senders, receivers): (Vec<_>, Vec<_>) = QUEUED_PURPOSES
            .iter()
            .map(|_| mpsc::channel(INCOMING_STREAMS_MAX))
            .unzip();
        let ping_answered = Arc::new(Notify::new());
        let responder = tokio::spawn(respond(connection.clone(), senders, ping_answered.clone()));
        let peer_serial_hex = connection
            .peer_identity()
            .and_then(|any| {
                any.downcast::<Vec<rustls_pki_types::CertificateDer<'static>>>()
                    .ok()
            })
            .and_then(|chain| {
                chain
                    .first()
                    .and_then(|cert| crate::tls::serial_hex_of_der(cert))
            });
        Self {
            connection,
            peer,
            peer_serial_hex,
            incoming: receivers.into_iter().map(Mutex::new).collect(),
            ping_answered,
            ping_nonce: AtomicU64::new(0),
            responder,
            idle_call_streams: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The peer's verified identity (from its certificate's DNS SAN).
    pub fn peer_identity(&self) -> &PeerIdentity {
        &self.peer
    }

    /// The serial number of the peer's certificate, lowercase hex of its minimal
    /// big-endian bytes (as `posmesh ca revoke` takes it); `None` if it could not be read.
    pub fn peer_serial_hex(&self) -> Option<&str> {
        self.peer_serial_hex.as_deref()
    }

    /// The peer's UDP address (may change with migration).
    pub fn remote_address(&self) -> std::net::SocketAddr {
        self.connection.remote_address()
    }

    /// QUIC's smoothed round-trip estimate (RFC 9002 §5.3).
    pub fn rtt(&self) -> Duration {
        self.connection.rtt()
    }

    /// The underlying quinn connection (for datagrams, stats, …).
    pub fn quinn(&self) -> &Connection {
        &self.connection
    }

    /// Why the connection closed, or `None` while it is open.
    pub fn close_reason(&self) -> Option<ConnectionError> {
        self.connection.close_reason()
    }

    /// Waits until the connection closes and returns why.
    pub async fn closed(&self) -> ConnectionError {
        self.connection.closed().await
    }

    /// Closes the connection with application `code` and `reason`.
    pub fn close(&self, code: u32, reason: &[u8]) {
        self.connection.close(VarInt::from_u32(code), reason);
    }

    /// Opens a stream for `purpose` (its first frame names the purpose).
    ///
    /// # Errors
    /// [`MeshError::Connection`] when the connection is gone, [`MeshError::Write`].
    pub async fn open_stream(&self, purpose: StreamPurpose) -> Result<MeshStream> {
        let (send, recv) = self.connection.open_bi().await?;
        let mut stream = MeshStream::new(purpose, send, recv, FrameDecoder::new());
        stream.send_frame(&[purpose.tag()]).await?;
        Ok(stream)
    }

    /// The next stream of `purpose` the peer opened. `Ping` streams are answered
    /// internally and never returned.
    ///
    /// # Errors
    /// [`MeshError::Connection`] with the close reason once the connection is closed;
    /// [`MeshError::StreamPurposeUnknown`] for `Ping`.
    pub async fn accept_stream_of(&self, purpose: StreamPurpose) -> Result<MeshStream> {
        let index = queue_index(purpose)
            .ok_or_else(|| MeshError::StreamPurposeUnknown(vec![purpose.tag()]))?;
        let mut incoming = self.incoming[index].lock().await;
        match incoming.recv().await {
            Some(stream) => Ok(stream),
            None => Err(self.lost()),
        }
    }

    fn lost(&self) -> MeshError {
        MeshError::Connection(
            self.connection
                .close_reason()
                .unwrap_or(ConnectionError::LocallyClosed),
        )
    }

    /// Measures one round trip on a fresh `Ping` stream: sends an 8-byte nonce and waits
    /// for its echo. This is a driver function and reads tokio's clock.
    ///
    /// # Errors
    /// [`MeshError::PingMismatch`] for a wrong echo; stream and connection errors (a peer
    /// that refused our certificate after the TLS 1.3 handshake shows up here).
    pub async fn ping(&self) -> Result<Duration> {
        let nonce = self
            .ping_nonce
            .fetch_add(1, Ordering::Relaxed)
            .to_be_bytes();
        let started = tokio::time::Instant::now();
        let mut stream = self.open_stream(StreamPurpose::Ping).await?;
        stream.send_frame(&nonce).await?;
        let echo = stream.recv_frame().await?;
        let elapsed = started.elapsed();
        stream.finish();
        match echo {
            Some(echo) if echo == nonce => Ok(elapsed),
            Some(_) => Err(MeshError::PingMismatch),
            None => Err(self.lost_or(MeshError::PingMismatch)),
        }
    }

    /// Opens a `Ping` stream for repeated round trips on one stream (the peer echoes up to
    /// 1,024 frames per stream): request round trips without the cost of a new stream each.
    ///
    /// # Errors
    /// As [`MeshConnection::open_stream`].
    pub async fn ping_stream(&self) -> Result<PingStream> {
        Ok(PingStream {
            stream: self.open_stream(StreamPurpose::Ping).await?,
            nonce: 0,
        })
    }

    fn lost_or(&self, other: MeshError) -> MeshError {
        match self.connection.close_reason() {
            Some(reason) => MeshError::Connection(reason),
            None => other,
        }
    }

    /// Waits until the peer has sent us at least one ping that we answered: proof that it
    /// accepted our certificate (TLS 1.3 client authentication completes after the
    /// client's handshake, RFC 8446 §4.4.2). Returns early with the close reason.
    pub(crate) async fn peer_pinged(&self) -> Result<()> {
        tokio::select! {
            () = self.ping_answered.notified() => Ok(()),
            reason = self.connection.closed() => Err(MeshError::Connection(reason)),
        }
    }
}

/// Where streams of `purpose` are queued (`None` for `Ping`).
fn queue_index(purpose: StreamPurpose) -> Option<usize> {
    QUEUED_PURPOSES.iter().position(|p| *p == purpose)
}

/// Accepts the peer's streams until the connection closes: routes each by its purpose
/// frame, echoes `Ping` streams, queues the rest by purpose.
async fn respond(
    connection: Connection,
    queues: Vec<mpsc::Sender<MeshStream>>,
    answered: Arc<Notify>,
) {
    let mut tasks = JoinSet::new();
    loop {
        let (send, recv) = match connection.accept_bi().await {
            Ok(pair) => pair,
            Err(e) => {
                tracing::debug!(error = %e, "stream responder stops");
                break;
            }
        };
        // Reap finished stream tasks so the set stays small.
        while tasks.try_join_next().is_some() {}
        let queues = queues.clone();
        let answered = answered.clone();
        tasks.spawn(async move {
            let mut stream = MeshStream::new(StreamPurpose::Ping, send, recv, FrameDecoder::new());
            let first = tokio::time::timeout(PURPOSE_TIMEOUT, stream.recv_frame()).await;
            let purpose = match first {
                Ok(Ok(Some(frame))) => StreamPurpose::from_frame(&frame),
                Ok(Ok(None)) => return,
                Ok(Err(e)) => Err(e),
                Err(_) => Err(MeshError::Timeout {
                    what: "stream purpose",
                    after_ms: PURPOSE_TIMEOUT.as_millis() as u64,
                }),
            };
            let purpose = match purpose {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "dropping stream without a valid purpose");
                    return;
                }
            };
            let mut stream = stream.with_purpose(purpose);
            match queue_index(purpose) {
                None => echo(&mut stream, &answered).await,
                // Wait for room rather than reset the stream: a burst of forwarded client
                // writes (a busy store's followers forwarding to the leader) used to lose
                // the calls beyond the queue.
                Some(index) => match queues[index].send_timeout(stream, PURPOSE_TIMEOUT).await {
                    Ok(()) => {}
                    Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                        tracing::warn!(
                            ?purpose,
                            after_ms = PURPOSE_TIMEOUT.as_millis() as u64,
                            "a stream of this purpose was not taken in time; dropped it"
                        );
                    }
                    Err(mpsc::error::SendTimeoutError::Closed(_)) => {
                        tracing::debug!("connection dropped before a stream was accepted");
                    }
                },
            }
        });
    }
    tasks.shutdown().await;
}

/// Echoes every frame of a `Ping` stream, at most [`PINGS_PER_STREAM_MAX`] of them.
async fn echo(stream: &mut MeshStream, answered: &Notify) {
    for _ in 0..PINGS_PER_STREAM_MAX {
        match stream.recv_frame().await {
            Ok(Some(frame)) => {
                if stream.send_frame(&frame).await.is_err() {
                    return;
                }
                answered.notify_one();
            }
            Ok(None) | Err(_) => break,
        }
    }
    stream.finish();
}

/// Pings answered on one stream before the responder closes it.
const PINGS_PER_STREAM_MAX: usize = 1_024;

/// A `Ping` stream kept open for repeated round trips (see [`MeshConnection::ping_stream`]).
#[derive(Debug)]
pub struct PingStream {
    stream: MeshStream,
    nonce: u64,
}

impl PingStream {
    /// One round trip: sends an 8-byte nonce, waits for its echo. Reads tokio's clock.
    ///
    /// # Errors
    /// [`MeshError::PingMismatch`] for a wrong or missing echo; stream errors.
    pub async fn ping(&mut self) -> Result<Duration> {
        self.nonce = self.nonce.wrapping_add(1);
        let nonce = self.nonce.to_be_bytes();
        let started = tokio::time::Instant::now();
        self.stream.send_frame(&nonce).await?;
        match self.stream.recv_frame().await? {
            Some(echo) if echo == nonce => Ok(started.elapsed()),
            _ => Err(MeshError::PingMismatch),
        }
    }
}
