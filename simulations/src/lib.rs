//! Deterministic simulation of whole stores (seeded, virtual time, simulated network and
//! disks with faults) with invariant checkers, and the multi-host lab that runs real
//! `posmesh` processes in Linux network namespaces.
//!
//! # Layout
//! - [`lab`] — the lab (mesh milestone): [`lab::Lab`] builds N hosts, each a network
//!   namespace with one veth interface on a bridge that lives in its own "switch" namespace
//!   (subnet `10.213.<n>.0/24`, host K at `.K`, multicast flooded); [`lab::LabHost`] runs
//!   commands and tracked processes ([`lab::LabProcess`], logs in a temporary directory)
//!   inside a host; faults are link cuts, random loss (`iptables -m statistic`), bandwidth
//!   limits (`htb`) and a fixed delay through a userspace UDP relay ([`lab::DelayRelay`]).
//!   Dropping a lab kills its processes and deletes its namespaces; [`lab::cleanup_stale`]
//!   removes labs of dead processes. Files: `lab/network.rs` (`Lab`), `lab/host.rs`,
//!   `lab/process.rs`, `lab/faults.rs`, `lab/relay.rs`, `lab/stale.rs`, `lab/exec.rs`
//!   (bounded system commands, privilege check), `lab/error.rs`.
//! - `src/bin/posmesh-lab.rs` — the `posmesh-lab` tool: `up N` (a lab to explore by hand),
//!   `cleanup` (stale labs), `relay` (the delay relay, run inside a lab host).
//! - `tests/lab/` — the lab's own tests (root required; they fail with
//!   [`lab::LabError::NotRoot`] otherwise).
//! - The deterministic simulation harness and its checkers arrive with the simulation
//!   milestone; the crate's default binary is left free for it.

pub mod lab;
pub mod sim;
