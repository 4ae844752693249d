//! The baseline: append `record_bytes` to a file and fdatasync, `count` times, single
//! writer, on the same disk as the node's data. What a journal cannot beat per write.

use super::stats::Percentiles;
use crate::clock::monotonic_now;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// Raw append + fdatasync figures.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct RawFsync {
    /// Latency of one append + fdatasync.
    pub latency: Percentiles,
    /// Appends + fdatasyncs per second, single writer.
    pub per_second: f64,
}

/// Measures `count` appends of `record_bytes` each, with an fdatasync after each.
pub fn measure(
    dir: &Path,
    record_bytes: usize,
    count: usize,
    limit: Duration,
) -> std::io::Result<RawFsync> {
    let path = dir.join("raw-fsync.bin");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)?;
    let record = vec![0x5a_u8; record_bytes];
    let mut samples = Vec::with_capacity(count);
    let started = monotonic_now();
    for _ in 0..count {
        let t = monotonic_now();
        file.write_all(&record)?;
        file.sync_data()?;
        samples.push(t.elapsed());
        if started.elapsed() > limit {
            break;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let done = samples.len();
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(RawFsync {
        latency: Percentiles::of(&mut samples),
        per_second: done as f64 / elapsed.max(1e-9),
    })
}
