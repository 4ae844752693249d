//! [`FrameDecoder`]: sans-IO decoder of length-delimited frames.

use super::{FRAME_BYTES_MAX, LENGTH_PREFIX_BYTES_MAX};
use crate::error::{MeshError, Result};

/// Outcome of parsing the length prefix at the front of the buffer.
enum Prefix {
    /// The prefix is complete: `(prefix_bytes, payload_bytes)`.
    Complete(usize, usize),
    /// More bytes are needed.
    Incomplete,
}

/// Decodes a byte stream into frames: [`FrameDecoder::push`] bytes as they arrive,
/// [`FrameDecoder::pop`] complete frames.
///
/// A frame whose length prefix exceeds [`FRAME_BYTES_MAX`] is an error as soon as the prefix
/// is complete, before its payload is buffered. After an error the decoder is poisoned:
/// every later call returns the same kind of error and the stream must be closed.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buffer: Vec<u8>,
    /// Bytes at the front of `buffer` already handed out (compacted lazily).
    consumed: usize,
    poisoned: Option<PoisonKind>,
}

#[derive(Clone, Copy, Debug)]
enum PoisonKind {
    TooLarge(u64),
    Malformed,
}

impl PoisonKind {
    fn error(self) -> MeshError {
        match self {
            Self::TooLarge(len_bytes) => MeshError::FrameTooLarge {
                len_bytes,
                max_bytes: FRAME_BYTES_MAX,
            },
            Self::Malformed => MeshError::FrameLengthMalformed,
        }
    }
}

/// Parses a varint length prefix (protobuf encoding, little-endian 7-bit groups).
fn parse_prefix(pending: &[u8]) -> Result<Prefix, PoisonKind> {
    let mut value: u64 = 0;
    for (i, byte) in pending.iter().take(LENGTH_PREFIX_BYTES_MAX).enumerate() {
        let bits = u64::from(byte & 0x7f);
        // The 10th byte may only contribute the top bit of a u64.
        if i == LENGTH_PREFIX_BYTES_MAX - 1 && bits > 1 {
            return Err(PoisonKind::Malformed);
        }
        value |= bits << (7 * i);
        if value > FRAME_BYTES_MAX as u64 {
            return Err(PoisonKind::TooLarge(value));
        }
        if byte & 0x80 == 0 {
            // `value <= FRAME_BYTES_MAX`, so it fits in usize.
            return Ok(Prefix::Complete(i + 1, value as usize));
        }
    }
    if pending.len() >= LENGTH_PREFIX_BYTES_MAX {
        return Err(PoisonKind::Malformed);
    }
    Ok(Prefix::Incomplete)
}

impl FrameDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered_bytes(&self) -> usize {
        self.buffer.len() - self.consumed
    }

    /// Appends received bytes and checks the pending length prefix.
    ///
    /// # Errors
    /// [`MeshError::FrameTooLarge`] or [`MeshError::FrameLengthMalformed`] when the pending
    /// prefix is invalid (the decoder is then poisoned and `bytes` are not kept).
    pub fn push(&mut self, bytes: &[u8]) -> Result<()> {
        if let Some(kind) = self.poisoned {
            return Err(kind.error());
        }
        if self.consumed > 0 && self.consumed * 2 >= self.buffer.len() {
            self.buffer.drain(..self.consumed);
            self.consumed = 0;
        }
        self.buffer.extend_from_slice(bytes);
        // Check the first pending prefix now, so an oversized announcement fails before
        // the caller keeps feeding its payload.
        self.prefix().map(|_| ())
    }

    /// Returns the next complete frame, `Ok(None)` when more bytes are needed.
    ///
    /// # Errors
    /// As [`FrameDecoder::push`].
    pub fn pop(&mut self) -> Result<Option<Vec<u8>>> {
        if let Some(kind) = self.poisoned {
            return Err(kind.error());
        }
        match self.prefix()? {
            Prefix::Incomplete => Ok(None),
            Prefix::Complete(prefix_bytes, payload_bytes) => {
                let start = self.consumed + prefix_bytes;
                let end = start + payload_bytes;
                if self.buffer.len() < end {
                    return Ok(None);
                }
                let frame = self.buffer[start..end].to_vec();
                self.consumed = end;
                if self.consumed == self.buffer.len() {
                    self.buffer.clear();
                    self.consumed = 0;
                }
                Ok(Some(frame))
            }
        }
    }

    /// Parses the varint length prefix at the front of the pending bytes.
    fn prefix(&mut self) -> Result<Prefix> {
        match parse_prefix(&self.buffer[self.consumed..]) {
            Ok(prefix) => Ok(prefix),
            Err(kind) => Err(self.poison(kind)),
        }
    }

    fn poison(&mut self, kind: PoisonKind) -> MeshError {
        self.poisoned = Some(kind);
        self.buffer = Vec::new();
        self.consumed = 0;
        kind.error()
    }

    /// Declares the end of the stream.
    ///
    /// # Errors
    /// [`MeshError::FrameTruncated`] when bytes of an unfinished frame remain.
    pub fn finish(&self) -> Result<()> {
        match self.buffered_bytes() {
            0 => Ok(()),
            buffered_bytes => Err(MeshError::FrameTruncated { buffered_bytes }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::encode_frame;
    use proptest::prelude::*;

    fn decode_all(decoder: &mut FrameDecoder) -> Result<Vec<Vec<u8>>> {
        let mut frames = Vec::new();
        // Bounded: each pop consumes at least one byte or returns None.
        for _ in 0..100_000 {
            match decoder.pop()? {
                Some(f) => frames.push(f),
                None => return Ok(frames),
            }
        }
        Ok(frames)
    }

    #[test]
    fn empty_and_small_frames() -> Result<()> {
        let mut d = FrameDecoder::new();
        d.push(&encode_frame(b"")?)?;
        d.push(&encode_frame(b"abc")?)?;
        assert_eq!(decode_all(&mut d)?, vec![b"".to_vec(), b"abc".to_vec()]);
        d.finish()
    }

    #[test]
    fn truncated_waits_then_completes() -> Result<()> {
        let bytes = encode_frame(&[7u8; 300])?;
        let mut d = FrameDecoder::new();
        d.push(&bytes[..1])?;
        assert_eq!(d.pop()?, None);
        d.push(&bytes[1..100])?;
        assert_eq!(d.pop()?, None);
        assert!(matches!(d.finish(), Err(MeshError::FrameTruncated { .. })));
        d.push(&bytes[100..])?;
        assert_eq!(d.pop()?, Some(vec![7u8; 300]));
        d.finish()
    }

    #[test]
    fn oversized_refused_before_payload() {
        let mut prefix = Vec::new();
        let announced = FRAME_BYTES_MAX + 1;
        assert!(prost::encode_length_delimiter(announced, &mut prefix).is_ok());
        let mut d = FrameDecoder::new();
        assert!(matches!(
            d.push(&prefix),
            Err(MeshError::FrameTooLarge { len_bytes, .. }) if len_bytes == announced as u64
        ));
        // Poisoned: further input is refused too.
        assert!(d.push(b"x").is_err());
        assert!(d.pop().is_err());
        assert!(encode_frame(&vec![0u8; announced]).is_err());
    }

    #[test]
    fn max_frame_accepted() -> Result<()> {
        let payload = vec![1u8; FRAME_BYTES_MAX];
        let mut d = FrameDecoder::new();
        d.push(&encode_frame(&payload)?)?;
        assert_eq!(d.pop()?.map(|f| f.len()), Some(FRAME_BYTES_MAX));
        Ok(())
    }

    #[test]
    fn overlong_varint_is_malformed() {
        // Eleven continuation bytes of zero value.
        let mut d = FrameDecoder::new();
        assert!(matches!(
            d.push(&[0x80; 11]),
            Err(MeshError::FrameLengthMalformed)
        ));
    }

    proptest! {
        #[test]
        fn round_trip_split_anywhere(
            frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..600), 0..20),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
            let mut wire = Vec::new();
            for f in &frames {
                wire.extend(encode_frame(f).map_err(|e| TestCaseError::fail(e.to_string()))?);
            }
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
            points.push(0);
            points.push(wire.len());
            points.sort_unstable();
            let mut d = FrameDecoder::new();
            let mut out = Vec::new();
            for pair in points.windows(2) {
                d.push(&wire[pair[0]..pair[1]]).map_err(|e| TestCaseError::fail(e.to_string()))?;
                out.extend(decode_all(&mut d).map_err(|e| TestCaseError::fail(e.to_string()))?);
            }
            prop_assert_eq!(out, frames);
            prop_assert!(d.finish().is_ok());
        }

        #[test]
        fn oversized_prefix_always_refused(len in (FRAME_BYTES_MAX as u64 + 1)..u64::MAX, tail in proptest::collection::vec(any::<u8>(), 0..32)) {
            let mut wire = Vec::new();
            prost::encoding::encode_varint(len, &mut wire);
            wire.extend(tail);
            let mut d = FrameDecoder::new();
            prop_assert!(d.push(&wire).is_err());
        }

        #[test]
        fn garbage_never_panics(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16)) {
            let mut d = FrameDecoder::new();
            for c in &chunks {
                if d.push(c).is_err() { break; }
                if decode_all(&mut d).is_err() { break; }
            }
        }
    }
}
