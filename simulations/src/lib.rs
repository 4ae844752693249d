//! Deterministic simulation of whole stores (seeded, virtual time, simulated network and
//! disks with faults) with invariant checkers, and the multi-host lab that runs real
//! `posmesh` processes in Linux network namespaces.
//!
//! # The deterministic simulator ([`sim`], `posmesh-sim`, `make sim`)
//!
//! One run is one store played in one thread from one `u64` seed. Nothing reads the wall
//! clock or an OS random source (`sim` denies `clippy::disallowed_methods`); every draw comes
//! from a seeded SplitMix64 ([`sim::rng`]), device keys are derived from the seed
//! ([`sim::keys`]) and Ed25519 signatures are deterministic, every map whose order reaches
//! the output is ordered (`BTreeMap`/`BTreeSet`), and the virtual clock jumps to the next
//! due time — scheduled actions, message deliveries, fsync completions, replicator and
//! order-book timers — so idle time costs nothing (a 12-hour store day of 3–6 devices runs
//! in seconds).
//!
//! ## What is production code and what is modelled
//! | part | in the simulator |
//! | --- | --- |
//! | hash chain, chain-head signing, HLC (`posmesh_sync::{chain, chain_head, hlc}`) | production code |
//! | replication: anti-entropy, batches, verification, refusals (`posmesh_sync::replication::Replicator`) | production code, driven through its sans-IO API (`handle_*`, `poll_*`) |
//! | shared orders: Automerge documents, per-peer sync sessions, periodic resync, save/load (`posmesh_sync::orders::OrderBook`) | production code, one book per device, driven through its sans-IO API; actor `order_actor(device, 1, session)` with a session raised at every boot |
//! | the node's orders driver (`node/src/orders/service.rs`) | **modelled** in [`sim::orders`]: a local edit is acknowledged only once its `save_incremental` chunk is fsynced, and the book's messages wait for that fsync; merged peer changes are written unsynced (lost in a crash unless written back or covered by a later fsync); compaction into one `save`; a chunk refused by a full disk makes the next write a whole `save`; a restart loads the concatenated durable chunks with a new session actor |
//! | the node's journal writer thread (`node/src/storage/writer.rs`, RocksDB + tokio) | **modelled** in [`sim::writer`]: same ordering — take a group of queued sales, assign gap-free seq and receipt numbers, stamp with the HLC, link the chain, sign the group's head, write the group as one batch, answer only after the fsync; the in-memory head moves only if the write is accepted |
//! | RocksDB and the disk | **modelled** in [`sim::disk`]: a write is buffered until its fsync completes after a seeded latency, writes complete in issue order, a crash drops every unsynced write, a full disk fails writes with an error |
//! | the node's replication driver (`node/src/replication`) | **modelled** in [`sim::world`]: stores a `Store` action as one synced write, then `handle_stored`; a failed write → `handle_store_failed` |
//! | QUIC/mTLS connections and mDNS | **modelled** in [`sim::network`]: one connection per pair of devices while both are up and not partitioned, carrying ledger and order messages alike ([`sim::network::Wire`]); per-message latency (so reordering), loss, duplication, delay spikes; clogged directed links hold messages |
//! | device clocks | virtual time plus a per-device skew of up to ±90 s (quick) / ±10 min (day), redrawn at each restart; the HLC, the replicator's and the order book's timers read the skewed clock |
//! | the cloud's ingest decision (`posmesh_sync::cloud::plan_ingest`) and the upload batch cut (`upload_batch`) | production code |
//! | the cloud's storage and transport, the devices' uplink (`node/src/cloud`, `node/src/uplink`) | **modelled** in [`sim::cloud`] and `World::cloud_round`: every `cloud_round_ms` each running device uploads what the cloud's version vector lacks of every device's journal it holds durably; under per-message faults an upload is lost, answered twice or its answer lost (re-sent); the cloud is unreachable during scheduled outages (quick: ~1.5 s; day: ~2 h; `cloud-days`: ~1 day) |
//! | Raft (openraft) | simulated on its own in [`raft`]: openraft nodes on a paused-time current-thread tokio runtime, in-memory disks, seeded faults, checkers for election safety, state machine safety, committed entries kept, gift cards and day close (`tests/sim/raft.rs`) |
//! | the acquirer | **modelled** beside the world in [`sim::payments`]: the acquirer simulator's decision core behind outage windows, offline decisions on Raft-lagged allotments, a forwarder that moves and crashes mid-batch |
//!
//! ## A run
//! The seed picks the store (3–5 devices in the `quick` profile, 3–6 in `day`) and forks
//! independent streams for the shape, the schedule and the runtime ([`sim::run`]).
//! **Safety phase** (6 s of virtual time in `quick`, 12 h in `day`): sales arrive on every
//! device (some in bursts, so the writer groups them), a few orders are opened and edited on
//! random devices (lines added with device-unique ids, quantities set, lines removed, table
//! and customer set; a quarter of the edits in the quick profile come in pairs on two
//! devices at the same instant, often on two sides of a partition) while faults are injected
//! ([`sim::faults`]): partitions of a link, of a device, or of the store in two halves;
//! swizzle-clogging (a random set of directed links clogged one by one, then unclogged in a
//! random order); crashes losing unsynced writes, and restarts from the disk; full disks
//! (sales refused, replicated stores failed); byzantine links that alter an entry or re-sign
//! a head with another device's key; message loss, duplication, delay spikes and reordering;
//! clock skew. **Liveness phase**: every fault heals (devices restart, partitions mend,
//! links unclog and turn honest, disks free up, no more loss); every device must then hold
//! every entry and the same orders within the deadline (30 s quick, 10 min day), and the run
//! goes on a little longer so late duplicates must change nothing. Then every checker runs.
//!
//! ## Guarantees and their checkers ([`sim::checkers`], one file each)
//! | DESIGN.md guarantee | checker |
//! | --- | --- |
//! | 1 durable on ack | `checkers/durable_on_ack.rs`: every acknowledged sale is on its device's disk with the bytes it was acknowledged with |
//! | 2 local first | `checkers/local_first.rs`: every sale on a running device is answered within its own disk's time, whatever the network does |
//! | 3 convergence — the ledger | `checkers/convergence.rs`: after the heal every device holds every entry, byte for byte, chains intact, heads verifying |
//! | 3 convergence — Automerge orders (and 1 for order edits) | `checkers/order_convergence.rs`: after the heal every device's `OrderBook::digest()` is equal and every order reads the same everywhere; every acknowledged order is held everywhere; every acknowledged `AddLine` whose line no applied `RemoveLine` touched is present everywhere; no line removed by an acknowledged `RemoveLine` is present anywhere; no order message refused; stored chunks always load |
//! | 4 exactly once in the cloud | `checkers/exactly_once_in_cloud.rs`: no `(device, seq)` stored twice, only bytes the author wrote, and after the heal (deadline) every durable entry and every acknowledged sale in the cloud |
//! | 5 unique, gap-free receipt numbers | `checkers/receipt_numbers.rs`: receipts 1, 2, 3, … per device on disk, none acknowledged twice |
//! | 6 offline card risk bounded; exactly-once acceptance at the acquirer; 8 no clear PAN | `exposure-caps`, `acquirer-exactly-once`, `no-clear-pan` in [`sim::payments`] |
//! | 7 store-wide decisions linearizable | [`raft::checkers`]: one leader per term, no two devices apply different commands at an index, every acknowledged write kept, no gift-card double spend, identical day closes |
//! | 3, 8 tampered/forged batches refused | `checkers/tamper_refusal.rs`: no altered entry is ever stored anywhere; no honest batch is refused |
//!
//! A panic in the simulator or in a core (a broken assertion) is reported as a violation of
//! `panic` with the seed, so a sweep goes on and the seed replays.
//!
//! ## Canaries ([`sim::canary`])
//! Planted bugs, off unless a run asks (`--canary NAME`): `ack-before-sync` (caught by
//! durable-on-ack), `wait-for-peer` (local-first), `receipt-leak` (receipt-numbers),
//! `forget-store-failed` (convergence), `skip-link-check` — in the production replicator,
//! behind posmesh-sync's `canaries` feature — (tamper-refusal), and `order-ack-before-sync`
//! (an order edit's chunk written without an fsync and answered at once; caught by
//! order-convergence when a crash loses an acknowledged line no peer had yet), and
//! `cloud-stores-duplicates` (the cloud stores an upload it holds again; caught by
//! exactly-once-in-cloud).
//! `tests/sim/canaries.rs` asserts each is caught.
//!
//! ## Running and replaying
//! `make sim SEEDS=N` sweeps seeds `1..=N` (`FIRST_SEED=` to start elsewhere) on every core
//! and prints the seeds run, the faults injected by kind and the violations (`0 violations`
//! when clean); each failing seed comes with one command that replays it exactly, e.g.
//! `make sim SEED=42` or `make sim SEED=42 SIM_ARGS='--canary receipt-leak'`, which prints
//! the run's event trace ([`sim::trace`]), its digest and its violations. `SIM_ARGS='--profile
//! day'` runs store days; `SIM_ARGS=--bench` prints the benchmark (BENCHMARKS.md).
//! `make test` runs `tests/sim`: 1,000 seeds, replays compared trace for trace, canaries.
//!
//! # Layout
//! - [`sim`] — the simulator: `world.rs` (the store and its clock), `device.rs`,
//!   `writer.rs`, `orders.rs` (the orders driver), `disk.rs`, `ledger.rs` (the durable ledger, implementing the replicator's
//!   `LedgerRead` and `SigningKeys`), `network.rs`, `tamper.rs`, `faults.rs`, `config.rs`
//!   (profiles), `history.rs`, `checkers/`, `canary.rs`, `run.rs` (a seed, a sweep),
//!   `trace.rs`, `rng.rs`, `keys.rs`.
//! - `src/bin/posmesh-sim.rs` — the `posmesh-sim` tool behind `make sim`.
//! - `tests/sim/` — the sweep, replay and canary tests; `tests/replication/` — the
//!   replicator's unit and refusal tests over the simulator's ledger and world.
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

pub mod lab;
pub mod raft;
pub mod sim;
