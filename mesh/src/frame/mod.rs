//! Length-delimited frames: a protobuf varint length prefix (as
//! `prost::encode_length_delimiter`), then that many payload bytes. Pure, no I/O: the
//! transport feeds bytes into a [`FrameDecoder`] and writes what [`encode_frame`] returns.

mod decoder;

pub use decoder::FrameDecoder;

use crate::error::{MeshError, Result};

/// Largest frame payload in bytes (4 MiB). Larger length prefixes are refused before
/// their payload is buffered.
pub const FRAME_BYTES_MAX: usize = 4 * 1024 * 1024;

/// Longest varint length prefix in bytes (a u64 in 7-bit groups).
pub const LENGTH_PREFIX_BYTES_MAX: usize = 10;

/// Encodes one frame: varint length prefix then `payload`.
///
/// # Errors
/// [`MeshError::FrameTooLarge`] when `payload` exceeds [`FRAME_BYTES_MAX`].
pub fn encode_frame(payload: &[u8]) -> Result<Vec<u8>> {
    if payload.len() > FRAME_BYTES_MAX {
        return Err(MeshError::FrameTooLarge {
            len_bytes: payload.len() as u64,
            max_bytes: FRAME_BYTES_MAX,
        });
    }
    let mut out = Vec::with_capacity(prost::length_delimiter_len(payload.len()) + payload.len());
    prost::encode_length_delimiter(payload.len(), &mut out).map_err(|_| {
        MeshError::FrameTooLarge {
            len_bytes: payload.len() as u64,
            max_bytes: FRAME_BYTES_MAX,
        }
    })?;
    out.extend_from_slice(payload);
    Ok(out)
}

#[cfg(test)]
mod corpus_tests {
    use super::*;

    /// Replays the fuzz seed corpus: no seed panics the decoder, and every `valid-*` seed
    /// decodes completely, re-encoding to the same bytes.
    #[test]
    fn fuzz_corpus_replays() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/frame_decoder");
        let mut seeds = 0;
        let mut valid = 0;
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            let bytes = std::fs::read(&path)?;
            seeds += 1;
            // Whole input at once, then byte by byte: both must agree.
            for chunk_len in [bytes.len().max(1), 1] {
                let mut decoder = FrameDecoder::new();
                let mut frames = Vec::new();
                let mut failed = false;
                'feed: for chunk in bytes.chunks(chunk_len) {
                    if decoder.push(chunk).is_err() {
                        failed = true;
                        break;
                    }
                    // Bounded: each pop consumes a frame or returns None.
                    for _ in 0..=bytes.len() {
                        match decoder.pop() {
                            Ok(Some(frame)) => frames.push(frame),
                            Ok(None) => break,
                            Err(_) => {
                                failed = true;
                                break 'feed;
                            }
                        }
                    }
                }
                if name.starts_with("valid-") {
                    assert!(!failed, "{name}: valid seed refused");
                    assert!(decoder.finish().is_ok(), "{name}: bytes left over");
                    let mut reencoded = Vec::new();
                    for f in &frames {
                        reencoded.extend(encode_frame(f)?);
                    }
                    assert_eq!(reencoded, bytes, "{name}: re-encoding differs");
                } else if name.starts_with("oversized-") || name.starts_with("malformed-") {
                    assert!(failed, "{name}: must be refused");
                } else if name.starts_with("truncated-") {
                    assert!(
                        decoder.finish().is_err(),
                        "{name}: must wait for more bytes"
                    );
                }
            }
            if name.starts_with("valid-") {
                valid += 1;
            }
        }
        assert!(seeds >= 20, "corpus has {seeds} seeds");
        assert!(valid >= 10, "corpus has {valid} valid seeds");
        Ok(())
    }
}
