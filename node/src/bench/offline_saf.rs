//! Offline-to-forwarded: a 3-device store on loopback takes N offline card payments
//! (spread over the devices, acquirer down), every device holds every payment and its card
//! data (peer escrow), then the `posmesh-acquirer` simulator starts and the clock runs until
//! every device's store-and-forward queue is empty — every payment forwarded, acknowledged
//! and the acknowledgement replicated. The simulator's unique advice count must equal N.

use crate::loopback_store::{client, status, wait_connected, LoopbackStore};
use crate::node_process::NodeProcess;
use anyhow::Context;
use serde::Serialize;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Concurrent clients taking the offline payments.
pub const CLIENTS: usize = 24;

/// Figures of one run.
#[derive(Debug, Serialize)]
pub struct OfflineFigures {
    /// Offline payments taken (all accepted).
    pub payments: usize,
    /// Seconds to take them all offline (3 devices, [`CLIENTS`] clients).
    pub take_s: f64,
    /// Seconds from the acquirer's start until every queue on every device is empty.
    pub forward_s: f64,
    /// Payments forwarded and acknowledged per second.
    pub forwarded_per_s: f64,
    /// Advices that reached the acquirer, repeats included.
    pub advices_raw: u64,
    /// Distinct payments the acquirer accepted (must equal `payments`).
    pub advices_unique: u64,
}

/// A Luhn-valid 16-digit test PAN: `411111`, 9 digits of `n`, the check digit.
pub fn test_pan(n: u64) -> String {
    let body = format!("411111{:09}", n % 1_000_000_000);
    let sum: u32 = body
        .chars()
        .rev()
        .enumerate()
        .map(|(i, c)| {
            let d = c.to_digit(10).unwrap_or(0);
            if i % 2 == 0 {
                let d = d * 2;
                if d > 9 {
                    d - 9
                } else {
                    d
                }
            } else {
                d
            }
        })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

/// Runs the benchmark with `payments` payments in `work`, each phase bounded by `limit`.
pub async fn run_offline(
    binary: &Path,
    catalog: &Path,
    work: &Path,
    payments: usize,
    limit: Duration,
) -> anyhow::Result<OfflineFigures> {
    let client = client()?;
    let acquirer_addr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
        probe.local_addr()?.to_string()
    };
    let mut store = LoopbackStore::new(work, "bench", "bench-store")?;
    let specs = store.device_specs(binary, catalog, 3)?;
    let flags = |bootstrap: bool| {
        let mut flags: Vec<String> = [
            "--acquirer",
            &acquirer_addr,
            "--offline-floor-limit-minor",
            "5000",
            "--offline-device-cap-minor",
            "1000000000",
            "--saf-interval-ms",
            "100",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        if bootstrap {
            flags.push("--raft-bootstrap".into());
        }
        flags
    };
    let mut nodes: Vec<NodeProcess> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let peers: Vec<String> = specs[..i].iter().map(|s| s.device_id.clone()).collect();
        nodes.push(
            store
                .start_with_flags(&client, spec, &peers, &flags(i == 0))
                .await?,
        );
    }
    let refs: Vec<&NodeProcess> = nodes.iter().collect();
    wait_connected(&client, &refs, limit).await?;
    wait_voters(&client, &nodes[0], 3, limit).await?;
    let put = |node: &NodeProcess, path: &str, body: serde_json::Value| {
        client
            .put(format!("http://{}{path}", node.api))
            .json(&body)
            .send()
    };
    put(
        &nodes[0],
        "/v1/payments/exposure-budget",
        serde_json::json!({"amount_minor": 3_000_000_000_i64, "currency": "GBP"}),
    )
    .await?
    .error_for_status()?;
    for spec in &specs {
        let answer: serde_json::Value = put(
            &nodes[0],
            &format!("/v1/payments/exposure-allotments/{}", spec.device_id),
            serde_json::json!({"amount_minor": 1_000_000_000}),
        )
        .await?
        .error_for_status()?
        .json()
        .await?;
        let index = answer["log_index"].as_u64().context("log index")?;
        for node in &nodes {
            wait_applied(&client, node, index, limit).await?;
        }
    }

    println!("offline: taking {payments} offline card payments on 3 devices (acquirer down)");
    let started = Instant::now();
    let apis: Vec<String> = nodes.iter().map(|n| n.api.clone()).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..CLIENTS {
        let client = client.clone();
        let apis = apis.clone();
        tasks.spawn(async move {
            let mut k = worker;
            while k < payments {
                let api = &apis[k % apis.len()];
                let body = serde_json::json!({
                    "currency": "GBP",
                    "lines": [{"sku": "BREAD", "quantity": 2}, {"sku": "COFFEE", "quantity": 1}],
                    "tenders": [{"kind": "card", "amount_minor": 850,
                                 "card": {"pan": test_pan(k as u64), "expiry": "3012"}}]
                });
                let response = client
                    .post(format!("http://{api}/v1/sales"))
                    .header("Idempotency-Key", format!("offline-{k}"))
                    .json(&body)
                    .send()
                    .await?;
                anyhow::ensure!(
                    response.status().is_success(),
                    "offline payment {k}: {}",
                    response.text().await.unwrap_or_default()
                );
                k += CLIENTS;
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
        anyhow::ensure!(
            started.elapsed() < limit,
            "taking payments exceeded {limit:?}"
        );
    }
    let take_s = started.elapsed().as_secs_f64();
    for node in &nodes {
        let all = payments as u64;
        wait_queue(
            &client,
            node,
            |queued, held| queued == all && held == all,
            limit,
        )
        .await?;
    }

    let acquirer_binary = binary
        .parent()
        .context("binary directory")?
        .join("posmesh-acquirer");
    let stats = work.join("acquirer-stats.json");
    let mut acquirer = Command::new(&acquirer_binary)
        .args([
            "--listen",
            &acquirer_addr,
            "--max-seconds",
            "600",
            "--stats-file",
        ])
        .arg(&stats)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", acquirer_binary.display()))?;
    let started = Instant::now();
    let result = async {
        for node in &nodes {
            wait_queue(&client, node, |queued, _| queued == 0, limit).await?;
        }
        Ok::<_, anyhow::Error>(started.elapsed().as_secs_f64())
    }
    .await;
    let _ = acquirer.kill();
    let _ = acquirer.wait();
    let forward_s = result?;
    let stats: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&stats)?)?;
    let advices_raw = stats["by_class"]["advice"]["raw"].as_u64().unwrap_or(0);
    let advices_unique = stats["by_class"]["advice"]["unique"].as_u64().unwrap_or(0);
    for node in nodes {
        node.stop()?;
    }
    anyhow::ensure!(
        advices_unique == payments as u64,
        "the acquirer accepted {advices_unique} of {payments} payments"
    );
    let figures = OfflineFigures {
        payments,
        take_s,
        forward_s,
        forwarded_per_s: payments as f64 / forward_s.max(1e-9),
        advices_raw,
        advices_unique,
    };
    println!(
        "offline: {payments} offline payments taken in {take_s:.1} s; forwarded and acknowledged on every device {forward_s:.1} s after the acquirer returned ({:.0}/s); acquirer: {advices_unique} unique, {advices_raw} raw advices",
        figures.forwarded_per_s
    );
    Ok(figures)
}

async fn wait_voters(
    client: &reqwest::Client,
    node: &NodeProcess,
    voters: usize,
    limit: Duration,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let raft = status(client, node).await?["raft"].clone();
        if raft["role"] == "leader" && raft["voters"].as_array().map(Vec::len) == Some(voters) {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < limit,
            "no leader with {voters} voters: {raft}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn wait_applied(
    client: &reqwest::Client,
    node: &NodeProcess,
    index: u64,
    limit: Duration,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let raft = status(client, node).await?["raft"].clone();
        if raft["applied_index"].as_u64().unwrap_or(0) >= index {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < limit,
            "index {index} not applied: {raft}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `done(queued, card_data_held)` of `node`'s queue.
async fn wait_queue(
    client: &reqwest::Client,
    node: &NodeProcess,
    done: impl Fn(u64, u64) -> bool,
    limit: Duration,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let view: serde_json::Value = client
            .get(format!("http://{}/v1/payments/queue", node.api))
            .send()
            .await?
            .json()
            .await?;
        let queued = view["queued"].as_u64().unwrap_or(u64::MAX);
        let held = view["card_data_held"].as_u64().unwrap_or(0);
        if done(queued, held) {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < limit,
            "queue of {} not done: {queued} queued, {held} with card data",
            node.api
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
