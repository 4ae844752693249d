//! P1 (ack latency, one client) and P2 (throughput with concurrent clients, sales per
//! fsync), each against the raw fdatasync baseline measured in the same run.

use super::raw_fsync::{self, RawFsync};
use super::stats::Percentiles;
use crate::api::dto::{CreateSaleBody, LineBody, TenderBody};
use crate::catalog_file::load_catalog;
use crate::clock::monotonic_now;
use crate::ledger::convert;
use crate::mgmt::NodeStatus;
use crate::node_process::{NodeProcess, NodeSpec};
use anyhow::{bail, Context};
use posmesh_domain::{price_sale, TenderKind};
use posmesh_proto::journal::v1::{journal_entry::Payload, Hlc, JournalEntry};
use prost::Message;
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// P1 figures.
#[derive(Clone, Debug, Serialize)]
pub struct P1Figures {
    /// Sale ack latency (HTTP round trip on loopback, durable on return).
    pub sale_ack: Percentiles,
    /// The same sale appended in-process through the journal writer (validation, group
    /// commit, synced WriteBatch; no HTTP): the durability path alone.
    pub journal_append: Percentiles,
    /// Raw append + fdatasync of `record_bytes`.
    pub raw: RawFsync,
    /// Size of the raw record = one journal entry of the benchmark sale, bytes.
    pub record_bytes: usize,
    /// sale_ack p99 ÷ raw p99 (target ≤ 1.5).
    pub p99_ratio: f64,
    /// journal_append p99 ÷ raw p99.
    pub journal_p99_ratio: f64,
}

/// P2 figures.
#[derive(Clone, Debug, Serialize)]
pub struct P2Figures {
    /// Concurrent clients.
    pub clients: usize,
    /// Sales acknowledged.
    pub sales: usize,
    /// Sales acknowledged per second.
    pub sales_per_second: f64,
    /// Sales per synced group commit (target ≥ 16).
    pub sales_per_fsync: f64,
    /// Ack latency under this load.
    pub sale_ack: Percentiles,
    /// Raw single-writer append + fdatasync rate, per second.
    pub raw_fsyncs_per_second: f64,
    /// sales/s ÷ raw fsyncs/s.
    pub throughput_ratio: f64,
}

/// The benchmark sale (three lines, paid by card for the exact amount) and the size of its
/// journal entry, bytes.
fn sale_body(catalog: &posmesh_domain::Catalog) -> anyhow::Result<(CreateSaleBody, usize)> {
    let lines = [("BREAD", 1), ("COFFEE", 2), ("MEDIALUNA", 3)];
    let mut body = CreateSaleBody {
        currency: catalog.currency().code().into(),
        consumption: None,
        lines: lines
            .iter()
            .map(|(sku, quantity)| LineBody {
                sku: (*sku).into(),
                quantity: *quantity,
                unit_price_override_minor: None,
                discount: None,
                consumption: None,
            })
            .collect(),
        discount: None,
        // Learn the amount due with an over-tender in cash, then tender it exactly by card.
        tenders: vec![TenderBody {
            kind: TenderKind::Cash,
            amount_minor: 1_000_000,
            reference: None,
            card: None,
        }],
        occurred_at: None,
        operator_id: None,
    };
    let due = price_sale(catalog, &body.to_sale_request(catalog.currency()))
        .context("the benchmark catalog needs SKUs BREAD, COFFEE and MEDIALUNA")?
        .total_minor;
    body.tenders = vec![TenderBody {
        kind: TenderKind::Card,
        amount_minor: due,
        reference: None,
        card: None,
    }];
    let priced = price_sale(catalog, &body.to_sale_request(catalog.currency()))?;
    let entry = JournalEntry {
        store_id: "bench-store".into(),
        device_id: "till-1".into(),
        device_incarnation: u64::MAX,
        seq: 1_000_000,
        receipt_no: 1_000_000,
        prev_hash: vec![0; 32],
        hlc: Some(Hlc {
            physical_ms: 1_800_000_000_000,
            logical: 0,
        }),
        business_date: "2026-11-30".into(),
        catalog_version: priced.catalog_version,
        occurred_at_ms: 1_800_000_000_000,
        idempotency_key: "bench-00000000-0000".into(),
        payload: Some(Payload::Sale(convert::sale_to_proto(&priced))),
        ..Default::default()
    };
    Ok((body, entry.encoded_len()))
}

async fn post_sale(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    body: &CreateSaleBody,
) -> anyhow::Result<Duration> {
    let started = monotonic_now();
    let response = client
        .post(url)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await?;
    let status = response.status();
    let _ = response.bytes().await?;
    if status != reqwest::StatusCode::CREATED {
        bail!("sale answered {status}");
    }
    Ok(started.elapsed())
}

/// Rounds P1 interleaves its three measurements in, so all three see the same machine.
const P1_ROUNDS: usize = 10;

/// P1: one client, `sales` sequential sales; in the same run and interleaved in rounds, the
/// same sale appended in-process through the journal writer, and raw append + fdatasync.
pub async fn run_p1(
    spec: &NodeSpec,
    dir: &Path,
    sales: usize,
    limit: Duration,
) -> anyhow::Result<P1Figures> {
    let catalog = load_catalog(&spec.catalog)?;
    let (body, record_bytes) = sale_body(&catalog)?;
    let node = NodeProcess::start(spec)?;
    let client = reqwest::Client::new();
    let url = format!("http://{}/v1/sales", node.api);
    for i in 0..50 {
        post_sale(&client, &url, &format!("warmup-{i}"), &body).await?;
    }
    let journal = InProcessJournal::open(&catalog, &body, &dir.join("p1-journal"))?;
    let mut raw = raw_fsync::RawAppender::create(dir, record_bytes)?;
    let (mut http_samples, mut journal_samples, mut raw_samples) = (vec![], vec![], vec![]);
    let per_round = sales.div_ceil(P1_ROUNDS);
    let started = monotonic_now();
    for round in 0..P1_ROUNDS {
        for i in 0..per_round {
            let key = format!("p1-{round}-{i}");
            http_samples.push(post_sale(&client, &url, &key, &body).await?);
        }
        for i in 0..per_round {
            journal_samples.push(journal.append(&format!("p1j-{round}-{i}")).await?);
        }
        for _ in 0..per_round {
            raw_samples.push(raw.append()?);
        }
        if started.elapsed() > limit {
            break;
        }
    }
    journal.close()?;
    node.stop()?;
    let raw_elapsed: f64 = raw_samples.iter().map(Duration::as_secs_f64).sum();
    let raw = RawFsync {
        per_second: raw_samples.len() as f64 / raw_elapsed.max(1e-9),
        latency: Percentiles::of(&mut raw_samples),
    };
    let sale_ack = Percentiles::of(&mut http_samples);
    let journal_append = Percentiles::of(&mut journal_samples);
    let p99_ratio = sale_ack.p99_us as f64 / raw.latency.p99_us.max(1) as f64;
    let journal_p99_ratio = journal_append.p99_us as f64 / raw.latency.p99_us.max(1) as f64;
    println!(
        "P1 sale ack, 1 client, {} sales: HTTP p50 {} µs p99 {} µs | in-process journal append p50 {} µs p99 {} µs | raw {} B append+fdatasync p50 {} µs p99 {} µs | p99 ratio HTTP {:.2}, journal {:.2} (target ≤ 1.5)",
        sale_ack.count, sale_ack.p50_us, sale_ack.p99_us, journal_append.p50_us,
        journal_append.p99_us, record_bytes, raw.latency.p50_us, raw.latency.p99_us,
        p99_ratio, journal_p99_ratio
    );
    Ok(P1Figures {
        sale_ack,
        journal_append,
        raw,
        record_bytes,
        p99_ratio,
        journal_p99_ratio,
    })
}

/// P2: `clients` concurrent clients sending `sales` sales in all.
pub async fn run_p2(
    spec: &NodeSpec,
    dir: &Path,
    sales: usize,
    clients: usize,
    limit: Duration,
) -> anyhow::Result<P2Figures> {
    let catalog = load_catalog(&spec.catalog)?;
    let (body, record_bytes) = sale_body(&catalog)?;
    let node = NodeProcess::start(spec)?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()?;
    let url = Arc::new(format!("http://{}/v1/sales", node.api));
    let body = Arc::new(body);
    let before = status(&client, &node.mgmt).await?;
    let per_client = sales.div_ceil(clients.max(1));
    let started = monotonic_now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        tasks.spawn(async move {
            let mut samples = Vec::with_capacity(per_client);
            for i in 0..per_client {
                samples.push(post_sale(&client, &url, &format!("p2-{c}-{i}"), &body).await?);
                if started.elapsed() > limit {
                    break;
                }
            }
            anyhow::Ok(samples)
        });
    }
    let mut samples = Vec::with_capacity(sales);
    while let Some(done) = tasks.join_next().await {
        samples.extend(done??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = status(&client, &node.mgmt).await?;
    node.stop()?;
    let entries = after.journal.entries_appended - before.journal.entries_appended;
    let commits = after.journal.group_commits - before.journal.group_commits;
    let raw = raw_fsync::measure(dir, record_bytes, 2000, limit)?;
    let sale_ack = Percentiles::of(&mut samples);
    let sales_per_second = sale_ack.count as f64 / elapsed.max(1e-9);
    let figures = P2Figures {
        clients,
        sales: sale_ack.count,
        sales_per_second,
        sales_per_fsync: entries as f64 / commits.max(1) as f64,
        sale_ack,
        raw_fsyncs_per_second: raw.per_second,
        throughput_ratio: sales_per_second / raw.per_second.max(1e-9),
    };
    println!(
        "P2 {} clients, {} sales: {:.0} sales/s, {:.1} sales per fsync (target ≥ 16), ack p50 {} µs p99 {} µs | raw single-writer {:.0} fsyncs/s | throughput ratio {:.1}×",
        clients, figures.sales, figures.sales_per_second, figures.sales_per_fsync,
        figures.sale_ack.p50_us, figures.sale_ack.p99_us, figures.raw_fsyncs_per_second,
        figures.throughput_ratio
    );
    Ok(figures)
}

/// A journal writer in this process, on its own data directory: the durability path
/// without HTTP.
struct InProcessJournal {
    writer: crate::storage::writer::JournalWriter,
    thread: std::thread::JoinHandle<()>,
    sale: posmesh_domain::PricedSale,
}

impl InProcessJournal {
    fn open(
        catalog: &posmesh_domain::Catalog,
        body: &CreateSaleBody,
        dir: &Path,
    ) -> anyhow::Result<Self> {
        let request = body.to_sale_request(catalog.currency());
        let sale = price_sale(catalog, &request)?;
        std::fs::create_dir_all(dir)?;
        let store = Arc::new(crate::storage::JournalStore::open(dir)?);
        let identity = store.ensure_identity("bench-store", "till-1", 1, rand::random(), 0)?;
        let (writer, thread) = crate::storage::writer::JournalWriter::spawn(store, identity)?;
        Ok(Self {
            writer,
            thread,
            sale,
        })
    }

    async fn append(&self, key: &str) -> anyhow::Result<Duration> {
        let command = crate::storage::writer::AppendCommand {
            idempotency_key: key.to_owned(),
            request_hash: [0; 32],
            occurred_at_ms: 1_800_000_000_000,
            business_date: "2026-11-30".into(),
            catalog_version: self.sale.catalog_version,
            operator_id: String::new(),
            operation: crate::storage::writer::Operation::Sale(Box::new(self.sale.clone())),
        };
        let started = monotonic_now();
        self.writer.append(command).await?;
        Ok(started.elapsed())
    }

    fn close(self) -> anyhow::Result<()> {
        drop(self.writer);
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("journal writer panicked"))
    }
}

async fn status(client: &reqwest::Client, mgmt: &str) -> anyhow::Result<NodeStatus> {
    Ok(client
        .get(format!("http://{mgmt}/v1/status"))
        .send()
        .await?
        .json()
        .await?)
}
