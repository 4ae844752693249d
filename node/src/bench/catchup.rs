//! Catch-up: `devices` devices each holding `entries` journal entries the others lack,
//! started together on loopback as a full mesh (static peers) → time until every device
//! holds every entry (equal replication digests), and bytes the replication sent per byte of
//! journal entry replicated. (The goal we grow to: 4.3M events in ≤ 60 s.)

use super::idle_rss::fill;
use crate::clock::monotonic_now;
use crate::loopback_store::{client, status, LoopbackStore};
use anyhow::{bail, Context};
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

/// Catch-up figures.
#[derive(Clone, Debug, Serialize)]
pub struct CatchupFigures {
    /// Devices.
    pub devices: usize,
    /// Entries each device wrote.
    pub entries_per_device: u64,
    /// Entries copied in all (each device receives every other device's).
    pub entries_replicated: u64,
    /// Seconds from the first node's start until all digests are equal.
    pub seconds: f64,
    /// Entries replicated per second.
    pub entries_per_second: f64,
    /// Replication bytes sent (all frames, all nodes) per byte of entry replicated.
    pub wire_bytes_per_entry_byte: f64,
}

/// Runs the catch-up benchmark in `work`.
pub async fn run_catchup(
    binary: &Path,
    catalog: &Path,
    work: &Path,
    devices: usize,
    entries: u64,
    limit: Duration,
) -> anyhow::Result<CatchupFigures> {
    if devices < 2 {
        bail!("catch-up needs at least 2 devices");
    }
    let mut store = LoopbackStore::new(work, "bench", "s1")?;
    let specs = store.device_specs(binary, catalog, devices)?;
    for spec in &specs {
        fill(spec, entries, limit).await?;
    }
    let entry_bytes = {
        let store = crate::storage::JournalStore::open_read_only(&specs[0].data_dir)?;
        store
            .entry_bytes(&specs[0].device_id, 1)?
            .context("a filled journal has entry 1")?
            .len() as u64
    };
    let client = client()?;
    let started = monotonic_now();
    let (nodes, _) = store.start_full_mesh(&client, &specs).await?;
    let total = entries * devices as u64;
    loop {
        let mut digests = Vec::with_capacity(devices);
        let mut held = Vec::with_capacity(devices);
        for node in &nodes {
            let status = status(&client, node).await?;
            digests.push(status["replication"]["digest"].clone());
            held.push(status["replication"]["entries_total"].as_u64().unwrap_or(0));
        }
        if held.iter().all(|h| *h == total) && digests.iter().all(|d| *d == digests[0]) {
            break;
        }
        if started.elapsed() > limit {
            bail!("no convergence within {limit:?}: entries held {held:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let mut wire_bytes = 0u64;
    for node in &nodes {
        let metrics = client
            .get(format!("http://{}/metrics", node.api))
            .send()
            .await?
            .text()
            .await?;
        wire_bytes += metrics
            .lines()
            .find(|l| l.starts_with("posmesh_replication_bytes_sent_total"))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0) as u64;
    }
    for node in nodes {
        node.stop()?;
    }
    let replicated = entries * (devices as u64) * (devices as u64 - 1);
    let figures = CatchupFigures {
        devices,
        entries_per_device: entries,
        entries_replicated: replicated,
        seconds,
        entries_per_second: replicated as f64 / seconds.max(1e-9),
        wire_bytes_per_entry_byte: wire_bytes as f64 / (replicated * entry_bytes).max(1) as f64,
    };
    println!(
        "catch-up: {} devices × {} entries → every device holds all {} in {:.1} s ({:.0} entries/s replicated); {:.2} wire bytes per entry byte ({} B entries)",
        devices, entries, total, seconds, figures.entries_per_second,
        figures.wire_bytes_per_entry_byte, entry_bytes
    );
    Ok(figures)
}
