//! P7: the Raft leader of a 3-device store is SIGKILLed under load → time until the next
//! commit, over many trials (p50/p99 against the target: the configured maximum election
//! timeout + 0.5 s), and the sale path's p99 on the surviving devices during the failover
//! against the seconds before it (target: unchanged — sales never wait on Raft).
//!
//! Each trial: sales go to both devices that will survive, one client each, back to back;
//! a prober sends a gift-card redemption to a survivor every [`PROBE_EVERY`] without waiting
//! for earlier ones (a request stuck on the dead leader does not delay the next probe, so
//! the measurement's resolution is the probe interval); after [`BEFORE`] the leader is
//! SIGKILLed. The failover time is from the kill until the first acknowledgement of a
//! redemption *sent after* the kill (so a write the old leader committed cannot count).
//! The killed device is then restarted and the trial ends when all three agree on a leader.

use super::raft_store::{self, RaftStore};
use super::stats::Percentiles;
use crate::clock::monotonic_now;
use anyhow::{bail, Context};
use posmesh_consensus::RaftTimings;
use serde::Serialize;
use serde_json::json;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Sales measured before the kill, per trial (the baseline window).
const BEFORE: Duration = Duration::from_secs(2);
/// Interval between redemption probes.
const PROBE_EVERY: Duration = Duration::from_millis(10);
/// A trial whose store has not committed this long after the kill fails the run.
const FAILOVER_LIMIT: Duration = Duration::from_secs(30);
/// Redemption probes in flight at most (bounds the load while the store has no leader).
const MAX_PROBES_IN_FLIGHT: usize = 1000;

/// P7 figures.
#[derive(Clone, Debug, Serialize)]
pub struct P7Figures {
    /// Trials run (one leader kill each).
    pub trials: usize,
    /// From the SIGKILL to the first acknowledged write sent after it.
    pub failover: Percentiles,
    /// The target: the maximum election timeout + 500 ms, in µs.
    pub target_us: u64,
    /// Sales on the survivors in the [`BEFORE`] window before each kill.
    pub sales_before: Percentiles,
    /// Sales on the survivors sent from each kill until that trial's next commit.
    pub sales_during: Percentiles,
}

/// Runs `trials` leader kills on one store in `work`.
///
/// # Errors
/// A store that does not form or restart, or a trial without a commit within
/// [`FAILOVER_LIMIT`].
pub async fn run_p7(
    binary: &Path,
    catalog: &Path,
    work: &Path,
    trials: usize,
    limit: Duration,
) -> anyhow::Result<P7Figures> {
    let mut store = RaftStore::start(binary, catalog, work, limit).await?;
    let started = monotonic_now();
    let (mut failovers, mut before, mut during) = (Vec::new(), Vec::new(), Vec::new());
    for trial in 0..trials {
        if started.elapsed() > limit {
            bail!("P7 ran out of time after {trial} trials");
        }
        let leader = store.wait_leader(None, limit).await?;
        let survivors: Vec<String> = (0..raft_store::DEVICES)
            .filter(|k| *k != leader)
            .map(|k| store.node(k).map(|n| n.api.clone()))
            .collect::<anyhow::Result<_>>()?;
        let stop = Arc::new(AtomicBool::new(false));
        let sales: Vec<_> = survivors
            .iter()
            .enumerate()
            .map(|(k, api)| {
                tokio::spawn(sale_load(
                    store.client.clone(),
                    api.clone(),
                    format!("p7-{trial}-{k}"),
                    stop.clone(),
                ))
            })
            .collect();
        let acks = Arc::new(Mutex::new(Vec::<(Instant, Instant)>::new()));
        let prober = tokio::spawn(probe(
            store.client.clone(),
            survivors.clone(),
            format!("p7-{trial}"),
            acks.clone(),
            stop.clone(),
        ));
        tokio::time::sleep(BEFORE).await;
        let killed_at = monotonic_now();
        let mut old = store.nodes[leader].take().context("leader not running")?;
        old.kill_now()?;
        let committed_at = loop {
            let first = acks
                .lock()
                .map_err(|_| anyhow::anyhow!("probe results poisoned"))?
                .iter()
                .filter(|(sent, _)| *sent >= killed_at)
                .map(|(_, acked)| *acked)
                .min();
            if let Some(at) = first {
                break at;
            }
            if killed_at.elapsed() > FAILOVER_LIMIT {
                stop.store(true, Ordering::Relaxed);
                bail!("trial {trial}: no commit {FAILOVER_LIMIT:?} after the leader's SIGKILL");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        stop.store(true, Ordering::Relaxed);
        old.kill()?;
        prober.await??;
        for task in sales {
            for (sent, latency) in task.await?? {
                if sent >= killed_at && sent <= committed_at {
                    during.push(latency);
                } else if sent < killed_at && killed_at.duration_since(sent) <= BEFORE {
                    before.push(latency);
                }
            }
        }
        let failover = committed_at.duration_since(killed_at);
        println!(
            "P7 trial {}/{trials}: {} killed, next commit after {} ms",
            trial + 1,
            store.specs[leader].device_id,
            failover.as_millis()
        );
        failovers.push(failover);
        store.restart(leader).await?;
    }
    store.wait_leader(None, limit).await?;
    store.stop()?;
    let timings = RaftTimings::STORE;
    let figures = P7Figures {
        trials: failovers.len(),
        failover: Percentiles::of(&mut failovers),
        target_us: (timings.election_timeout_max_ms + 500) * 1000,
        sales_before: Percentiles::of(&mut before),
        sales_during: Percentiles::of(&mut during),
    };
    println!(
        "P7: leader SIGKILL → next commit p50 {} ms p99 {} ms max {} ms over {} trials (target p99 ≤ {} ms: max election timeout + 0.5 s); sale p99 on the survivors {} µs during failover vs {} µs before ({:.2}×, target unchanged)",
        figures.failover.p50_us / 1000, figures.failover.p99_us / 1000, figures.failover.max_us / 1000,
        figures.trials, figures.target_us / 1000, figures.sales_during.p99_us, figures.sales_before.p99_us,
        figures.sales_during.p99_us as f64 / figures.sales_before.p99_us.max(1) as f64,
    );
    Ok(figures)
}

/// One client posting sales to `api` back to back until `stop`; returns (sent, latency)
/// of each. Any refused sale fails the run.
async fn sale_load(
    client: reqwest::Client,
    api: String,
    run: String,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Vec<(Instant, Duration)>> {
    let sale = json!({
        "currency": "GBP",
        "lines": [{"sku": "BREAD", "quantity": 1}],
        "tenders": [{"kind": "cash", "amount_minor": 500}]
    });
    let mut samples = Vec::new();
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) && i < 1_000_000 {
        let sent = monotonic_now();
        client
            .post(format!("http://{api}/v1/sales"))
            .header("Idempotency-Key", format!("{run}-{i}"))
            .json(&sale)
            .send()
            .await?
            .error_for_status()?;
        samples.push((sent, sent.elapsed()));
        i += 1;
    }
    Ok(samples)
}

/// Sends a redemption to the survivors in turn every [`PROBE_EVERY`] until `stop`, each in
/// its own task; records (sent, acknowledged) of each acknowledged one. Refusals (503
/// `no_quorum` while there is no leader) and time-outs are expected and not recorded.
async fn probe(
    client: reqwest::Client,
    apis: Vec<String>,
    run: String,
    acks: Arc<Mutex<Vec<(Instant, Instant)>>>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let mut in_flight = tokio::task::JoinSet::new();
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        while in_flight.try_join_next().is_some() {}
        if in_flight.len() < MAX_PROBES_IN_FLIGHT {
            let (client, acks) = (client.clone(), acks.clone());
            let api = apis[i % apis.len()].clone();
            let key = raft_store::redemption_key(&run, 0, i);
            in_flight.spawn(async move {
                let sent = monotonic_now();
                if raft_store::redeem(&client, &api, &key).await.is_ok() {
                    if let Ok(mut acks) = acks.lock() {
                        acks.push((sent, monotonic_now()));
                    }
                }
            });
            i += 1;
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
    in_flight.abort_all();
    while in_flight.join_next().await.is_some() {}
    Ok(())
}
