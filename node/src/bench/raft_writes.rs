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
//! same client (reqwest, keep-alive), writes spread round-robin over the three members
//! ([`member_of`]: a lone client too, so neither system's 1-client figure depends on
//! whether its first member happens to lead),
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

/// Fewest writes of each phase sent before measuring (connections, caches); see
/// [`warmup_writes`].
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
    samples_dir: Option<&Path>,
) -> anyhow::Result<P3Figures> {
    if let Some(dir) = samples_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    }
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
        .await?
        .0;
        let etcd_floor = load(1, HTTP_FLOOR_REQUESTS, limit, move |_, _| {
            let (client, url) = (etcd_client.clone(), version.clone());
            async move { get_ok(&client, &url).await }
        })
        .await?
        .0;
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
            let (figures, samples) = load(clients, writes, limit, move |c, i| {
                let (client, key) = (client.clone(), raft_store::redemption_key(&run, c, i));
                let api = apis[member_of(c, i, apis.len())].clone();
                async move { raft_store::redeem(&client, &api, &key).await }
            })
            .await?;
            if let Some(dir) = samples_dir {
                let leader = store.wait_leader(None, limit).await?;
                write_samples(
                    &dir.join(format!("p3-posmesh-{clients}.csv")),
                    &samples,
                    Some(leader),
                )?;
            }
            figures
        };
        let value = vec![b'v'; VALUE_BYTES];
        let etcd_figures = {
            let (client, urls) = (etcd_client.clone(), etcd.client_urls.clone());
            let (figures, samples) =
                load(clients, writes, limit, move |c, i| {
                    let (client, value) = (client.clone(), value.clone());
                    let url = urls[member_of(c, i, urls.len())].clone();
                    async move {
                        etcd::put(&client, &url, &format!("p3/{clients}/{c}/{i}"), &value).await
                    }
                })
                .await?;
            if let Some(dir) = samples_dir {
                write_samples(&dir.join(format!("p3-etcd-{clients}.csv")), &samples, None)?;
            }
            figures
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

/// One measured write: which client sent it, when (from the phase's start) and how long its
/// acknowledgement took.
#[derive(Clone, Copy, Debug)]
struct Sample {
    client: usize,
    index: usize,
    sent_after: Duration,
    latency: Duration,
}

/// The member (0..`members`) that client `client` sends its write `i` to: round-robin over
/// the members by client and write, so 1 client and 256 clients alike reach the leader
/// directly for a third of the writes and through a follower for the rest.
fn member_of(client: usize, i: usize, members: usize) -> usize {
    client.wrapping_add(i) % members.max(1)
}

/// Writes `samples` as CSV (`client,member,sent_us,latency_us,via_leader`; `member` as
/// [`member_of`]) to `path`, for looking at when and where the tail happens.
fn write_samples(path: &Path, samples: &[Sample], leader: Option<usize>) -> anyhow::Result<()> {
    use std::fmt::Write as _;
    let mut csv = String::from("client,member,sent_us,latency_us,via_leader\n");
    for s in samples {
        let member = member_of(s.client, s.index, raft_store::DEVICES);
        let via_leader = leader.map_or(String::new(), |l| u8::from(l == member).to_string());
        let _ = writeln!(
            csv,
            "{},{member},{},{},{via_leader}",
            s.client,
            s.sent_after.as_micros(),
            s.latency.as_micros()
        );
    }
    std::fs::write(path, csv)
        .map_err(|e| anyhow::anyhow!("cannot write the samples to {}: {e}", path.display()))
}

/// `clients` tasks first share a warm-up of [`warmup_writes`]`(clients)` writes, then
/// `writes` measured ones (`write(client, i)`, a closed loop: each client sends its next
/// write when its last one was acknowledged). The warm-up runs at the measured concurrency,
/// so the measured writes start in the steady state (every client's connection open, the
/// servers' queues and buffers at their working size) instead of timing the first
/// connections of 256 clients. Bounded by `limit`. Returns the figures and every measured
/// write.
async fn load<F, Fut>(
    clients: usize,
    writes: usize,
    limit: Duration,
    write: F,
) -> anyhow::Result<(WriteFigures, Vec<Sample>)>
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    closed_loop(
        clients,
        warmup_writes(clients),
        WARMUP_FIRST_INDEX,
        limit,
        write.clone(),
    )
    .await?;
    let started = monotonic_now();
    let samples = closed_loop(clients, writes, 0, limit, write).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
    let figures = WriteFigures {
        clients,
        writes: samples.len(),
        writes_per_s: samples.len() as f64 / elapsed.max(f64::MIN_POSITIVE),
        latency: Percentiles::of(&mut latencies),
    };
    Ok((figures, samples))
}

/// Write indices of the warm-up start here, far from the measured ones (0..writes): every
/// write has its own key.
const WARMUP_FIRST_INDEX: usize = usize::MAX / 2;

/// Warm-up writes before a phase of `clients` clients: [`WARMUP_WRITES`], and at least
/// four per client.
fn warmup_writes(clients: usize) -> usize {
    WARMUP_WRITES.max(clients.saturating_mul(4))
}

/// `clients` tasks share `count` writes `write(client, first_index + i)` in a closed loop;
/// returns each write's sample (send time from the loop's start). Bounded by `limit`.
async fn closed_loop<F, Fut>(
    clients: usize,
    count: usize,
    first_index: usize,
    limit: Duration,
    write: F,
) -> anyhow::Result<Vec<Sample>>
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let started = monotonic_now();
    let tasks: Vec<_> = (0..clients.max(1))
        .map(|c| {
            let (next, write) = (next.clone(), write.clone());
            tokio::spawn(async move {
                let mut samples = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        return anyhow::Ok(samples);
                    }
                    if started.elapsed() > limit {
                        bail!("ran out of time after {i} writes");
                    }
                    let sent = monotonic_now();
                    write(c, first_index + i).await?;
                    samples.push(Sample {
                        client: c,
                        index: first_index + i,
                        sent_after: sent.duration_since(started),
                        latency: sent.elapsed(),
                    });
                }
            })
        })
        .collect();
    let mut samples = Vec::with_capacity(count);
    for task in tasks {
        samples.extend(task.await??);
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_spread_over_every_member_whatever_the_client_count() {
        // One client: its consecutive writes go to 0, 1, 2, 0, … (not all to member 0,
        // which may or may not be the leader).
        let lone: Vec<usize> = (0..6).map(|i| member_of(0, i, 3)).collect();
        assert_eq!(lone, vec![0, 1, 2, 0, 1, 2]);
        // 256 clients' first writes: as many on each member as round-robin allows.
        let mut per_member = [0usize; 3];
        for c in 0..256 {
            per_member[member_of(c, 0, 3)] += 1;
        }
        assert_eq!(per_member, [86, 85, 85]);
        // Warm-up indices near usize::MAX / 2 never overflow.
        assert!(member_of(usize::MAX, WARMUP_FIRST_INDEX, 3) < 3);
        assert_eq!(warmup_writes(1), WARMUP_WRITES);
        assert_eq!(warmup_writes(256), 1024);
    }

    #[tokio::test]
    async fn the_warm_up_runs_at_the_measured_concurrency_and_is_not_measured() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = seen.clone();
        let (figures, samples) = load(8, 100, Duration::from_secs(30), move |c, i| {
            let record = record.clone();
            async move {
                record
                    .lock()
                    .map_err(|_| anyhow::anyhow!("poisoned"))?
                    .push((c, i));
                Ok(())
            }
        })
        .await
        .expect("load");
        let seen = seen.lock().expect("lock").clone();
        // Warm-up (max(50, 8 × 4) = 50 writes) then 100 measured, each index once.
        assert_eq!(seen.len(), 150);
        let warm: Vec<_> = seen
            .iter()
            .filter(|(_, i)| *i >= WARMUP_FIRST_INDEX)
            .collect();
        assert_eq!(warm.len(), 50);
        assert_eq!(figures.writes, 100);
        assert_eq!(samples.len(), 100);
        assert!(samples.iter().all(|s| s.index < 100));
        let mut indices: Vec<usize> = samples.iter().map(|s| s.index).collect();
        indices.sort_unstable();
        assert_eq!(indices, (0..100).collect::<Vec<_>>());
    }
}
