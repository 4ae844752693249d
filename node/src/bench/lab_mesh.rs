//! Mesh benchmarks in the lab (needs root): real processes in network namespaces.
//!
//! - Discovery to connected: from the second node's process start until both nodes log the
//!   other connected over mutual TLS, found by mDNS alone; median of `runs` fresh labs
//!   (target ≤ 1.5 s; mdns-sd resolves in about 1 s). Times come from the nodes' own log
//!   timestamps (UTC, µs), so polling adds no error.
//! - Request round trip over the mesh (a ping on a fresh QUIC stream, mutual TLS) between
//!   two lab hosts, p50/p99, against a raw UDP round trip between the same hosts measured
//!   in the same run (target p50 ≤ 2× raw).

use super::stats::Percentiles;
use crate::clock::monotonic_now;
use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use posmesh_mesh::pki::ChainCa;
use posmesh_mesh::PeerIdentity;
use posmesh_simulations::lab::{Lab, LabHost, LabProcess};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

const MESH_PORT: u16 = 7072;
const ECHO_PORT: u16 = 7099;
/// Longest one discovery run may take.
const RUN_LIMIT: Duration = Duration::from_secs(20);

/// Mesh figures.
#[derive(Clone, Debug, Serialize)]
pub struct MeshFigures {
    /// Discovery-to-connected times of every run, ms, in run order.
    pub discovery_runs_ms: Vec<u64>,
    /// Their median, ms (target ≤ 1500).
    pub discovery_median_ms: u64,
    /// Request round trip over the mesh.
    pub mesh_rtt: Percentiles,
    /// Raw UDP round trip between the same hosts.
    pub udp_rtt: Percentiles,
    /// mesh p50 ÷ UDP p50 (target ≤ 2).
    pub p50_ratio: f64,
}

/// Runs both mesh benchmarks.
pub fn run_mesh(
    binary: &Path,
    catalog: &Path,
    work: &Path,
    runs: usize,
) -> anyhow::Result<MeshFigures> {
    let certs = work.join("mesh-certs");
    issue_certs(&certs)?;
    let mut discovery_runs_ms = Vec::with_capacity(runs);
    for run in 0..runs {
        let lab = Lab::new(2).context("the mesh benchmarks need the lab (root, iproute2)")?;
        let data = work.join(format!("mesh-run-{run}"));
        let first = start_node(lab.host(1), binary, catalog, &certs, &data, "till-1")?;
        first.wait_for_log("device node ready", RUN_LIMIT)?;
        let started: DateTime<Utc> = Utc::now();
        let second = start_node(lab.host(2), binary, catalog, &certs, &data, "till-2")?;
        let a = connected_at(&first)?;
        let b = connected_at(&second)?;
        let took = (a.max(b) - started).num_milliseconds().max(0) as u64;
        discovery_runs_ms.push(took);
        if run + 1 == runs {
            let figures = measure_rtt(&lab, binary, &certs)?;
            let mut sorted = discovery_runs_ms.clone();
            sorted.sort_unstable();
            let median = sorted[sorted.len() / 2];
            println!(
                "mesh discovery→connected over mDNS + mTLS, {} lab runs: median {} ms, min {} ms, max {} ms (target ≤ 1500 ms)",
                runs, median, sorted[0], sorted[sorted.len() - 1]
            );
            println!(
                "mesh request round trip (QUIC stream + mTLS) p50 {} µs p99 {} µs | raw UDP p50 {} µs p99 {} µs | p50 ratio {:.2} (target ≤ 2)",
                figures.0.p50_us, figures.0.p99_us, figures.1.p50_us, figures.1.p99_us,
                figures.0.p50_us as f64 / figures.1.p50_us.max(1) as f64
            );
            drop((first, second));
            lab.close()?;
            return Ok(MeshFigures {
                discovery_runs_ms,
                discovery_median_ms: median,
                p50_ratio: figures.0.p50_us as f64 / figures.1.p50_us.max(1) as f64,
                mesh_rtt: figures.0,
                udp_rtt: figures.1,
            });
        }
        drop((first, second));
        lab.close()?;
    }
    bail!("no runs")
}

fn issue_certs(dir: &Path) -> anyhow::Result<()> {
    let ca = ChainCa::init("bench", &dir.join("ca"))?;
    let now = time::OffsetDateTime::from_unix_timestamp(i64::try_from(
        crate::clock::wall_clock_ms() / 1000,
    )?)?;
    for device in ["till-1", "till-2", "probe"] {
        let identity = PeerIdentity::new_device("bench", "s1", device)?;
        ca.issue(
            &identity,
            now - time::Duration::hours(1),
            now + time::Duration::days(1),
        )?
        .write_identity(&dir.join(device))?;
    }
    Ok(())
}

/// Starts `posmesh device` `device` of store `s1` in a lab host: data in `data/<device>`,
/// identity in `certs/<device>`, mesh on port 7072 of the host's lab interface with mDNS
/// on it, APIs on the host's loopback (7070, 7071). Does not wait for readiness.
pub fn start_node(
    host: &LabHost,
    binary: &Path,
    catalog: &Path,
    certs: &Path,
    data: &Path,
    device: &str,
) -> anyhow::Result<LabProcess> {
    start_node_with(host, binary, catalog, certs, data, device, &[])
}

/// [`start_node`] with `extra` flags (e.g. `--raft-bootstrap`).
pub fn start_node_with(
    host: &LabHost,
    binary: &Path,
    catalog: &Path,
    certs: &Path,
    data: &Path,
    device: &str,
    extra: &[&str],
) -> anyhow::Result<LabProcess> {
    let mut command = host.command(binary);
    command
        .arg("device")
        .arg("--data-dir")
        .arg(data.join(device))
        .arg("--catalog")
        .arg(catalog)
        .args(["--store-id", "s1", "--device-id", device])
        .arg("--identity-dir")
        .arg(certs.join(device))
        .args(["--mesh-listen", &format!("0.0.0.0:{MESH_PORT}")])
        .args(["--mdns-interface", &host.interface])
        .args([
            "--api-listen",
            "127.0.0.1:7070",
            "--mgmt-listen",
            "127.0.0.1:7071",
        ])
        .args(extra)
        .env("RUST_LOG", "info");
    Ok(host.spawn(command)?)
}

/// When the node logged its first "peer connected" (from the log line's UTC timestamp).
fn connected_at(node: &LabProcess) -> anyhow::Result<DateTime<Utc>> {
    let line = node.wait_for_log("peer connected", RUN_LIMIT)?;
    let line = line
        .lines()
        .find(|l| l.contains("peer connected"))
        .context("no peer connected line")?;
    let stamp = line.split_whitespace().next().context("empty log line")?;
    Ok(DateTime::parse_from_rfc3339(stamp)
        .with_context(|| format!("log timestamp {stamp:?}"))?
        .with_timezone(&Utc))
}

fn measure_rtt(
    lab: &Lab,
    binary: &Path,
    certs: &Path,
) -> anyhow::Result<(Percentiles, Percentiles)> {
    let echo_addr = lab.host(2).addr(ECHO_PORT);
    let mut echo = lab.host(2).command(binary);
    echo.args([
        "probe",
        "udp-echo",
        "--listen",
        &echo_addr.to_string(),
        "--max-seconds",
        "60",
    ]);
    let echo = lab.host(2).spawn(echo)?;
    std::thread::sleep(Duration::from_millis(200));
    let mut udp = lab.host(1).command(binary);
    udp.args([
        "probe",
        "udp-ping",
        "--target",
        &echo_addr.to_string(),
        "--count",
        "2000",
    ]);
    let udp: Percentiles = parse_probe(lab.host(1), udp)?;
    let mut mesh = lab.host(1).command(binary);
    mesh.args(["probe", "mesh-ping", "--identity-dir"])
        .arg(certs.join("probe"))
        .args([
            "--target",
            &lab.host(2).addr(MESH_PORT).to_string(),
            "--count",
            "2000",
        ]);
    let mesh: Percentiles = parse_probe(lab.host(1), mesh)?;
    echo.kill()?;
    Ok((mesh, udp))
}

fn parse_probe(host: &LabHost, command: std::process::Command) -> anyhow::Result<Percentiles> {
    let started = monotonic_now();
    let output = host.run(command, Duration::from_secs(90))?;
    let line = output.stdout.lines().last().unwrap_or("").to_owned();
    let value: serde_json::Value = serde_json::from_str(&line).with_context(|| {
        format!(
            "probe printed {:?} (stderr {:?}) after {:?}",
            output.stdout,
            output.stderr,
            started.elapsed()
        )
    })?;
    Ok(Percentiles {
        count: value["count"].as_u64().unwrap_or(0) as usize,
        p50_us: value["p50_us"].as_u64().unwrap_or(0),
        p99_us: value["p99_us"].as_u64().unwrap_or(0),
        max_us: value["max_us"].as_u64().unwrap_or(0),
    })
}

/// Where `posmesh bench` keeps lab data (the lab removes only its own namespaces).
pub fn lab_work_dir(base: &Path) -> PathBuf {
    base.join("lab")
}
