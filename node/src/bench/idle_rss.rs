//! RSS of an idle node holding many journal entries (target ≤ 50 MB with 1M).
//!
//! The entries are written in-process through the real journal writer (the same group
//! commit path as the API, without HTTP), then a node process is started on the directory,
//! left idle, and its resident set size read from `/proc`.

use crate::catalog_file::load_catalog;
use crate::clock::monotonic_now;
use crate::node_process::{NodeProcess, NodeSpec};
use crate::storage::writer::{AppendCommand, JournalWriter, Operation};
use crate::storage::JournalStore;
use anyhow::Context;
use posmesh_domain::{
    price_sale, Consumption, LineRequest, SaleRequest, TenderKind, TenderRequest,
};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// Appends in flight while filling.
const FILL_IN_FLIGHT_MAX: usize = 4096;
/// How long the node idles before its RSS is read.
const IDLE_SETTLE: Duration = Duration::from_secs(3);

/// RSS figures.
#[derive(Clone, Debug, Serialize)]
pub struct RssFigures {
    /// Entries in the journal.
    pub entries: u64,
    /// Seconds to write them through the journal writer.
    pub fill_seconds: f64,
    /// Size of the data directory, bytes.
    pub data_dir_bytes: u64,
    /// RSS of the idle node holding them, bytes (target ≤ 50 MB).
    pub idle_rss_bytes: u64,
    /// RSS of an idle node with an empty journal, bytes (for comparison).
    pub empty_rss_bytes: u64,
}

/// Fills `entries` entries, then measures the idle node.
pub async fn run_rss(spec: &NodeSpec, entries: u64, limit: Duration) -> anyhow::Result<RssFigures> {
    let empty_spec = NodeSpec {
        data_dir: spec.data_dir.with_extension("empty"),
        ..spec.clone()
    };
    let empty_rss_bytes = idle_rss(&empty_spec)?;
    let started = monotonic_now();
    let written = fill(spec, entries, limit).await?;
    let fill_seconds = started.elapsed().as_secs_f64();
    let idle_rss_bytes = idle_rss(spec)?;
    let data_dir_bytes = dir_size(&spec.data_dir);
    println!(
        "RSS idle node: {:.1} MB holding {} entries ({:.0} MB on disk, filled in {:.1} s); empty node {:.1} MB (target ≤ 50 MB)",
        idle_rss_bytes as f64 / 1e6, written, data_dir_bytes as f64 / 1e6, fill_seconds,
        empty_rss_bytes as f64 / 1e6
    );
    Ok(RssFigures {
        entries: written,
        fill_seconds,
        data_dir_bytes,
        idle_rss_bytes,
        empty_rss_bytes,
    })
}

fn idle_rss(spec: &NodeSpec) -> anyhow::Result<u64> {
    let node = NodeProcess::start(spec)?;
    std::thread::sleep(IDLE_SETTLE);
    let rss = node.rss_bytes()?;
    node.stop()?;
    Ok(rss)
}

/// Writes `entries` one-line sales into `spec`'s data directory through the real journal
/// writer (in-process, group commits of up to 512), creating the directory's identity.
pub async fn fill(spec: &NodeSpec, entries: u64, limit: Duration) -> anyhow::Result<u64> {
    let catalog = load_catalog(&spec.catalog)?;
    let request = SaleRequest {
        currency: catalog.currency(),
        consumption: Consumption::TakeAway,
        lines: vec![LineRequest {
            sku: "BREAD".into(),
            quantity: 2,
            unit_price_override_minor: None,
            discount: None,
            consumption: None,
        }],
        discount: None,
        tenders: vec![TenderRequest {
            kind: TenderKind::Cash,
            amount_minor: 1000,
            reference: None,
        }],
    };
    let priced = price_sale(&catalog, &request).context("bench catalog needs SKU BREAD")?;
    std::fs::create_dir_all(&spec.data_dir)?;
    let store = Arc::new(JournalStore::open(&spec.data_dir)?);
    let identity = store.ensure_identity(&spec.store_id, &spec.device_id, 1, rand::random(), 0)?;
    let (writer, thread) = JournalWriter::spawn(store.clone(), identity)?;
    let semaphore = Arc::new(tokio::sync::Semaphore::new(FILL_IN_FLIGHT_MAX));
    let mut tasks = tokio::task::JoinSet::new();
    let started = monotonic_now();
    let mut sent = 0;
    while sent < entries && started.elapsed() < limit {
        let permit = semaphore.clone().acquire_owned().await?;
        let command = AppendCommand {
            idempotency_key: format!("fill-{sent}"),
            request_hash: [0; 32],
            occurred_at_ms: 1_800_000_000_000,
            business_date: "2026-11-30".into(),
            catalog_version: priced.catalog_version,
            operator_id: String::new(),
            operation: Operation::Sale(Box::new(priced.clone())),
        };
        let writer = writer.clone();
        tasks.spawn(async move {
            let result = writer.append(command).await;
            drop(permit);
            result.map(|_| ())
        });
        sent += 1;
        while let Some(done) = tasks.try_join_next() {
            done??;
        }
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    drop(writer);
    thread
        .join()
        .map_err(|_| anyhow::anyhow!("journal writer panicked"))?;
    Ok(sent)
}

fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
