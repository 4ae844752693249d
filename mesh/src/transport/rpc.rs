//! Request/response calls over a [`MeshConnection`]: one request frame, one response
//! frame, on a QUIC stream of the call's purpose — for protocols that are request/response
//! by nature (Raft's AppendEntries, Vote and snapshot RPCs, the cloud's calls), without a
//! head-of-line queue of their own.
//!
//! A stream carries calls one at a time and is kept for the next call once its call is
//! answered: a caller reuses an idle stream of the purpose, or opens a new one (no round
//! trip, RFC 9000 §2.1) when all are busy, so calls still run concurrently. The server
//! answers a stream's calls in order in one task. A Raft leader's replication to one
//! follower (one AppendEntries after another) so runs on one stream: no stream set-up,
//! purpose frame or task spawn per call on either side. A stream whose call failed or
//! timed out is dropped, never reused (its late answer cannot be taken for another
//! call's).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use super::{MeshConnection, MeshStream, StreamPurpose};
use crate::error::{MeshError, Result};

/// Calls served at once per connection (streams, each answered in order); a peer that
/// opens more waits for the stream limit. Above QUIC's stream limit per connection
/// (quinn: 100), so in practice the peer's stream credit is the bound: a follower
/// forwarding a busy store's client writes to the leader has each of them served at once
/// (they mostly wait for a Raft commit, not for CPU).
pub const RPC_IN_FLIGHT_MAX: usize = 128;

/// A handler of one request: the request bytes in, the response bytes out (an error is
/// the handler's to encode in the response).
pub type RpcHandler =
    Arc<dyn Fn(Vec<u8>) -> Pin<Box<dyn Future<Output = Vec<u8>> + Send>> + Send + Sync>;

/// Idle call streams kept per connection (all purposes together); an answered call's
/// stream beyond this is finished. Well under QUIC's stream limit (quinn: 100), which idle
/// streams count against.
pub const IDLE_CALL_STREAMS_MAX: usize = 16;

impl MeshConnection {
    /// Sends `request` as a call of `purpose` (on an idle stream of that purpose, or a new
    /// one) and waits at most `timeout` for the response frame.
    ///
    /// # Errors
    /// [`MeshError::Timeout`]; connection and stream errors; [`MeshError::Timeout`] too
    /// when the peer closed a new stream without answering.
    pub async fn call(
        &self,
        purpose: StreamPurpose,
        request: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>> {
        let exchange = async {
            if let Some(mut stream) = self.take_idle_call_stream(purpose) {
                // A stream the peer stopped serving shows it before the request is
                // handled — the write is refused, or the stream ends unanswered — and the
                // call goes on a new stream. A read error may come after the peer handled
                // the request: it is the call's error.
                if stream.send_frame(request).await.is_ok() {
                    if let Some(response) = stream.recv_frame().await? {
                        self.keep_idle_call_stream(stream);
                        return Ok(Some(response));
                    }
                }
            }
            let mut stream = self.open_stream(purpose).await?;
            stream.send_frame(request).await?;
            let response = stream.recv_frame().await?;
            if response.is_some() {
                self.keep_idle_call_stream(stream);
            }
            Ok(response)
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

    fn take_idle_call_stream(&self, purpose: StreamPurpose) -> Option<MeshStream> {
        let mut idle = self.idle_call_streams_lock();
        let position = idle.iter().rposition(|s| s.purpose() == purpose)?;
        Some(idle.swap_remove(position))
    }

    fn keep_idle_call_stream(&self, mut stream: MeshStream) {
        let mut idle = self.idle_call_streams_lock();
        if idle.len() < IDLE_CALL_STREAMS_MAX {
            idle.push(stream);
        } else {
            drop(idle);
            stream.finish();
        }
    }

    fn idle_call_streams_lock(&self) -> std::sync::MutexGuard<'_, Vec<MeshStream>> {
        self.idle_call_streams
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Answers the peer's calls of `purpose` with `handler` until the connection closes:
    /// each stream's calls in order, at most [`RPC_IN_FLIGHT_MAX`] streams at once.
    /// Returns why it stopped.
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
                // Until the caller finishes or drops the stream.
                while let Ok(Some(request)) = stream.recv_frame().await {
                    let response = handler(request).await;
                    if stream.send_frame(&response).await.is_err() {
                        return;
                    }
                }
                stream.finish();
            });
        }
    }
}
