//! Snapshot transfer in chunks (Raft §7, InstallSnapshot with `offset` and `done`): the
//! leader cuts a snapshot's bytes into [`CHUNK_BYTES_MAX`] pieces, one mesh call each, so a
//! snapshot of any size up to [`SNAPSHOT_BYTES_MAX`] fits the mesh's 4 MiB frame limit; the
//! receiver puts them back together in a [`SnapshotAssembly`] and installs the snapshot when
//! the last byte arrives.
//!
//! Sans-IO: no network and no Raft here, only the cutting and the reassembly rules.
//! Chunks must arrive in order from offset 0 (the sender sends one at a time and waits for
//! each answer); a chunk at offset 0 starts a new assembly, replacing one left unfinished
//! (a new leader or a retry starts again from the beginning).

use thiserror::Error;

/// Raw snapshot bytes per chunk: 1 MiB, so a chunk and its header stay well inside one
/// mesh frame (`posmesh_mesh::frame::FRAME_BYTES_MAX`, 4 MiB).
pub const CHUNK_BYTES_MAX: usize = 1024 * 1024;

/// Largest snapshot a device accepts (256 MiB): bounds the memory one assembly may take. A
/// store's state machine is kilobytes to a few megabytes.
pub const SNAPSHOT_BYTES_MAX: u64 = 256 * 1024 * 1024;

/// One chunk to send: where it starts in the snapshot and its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk<'a> {
    /// Offset of the first byte in the snapshot.
    pub offset: u64,
    /// The bytes (at most [`CHUNK_BYTES_MAX`]; empty only for an empty snapshot).
    pub data: &'a [u8],
}

/// Cuts `snapshot` into chunks of at most [`CHUNK_BYTES_MAX`] bytes, in order. An empty
/// snapshot is one empty chunk (the receiver still needs a call to install it).
pub fn chunks(snapshot: &[u8]) -> Vec<Chunk<'_>> {
    if snapshot.is_empty() {
        return vec![Chunk {
            offset: 0,
            data: snapshot,
        }];
    }
    snapshot
        .chunks(CHUNK_BYTES_MAX)
        .enumerate()
        .map(|(i, data)| Chunk {
            offset: (i * CHUNK_BYTES_MAX) as u64,
            data,
        })
        .collect()
}

/// Why a chunk was refused. A refused chunk changes nothing: the assembly in progress, if
/// any, stays as it was.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ChunkError {
    /// The announced snapshot is larger than [`SNAPSHOT_BYTES_MAX`].
    #[error("snapshot of {total_bytes} bytes is above the {max_bytes}-byte limit")]
    TooLarge {
        /// Announced size in bytes.
        total_bytes: u64,
        /// The limit in bytes.
        max_bytes: u64,
    },
    /// The chunk is larger than [`CHUNK_BYTES_MAX`].
    #[error("chunk of {chunk_bytes} bytes is above the {max_bytes}-byte chunk limit")]
    ChunkTooLarge {
        /// The chunk's size in bytes.
        chunk_bytes: usize,
        /// The limit in bytes.
        max_bytes: usize,
    },
    /// The chunk is empty but the snapshot is not.
    #[error("empty chunk at offset {offset} of a {total_bytes}-byte snapshot")]
    EmptyChunk {
        /// Offset of the chunk.
        offset: u64,
        /// Announced size in bytes.
        total_bytes: u64,
    },
    /// The chunk runs past the announced end of the snapshot.
    #[error("chunk at offset {offset} of {chunk_bytes} bytes runs past the snapshot's {total_bytes} bytes")]
    PastEnd {
        /// Offset of the chunk.
        offset: u64,
        /// The chunk's size in bytes.
        chunk_bytes: usize,
        /// Announced size in bytes.
        total_bytes: u64,
    },
    /// The chunk does not continue the assembly in progress (another snapshot, another
    /// size, or not at the next offset), or none is in progress and it is not at offset 0.
    #[error("chunk of transfer {transfer_id} at offset {offset} does not continue the transfer in progress ({expected})")]
    OutOfOrder {
        /// The chunk's snapshot id.
        transfer_id: String,
        /// Offset of the chunk.
        offset: u64,
        /// What was expected instead.
        expected: String,
    },
}

/// What a received chunk led to.
#[derive(Debug, PartialEq, Eq)]
pub enum ChunkOutcome {
    /// More bytes are needed, from `next_offset` on.
    NeedMore {
        /// Offset of the next chunk expected.
        next_offset: u64,
    },
    /// The snapshot is whole: its bytes, to be installed. The assembly is cleared.
    Complete(Vec<u8>),
}

/// A snapshot being received, chunk by chunk.
#[derive(Debug, Default)]
pub struct SnapshotAssembly {
    in_progress: Option<InProgress>,
}

#[derive(Debug)]
struct InProgress {
    transfer_id: String,
    total_bytes: u64,
    data: Vec<u8>,
}

impl SnapshotAssembly {
    /// Takes the chunk that starts at `offset` of the snapshot named `transfer_id` (its
    /// signature), announced as `total_bytes` long.
    ///
    /// # Errors
    /// A [`ChunkError`] for a chunk that breaks the limits or the order; the assembly is
    /// then unchanged.
    pub fn accept(
        &mut self,
        transfer_id: &str,
        offset: u64,
        total_bytes: u64,
        chunk: &[u8],
    ) -> Result<ChunkOutcome, ChunkError> {
        if total_bytes > SNAPSHOT_BYTES_MAX {
            return Err(ChunkError::TooLarge {
                total_bytes,
                max_bytes: SNAPSHOT_BYTES_MAX,
            });
        }
        if chunk.len() > CHUNK_BYTES_MAX {
            return Err(ChunkError::ChunkTooLarge {
                chunk_bytes: chunk.len(),
                max_bytes: CHUNK_BYTES_MAX,
            });
        }
        if chunk.is_empty() && total_bytes > 0 {
            return Err(ChunkError::EmptyChunk {
                offset,
                total_bytes,
            });
        }
        let end = offset.checked_add(chunk.len() as u64);
        if end.is_none_or(|end| end > total_bytes) {
            return Err(ChunkError::PastEnd {
                offset,
                chunk_bytes: chunk.len(),
                total_bytes,
            });
        }
        if offset > 0 {
            let expected = match &self.in_progress {
                None => Some("no transfer in progress: a snapshot starts at offset 0".to_owned()),
                Some(p) if p.transfer_id != transfer_id => {
                    Some(format!("transfer {} in progress", p.transfer_id))
                }
                Some(p) if p.total_bytes != total_bytes => Some(format!(
                    "{} bytes announced, not {total_bytes}",
                    p.total_bytes
                )),
                Some(p) if p.data.len() as u64 != offset => {
                    Some(format!("next offset {}", p.data.len()))
                }
                Some(_) => None,
            };
            if let Some(expected) = expected {
                return Err(ChunkError::OutOfOrder {
                    transfer_id: transfer_id.to_owned(),
                    offset,
                    expected,
                });
            }
        }
        let mut progress = match self.in_progress.take() {
            Some(p) if offset > 0 => p,
            _ => InProgress {
                transfer_id: transfer_id.to_owned(),
                total_bytes,
                // Grows with the chunks actually received, not with the announced size.
                data: Vec::with_capacity(chunk.len()),
            },
        };
        progress.data.extend_from_slice(chunk);
        let received = progress.data.len() as u64;
        if received == progress.total_bytes {
            return Ok(ChunkOutcome::Complete(progress.data));
        }
        self.in_progress = Some(progress);
        Ok(ChunkOutcome::NeedMore {
            next_offset: received,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn a_snapshot_larger_than_a_frame_is_cut_and_put_back_together() {
        let snapshot = sample(9 * 1024 * 1024 + 17);
        let pieces = chunks(&snapshot);
        assert_eq!(pieces.len(), 10);
        assert!(pieces.iter().all(|c| c.data.len() <= CHUNK_BYTES_MAX));
        let mut assembly = SnapshotAssembly::default();
        let total = snapshot.len() as u64;
        let (last, rest) = pieces.split_last().expect("chunks");
        for piece in rest {
            let outcome = assembly
                .accept("s-1", piece.offset, total, piece.data)
                .expect("in order");
            assert_eq!(
                outcome,
                ChunkOutcome::NeedMore {
                    next_offset: piece.offset + piece.data.len() as u64
                }
            );
        }
        match assembly.accept("s-1", last.offset, total, last.data) {
            Ok(ChunkOutcome::Complete(bytes)) => assert!(bytes == snapshot, "bytes differ"),
            other => panic!("not complete: {other:?}"),
        }
        assert!(assembly.in_progress.is_none());
    }

    #[test]
    fn an_empty_snapshot_is_one_empty_chunk() {
        let pieces = chunks(&[]);
        assert_eq!(pieces.len(), 1);
        let mut assembly = SnapshotAssembly::default();
        assert_eq!(
            assembly.accept("s", 0, 0, pieces[0].data),
            Ok(ChunkOutcome::Complete(Vec::new()))
        );
    }

    #[test]
    fn bad_chunks_are_refused_and_change_nothing() {
        let mut assembly = SnapshotAssembly::default();
        let first = vec![1u8; 10];
        assert_eq!(
            assembly.accept("s-1", 0, 25, &first),
            Ok(ChunkOutcome::NeedMore { next_offset: 10 })
        );
        let oversized = vec![0u8; CHUNK_BYTES_MAX + 1];
        let cases: Vec<(&str, u64, u64, &[u8], &str)> = vec![
            (
                "s-1",
                10,
                SNAPSHOT_BYTES_MAX + 1,
                &first,
                "snapshot of 268435457 bytes is above",
            ),
            ("s-1", 10, 25, &oversized, "chunk limit"),
            ("s-1", 10, 25, &[], "empty chunk"),
            ("s-1", 20, 25, &first, "runs past"),
            ("s-1", u64::MAX, 25, &first, "runs past"),
            ("s-2", 10, 25, &first, "transfer s-1 in progress"),
            ("s-1", 10, 24, &first[..4], "25 bytes announced"),
            ("s-1", 5, 25, &first, "next offset 10"),
        ];
        for (id, offset, total, chunk, message) in cases {
            let error = assembly
                .accept(id, offset, total, chunk)
                .expect_err("refused");
            assert!(
                error.to_string().contains(message),
                "{id}@{offset}/{total}: {error} lacks {message:?}"
            );
        }
        // Nothing changed: the transfer goes on from offset 10.
        let second = vec![2u8; 15];
        match assembly.accept("s-1", 10, 25, &second) {
            Ok(ChunkOutcome::Complete(bytes)) => {
                assert_eq!(&bytes[..10], &first[..]);
                assert_eq!(&bytes[10..], &second[..]);
            }
            other => panic!("not complete: {other:?}"),
        }
    }

    #[test]
    fn a_chunk_past_offset_zero_needs_a_transfer_in_progress() {
        let mut assembly = SnapshotAssembly::default();
        let error = assembly.accept("s", 4, 8, &[0; 4]).expect_err("refused");
        assert!(matches!(error, ChunkError::OutOfOrder { .. }), "{error}");
        assert!(assembly.in_progress.is_none());
    }

    #[test]
    fn offset_zero_restarts_an_unfinished_transfer() {
        let mut assembly = SnapshotAssembly::default();
        assembly.accept("old", 0, 8, &[1; 4]).expect("first half");
        assembly.accept("new", 0, 6, &[2; 3]).expect("restart");
        assert_eq!(
            assembly.accept("new", 3, 6, &[3; 3]),
            Ok(ChunkOutcome::Complete(vec![2, 2, 2, 3, 3, 3]))
        );
    }
}
