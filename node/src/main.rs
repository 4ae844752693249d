//! `posmesh`: the one binary of a posmesh installation. See `posmesh --help`.

use clap::{Parser, Subcommand};
use posmesh_node::{bench, cli, config::DeviceConfig, import, runtime};
use std::path::PathBuf;
use std::process::ExitCode;

/// Microsoft's mimalloc as the process's allocator: a busy leader spent ~12 % of its CPU in
/// glibc malloc/free (profile of P3 at 256 clients, BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// posmesh — the store's POS devices as one fault-tolerant cluster.
#[derive(Parser)]
#[command(name = "posmesh", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a device node (a till, handheld or kiosk).
    Device(Box<DeviceConfig>),
    /// The chain's certificate authority: create it, issue and revoke certificates.
    #[command(subcommand)]
    Ca(cli::ca::CaCommand),
    /// Inspect a device's journal.
    #[command(subcommand)]
    Journal(JournalCommand),
    /// Replay a till export (CSV: Date,Time,Transaction,Item) into a node through its API.
    Import(import::replay::ImportArgs),
    /// Show a node's state (from its management API); the exit code says whether it takes
    /// sales (for health checks: see below).
    #[command(after_help = cli::status::EXIT_CODES_HELP)]
    Status {
        /// Management API address.
        #[arg(long, env = "POSMESH_MGMT", default_value = "127.0.0.1:7071")]
        mgmt: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Reports from a node.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Run the benchmarks and print their figures.
    Bench(bench::BenchArgs),
    /// The demo store on real data: three devices replay a till export through a crash, a
    /// partition and an internet outage (cards go offline), upload to the cloud, forward
    /// their card payments and reconcile (what `make run` shows; at least 10 days).
    Demo(posmesh_node::demo::DemoArgs),
    /// Measuring tools the lab benchmarks run inside network namespaces.
    #[command(subcommand, hide = true)]
    Probe(bench::probe::ProbeCommand),
    /// The chain's cloud: serve the stores, publish catalogs to them.
    #[command(subcommand)]
    Cloud(CloudCommand),
    /// Found a store on its first device: its Raft group with this device as the first
    /// voter, following the newest rules version, optionally provisioned from a file
    /// (currency, exposure, tax, operators).
    Init(cli::init::InitArgs),
    /// The store's membership and recovery: a manager's `force-membership` and
    /// `remove-device`; an admin's `revoke-certificate` (store-wide, through Raft) and
    /// `restore` (a store that lost every device, from the cloud's copy).
    #[command(subcommand)]
    Store(cli::store::StoreAdminCommand),
    /// Operators: add or change one (`set`, authorised by a manager or admin), disable one
    /// for good (`disable`), lift a PIN lockout at one device (`unlock`).
    #[command(subcommand)]
    Operator(cli::operator::OperatorCommand),
}

#[derive(Subcommand)]
enum CloudCommand {
    /// Run the cloud: accept every store's devices over QUIC (mutual TLS, a cloud-role
    /// certificate from `posmesh ca issue-cloud`), ingest their journals exactly once, serve
    /// the admin API (catalogs, chain report).
    Serve(posmesh_node::cloud::server::CloudServeArgs),
    /// Publish a catalog file to a store through the cloud's admin API; the store's
    /// connected device commits it through the store's Raft group, and the next sale is
    /// priced from it. The version is the file's `version`.
    PublishCatalog {
        /// The cloud's admin API address.
        #[arg(long, env = "POSMESH_CLOUD_HTTP", default_value = "127.0.0.1:7090")]
        http: String,
        /// The store.
        #[arg(long)]
        store: String,
        /// Unix ms from which sales use it (default: at once).
        #[arg(long, default_value_t = 0)]
        effective_at_ms: i64,
        /// The catalog file (TOML, prices in minor units).
        file: PathBuf,
        /// Where the cloud's admin API token is.
        #[command(flatten)]
        token: posmesh_node::cloud::admin_token::AdminTokenArgs,
    },
}

#[derive(Subcommand)]
enum ReportCommand {
    /// The Z-report of a business day closed through the store's Raft group
    /// (`POST /v1/days/{date}/close`): the same on every device.
    Z {
        /// The business date, YYYY-MM-DD.
        #[arg(long)]
        day: String,
        /// Sales API address of the node.
        #[arg(long, env = "POSMESH_API", default_value = "127.0.0.1:7070")]
        api: String,
        /// Print the JSON answer instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The chain report from the cloud: sales per store per day per tender, stores' last
    /// contact, unforwarded offline card payments per store.
    Chain {
        /// The cloud's admin API address.
        #[arg(long, env = "POSMESH_CLOUD_HTTP", default_value = "127.0.0.1:7090")]
        http: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Where the cloud's admin API token is.
        #[command(flatten)]
        token: posmesh_node::cloud::admin_token::AdminTokenArgs,
    },
}

#[derive(Subcommand)]
enum JournalCommand {
    /// Walk every hash chain in a data directory and name the first broken link. Works on a
    /// stopped node's directory and beside a running node. Exit code 1 if any chain is broken.
    Verify {
        /// The node's data directory.
        #[arg(long, env = "POSMESH_DATA_DIR")]
        data_dir: PathBuf,
    },
}

fn main() -> ExitCode {
    cli::closed_stdout::exit_quietly_on_closed_stdout();
    let cli = Cli::parse();
    // openraft's own INFO lines (every vote, every membership step) drown the node's; its
    // warnings and errors still show. RUST_LOG overrides (e.g. RUST_LOG=info,openraft=info).
    // `init` founds a one-voter group and stops: openraft's core warns there that a log-IO
    // notification of term 0 arrived after its own election to term 1 ("A message will be
    // ignored because Leader vote changed"), which is expected and alarms an operator; the
    // founding's outcome is checked and printed by `init` itself.
    let default_filter = match cli.command {
        Command::Init(_) => "info,openraft=warn,openraft::core::raft_core=error",
        _ => "info,openraft=warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each once (many errors already quote their cause).
fn error_chain(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Device(config) => runtime::run_device(*config)
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Journal(JournalCommand::Verify { data_dir }) => verify(&data_dir),
        Command::Ca(command) => cli::ca::run_ca(command).map(|()| ExitCode::SUCCESS),
        Command::Import(args) => {
            let json = args.json;
            let per_day = !args.no_days;
            let summary = import::replay::run_import(args).await?;
            if json {
                println!("{}", serde_json::to_string(&summary)?);
            } else {
                import::replay::print_summary(&summary, per_day);
            }
            Ok(if summary.reconciled {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Status { mgmt, json } => {
            let status = cli::status::fetch_status(&mgmt).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                cli::status::print_status(&status);
            }
            Ok(ExitCode::from(cli::status::exit_code(&status)))
        }
        Command::Report(ReportCommand::Z { day, api, json }) => {
            cli::report::print_z(&api, &day, json).await
        }
        Command::Bench(args) => bench::run_bench(args).await.map(|_| ExitCode::SUCCESS),
        Command::Demo(args) => {
            let report = posmesh_node::demo::run_demo(args).await?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(if report.reconciled {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Probe(command) => bench::probe::run_probe(command)
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Cloud(CloudCommand::Serve(args)) => posmesh_node::cloud::server::run_cloud(args)
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Cloud(CloudCommand::PublishCatalog {
            http,
            store,
            effective_at_ms,
            file,
            token,
        }) => {
            let token = token.token()?;
            let published = posmesh_node::cloud::client::publish_catalog(
                &http,
                &token,
                &store,
                &file,
                effective_at_ms,
            )
            .await?;
            println!(
                "published catalog version {} for store {store}",
                published.version
            );
            if let Some(warning) = published.warning {
                eprintln!("warning: {warning}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Report(ReportCommand::Chain { http, json, token }) => {
            let report =
                posmesh_node::cloud::client::fetch_chain_report(&http, &token.token()?).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                let now_ms = i64::try_from(posmesh_node::clock::wall_clock_ms()).unwrap_or(0);
                posmesh_node::cloud::client::print_chain_report(&report, now_ms);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Init(args) => {
            let json = args.json;
            let founded = cli::init::run_init(args).await?;
            if json {
                println!("{}", serde_json::to_string(&founded)?);
            } else {
                cli::init::print_founded(&founded);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Store(command) => Ok(if cli::store::run_store(command).await? {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(2)
        }),
        Command::Operator(command) => cli::operator::run_operator(command)
            .await
            .map(|()| ExitCode::SUCCESS),
    }
}

fn verify(data_dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    let reports = cli::journal::verify_data_dir(data_dir)?;
    let mut broken = false;
    for report in &reports {
        match &report.problem {
            None => println!(
                "ok      device {}: {} entries, chain head {}, {} signed heads verified",
                report.device_id, report.entries, report.head_hash, report.signatures
            ),
            Some(problem) => {
                broken = true;
                println!("BROKEN  device {}: {problem}", report.device_id);
            }
        }
    }
    if reports.is_empty() {
        println!("ok      journal is empty");
    }
    Ok(if broken {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// `posmesh demo --help` says what the demo shows and the fewest days it replays.
    #[test]
    fn demo_help_states_the_minimum_and_what_it_shows() {
        let mut cli = Cli::command();
        let demo = cli.find_subcommand_mut("demo").expect("demo subcommand");
        let about = demo
            .get_about()
            .map(ToString::to_string)
            .unwrap_or_default();
        for word in ["crash", "partition", "outage", "cloud", "payments"] {
            assert!(about.contains(word), "{word}: {about}");
        }
        let days = demo
            .get_arguments()
            .find(|a| a.get_id() == "days")
            .and_then(|a| a.get_help())
            .map(ToString::to_string)
            .unwrap_or_default();
        assert!(
            days.contains(&format!("at least {}", posmesh_node::demo::DAYS_MIN)),
            "{days}"
        );
    }
}
