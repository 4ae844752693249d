//! `posmesh-lab`: build a lab of network-namespace hosts by hand, remove stale labs, or run
//! the delay relay inside a lab host. Needs root (CAP_NET_ADMIN) and iproute2.
//!
//! ```text
//! posmesh-lab up 3                    # build 3 hosts, print them, wait for Ctrl-C / SIGTERM
//! posmesh-lab up 3 --hold-seconds 60  # ... or at most 60 s
//! posmesh-lab cleanup                 # remove namespaces left by dead lab processes
//! posmesh-lab relay --listen 10.213.1.3:9100 --forward 10.213.1.2:9000 --delay-ms 200
//! ```
#![allow(clippy::disallowed_methods)] // A command-line tool: wall-clock time is its job.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use posmesh_simulations::lab::{cleanup_stale, DelayRelay, Lab, RELAY_READY_LINE};

/// The lab's command-line tool.
#[derive(Debug, Parser)]
#[command(
    name = "posmesh-lab",
    about = "posmesh's multi-host lab (network namespaces)"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

/// What to do.
#[derive(Debug, Subcommand)]
enum Cmd {
    /// Build a lab of N hosts, print how to enter them, and keep it until Ctrl-C, SIGTERM or
    /// SIGHUP (or --hold-seconds), then remove it.
    Up {
        /// How many hosts (1 to 200).
        hosts: usize,
        /// Remove the lab after this many seconds even without a signal.
        #[arg(long)]
        hold_seconds: Option<u64>,
    },
    /// Remove lab namespaces whose creating process is dead (and the processes inside them).
    Cleanup,
    /// Relay UDP between a client and `--forward`, delaying each datagram; run inside a lab
    /// host (the lab starts it with `LabHost::spawn_relay`).
    Relay {
        /// Address to listen on (an address of the host it runs in).
        #[arg(long)]
        listen: SocketAddr,
        /// Address to forward client datagrams to.
        #[arg(long)]
        forward: SocketAddr,
        /// Delay of each datagram, in milliseconds.
        #[arg(long)]
        delay_ms: u64,
        /// Stop after this many seconds at the latest.
        #[arg(long, default_value_t = 3600)]
        max_seconds: u64,
    },
}

/// Blocks until SIGINT, SIGTERM or SIGHUP arrives, or `limit` passes; says which.
fn wait_for_shutdown(limit: Option<Duration>) -> anyhow::Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the signal runtime")?;
    runtime.block_on(async {
        let mut interrupt = signal(SignalKind::interrupt()).context("SIGINT handler")?;
        let mut terminate = signal(SignalKind::terminate()).context("SIGTERM handler")?;
        let mut hangup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
        let timer = async {
            match limit {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending::<()>().await,
            }
        };
        Ok(tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
            _ = hangup.recv() => "SIGHUP",
            _ = timer => "the time limit",
        })
    })
}

fn up(hosts: usize, hold_seconds: Option<u64>) -> anyhow::Result<()> {
    let lab = Lab::new(hosts).context("building the lab")?;
    println!(
        "lab {} ready: subnet {}, bridge in namespace {}",
        lab.prefix(),
        lab.subnet(),
        lab.switch_namespace()
    );
    for host in lab.hosts() {
        println!(
            "  {:<4} {:<15} interface {}  namespace {}",
            host.name, host.ip, host.interface, host.namespace
        );
    }
    if let Some(host) = lab.hosts().first() {
        println!(
            "enter a host with:  ip netns exec {} bash   (as root)",
            host.namespace
        );
    }
    match hold_seconds {
        Some(s) => println!("holding for at most {s} s; Ctrl-C or SIGTERM removes it sooner"),
        None => println!("Ctrl-C or SIGTERM removes it"),
    }
    std::io::stdout().flush().ok();
    let why = wait_for_shutdown(hold_seconds.map(Duration::from_secs))?;
    println!("{why}: removing lab {}", lab.prefix());
    lab.close().context("removing the lab")?;
    Ok(())
}

fn relay(
    listen: SocketAddr,
    forward: SocketAddr,
    delay_ms: u64,
    max_seconds: u64,
) -> anyhow::Result<()> {
    let relay = DelayRelay::start(listen, forward, Duration::from_millis(delay_ms))
        .context("starting the relay")?;
    println!(
        "{RELAY_READY_LINE} on {} forwarding to {forward} with {delay_ms} ms delay",
        relay.local_addr()
    );
    std::io::stdout().flush().ok();
    let why = wait_for_shutdown(Some(Duration::from_secs(max_seconds)))?;
    println!(
        "posmesh-lab relay: stopping on {why} after {} datagrams ({} dropped)",
        relay.forwarded(),
        relay.dropped()
    );
    relay.stop();
    Ok(())
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::Up {
            hosts,
            hold_seconds,
        } => up(hosts, hold_seconds),
        Cmd::Cleanup => {
            let removed = cleanup_stale().context("removing stale labs")?;
            if removed.is_empty() {
                println!("no stale lab namespaces");
            }
            for namespace in removed {
                println!("removed {namespace}");
            }
            Ok(())
        }
        Cmd::Relay {
            listen,
            forward,
            delay_ms,
            max_seconds,
        } => relay(listen, forward, delay_ms, max_seconds),
    }
}
