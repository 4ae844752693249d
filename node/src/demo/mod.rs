//! `posmesh demo` — what `make run` shows: a store of three device nodes on this machine,
//! taking the bakery's whole till export (159 days) as its sales, through a device crash and
//! a partition, and reconciling everything at the end.
//!
//! 0. Where it runs ([`network`], `--network`): each device, the cloud and the acquirer
//!    in a network namespace of its own, made by the demo inside its own network, mount
//!    and PID namespaces (as root, or through a user namespace), peers found by real mDNS;
//!    or, where namespaces cannot be made, all on loopback with static peers.
//! 1. A chain CA and three device identities; three nodes as a full mesh (QUIC, mutual
//!    TLS).
//! 2. The file's transactions day by day, each on the till chosen by its transaction number
//!    (`number mod 3`), tender chosen by the number too (every third by card, the others in
//!    cash), at full speed (time-compressed: each sale carries the file's date and time).
//! 3. One third of the way in, till-2 is SIGKILLed while that day's sales stream in and
//!    restarted; sales it did not acknowledge are sent again with the same Idempotency-Key.
//! 4. For the days from 55 % to 70 % of the file, till-3 is cut off (its link goes down;
//!    on loopback: restarted without peers): it keeps selling alone; then it rejoins.
//! 5. Every device uploads to the chain's cloud (`posmesh cloud serve`, QUIC with mutual
//!    TLS on loopback). For the days from 38 % to 50 % of the file the store loses its
//!    internet: the cloud is unreachable (its link goes down; on loopback its process is
//!    SIGKILLed, its port held meanwhile ([`held_ports`]), then restarted on the same
//!    address and data) and the devices keep
//!    selling; afterwards they upload the backlog from the cloud's version vector.
//! 6. At the end, once every device holds every sale: sales per device equal the plan, the
//!    day totals are identical on every device and in the cloud, the cloud holds every sale
//!    exactly once, each day's item count equals the file's, every journal's hash chain
//!    verifies. A table, then one JSON line; non-zero exit if anything does not reconcile.
//!
//! 7. Card tenders carry a test card (PAN from the transaction number) and are authorized
//!    by the `posmesh-acquirer` simulator. The internet outage cuts the acquirer too (its
//!    link; on loopback SIGKILLed, restarted afterwards on the same address): card payments are taken
//!    offline within the floor limit, the device cap and each device's allotment of the
//!    store's exposure budget (committed through the store's Raft group, bootstrapped on
//!    till-1); a card refused offline is paid in cash, as at a real till. After healing,
//!    the Raft leader forwards every offline payment: the acquirer must count exactly as
//!    many distinct advices as payments were taken offline, every device's queue must be
//!    empty and the cloud must report none unforwarded.
//! 8. The last day is closed through Raft; its Z-report must be byte-identical on every
//!    device.
//!
//! The sales carry the file's 2016–17 times while the store runs today, so the demo sets
//! the maximum offline age beyond that gap (otherwise every payment would look years
//! overdue).

pub mod acquirer;
mod held_ports;
pub mod network;
mod report;
mod store_api;
pub mod till;

pub use report::DemoReport;

use crate::catalog_file::load_catalog;
use crate::cloud::process::{CloudProcess, CloudSpec};
use crate::import::replay::{
    fetch_days, plan_sales, pounds, progress_bar, ImportSummary, PlannedSale,
};
use crate::import::till_export::parse_till_export;
use crate::loopback_store::{client, status, wait_connected, LoopbackStore};
use crate::node_process::{NodeProcess, NodeSpec, Placement};
use crate::report::day_totals::DayTotals;
use acquirer::AcquirerProcess;
use anyhow::{bail, Context};
use held_ports::HeldPorts;
use network::{NetworkMode, Plan, StoreNetwork};
use report::{count_paid, discovery_complete, print_last_day, print_report, print_z_report};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use store_api::{
    close_day, cloud_entries, commit, count_sales, own_entries, peer_sources, queued_payments,
    wait_applied, wait_leader,
};
use till::{sell, with_card};

/// Devices in the demo store.
pub const DEVICES: usize = 3;
/// Longest wait for the store to converge, forward its offline payments, reach the cloud.
const CONVERGENCE_WAIT: Duration = Duration::from_secs(120);
/// The offline floor limit of the demo's devices (£50; the bakery's sales are smaller).
const FLOOR_LIMIT_MINOR: i64 = 5000;
/// Maximum offline age of the demo's devices: 20 years, beyond the gap between the file's
/// 2016–17 sale times and today (the demo compresses time, the age rule reads both).
const OFFLINE_MAX_AGE_SECS: u64 = 20 * 365 * 24 * 3600;
/// The demo store's id.
const STORE_ID: &str = "bread-basket";
/// Fewest days of sales the demo replays: its crash, partition, outage and day closes
/// fall on fixed days of the replay. `--days` below it is refused (`--help` says it).
pub const DAYS_MIN: usize = 10;

/// `posmesh demo` flags.
#[derive(clap::Args, Clone, Debug)]
pub struct DemoArgs {
    /// The till export (CSV with header Date,Time,Transaction,Item).
    pub csv: PathBuf,
    /// The catalog the devices use.
    #[arg(long, default_value = "catalog/bakery.toml")]
    pub catalog: PathBuf,
    /// IANA time zone of the export's local times.
    #[arg(long, default_value = "Europe/London")]
    pub time_zone: String,
    /// Replay only the first N days (a shorter demo, e.g. for tests); at least 10.
    #[arg(long)]
    pub days: Option<usize>,
    /// Sales in flight at once per device.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Keep the data here (default: a temporary directory, removed afterwards).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Each device's allotment of the store's offline card budget (committed through
    /// Raft), minor units (GBP): what it may hold unforwarded while the acquirer is
    /// unreachable. The store's budget is the sum of the allotments.
    #[arg(long, default_value_t = 50_000)]
    pub offline_allotment_minor: i64,
    /// Where the store runs: `netns` — each device, the cloud and the acquirer in a
    /// network namespace of their own made by the demo, peers found by real mDNS (as root,
    /// or unprivileged through a user namespace); `loopback` — all on 127.0.0.1 with static
    /// peers; `auto` — netns where it can be made, else loopback (saying why).
    #[arg(long, value_enum, default_value_t = NetworkMode::Auto)]
    pub network: NetworkMode,
    /// Fail on purpose at the start of this day (1-based), to check the clean-up.
    #[arg(long, hide = true)]
    pub fail_on_day: Option<usize>,
}

/// Refuses a `--days` below [`DAYS_MIN`] before anything starts.
///
/// # Errors
/// `--days N is below the minimum of 10`.
fn check_days(days: Option<usize>) -> anyhow::Result<()> {
    match days {
        Some(days) if days < DAYS_MIN => {
            bail!("--days {days} is below the minimum of {DAYS_MIN}")
        }
        _ => Ok(()),
    }
}

/// Runs the demo and prints its report.
pub async fn run_demo(args: DemoArgs) -> anyhow::Result<DemoReport> {
    check_days(args.days)?;
    let (network_name, privilege) = match network::plan(args.network)? {
        Plan::ReExec(command) => {
            println!(
                "== network: namespaces — the demo runs again inside new network, mount and PID namespaces ({})",
                command
                    .get_args()
                    .skip_while(|a| *a != "unshare")
                    .take_while(|a| *a != "--")
                    .map(|a| a.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            // The demo inside printed its report; exit with its code.
            std::process::exit(network::run_inside(command).await?);
        }
        Plan::Loopback { reason } => {
            println!("== network: loopback, static peers ({reason})");
            ("loopback".to_owned(), None)
        }
        Plan::Inside { privilege } => (format!("netns ({privilege})"), Some(privilege)),
    };
    let bytes = std::fs::read(&args.csv).with_context(|| {
        format!(
            "cannot read the till export {} (expected ../shared/data/BreadBasket_DMS.csv beside the clone)",
            args.csv.display()
        )
    })?;
    let export =
        parse_till_export(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", args.csv.display()))?;
    let catalog = load_catalog(&args.catalog)?;
    let time_zone = args
        .time_zone
        .parse()
        .map_err(|_| anyhow::anyhow!("unknown time zone {:?}", args.time_zone))?;
    let file_tag = hex::encode(
        &sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(&bytes))[..6],
    );
    let mut scratch = ImportSummary::default();
    let planned = plan_sales(&export, &catalog, time_zone, &file_tag, None, &mut scratch)?;
    let mut by_day: BTreeMap<String, Vec<PlannedSale>> = BTreeMap::new();
    for sale in planned {
        by_day
            .entry(sale.date.clone())
            .or_default()
            .push(with_card(sale));
    }
    let days: Vec<(String, Vec<PlannedSale>)> = by_day
        .into_iter()
        .take(args.days.unwrap_or(usize::MAX))
        .collect();
    if days.len() < DAYS_MIN {
        bail!(
            "the demo needs at least {DAYS_MIN} days of sales, the file {} has {}",
            args.csv.display(),
            days.len()
        );
    }
    let mut report = DemoReport {
        network: network_name,
        discovery: if privilege.is_some() {
            "mdns"
        } else {
            "static"
        }
        .to_owned(),
        transactions_in_file: export.transactions_seen,
        sales_planned: days.iter().map(|(_, s)| s.len()).sum(),
        days: days.len(),
        ..DemoReport::default()
    };
    let device_of = |sale: &PlannedSale| (sale.number % DEVICES as u64) as usize;
    for (_, sales) in &days {
        for sale in sales {
            *report
                .planned_per_device
                .entry(format!("till-{}", device_of(sale) + 1))
                .or_default() += 1;
        }
    }

    // Inside its PID namespace the demo is PID 1: the clock keeps concurrent runs apart.
    let temp = match &args.work_dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!(
            "posmesh-demo-{}-{}",
            std::process::id(),
            crate::clock::wall_clock_ms()
        )),
    };
    std::fs::create_dir_all(&temp)?;
    let outcome = match privilege {
        Some(privilege) => match StoreNetwork::build(privilege) {
            Ok(net) => {
                for line in net.describe() {
                    println!("{line}");
                }
                let outcome = until_signal(run_store(
                    &args,
                    &days,
                    &temp,
                    &mut report,
                    device_of,
                    Some(&net),
                ))
                .await;
                // Every process in the namespaces is killed, the namespaces deleted.
                drop(net);
                outcome
            }
            Err(e) => Err(e),
        },
        None => until_signal(run_store(&args, &days, &temp, &mut report, device_of, None)).await,
    };
    if args.work_dir.is_none() {
        let _ = std::fs::remove_dir_all(&temp);
    }
    outcome?;
    print_report(&report);
    Ok(report)
}

/// Runs `work` until it ends or SIGINT/SIGTERM arrives; on a signal `work` is dropped (its
/// child processes are killed by their handles) and the answer is an error.
async fn until_signal(
    work: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::select! {
        outcome = work => outcome,
        _ = terminate.recv() => bail!("stopped by SIGTERM (everything it started was stopped and removed)"),
        _ = interrupt.recv() => bail!("stopped by SIGINT (everything it started was stopped and removed)"),
    }
}

async fn run_store(
    args: &DemoArgs,
    days: &[(String, Vec<PlannedSale>)],
    work: &std::path::Path,
    report: &mut DemoReport,
    device_of: impl Fn(&PlannedSale) -> usize,
    net: Option<&StoreNetwork>,
) -> anyhow::Result<()> {
    let binary = std::env::current_exe()?;
    let catalog = std::fs::canonicalize(&args.catalog)?;
    let mut store = LoopbackStore::new(work, "bakery", STORE_ID)?;
    let (cloud_placement, cloud_listen) = match net {
        Some(net) => net.cloud(),
        None => (Placement::loopback(), "127.0.0.1:0".to_owned()),
    };
    let cloud_spec = CloudSpec {
        binary: binary.clone(),
        data_dir: work.join("cloud"),
        identity_dir: store.issue_cloud()?,
        listen: cloud_listen,
    };
    let mut cloud = Some(CloudProcess::start_placed(&cloud_spec, &cloud_placement)?);
    let cloud_spec = CloudSpec {
        listen: cloud.as_ref().map(|c| c.quic.clone()).unwrap_or_default(),
        ..cloud_spec
    };
    let cloud_http = cloud.as_ref().map(|c| c.http.clone()).unwrap_or_default();
    store.set_cloud(&cloud_spec.listen);
    let specs = store.device_specs(&binary, &catalog, DEVICES)?;
    let (acquirer_placement, acquirer_addr) = match net {
        Some(net) => net.acquirer(),
        None => (Placement::loopback(), acquirer::free_loopback_addr()?),
    };
    let mut acquirer_sim = Some(AcquirerProcess::start_placed(
        &binary,
        &acquirer_addr,
        &work.join("acquirer-before-outage.json"),
        &acquirer_placement,
    )?);
    for (index, spec) in specs.iter().enumerate() {
        if let Some(net) = net {
            store.set_device_placement(&spec.device_id, net.device(index));
        }
        store.set_device_flags(
            &spec.device_id,
            payment_flags(&acquirer_addr, args.offline_allotment_minor, index == 0),
        );
    }
    let client = client()?;
    println!("== the acquirer simulator on {acquirer_addr} (ISO 8583 over TCP)");
    println!(
        "== the chain's cloud on {} (QUIC, mutual TLS; admin API http://{cloud_http})",
        cloud_spec.listen
    );
    println!(
        "== a store of {DEVICES} devices on this machine (data in {}); peers found by {}",
        work.display(),
        if net.is_some() {
            "mDNS on each device's lab0 (no static peers)"
        } else {
            "static --peer addresses on loopback"
        }
    );
    let (nodes, addrs) = store.start_full_mesh(&client, &specs).await?;
    let mut nodes: Vec<Option<NodeProcess>> = nodes.into_iter().map(Some).collect();
    wait_connected(&client, &live(&nodes), Duration::from_secs(30)).await?;
    for (spec, node) in specs.iter().zip(live(&nodes)) {
        let peers = peer_sources(&client, node).await?;
        report.peers_by_source.insert(spec.device_id.clone(), peers);
    }
    for ((spec, addr), peers) in specs
        .iter()
        .zip(&addrs)
        .zip(report.peers_by_source.values())
    {
        let found: Vec<String> = peers
            .iter()
            .map(|(peer, source)| format!("{peer} ({source})"))
            .collect();
        println!(
            "   {} mesh {addr}, connected to {}",
            spec.device_id,
            found.join(", ")
        );
    }
    let leader = wait_leader(&client, &live(&nodes)).await?;
    let budget_minor = args.offline_allotment_minor * DEVICES as i64;
    let till_1 = nodes[0].as_ref().context("till-1 up")?.api.clone();
    commit(
        &client,
        &till_1,
        "/v1/payments/exposure-budget",
        serde_json::json!({"amount_minor": budget_minor, "currency": "GBP"}),
    )
    .await?;
    let mut last_index = 0;
    for spec in &specs {
        last_index = commit(
            &client,
            &till_1,
            &format!("/v1/payments/exposure-allotments/{}", spec.device_id),
            serde_json::json!({"amount_minor": args.offline_allotment_minor}),
        )
        .await?;
    }
    wait_applied(&client, &live(&nodes), last_index).await?;
    println!(
        "   Raft leader {leader}, 3 voters; offline card budget £{} committed, £{} per device",
        pounds(budget_minor),
        pounds(args.offline_allotment_minor)
    );
    // The first day from a third of the way in on which till-2 has enough sales that some
    // are still in flight when a third of them are acknowledged (the kill must hit traffic).
    let kill_day = (days.len() / 3..days.len())
        .find(|&day| {
            let till_2 = days[day].1.iter().filter(|s| device_of(s) == 1).count();
            till_2 >= 3 * args.concurrency.max(1) + 3
        })
        .unwrap_or(days.len() / 3);
    let (cut_from, cut_to) = (days.len() * 55 / 100, days.len() * 70 / 100);
    let (outage_from, outage_to) = (days.len() * 38 / 100, days.len() * 50 / 100);
    // On loopback, the killed cloud's and acquirer's ports while the internet is down.
    let mut held_ports = None;
    let progress = progress_bar(report.sales_planned as u64, "demo");
    let started = crate::clock::monotonic_now();
    let mut till_3_before_cut = 0;
    for (index, (date, sales)) in days.iter().enumerate() {
        if args.fail_on_day == Some(index + 1) {
            bail!("injected failure on day {} (--fail-on-day)", index + 1);
        }
        if index == outage_from {
            progress.suspend(|| {
                println!(
                    "== {date}: the store loses its internet — the cloud and the acquirer are unreachable until {} (the tills keep selling; cards go offline)",
                    days[outage_to - 1].0
                )
            });
            match net {
                // The links of the cloud and the acquirer go down; both keep running.
                Some(net) => net.set_internet(false)?,
                None => {
                    if let Some(cloud) = cloud.take() {
                        cloud.kill()?;
                    }
                    if let Some(acquirer) = acquirer_sim.take() {
                        acquirer.kill()?;
                    }
                    held_ports = Some(HeldPorts::hold(&acquirer_addr, &cloud_spec.listen)?);
                }
            }
            report.cloud_outage = Some((date.clone(), days[outage_to - 1].0.clone()));
        }
        if (outage_from..outage_to).contains(&index) {
            report.sold_during_cloud_outage += sales.len() as u64;
        }
        if index == outage_to {
            if let Some(net) = net {
                net.set_internet(true)?;
            } else {
                drop(held_ports.take());
                acquirer_sim = Some(AcquirerProcess::start(
                    &binary,
                    &acquirer_addr,
                    &work.join("acquirer-after-outage.json"),
                )?);
                cloud = Some(CloudProcess::start(&cloud_spec)?);
            }
            let back = cloud.as_ref().context("the cloud is up after the outage")?;
            report.cloud_entries_at_heal = cloud_entries(back).await?;
            progress.suspend(|| {
                println!(
                    "== {date}: internet back — the cloud holds {} entries; the store uploads the rest and forwards its offline card payments",
                    report.cloud_entries_at_heal
                )
            });
        }
        if index == cut_from {
            till_3_before_cut = own_entries(&client, &nodes, 2).await?;
            progress.suspend(|| {
                println!("== {date}: till-3 is cut off from the store (it keeps selling alone)")
            });
            match net {
                Some(net) => net.set_till_link(2, false)?,
                None => restart(&mut store, &client, &mut nodes, &specs, 2, &[], false).await?,
            }
            report.partitioned = Some(("till-3".into(), date.clone(), days[cut_to - 1].0.clone()));
        }
        if index == cut_to {
            report.sold_while_partitioned =
                own_entries(&client, &nodes, 2).await? - till_3_before_cut;
            progress.suspend(|| println!("== {date}: till-3 rejoins the store"));
            match net {
                Some(net) => net.set_till_link(2, true)?,
                None => {
                    restart(
                        &mut store,
                        &client,
                        &mut nodes,
                        &specs,
                        2,
                        &["till-1".into(), "till-2".into()],
                        false,
                    )
                    .await?
                }
            }
        }
        let mut per_device: Vec<Vec<PlannedSale>> = vec![Vec::new(); DEVICES];
        for sale in sales {
            per_device[device_of(sale)].push(sale.clone());
        }
        let kill_now = index == kill_day;
        let failed = send_day(
            &client,
            &mut nodes,
            per_device,
            args.concurrency,
            &progress,
            kill_now.then_some(1),
            report,
        )
        .await?;
        if kill_now {
            progress.suspend(|| {
                println!("== {date}: till-2 was SIGKILLed with sales in flight; restarting it")
            });
            let peers: Vec<String> = vec!["till-1".into()];
            restart(&mut store, &client, &mut nodes, &specs, 1, &peers, true).await?;
            report.killed = Some(("till-2".into(), date.clone()));
            report.resent_after_restart = failed.len();
            let api = nodes[1].as_ref().context("till-2 up")?.api.clone();
            for sale in &failed {
                let paid = sell(&client, &format!("http://{api}/v1/sales"), sale)
                    .await
                    .map_err(|code| {
                        anyhow::anyhow!("sale {} refused after the restart: {code}", sale.key)
                    })?;
                count_paid(report, paid);
                progress.inc();
            }
        } else if let Some(sale) = failed.first() {
            bail!("sale {} was not recorded", sale.key);
        }
    }
    progress.finish_and_clear();
    let replayed = started.elapsed();
    println!(
        "== {} sales of {} days replayed in {:.1} s; waiting for every device to hold every sale",
        report.sales_planned,
        days.len(),
        replayed.as_secs_f64()
    );
    let live_nodes = live(&nodes);
    // Every offline payment forwarded once: the acquirer's distinct advices equal the
    // payments taken offline and every device's queue is empty (the acknowledgements are
    // journaled and replicated).
    let acquirer_now = acquirer_sim
        .as_ref()
        .context("the acquirer is up after the outage")?;
    let forward_start = crate::clock::monotonic_now();
    loop {
        let mut queued = 0;
        for node in &live_nodes {
            queued += queued_payments(&client, node).await?;
        }
        report.forwarded = acquirer_now.arrivals("advice");
        report.queued_at_end = queued;
        if queued == 0 && report.forwarded.unique >= report.card_offline_taken {
            break;
        }
        if forward_start.elapsed() > CONVERGENCE_WAIT {
            println!("== forwarding incomplete after {CONVERGENCE_WAIT:?}: {queued} payments still queued");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    report.forwarded_ms = forward_start.elapsed().as_millis() as u64;
    println!(
        "== {} offline card payments forwarded ({} distinct advices at the acquirer, {} sent); all done {} ms after the last sale",
        report.card_offline_taken,
        report.forwarded.unique,
        report.forwarded.raw,
        report.forwarded_ms
    );
    let converge_start = crate::clock::monotonic_now();
    loop {
        let mut totals = Vec::new();
        let mut digests = Vec::new();
        for node in &live_nodes {
            let s = status(&client, node).await?;
            totals.push(s["replication"]["entries_total"].as_u64().unwrap_or(0));
            digests.push(s["replication"]["digest"].clone());
        }
        // Entries: the sales plus the forwarder's payment acknowledgements.
        if totals
            .iter()
            .all(|t| *t == totals[0] && *t >= report.sales_planned as u64)
            && digests.iter().all(|d| *d == digests[0])
        {
            report.entries_on_every_device = totals;
            break;
        }
        if converge_start.elapsed() > CONVERGENCE_WAIT {
            bail!("no convergence within {CONVERGENCE_WAIT:?}: entries held {totals:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    report.converged_ms = converge_start.elapsed().as_millis() as u64;
    let entries_total = report.entries_on_every_device[0];
    let cloud = cloud.context("the cloud is up after the outage")?;
    let cloud_start = crate::clock::monotonic_now();
    let cloud_days = loop {
        let chain =
            crate::cloud::client::fetch_chain_report(&cloud.http, &cloud.admin_token).await?;
        let store_report = chain.store(STORE_ID).cloned().unwrap_or_default();
        if store_report.entries >= entries_total
            && store_report.unforwarded_offline_card_payments == 0
        {
            report.cloud_entries = store_report.entries;
            report.cloud_unforwarded = store_report.unforwarded_offline_card_payments;
            break store_report.days;
        }
        if cloud_start.elapsed() > CONVERGENCE_WAIT {
            bail!(
                "the cloud holds {} of {entries_total} entries ({} offline payments unforwarded) after {CONVERGENCE_WAIT:?}",
                store_report.entries,
                store_report.unforwarded_offline_card_payments
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    report.cloud_converged_ms = cloud_start.elapsed().as_millis() as u64;
    report.sales_in_cloud = cloud_days.iter().map(|d| d.sales).sum();
    println!(
        "== the cloud holds every sale {} ms after the devices converged",
        report.cloud_converged_ms
    );
    for spec in &specs {
        let held = count_sales(&client, live_nodes[0], &spec.device_id).await?;
        report
            .recorded_per_device
            .insert(spec.device_id.clone(), held);
    }
    let mut reports: Vec<Vec<DayTotals>> = Vec::new();
    for node in &live_nodes {
        reports.push(fetch_days(&client, &format!("http://{}", node.api)).await?);
    }
    let file_items: BTreeMap<&str, i64> = days
        .iter()
        .map(|(date, sales)| (date.as_str(), sales.iter().map(|s| s.items).sum()))
        .collect();
    for (index, day) in reports[0].iter().enumerate() {
        if cloud_days.get(index) == Some(day) {
            report.cloud_days_identical += 1;
        }
        if reports.iter().all(|r| {
            r.get(index).map(|d| serde_json::to_value(d).ok())
                == Some(serde_json::to_value(day).ok())
        }) {
            report.days_identical += 1;
        }
        if file_items.get(day.business_date.as_str()) == Some(&day.items) {
            report.days_matching_file += 1;
        }
    }
    if let Some(last) = reports[0].last() {
        print_last_day(last);
        let (z, identical) = close_day(&client, &live_nodes, &last.business_date).await?;
        report.z_report_identical = identical;
        print_z_report(&z, identical);
        report.z_report = Some(z);
    }
    for node in nodes.into_iter().flatten() {
        node.stop()?;
    }
    for spec in &specs {
        let verified = crate::cli::journal::verify_data_dir(&spec.data_dir).is_ok_and(|devices| {
            devices.len() == DEVICES && devices.iter().all(|d| d.problem.is_none())
        });
        if verified {
            report.journals_verified += 1;
        }
    }
    report.reconciled = report.planned_per_device == report.recorded_per_device
        && report.days_identical == days.len()
        && report.days_matching_file == days.len()
        && reports.iter().all(|r| r.len() == days.len())
        && report.journals_verified == DEVICES
        && report.cloud_entries == entries_total
        && report.sales_in_cloud == report.sales_planned as u64
        && report.cloud_days_identical == days.len()
        && cloud_days.len() == days.len()
        && report.card_offline_taken > 0
        && report.forwarded.unique == report.card_offline_taken
        && report.forwarded.raw >= report.forwarded.unique
        && report.queued_at_end == 0
        && report.cloud_unforwarded == 0
        && report.z_report_identical == DEVICES
        && discovery_complete(report);
    drop(cloud);
    drop(acquirer_sim);
    Ok(())
}

fn live(nodes: &[Option<NodeProcess>]) -> Vec<&NodeProcess> {
    nodes.iter().flatten().collect()
}

/// Stops device `index` (SIGTERM; or reaps it, when `killed` it already died by SIGKILL)
/// and starts it again with `peers`.
async fn restart(
    store: &mut LoopbackStore,
    client: &reqwest::Client,
    nodes: &mut [Option<NodeProcess>],
    specs: &[NodeSpec],
    index: usize,
    peers: &[String],
    killed: bool,
) -> anyhow::Result<()> {
    if let Some(node) = nodes[index].take() {
        if killed {
            node.kill()?;
        } else {
            node.stop()?;
        }
    }
    nodes[index] = Some(store.start(client, &specs[index], peers).await?);
    Ok(())
}

/// Sends one day's sales, each device's at `concurrency` in flight. With `kill`, that
/// device's node is SIGKILLed once a third of its sales for the day were sent; its sales
/// not acknowledged are returned (every other failure too).
async fn send_day(
    client: &reqwest::Client,
    nodes: &mut [Option<NodeProcess>],
    per_device: Vec<Vec<PlannedSale>>,
    concurrency: usize,
    progress: &crate::import::replay::Progress,
    kill: Option<usize>,
    report: &mut DemoReport,
) -> anyhow::Result<Vec<PlannedSale>> {
    let mut tasks = tokio::task::JoinSet::new();
    let mut kill_after = None;
    for (device, sales) in per_device.into_iter().enumerate() {
        let api = nodes[device].as_ref().context("device up")?.api.clone();
        if kill == Some(device) {
            kill_after = Some((sales.len() / 3).max(1));
        }
        let semaphore = std::sync::Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
        for sale in sales {
            let (client, url, semaphore) = (
                client.clone(),
                format!("http://{api}/v1/sales"),
                semaphore.clone(),
            );
            tasks.spawn(async move {
                let _permit = semaphore.acquire_owned().await;
                let outcome = sell(&client, &url, &sale).await;
                (device, sale, outcome)
            });
        }
    }
    let mut failed = Vec::new();
    let mut acked_on_killed = 0;
    while let Some(done) = tasks.join_next().await {
        let (device, sale, outcome) = done?;
        match outcome {
            Ok(paid) => {
                count_paid(report, paid);
                progress.inc();
                if kill == Some(device) {
                    acked_on_killed += 1;
                    if Some(acked_on_killed) == kill_after {
                        if let Some(node) = nodes[device].as_mut() {
                            node.kill_now()?;
                        }
                    }
                }
            }
            Err(_) => failed.push(sale),
        }
    }
    Ok(failed)
}

/// The node flags of a demo device: the acquirer, the offline limits, a fast
/// store-and-forward tick; `bootstrap` starts the store's Raft group.
fn payment_flags(acquirer: &str, device_cap_minor: i64, bootstrap: bool) -> Vec<String> {
    let mut flags: Vec<String> = [
        "--acquirer",
        acquirer,
        "--acquirer-timeout-ms",
        "1000",
        "--saf-interval-ms",
        "200",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    flags.extend([
        "--offline-floor-limit-minor".to_owned(),
        FLOOR_LIMIT_MINOR.to_string(),
        "--offline-device-cap-minor".to_owned(),
        device_cap_minor.to_string(),
        "--offline-max-age-secs".to_owned(),
        OFFLINE_MAX_AGE_SECS.to_string(),
    ]);
    if bootstrap {
        flags.push("--raft-bootstrap".to_owned());
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `--days` below the minimum blames the flag, not the file.
    #[test]
    fn days_below_the_minimum_are_refused_naming_the_flag() {
        let said = check_days(Some(5)).expect_err("refused").to_string();
        assert_eq!(said, "--days 5 is below the minimum of 10");
        assert!(check_days(Some(DAYS_MIN)).is_ok());
        assert!(check_days(None).is_ok());
    }
}
