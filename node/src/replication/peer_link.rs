//! [`PeerLink`]: the `Sync` streams of one peer connection — one opened by us that we only
//! send on, one opened by the peer that we only receive on.

use super::ReplicationService;
use posmesh_mesh::transport::{MeshConnection, StreamPurpose};
use posmesh_proto::mesh::v1::{sync_frame, SyncFrame};
use posmesh_sync::replication::PeerId;
use prost::Message;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Most frames queued for one peer's stream. The replicator's own flow control (batches in
/// flight per peer and device) keeps the queue far below this; a frame that does not fit is
/// dropped and counted (`posmesh_replication_frames_dropped_total`) — the core re-sends.
pub const OUTBOUND_FRAMES_MAX: usize = 1_024;

/// How long opening our `Sync` stream may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// QUIC application close code when a sync stream fails on a live connection: the peer
/// manager then reconnects, and replication starts afresh on the new connection.
const CLOSE_SYNC_FAILED: u32 = 3;

/// The sending side of one peer connection, as the service routes frames to it.
pub struct PeerLink {
    /// The peer manager's id of the connection.
    pub connection_id: u64,
    outbound: mpsc::Sender<Vec<u8>>,
}

impl PeerLink {
    /// A link for connection `connection_id`, and the queue its send loop drains.
    pub fn new(connection_id: u64) -> (Self, mpsc::Receiver<Vec<u8>>) {
        let (outbound, queue) = mpsc::channel(OUTBOUND_FRAMES_MAX);
        (
            Self {
                connection_id,
                outbound,
            },
            queue,
        )
    }

    /// Queues an encoded frame without waiting; drops it when the queue is full or the
    /// stream is gone.
    pub fn send(&self, frame: Vec<u8>) {
        let len = frame.len() as u64;
        if self.outbound.try_send(frame).is_ok() {
            metrics::counter!("posmesh_replication_bytes_sent_total").increment(len);
        } else {
            metrics::counter!("posmesh_replication_frames_dropped_total").increment(1);
        }
    }
}

/// Encodes one `Sync` stream frame.
pub fn encode(kind: sync_frame::Kind) -> Vec<u8> {
    SyncFrame { kind: Some(kind) }.encode_to_vec()
}

/// Opens our `Sync` stream on `connection` and sends the queued frames until the queue
/// closes (the link was replaced or removed). A stream failure on a live connection
/// closes the connection.
pub async fn send_loop(
    connection: Arc<MeshConnection>,
    peer: PeerId,
    mut queue: mpsc::Receiver<Vec<u8>>,
) {
    let opened =
        tokio::time::timeout(OPEN_TIMEOUT, connection.open_stream(StreamPurpose::Sync)).await;
    let mut stream = match opened {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => return failed(&connection, &peer, &error.to_string()),
        Err(_) => return failed(&connection, &peer, "timed out opening the sync stream"),
    };
    while let Some(frame) = queue.recv().await {
        if let Err(error) = stream.send_frame(&frame).await {
            return failed(&connection, &peer, &error.to_string());
        }
    }
    stream.finish();
}

/// Receives the peer's `Sync` stream on `connection` and hands each frame to `service`,
/// in order, until the stream or the connection ends.
pub async fn receive_loop(
    service: Arc<ReplicationService>,
    connection: Arc<MeshConnection>,
    peer: PeerId,
    connection_id: u64,
) {
    let mut stream = match connection.accept_stream_of(StreamPurpose::Sync).await {
        Ok(stream) => stream,
        Err(error) => {
            tracing::debug!(%peer, %error, "no sync stream: connection ended");
            return;
        }
    };
    loop {
        let frame = match stream.recv_frame().await {
            Ok(Some(frame)) => frame,
            Ok(None) => return,
            Err(error) => return failed(&connection, &peer, &error.to_string()),
        };
        if !service.is_current(&peer, connection_id) {
            return; // replaced by a newer connection: that one carries the sync now
        }
        match SyncFrame::decode(frame.as_slice()).map(|f| f.kind) {
            Ok(Some(sync_frame::Kind::Sync(message))) => service.on_sync_message(&peer, message),
            Ok(Some(sync_frame::Kind::Attestation(attestation))) => {
                service.on_attestation(&peer, attestation).await;
            }
            Ok(Some(sync_frame::Kind::OrderSync(message))) => {
                service.on_order_sync(&peer, message);
            }
            Ok(Some(sync_frame::Kind::CardData(message))) => {
                service.on_card_data(&peer, message).await;
            }
            Ok(None) => {} // a kind this version does not know (a newer peer)
            Err(error) => service.on_malformed_frame(&peer, &error),
        }
    }
}

fn failed(connection: &MeshConnection, peer: &PeerId, error: &str) {
    if connection.close_reason().is_none() {
        tracing::info!(%peer, %error, "sync stream failed; closing the connection");
        connection.close(CLOSE_SYNC_FAILED, b"sync stream failed");
    }
}
