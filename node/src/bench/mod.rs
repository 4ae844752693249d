//! `posmesh bench`: the benchmarks of the foundation milestone, printed as figures (never
//! timed tests: these machines are shared and noisy).
//!
//! - P1 ([`sale_ack`]): sale acknowledgement latency, one client, p50/p99, against a raw
//!   append + fdatasync of the same size measured in the same run ([`raw_fsync`]).
//! - P2 ([`sale_ack`]): sales/s with 64 concurrent clients and sales per fsync, against the
//!   raw single-writer fsync rate.
//! - RSS ([`idle_rss`]): resident memory of an idle node holding 1M journal entries.
//! - Catch-up ([`catchup`]): devices each holding entries the others lack → time to
//!   convergence and wire bytes per entry byte.
//! - P4 and orders ([`store_sync`]): a sale on one device until readable on all peers,
//!   against QUIC RTT + fsync; 200 concurrent edits of one shared order from 3 devices.
//! - Mesh ([`lab_mesh`], needs root): discovery-to-connected over mDNS + mTLS in the lab,
//!   and request round trips over the mesh against raw UDP ([`probe`] runs in the hosts).
//! - Offline ([`offline_saf`]): N offline card payments on 3 devices → time until all are
//!   forwarded and acknowledged once the acquirer simulator returns.
//! - P3 ([`raft_writes`]): replicated writes through a 3-device store's Raft group, 1 and
//!   256 clients, against a 3-member etcd cluster on the same machine ([`etcd`]) in the
//!   same run.
//! - P7 ([`failover`]): the Raft leader SIGKILLed under load → time to the next commit, and
//!   the sale path's p99 during the failover against before it ([`raft_store`] starts the
//!   store for both).
//! - [`stats`] — percentiles.
//!
//! Every load is bounded in count and time, and talks to a node on loopback only.

pub mod catchup;
pub mod idle_rss;
pub mod lab_mesh;
pub mod offline_saf;
pub mod probe;
pub mod raw_fsync;
pub mod sale_ack;
pub mod stats;
pub mod store_sync;
// Store consensus (issue 6).
pub mod etcd;
pub mod failover;
pub mod raft_store;
pub mod raft_writes;

use crate::node_process::NodeSpec;
use serde::Serialize;
use std::path::PathBuf;

/// `posmesh bench` flags.
#[derive(clap::Args, Clone, Debug)]
pub struct BenchArgs {
    /// Which benchmarks: `p1`, `p2`, `rss`, `mesh`, `catchup`, `p4` (P4 and the order
    /// edits), `offline` (store-and-forward), `p3` (Raft writes against etcd: needs `etcd`
    /// on PATH), `p7` (leader failover) (comma-separated) or `all`.
    #[arg(long, default_value = "all")]
    pub only: String,
    /// Sales measured by P1 (one client).
    #[arg(long, default_value_t = 2000)]
    pub p1_sales: usize,
    /// Sales sent by P2 (all clients together).
    #[arg(long, default_value_t = 20_000)]
    pub p2_sales: usize,
    /// Concurrent clients of P2.
    #[arg(long, default_value_t = 64)]
    pub p2_clients: usize,
    /// Journal entries the idle node of the RSS benchmark holds.
    #[arg(long, default_value_t = 1_000_000)]
    pub rss_entries: u64,
    /// Catalog the benchmark node uses.
    #[arg(long, default_value = "catalog/bakery.toml")]
    pub catalog: PathBuf,
    /// Directory for the benchmark's data (its disk is what is measured). Default: a new
    /// temporary directory, removed afterwards.
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Devices of the catch-up benchmark.
    #[arg(long, default_value_t = 5)]
    pub catchup_devices: usize,
    /// Entries each device holds that the others lack, catch-up benchmark.
    #[arg(long, default_value_t = 100_000)]
    pub catchup_entries: u64,
    /// Sales P4 times until visible on every peer.
    #[arg(long, default_value_t = 300)]
    pub p4_sales: usize,
    /// Edits of the shared order in the order benchmark (3 devices together).
    #[arg(long, default_value_t = 200)]
    pub order_edits: usize,
    /// Fresh labs the discovery benchmark runs (its median is reported).
    #[arg(long, default_value_t = 20)]
    pub mesh_runs: usize,
    /// Offline card payments of the store-and-forward benchmark (3 devices together).
    #[arg(long, default_value_t = 10_000)]
    pub offline_payments: usize,
    /// Measured writes of P3 per phase and system (after 50 warm-up writes).
    #[arg(long, default_value_t = 2000)]
    pub p3_writes: usize,
    /// Concurrent client counts of P3's phases (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,256")]
    pub p3_clients: Vec<usize>,
    /// Write every measured P3 write (client, member, send time, latency) as CSV files into
    /// this directory (`p3-posmesh-N.csv`, `p3-etcd-N.csv`), to see when and where the tail
    /// happens.
    #[arg(long)]
    pub p3_samples: Option<PathBuf>,
    /// Leader kills of P7.
    #[arg(long, default_value_t = 20)]
    pub p7_trials: usize,
    /// Stop any single benchmark after this many seconds (a safety bound).
    #[arg(long, default_value_t = 300)]
    pub time_limit_s: u64,
}

/// All figures of one run (printed as a JSON line at the end).
#[derive(Debug, Default, Serialize)]
pub struct BenchReport {
    /// P1 figures.
    pub p1: Option<sale_ack::P1Figures>,
    /// P2 figures.
    pub p2: Option<sale_ack::P2Figures>,
    /// RSS figures.
    pub rss: Option<idle_rss::RssFigures>,
    /// Mesh figures.
    pub mesh: Option<lab_mesh::MeshFigures>,
    /// Catch-up figures.
    pub catchup: Option<catchup::CatchupFigures>,
    /// P4 figures.
    pub p4: Option<store_sync::P4Figures>,
    /// Shared-order figures.
    pub orders: Option<store_sync::OrderFigures>,
    /// Store-and-forward figures.
    pub offline: Option<offline_saf::OfflineFigures>,
    /// P3 figures.
    pub p3: Option<raft_writes::P3Figures>,
    /// P7 figures.
    pub p7: Option<failover::P7Figures>,
}

/// Runs the selected benchmarks and prints their figures.
pub async fn run_bench(args: BenchArgs) -> anyhow::Result<BenchReport> {
    let selected =
        |name: &str| args.only == "all" || args.only.split(',').any(|s| s.trim() == name);
    // Checked before anything is created: the default is relative to the repository.
    let catalog = std::fs::canonicalize(&args.catalog).map_err(|e| {
        anyhow::anyhow!(
            "cannot read the benchmark catalog {} ({e}): run from the repository's root or \
             pass --catalog PATH",
            args.catalog.display()
        )
    })?;
    let temp = tempdir_in(args.work_dir.as_deref())?;
    let binary = std::env::current_exe()?;
    let spec = |name: &str| NodeSpec {
        binary: binary.clone(),
        data_dir: temp.join(name),
        catalog: catalog.clone(),
        store_id: "bench-store".into(),
        device_id: "till-1".into(),
    };
    let limit = std::time::Duration::from_secs(args.time_limit_s);
    // SIGINT (Ctrl-C) or SIGTERM mid-run: kill the processes this run started (etcd
    // members, nodes) rather than leave them running, then exit as the signal would.
    let interrupted = crate::child_processes::on_interrupt()?;
    let _watch = AbortOnDrop(tokio::spawn(async move {
        let code = interrupted.await;
        eprintln!("posmesh bench: interrupted, child processes killed");
        std::process::exit(code)
    }));
    let mut report = BenchReport::default();
    println!(
        "posmesh bench — data in {} ({} cores)",
        temp.display(),
        cores()
    );
    if selected("p1") {
        report.p1 = Some(sale_ack::run_p1(&spec("p1"), &temp, args.p1_sales, limit).await?);
    }
    if selected("p2") {
        report.p2 = Some(
            sale_ack::run_p2(&spec("p2"), &temp, args.p2_sales, args.p2_clients, limit).await?,
        );
    }
    if selected("rss") {
        report.rss = Some(idle_rss::run_rss(&spec("rss"), args.rss_entries, limit).await?);
    }
    if selected("catchup") {
        let work = temp.join("catchup");
        std::fs::create_dir_all(&work)?;
        report.catchup = Some(
            catchup::run_catchup(
                &binary,
                &catalog,
                &work,
                args.catchup_devices,
                args.catchup_entries,
                limit,
            )
            .await?,
        );
    }
    if selected("p4") {
        let work = temp.join("store");
        std::fs::create_dir_all(&work)?;
        let (p4, orders) = store_sync::run_store_sync(
            &binary,
            &catalog,
            &work,
            args.p4_sales,
            args.order_edits,
            limit,
        )
        .await?;
        report.p4 = Some(p4);
        report.orders = Some(orders);
    }
    if selected("offline") {
        let work = temp.join("offline");
        std::fs::create_dir_all(&work)?;
        report.offline = Some(
            offline_saf::run_offline(&binary, &catalog, &work, args.offline_payments, limit)
                .await?,
        );
    }
    if selected("p3") {
        let work = temp.join("p3");
        std::fs::create_dir_all(&work)?;
        report.p3 = Some(
            raft_writes::run_p3(
                &binary,
                &catalog,
                &work,
                &args.p3_clients,
                args.p3_writes,
                limit,
                args.p3_samples.as_deref(),
            )
            .await?,
        );
    }
    if selected("p7") {
        let work = temp.join("p7");
        std::fs::create_dir_all(&work)?;
        report.p7 = Some(failover::run_p7(&binary, &catalog, &work, args.p7_trials, limit).await?);
    }
    if selected("mesh") {
        let work = lab_mesh::lab_work_dir(&temp);
        let (binary, catalog, runs) = (binary.clone(), catalog.clone(), args.mesh_runs);
        report.mesh = Some(
            tokio::task::spawn_blocking(move || lab_mesh::run_mesh(&binary, &catalog, &work, runs))
                .await??,
        );
    }
    if args.work_dir.is_none() {
        let _ = std::fs::remove_dir_all(&temp);
    }
    println!("{}", serde_json::to_string(&report)?);
    Ok(report)
}

/// Stops the signal watcher of [`run_bench`] when the run ends, however it ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn tempdir_in(base: Option<&std::path::Path>) -> anyhow::Result<PathBuf> {
    let base = base.map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let dir = base.join(format!("posmesh-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
