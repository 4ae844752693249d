//! P3: the replicated write rate and p50/p99 latency of a 3-device store's Raft group, with 1
//! and with 256 concurrent clients, side by side in the same run with a 3-member etcd
//! cluster on the same machine ([`super::etcd`]). Targets: at least 2× etcd's throughput,
//! p99 at most 0.5× etcd's.
//!
//! The posmesh write is a gift-card redemption through the sales API (HTTP/JSON on
//! loopback, the path a till uses): a 64-character card id and a 128-character
//! redemption id, so the command in the Raft log is
//! [`super::raft_store::redemption_command_bytes`] (≈ 260) bytes; acknowledged after a
//! quorum has it on disk and the leader applied it. There is no write of an opaque 256-byte
//! value in the store's state machine, and this one goes through exactly the real path
//! (follower forwarding included). The etcd write is a put of a 256-byte value through
//! etcd's v3 HTTP/JSON gateway (acknowledged after commit and apply). Both systems get the
//! same client (reqwest, keep-alive), clients spread round-robin over the three members,
//! and the same counts; each phase runs posmesh then etcd, and both clusters run for the
//! whole benchmark (the same machine load).

use super::etcd::{self, EtcdCluster};
use super::raft_store::{self, RaftStore};
use super::stats::Percentiles;
use crate::clock::monotonic_now;
use anyhow::bail;
use serde::Serialize;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Writes of each phase sent before measuring (connections, caches).
const WARMUP_WRITES: usize = 50;
/// Bytes of the etcd value.
pub const VALUE_BYTES: usize = 256;

/// One system under one load.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct WriteFigures {
    /// Concurrent clients.
    pub clients: usize,
    /// Writes acknowledged.
    pub writes: usize,
    /// Acknowledged writes per second over the phase.
    pub writes_per_s: f64,
    /// Acknowledgement latency of one write.
    pub latency: Percentiles,
}

/// P3 figures.
#[derive(Clone, Debug, Serialize)]
pub struct P3Figures {
    /// Bytes of one posmesh write's command in the Raft log.
    pub posmesh_command_bytes: usize,
    /// Bytes of one etcd value.
    pub etcd_value_bytes: usize,
    /// `etcd --version`.
    pub etcd_version: String,
    /// posmesh, then etcd, for each client count.
    pub phases: Vec<(WriteFigures, WriteFigures)>,
    /// The same client's HTTP round trip with no write behind it, one client (posmesh
    /// `GET /health`, etcd `GET /version`): the part of a 1-client write's latency that is
    /// the client, loopback HTTP and the server's HTTP stack, common to both systems.
    pub http_floor: (WriteFigures, WriteFigures),
}

/// Requests of the HTTP floor measurement ([`P3Figures::http_floor`]).
const HTTP_FLOOR_REQUESTS: usize = 2_000;

/// One `GET url` answered 200.
async fn get_ok(client: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    client
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    Ok(())
}

/// Runs P3 in `work`: `writes` measured writes per phase for each of `client_counts`.
///
/// # Errors
/// A store or etcd that does not start, or a write refused (any refusal fails the run:
/// nothing is dropped from the figures).
pub async fn run_p3(
    binary: &Path,
    catalog: &Path,
    work: &Path,
    client_counts: &[usize],
    writes: usize,
    limit: Duration,
) -> anyhow::Result<P3Figures> {
    let store = RaftStore::start(binary, catalog, &work.join("store"), limit).await?;
    let etcd_client = crate::loopback_store::client()?;
    let etcd = EtcdCluster::start(&etcd_client, work, limit).await?;
    let apis: Vec<String> = (0..raft_store::DEVICES)
        .map(|k| store.node(k).map(|n| n.api.clone()))
        .collect::<anyhow::Result<_>>()?;
    let http_floor = {
        let health = format!("http://{}/health", apis[0]);
        let version = format!("{}/version", etcd.client_urls[0]);
        let (client, etcd_client) = (store.client.clone(), etcd_client.clone());
        let posmesh = load(1, HTTP_FLOOR_REQUESTS, limit, move |_, _| {
            let (client, url) = (client.clone(), health.clone());
            async move { get_ok(&client, &url).await }
        })
        .await?;
        let etcd_floor = load(1, HTTP_FLOOR_REQUESTS, limit, move |_, _| {
            let (client, url) = (etcd_client.clone(), version.clone());
            async move { get_ok(&client, &url).await }
        })
        .await?;
        println!(
            "P3 HTTP floor, 1 client, no write: posmesh GET /health p50 {} µs p99 {} µs | etcd GET /version p50 {} µs p99 {} µs",
            posmesh.latency.p50_us, posmesh.latency.p99_us,
            etcd_floor.latency.p50_us, etcd_floor.latency.p99_us,
        );
        (posmesh, etcd_floor)
    };
    let mut phases = Vec::new();
    for &clients in client_counts {
        let run = format!("p3c{clients}");
        let posmesh = {
            let (client, apis) = (store.client.clone(), apis.clone());
            load(clients, writes, limit, move |c, i| {
                let (client, key) = (client.clone(), raft_store::redemption_key(&run, c, i));
                let api = apis[c % apis.len()].clone();
                async move { raft_store::redeem(&client, &api, &key).await }
            })
            .await?
        };
        let value = vec![b'v'; VALUE_BYTES];
        let etcd_figures = {
            let (client, urls) = (etcd_client.clone(), etcd.client_urls.clone());
            load(clients, writes, limit, move |c, i| {
                let (client, value) = (client.clone(), value.clone());
                let url = urls[c % urls.len()].clone();
                async move { etcd::put(&client, &url, &format!("p3/{clients}/{c}/{i}"), &value).await }
            })
            .await?
        };
        println!(
            "P3 {clients:>3} client(s): posmesh {:.0} writes/s p50 {} µs p99 {} µs | etcd {:.0} writes/s p50 {} µs p99 {} µs → throughput {:.2}× etcd (target ≥ 2), p99 {:.2}× etcd (target ≤ 0.5)",
            posmesh.writes_per_s, posmesh.latency.p50_us, posmesh.latency.p99_us,
            etcd_figures.writes_per_s, etcd_figures.latency.p50_us, etcd_figures.latency.p99_us,
            posmesh.writes_per_s / etcd_figures.writes_per_s.max(f64::MIN_POSITIVE),
            posmesh.latency.p99_us as f64 / etcd_figures.latency.p99_us.max(1) as f64,
        );
        phases.push((posmesh, etcd_figures));
    }
    let etcd_version = etcd.version.clone();
    drop(etcd);
    store.stop()?;
    Ok(P3Figures {
        posmesh_command_bytes: raft_store::redemption_command_bytes(),
        etcd_value_bytes: VALUE_BYTES,
        etcd_version,
        phases,
        http_floor,
    })
}

/// `clients` tasks share `WARMUP_WRITES + writes` writes (`write(client, i)`, a closed loop:
/// each client sends its next write when the last one was acknowledged); the first
/// `WARMUP_WRITES` are not measured. Bounded by `limit`.
async fn load<F, Fut>(
    clients: usize,
    writes: usize,
    limit: Duration,
    write: F,
) -> anyhow::Result<WriteFigures>
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    for i in 0..WARMUP_WRITES {
        write(i % clients.max(1), usize::MAX - i).await?;
    }
    let next = Arc::new(AtomicUsize::new(0));
    let started = monotonic_now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (next, write) = (next.clone(), write.clone());
            tokio::spawn(async move {
                let mut samples = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= writes {
                        return anyhow::Ok(samples);
                    }
                    if started.elapsed() > limit {
                        bail!("ran out of time after {i} writes");
                    }
                    let sent = monotonic_now();
                    write(c, i).await?;
                    samples.push(sent.elapsed());
                }
            })
        })
        .collect();
    let mut samples = Vec::with_capacity(writes);
    for task in tasks {
        samples.extend(task.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(WriteFigures {
        clients,
        writes: samples.len(),
        writes_per_s: samples.len() as f64 / elapsed.max(f64::MIN_POSITIVE),
        latency: Percentiles::of(&mut samples),
    })
}
