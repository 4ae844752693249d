//! `posmesh probe …` (hidden): round-trip probes that the lab benchmarks start inside
//! network namespaces — a raw UDP echo and pinger (the baseline), and a mesh pinger that
//! dials a node over QUIC with mutual TLS and measures request round trips. Each prints
//! one JSON line. Bounded in count and time.

use super::stats::Percentiles;
use crate::clock::monotonic_now;
use clap::Subcommand;
use posmesh_mesh::tls::{AcceptPolicy, MeshTls};
use posmesh_mesh::transport::{MeshEndpoint, TransportSettings};
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

/// Longest a probe runs, whatever its count.
const PROBE_TIME_MAX: Duration = Duration::from_secs(60);

/// Probe commands.
#[derive(Subcommand, Debug)]
pub enum ProbeCommand {
    /// Echo UDP datagrams back to their sender until `--max-seconds` elapse.
    UdpEcho {
        /// Address to listen on.
        #[arg(long)]
        listen: SocketAddr,
        /// Stop after this many seconds.
        #[arg(long, default_value_t = 60)]
        max_seconds: u64,
    },
    /// Round trips of 64-byte UDP datagrams to an echo.
    UdpPing {
        /// The echo's address.
        #[arg(long)]
        target: SocketAddr,
        /// Round trips to measure.
        #[arg(long, default_value_t = 1000)]
        count: usize,
    },
    /// Round trips of ping requests over a mutual-TLS QUIC connection to a node's mesh,
    /// on an open stream (as requests of a long-lived stream, e.g. Raft's, travel).
    MeshPing {
        /// Identity directory of the probe (a device certificate of the same store).
        #[arg(long)]
        identity_dir: PathBuf,
        /// The node's mesh address.
        #[arg(long)]
        target: SocketAddr,
        /// Round trips to measure.
        #[arg(long, default_value_t = 1000)]
        count: usize,
    },
}

/// Runs a probe and prints its JSON line.
pub async fn run_probe(command: ProbeCommand) -> anyhow::Result<()> {
    match command {
        ProbeCommand::UdpEcho {
            listen,
            max_seconds,
        } => udp_echo(listen, Duration::from_secs(max_seconds)),
        ProbeCommand::UdpPing { target, count } => {
            let latency = udp_ping(target, count)?;
            println!("{}", serde_json::to_string(&latency)?);
            Ok(())
        }
        ProbeCommand::MeshPing {
            identity_dir,
            target,
            count,
        } => {
            let latency = mesh_ping(&identity_dir, target, count).await?;
            println!("{}", serde_json::to_string(&latency)?);
            Ok(())
        }
    }
}

fn udp_echo(listen: SocketAddr, limit: Duration) -> anyhow::Result<()> {
    let socket = UdpSocket::bind(listen)?;
    socket.set_read_timeout(Some(Duration::from_millis(200)))?;
    let started = monotonic_now();
    let mut buffer = [0u8; 2048];
    while started.elapsed() < limit {
        if let Ok((len, from)) = socket.recv_from(&mut buffer) {
            socket.send_to(&buffer[..len], from)?;
        }
    }
    Ok(())
}

fn udp_ping(target: SocketAddr, count: usize) -> anyhow::Result<Percentiles> {
    let socket = UdpSocket::bind(SocketAddr::new(
        if target.is_ipv4() {
            [0, 0, 0, 0].into()
        } else {
            [0u16; 8].into()
        },
        0,
    ))?;
    socket.connect(target)?;
    socket.set_read_timeout(Some(Duration::from_secs(1)))?;
    let mut samples = Vec::with_capacity(count);
    let mut buffer = [0u8; 64];
    let started = monotonic_now();
    for i in 0..count.saturating_add(50) {
        if started.elapsed() > PROBE_TIME_MAX {
            break;
        }
        let payload = (i as u64).to_be_bytes();
        let t = monotonic_now();
        let mut datagram = [0u8; 64];
        datagram[..8].copy_from_slice(&payload);
        socket.send(&datagram)?;
        // Skip late echoes of earlier (lost) probes.
        loop {
            let len = socket.recv(&mut buffer)?;
            if len >= 8 && buffer[..8] == payload {
                break;
            }
        }
        if i >= 50 {
            samples.push(t.elapsed());
        }
    }
    Ok(Percentiles::of(&mut samples))
}

pub(crate) async fn mesh_ping(
    identity_dir: &std::path::Path,
    target: SocketAddr,
    count: usize,
) -> anyhow::Result<Percentiles> {
    let credentials = posmesh_mesh::pki::load_identity(identity_dir)?;
    let policy = AcceptPolicy::for_identity(&credentials.identity);
    let tls = MeshTls::new(credentials, policy)?;
    let bind = SocketAddr::new(
        if target.is_ipv4() {
            [0, 0, 0, 0].into()
        } else {
            [0u16; 8].into()
        },
        0,
    );
    let endpoint = MeshEndpoint::bind(bind, tls, TransportSettings::default())?;
    let connection = endpoint.connect(target).await?;
    let mut samples = Vec::with_capacity(count);
    let started = monotonic_now();
    // The echo answers at most 1,024 round trips per stream: open a new one before that.
    let mut stream = connection.ping_stream().await?;
    for i in 0..count.saturating_add(50) {
        if started.elapsed() > PROBE_TIME_MAX {
            break;
        }
        if i % 1000 == 999 {
            stream = connection.ping_stream().await?;
        }
        let rtt = stream.ping().await?;
        if i >= 50 {
            samples.push(rtt);
        }
    }
    endpoint.close();
    Ok(Percentiles::of(&mut samples))
}
