//! `posmesh-acquirer`: an acquirer simulator speaking ISO 8583:1987 over TCP (2-byte
//! big-endian length prefix), for tests and demos. Approves by default; decline rules,
//! delays and faults (timeout, drop, unreachable) by flag. Counts raw and unique arrivals
//! and writes them to `--stats-file` (JSON, rewritten after every message). Listens on
//! loopback only unless `--allow-non-loopback`; stops by itself after `--max-seconds`.
//! See `posmesh_payments::acquirer` for the exact behaviour.

use anyhow::Context;
use clap::Parser;
use posmesh_payments::acquirer::{self, Acquirer, AcquirerConfig, DeclineRule, Fault, ServerFiles};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Acquirer simulator (ISO 8583:1987 over TCP).
#[derive(Debug, Parser)]
#[command(name = "posmesh-acquirer", version)]
struct Args {
    /// Address to listen on (port 0: any free port; the stats file names it).
    #[arg(long, default_value = "127.0.0.1:8583")]
    listen: SocketAddr,
    /// Allow a non-loopback listen address.
    #[arg(long)]
    allow_non_loopback: bool,
    /// Decline when the amount (minor units) is above N: `N[:CODE]`, default code 51.
    /// Repeatable.
    #[arg(long, value_name = "N[:CODE]")]
    decline_amount_over: Vec<String>,
    /// Decline PANs starting with these digits: `DIGITS[:CODE]`, default code 05. Repeatable.
    #[arg(long, value_name = "DIGITS[:CODE]")]
    decline_pan_prefix: Vec<String>,
    /// Decline PANs whose first digits lie in LOW..=HIGH (equal lengths): `LOW-HIGH[:CODE]`,
    /// default code 05. Repeatable.
    #[arg(long, value_name = "LOW-HIGH[:CODE]")]
    decline_pan_range: Vec<String>,
    /// Fault to inject: none, timeout (never answer), drop (close without answering),
    /// unreachable (close every connection at once).
    #[arg(long, value_enum, default_value = "none")]
    fault: Fault,
    /// Message types the fault applies to (comma-separated MTIs).
    #[arg(long, default_value = "0100,0200")]
    fault_mtis: String,
    /// Only the first N matching messages get the fault (0: all).
    #[arg(long, default_value_t = 0)]
    fault_count: u64,
    /// Delay before every answer, milliseconds.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Stats JSON file, rewritten after every message.
    #[arg(long)]
    stats_file: Option<PathBuf>,
    /// Capture file: every frame received/sent as `recv <hex>` / `sent <hex>` lines.
    #[arg(long)]
    capture: Option<PathBuf>,
    /// Stop after this many seconds (1..=86400).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    max_seconds: u64,
}

fn config(args: &Args) -> anyhow::Result<AcquirerConfig> {
    let mut rules = Vec::new();
    for text in &args.decline_amount_over {
        rules.push(DeclineRule::amount_over(text).map_err(anyhow::Error::msg)?);
    }
    for text in &args.decline_pan_prefix {
        rules.push(DeclineRule::pan_prefix(text).map_err(anyhow::Error::msg)?);
    }
    for text in &args.decline_pan_range {
        rules.push(DeclineRule::pan_range(text).map_err(anyhow::Error::msg)?);
    }
    Ok(AcquirerConfig {
        decline_rules: rules,
        fault: args.fault,
        fault_mtis: acquirer::parse_mtis(&args.fault_mtis)
            .map_err(|e| anyhow::anyhow!("--fault-mtis: {e}"))?,
        fault_count: args.fault_count,
        delay_ms: args.delay_ms,
    })
}

fn main() -> std::process::ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let result = match runtime {
        Ok(runtime) => runtime.block_on(run()),
        Err(error) => Err(error.into()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("posmesh-acquirer: {error:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    if !acquirer::is_loopback(&args.listen) && !args.allow_non_loopback {
        anyhow::bail!(
            "--listen {} is not a loopback address (pass --allow-non-loopback to insist)",
            args.listen
        );
    }
    let config = config(&args)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listen on {}", args.listen))?;
    let local = listener.local_addr()?;
    println!("posmesh-acquirer listening on {local}");
    tracing::info!(%local, ?config, "acquirer simulator started");
    let files = ServerFiles {
        stats_file: args.stats_file.clone(),
        capture_file: args.capture.clone(),
    };
    let stats = acquirer::serve(
        listener,
        Acquirer::new(config),
        files,
        Duration::from_secs(args.max_seconds),
    )
    .await?;
    println!(
        "posmesh-acquirer stopping after {} s: {} raw, {} unique arrivals, {} charges",
        args.max_seconds, stats.raw_arrivals, stats.unique_arrivals, stats.charges
    );
    Ok(())
}
