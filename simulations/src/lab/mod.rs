//! The lab: real processes on separate network hosts made of Linux network namespaces,
//! joined by a bridge, with faults on the links (see the crate's `# Layout` and
//! `shared/DESIGN.md`, "Testing, in three layers").
//!
//! ```no_run
//! use std::time::Duration;
//! use posmesh_simulations::lab::Lab;
//!
//! # fn main() -> Result<(), posmesh_simulations::lab::LabError> {
//! let lab = Lab::new(3)?;                       // hosts 10.213.<n>.1 ..= .3
//! let mut cmd = lab.host(1).command("python3");
//! cmd.args(["-m", "http.server", "--bind", &lab.host(1).ip.to_string(), "8080"]);
//! let server = lab.host(1).spawn(cmd)?;        // logs in lab.log_dir()
//! lab.drop_packets(2, 0.1)?;                    // host 2 loses 10% of its packets
//! lab.cut_link(3)?;                             // host 3 is off the network
//! lab.heal_link(3)?;
//! server.kill()?;                               // SIGKILL, a crash
//! # Ok(()) }                                    // dropping `lab` removes everything
//! ```
//!
//! Everything is blocking and std-only. It needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) and
//! iproute2 (`ip`, `tc`); loss needs `iptables` (or `iptables-legacy`, or `nft`).
//!
//! # Network safety
//! Nothing is configured in the machine's own network namespace: no interface, address,
//! route or firewall rule. The bridge lives in the lab's switch namespace; every host is a
//! namespace with one veth interface on that bridge and no default route, so lab traffic,
//! including mDNS multicast, only reaches other hosts of the same lab. Subnet: `10.213.<n>.0/24`
//! where `<n>` is the lab's number in its process; host K is `.K`.
#![allow(clippy::disallowed_methods)] // The lab drives real processes in wall-clock time.

mod error;
mod exec;
mod faults;
mod host;
mod network;
mod process;
mod relay;
mod stale;

pub use error::{LabError, Result};
pub use exec::{check_privileges, CommandOutput};
pub use faults::PacketFilter;
pub use host::{LabHost, RELAY_READY_LINE};
pub use network::{Lab, KEEP_LOGS_ENV, MAX_HOSTS, SUBNET_BASE};
pub use process::LabProcess;
pub use relay::{lab_binary, DelayRelay, MAX_RELAY_DELAY, RELAY_QUEUE};
pub use stale::{cleanup_stale, owner_pid, NAMESPACE_PREFIX};
