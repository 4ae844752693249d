//! The baseline: append a record to a file and fdatasync it, single writer, on the same
//! disk as the node's data. What a journal cannot beat per write.

use super::stats::Percentiles;
use crate::clock::monotonic_now;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Raw append + fdatasync figures.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct RawFsync {
    /// Latency of one append + fdatasync.
    pub latency: Percentiles,
    /// Appends + fdatasyncs per second, single writer.
    pub per_second: f64,
}

/// A file that takes records with an fdatasync after each. Removed on drop.
pub struct RawAppender {
    file: std::fs::File,
    path: PathBuf,
    record: Vec<u8>,
}

impl RawAppender {
    /// Creates `raw-fsync.bin` in `dir` for records of `record_bytes`.
    pub fn create(dir: &Path, record_bytes: usize) -> std::io::Result<Self> {
        let path = dir.join("raw-fsync.bin");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)?;
        Ok(Self {
            file,
            path,
            record: vec![0x5a_u8; record_bytes],
        })
    }

    /// Appends one record and fdatasyncs; returns how long that took.
    pub fn append(&mut self) -> std::io::Result<Duration> {
        let started = monotonic_now();
        self.file.write_all(&self.record)?;
        self.file.sync_data()?;
        Ok(started.elapsed())
    }
}

impl Drop for RawAppender {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Measures up to `count` appends of `record_bytes` each (at most `limit` long).
pub fn measure(
    dir: &Path,
    record_bytes: usize,
    count: usize,
    limit: Duration,
) -> std::io::Result<RawFsync> {
    let mut appender = RawAppender::create(dir, record_bytes)?;
    let mut samples = Vec::with_capacity(count);
    let started = monotonic_now();
    while samples.len() < count && started.elapsed() < limit {
        samples.push(appender.append()?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(RawFsync {
        per_second: samples.len() as f64 / elapsed.max(1e-9),
        latency: Percentiles::of(&mut samples),
    })
}
