//! `posmesh-sim`: the deterministic simulator of whole stores (`make sim`).
//!
//! ```text
//! posmesh-sim --seeds 10000                 # sweep seeds 1..=10000 (quick profile)
//! posmesh-sim --seed 42 --trace             # replay one seed exactly, printing its trace
//! posmesh-sim --seeds 20 --profile day      # a store's business day per seed
//! posmesh-sim --seeds 5 --profile cloud-days # three days with the internet down for days
//! posmesh-sim --seeds 300 --canary ack-before-sync   # a planted bug: must be caught
//! posmesh-sim --bench                       # seeds per second, virtual time per second
//! ```
//!
//! Prints the seeds run, the faults injected by kind and the violations (`0 violations`
//! when clean); for each failing seed, one command that replays it. Exits 1 on violations.
#![allow(clippy::disallowed_methods)] // A driver: the benchmark reads the wall clock.

use anyhow::{bail, Context};
use clap::Parser;
use posmesh_simulations::sim::{run_seed, sweep, Canary, RunOptions, SimConfig};
use std::time::Instant;

/// The deterministic simulator of posmesh stores.
#[derive(Debug, Parser)]
#[command(
    name = "posmesh-sim",
    about = "Deterministic simulation of posmesh stores"
)]
struct Cli {
    /// How many seeds to sweep.
    #[arg(long, default_value_t = 10_000)]
    seeds: u64,
    /// The first seed of the sweep.
    #[arg(long, default_value_t = 1)]
    first_seed: u64,
    /// Run this one seed only (a replay) and print its summary and digest.
    #[arg(long)]
    seed: Option<u64>,
    /// With --seed: print the event trace.
    #[arg(long)]
    trace: bool,
    /// Profile: `quick` (6 s of faults, for sweeps) or `day` (a 12-hour trading day).
    #[arg(long, default_value = "quick")]
    profile: String,
    /// Plant a bug the checkers must catch: ack-before-sync, wait-for-peer, receipt-leak,
    /// forget-store-failed, skip-link-check, order-ack-before-sync.
    #[arg(long)]
    canary: Option<String>,
    /// Threads for a sweep (0: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Benchmark: simulated seeds per second (quick) and simulated time per wall-clock
    /// second (day), medians of repeated single-thread runs.
    #[arg(long)]
    bench: bool,
}

fn options(cli: &Cli) -> anyhow::Result<RunOptions> {
    let config = SimConfig::by_name(&cli.profile)
        .with_context(|| format!("unknown profile {:?} (quick, day, cloud-days)", cli.profile))?;
    let canary = match &cli.canary {
        None => None,
        Some(name) => Some(Canary::from_name(name).with_context(|| {
            let names: Vec<_> = Canary::ALL.iter().map(|c| c.name()).collect();
            format!("unknown canary {name:?} ({})", names.join(", "))
        })?),
    };
    Ok(RunOptions {
        config,
        canary,
        keep_trace: cli.trace,
    })
}

fn replay(seed: u64, options: &RunOptions) -> bool {
    let outcome = run_seed(seed, options);
    for line in &outcome.trace {
        println!("{line}");
    }
    println!(
        "seed {seed}: {} devices, {} sales ({} acked), {} entries, {} events, {} ms simulated, healed at {} ms, converged at {}",
        outcome.devices,
        outcome.sales,
        outcome.sales_acked,
        outcome.entries,
        outcome.events,
        outcome.virtual_ms,
        outcome.healed_at_ms,
        outcome
            .converged_at_ms
            .map_or_else(|| "never".to_owned(), |t| format!("{t} ms")),
    );
    println!("faults injected: {}", outcome.faults);
    println!(
        "tampered batches delivered {}, refused {}",
        outcome.tampered.0, outcome.tampered.1
    );
    let (o, m) = (&outcome.orders, &outcome.order_stats);
    println!(
        "orders: {} opened, {} edits ({} acknowledged, {} concurrent, {} applied but unacknowledged), {} order messages ({} bytes)",
        o.created, o.edits, o.edits_acked, o.edits_concurrent, o.edits_unacked_applied, m.messages_sent, m.bytes_sent
    );
    println!("trace digest: {}", outcome.digest);
    for violation in &outcome.violations {
        println!("seed {seed}: {violation}");
    }
    println!("{} violations", outcome.violations.len());
    outcome.violations.is_empty()
}

fn run_sweep(cli: &Cli, options: &RunOptions) -> bool {
    let threads = if cli.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        cli.threads
    };
    let last = cli.first_seed.wrapping_add(cli.seeds.saturating_sub(1));
    let report = sweep(cli.first_seed, cli.seeds, options, threads);
    println!(
        "seeds run: {} (seeds {}..={last}, profile {}, canary {})",
        report.seeds,
        cli.first_seed,
        options.config.profile,
        options.canary.map_or("none", |c| c.name())
    );
    println!(
        "faults injected: {} ({} in all)",
        report.faults,
        report.faults.total()
    );
    println!(
        "sales acknowledged: {}, tampered batches delivered {} / refused {}, virtual time {:.1} h",
        report.sales_acked,
        report.tampered.0,
        report.tampered.1,
        report.virtual_ms as f64 / 3_600_000.0
    );
    let (o, m) = (&report.orders, &report.order_stats);
    println!(
        "orders: {} opened, {} edits ({} acknowledged, {} concurrent, {} applied but unacknowledged), {} order messages ({} bytes)",
        o.created, o.edits, o.edits_acked, o.edits_concurrent, o.edits_unacked_applied, m.messages_sent, m.bytes_sent
    );
    const SHOWN_MAX: usize = 20;
    for outcome in report.failed.iter().take(SHOWN_MAX) {
        for violation in outcome.violations.iter().take(3) {
            println!("seed {}: {violation}", outcome.seed);
        }
        if outcome.violations.len() > 3 {
            println!(
                "seed {}: … and {} more",
                outcome.seed,
                outcome.violations.len() - 3
            );
        }
        println!("  replay: {}", options.replay_command(outcome.seed));
    }
    if report.failed.len() > SHOWN_MAX {
        println!(
            "… and {} more failing seeds",
            report.failed.len() - SHOWN_MAX
        );
    }
    if !report.by_checker.is_empty() {
        let by: Vec<String> = report
            .by_checker
            .iter()
            .map(|(c, n)| format!("{c} {n}"))
            .collect();
        println!("violations by checker: {}", by.join(", "));
    }
    println!(
        "{} violations ({} failing seeds)",
        report.violations,
        report.failed.len()
    );
    report.violations == 0
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn bench() -> bool {
    const ROUNDS: usize = 5;
    const QUICK_SEEDS: u64 = 200;
    const DAY_SEEDS: u64 = 3;
    let quick = RunOptions::new(SimConfig::quick());
    let day = RunOptions::new(SimConfig::day());
    let mut seeds_per_s = Vec::new();
    let mut quick_speedup = Vec::new();
    let mut day_speedup = Vec::new();
    let mut day_seed_s = Vec::new();
    let mut clean = true;
    for round in 0..ROUNDS {
        let first = 1 + round as u64 * QUICK_SEEDS;
        let start = Instant::now();
        let report = sweep(first, QUICK_SEEDS, &quick, 1);
        let wall = start.elapsed().as_secs_f64();
        clean &= report.violations == 0;
        seeds_per_s.push(QUICK_SEEDS as f64 / wall);
        quick_speedup.push(report.virtual_ms as f64 / 1_000.0 / wall);
        let start = Instant::now();
        let report = sweep(first, DAY_SEEDS, &day, 1);
        let wall = start.elapsed().as_secs_f64();
        clean &= report.violations == 0;
        day_speedup.push(report.virtual_ms as f64 / 1_000.0 / wall);
        day_seed_s.push(wall / DAY_SEEDS as f64);
    }
    println!("posmesh-sim benchmark: medians of {ROUNDS} rounds, one thread");
    println!(
        "quick profile: {:.0} seeds/s ({QUICK_SEEDS} seeds a round), {:.0} s simulated per wall-clock s",
        median(seeds_per_s),
        median(quick_speedup)
    );
    println!(
        "day profile: {:.2} s wall per simulated store-day ({DAY_SEEDS} seeds a round), {:.0} s simulated per wall-clock s",
        median(day_seed_s),
        median(day_speedup)
    );
    if !clean {
        println!("benchmark seeds had violations: run make sim");
    }
    clean
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let options = options(&cli)?;
    let clean = if cli.bench {
        bench()
    } else if let Some(seed) = cli.seed {
        replay(seed, &options)
    } else {
        if cli.trace {
            bail!("--trace needs --seed");
        }
        run_sweep(&cli, &options)
    };
    if !clean {
        std::process::exit(1);
    }
    Ok(())
}
