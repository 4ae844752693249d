//! [`MeshStream`]: a bidirectional QUIC stream carrying frames.

use quinn::{RecvStream, SendStream, VarInt};

use super::StreamPurpose;
use crate::error::{MeshError, Result};
use crate::frame::{encode_frame, FrameDecoder};

/// Bytes read from QUIC per call (a frame may span many reads).
const READ_CHUNK_BYTES_MAX: usize = 64 * 1024;

/// Application error code sent with STOP_SENDING (RFC 9000 §19.5) when a peer breaks the
/// framing.
pub const STREAM_ERROR_FRAMING: u32 = 1;

/// A bidirectional stream (RFC 9000 §2) whose bytes are frames ([`crate::frame`]).
#[derive(Debug)]
pub struct MeshStream {
    purpose: StreamPurpose,
    send: SendStream,
    recv: RecvStream,
    decoder: FrameDecoder,
}

impl MeshStream {
    pub(crate) fn new(
        purpose: StreamPurpose,
        send: SendStream,
        recv: RecvStream,
        decoder: FrameDecoder,
    ) -> Self {
        Self {
            purpose,
            send,
            recv,
            decoder,
        }
    }

    /// The same stream, relabelled once its purpose frame has been read.
    pub(crate) fn with_purpose(self, purpose: StreamPurpose) -> Self {
        Self { purpose, ..self }
    }

    /// What the stream carries.
    pub fn purpose(&self) -> StreamPurpose {
        self.purpose
    }

    /// Sends one frame.
    ///
    /// # Errors
    /// [`MeshError::FrameTooLarge`], [`MeshError::Write`].
    pub async fn send_frame(&mut self, payload: &[u8]) -> Result<()> {
        let bytes = encode_frame(payload)?;
        self.send.write_all(&bytes).await?;
        Ok(())
    }

    /// Receives one frame; `Ok(None)` when the peer finished the stream cleanly.
    ///
    /// # Errors
    /// [`MeshError::Read`]; framing errors ([`MeshError::FrameTooLarge`],
    /// [`MeshError::FrameLengthMalformed`], [`MeshError::FrameTruncated`]), after which the
    /// stream is stopped with [`STREAM_ERROR_FRAMING`].
    pub async fn recv_frame(&mut self) -> Result<Option<Vec<u8>>> {
        loop {
            match self.decoder.pop() {
                Ok(Some(frame)) => return Ok(Some(frame)),
                Ok(None) => {}
                Err(e) => return Err(self.framing_error(e)),
            }
            match self.recv.read_chunk(READ_CHUNK_BYTES_MAX, true).await? {
                Some(chunk) => {
                    if let Err(e) = self.decoder.push(&chunk.bytes) {
                        return Err(self.framing_error(e));
                    }
                }
                None => {
                    return match self.decoder.finish() {
                        Ok(()) => Ok(None),
                        Err(e) => Err(self.framing_error(e)),
                    }
                }
            }
        }
    }

    fn framing_error(&mut self, error: MeshError) -> MeshError {
        // The stream may already be stopped or finished; nothing more to do then.
        let _ = self.recv.stop(VarInt::from_u32(STREAM_ERROR_FRAMING));
        error
    }

    /// Finishes our sending side (the peer's `recv_frame` then returns `Ok(None)`).
    /// Receiving continues. Finishing twice is harmless.
    pub fn finish(&mut self) {
        // The only error is "already finished or reset", which leaves nothing to do.
        let _ = self.send.finish();
    }
}
