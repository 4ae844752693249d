//! The posmesh node: everything one POS device runs, behind the `posmesh` binary.
//!
//! # Layout
//! - [`runtime`]: wiring of a device node (storage, writer, APIs, shutdown).
//! - [`config`]: `posmesh device` flags and their validation.
//! - [`storage`]: RocksDB — key layout, reads, and the group-commit journal writer.
//! - [`ledger`]: entry identity, domain ⇄ journal conversion, business dates.
//! - [`api`]: the local sales API (HTTP/JSON) for POS apps, with its OpenAPI document.
//! - [`mgmt`]: the management API behind `posmesh status`.
//! - [`peers`]: the store mesh from the node's side — endpoint, dialing, peer table.
//! - [`replication`]: ledger replication with the store's peers (drives the sync core).
//! - [`orders`]: shared orders (Automerge) — edits, sync, storage, close conflicts.
//! - [`payments`]: card tenders (online authorization, offline within limits) and
//!   store-and-forward of offline payments to the acquirer.
//! - [`consensus`]: the store's Raft group over the mesh (membership, forwarding, status).
//! - [`provisioning`]: the provisioning file of `posmesh init`.
//! - [`pin`]: operator PINs — Argon2id hashing and verification.
//! - [`report`]: reports computed from the journal (takings per day).
//! - [`restore`]: `posmesh store restore`, a store rebuilt from the cloud on a new device.
//! - [`catalog_file`]: loading the catalog file.
//! - [`catalog_in_force`]: the catalog that prices the next sale (Raft-committed or file).
//! - [`cloud`]: `posmesh cloud`, the chain's cloud (ingest, catalogs, chain report).
//! - [`uplink`]: a device's upload to the cloud and the catalog it brings back.
//! - [`import`]: replaying a till export (CSV) into a node through the API.
//! - [`bench`]: `posmesh bench`, the benchmarks that print figures.
//! - [`cli`]: the other commands (`journal verify`, `status`).
//! - [`node_process`]: a device node as a child process (benchmarks, tests, the lab).
//! - [`loopback_store`]: a store of device nodes on loopback (the demo, benchmarks).
//! - [`demo`]: `posmesh demo`, the store on the bakery's data (what `make run` shows).
//! - [`clock`]: the only place that reads the OS clock.

pub mod api;
pub mod bench;
pub mod catalog_file;
pub mod catalog_in_force;
pub mod child_processes;
pub mod cli;
pub mod clock;
pub mod cloud;
pub mod config;
pub mod consensus;
pub mod demo;
pub mod import;
pub mod ledger;
pub mod loopback_store;
pub mod mgmt;
pub mod node_process;
pub mod orders;
pub mod payments;
pub mod peers;
pub mod pin;
pub mod pin_lockout;
pub mod provisioning;
pub mod replication;
pub mod report;
pub mod restore;
pub mod runtime;
pub mod storage;
pub mod tax_in_force;
pub mod uplink;
