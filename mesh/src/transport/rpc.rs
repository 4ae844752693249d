//! Request/response calls over a [`MeshConnection`]: one QUIC stream per call (opening a
//! stream costs no round trip, RFC 9000 §2.1), one request frame, one response frame. For
//! protocols that are request/response by nature — Raft's AppendEntries, Vote and snapshot
//! RPCs — without a head-of-line queue of their own.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use super::{MeshConnection, StreamPurpose};
use crate::error::{MeshError, Result};

/// Calls served at once per connection; a peer that opens more waits for the stream limit.
/// Above QUIC's stream limit per connection (quinn: 100), so in practice the peer's stream
/// credit is the bound: a follower forwarding a busy store's client writes to the leader
/// has each of them served at once (they mostly wait for a Raft commit, not for CPU).
pub const RPC_IN_FLIGHT_MAX: usize = 128;

/// A handler of one request: the request bytes in, the response bytes out (an error is
/// the handler's to encode in the response).
pub type RpcHandler =
    Arc<dyn Fn(Vec<u8>) -> Pin<Box<dyn Future<Output = Vec<u8>> + Send>> + Send + Sync>;

impl MeshConnection {
    /// Sends `request` on a new stream of `purpose` and waits at most `timeout` for the
    /// response frame.
    ///
    /// # Errors
    /// [`MeshError::Timeout`]; connection and stream errors; [`MeshError::Connection`] when
    /// the peer closed the stream without answering.
    pub async fn call(
        &self,
        purpose: StreamPurpose,
        request: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>> {
        let exchange = async {
            let mut stream = self.open_stream(purpose).await?;
            stream.send_frame(request).await?;
            stream.finish();
            stream.recv_frame().await
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(Some(response))) => Ok(response),
            Ok(Ok(None)) => Err(MeshError::Timeout {
                what: "rpc response (stream closed unanswered)",
                after_ms: 0,
            }),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(MeshError::Timeout {
                what: "rpc response",
                after_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            }),
        }
    }

    /// Answers the peer's calls of `purpose` with `handler` until the connection closes,
    /// at most [`RPC_IN_FLIGHT_MAX`] at once. Returns why it stopped.
    pub async fn serve_calls(&self, purpose: StreamPurpose, handler: RpcHandler) -> MeshError {
        let mut in_flight = JoinSet::new();
        loop {
            while in_flight.len() >= RPC_IN_FLIGHT_MAX {
                let _ = in_flight.join_next().await;
            }
            while in_flight.try_join_next().is_some() {}
            let mut stream = match self.accept_stream_of(purpose).await {
                Ok(stream) => stream,
                Err(error) => return error,
            };
            let handler = handler.clone();
            in_flight.spawn(async move {
                let request = match stream.recv_frame().await {
                    Ok(Some(request)) => request,
                    Ok(None) | Err(_) => return,
                };
                let response = handler(request).await;
                if stream.send_frame(&response).await.is_ok() {
                    stream.finish();
                }
            });
        }
    }
}
