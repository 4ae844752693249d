//! [`SimConfig`]: the shape of a simulated store and the rates of its faults, with two
//! profiles: [`SimConfig::quick`] (short horizons, for `make test`) and [`SimConfig::day`]
//! (a store's business day, for long sweeps and the benchmark).

use posmesh_sync::orders::OrderBookConfig;
use posmesh_sync::replication::ReplicatorConfig;

/// Everything that shapes a run besides the seed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// Profile name, printed in replay commands.
    pub profile: &'static str,
    /// Fewest and most devices in the store (the seed picks).
    pub devices_min: usize,
    /// See `devices_min`.
    pub devices_max: usize,
    /// Length of the safety phase (sales and faults), ms of virtual time.
    pub safety_ms: u64,
    /// After the heal, how long convergence may take, ms of virtual time.
    pub liveness_deadline_ms: u64,
    /// Mean gap between two sales on one device, ms.
    pub sale_gap_mean_ms: u64,
    /// Chance that a sale comes with others at the same instant (a burst, group commit).
    pub burst_per_mille: u64,
    /// Mean gap between two faults (partition, clog, crash, disk full, tamper), ms.
    pub fault_gap_mean_ms: u64,
    /// Mean length of a fault (partition, disk full, downtime, tamper window), ms.
    pub fault_length_mean_ms: u64,
    /// Most sales the journal writer puts in one group (one write, one signed head).
    pub writer_group_max: usize,
    /// fsync latency is uniform in `1 ..= disk_latency_max_ms`.
    pub disk_latency_max_ms: u64,
    /// Message latency is uniform in `1 ..= latency_max_ms` (so messages reorder).
    pub latency_max_ms: u64,
    /// Chance that a message is lost.
    pub drop_per_mille: u64,
    /// Chance that a message is delivered twice.
    pub duplicate_per_mille: u64,
    /// Chance that a message is held up by a delay spike of up to `delay_spike_max_ms`.
    pub delay_per_mille: u64,
    /// See `delay_per_mille`.
    pub delay_spike_max_ms: u64,
    /// Each device's clock is off by up to this much either way, ms.
    pub skew_max_ms: u64,
    /// The replicator's limits and timers.
    pub replicator: ReplicatorConfig,
    /// Most orders (open tabs) created in a run; the seed picks `1 ..= orders_max` (none
    /// when 0).
    pub orders_max: u64,
    /// Mean gap between two order edits in the store (any device), ms.
    pub order_edit_gap_mean_ms: u64,
    /// Chance that an edit comes with a second one on another device at the same instant
    /// (concurrent edits of the same order, often across a partition).
    pub order_concurrent_per_mille: u64,
    /// An unsynced order chunk (merged peer changes) is durable after a write-back of
    /// `1 ..= order_writeback_max_ms` (or a later fsync).
    pub order_writeback_max_ms: u64,
    /// An order's stored chunks are compacted into one `save` at this many chunks.
    pub order_compact_after: usize,
    /// The order book's limits and timers.
    pub order_book: OrderBookConfig,
    /// Every device with a connection uploads to the chain's cloud this often, ms (0: no
    /// cloud in the run).
    pub cloud_round_ms: u64,
    /// Mean gap between two cloud outages (the store's internet down), ms.
    pub cloud_outage_gap_mean_ms: u64,
    /// Mean length of a cloud outage, ms.
    pub cloud_outage_length_mean_ms: u64,
}

impl SimConfig {
    /// Short horizons: 6 s of faults, 3–5 devices, fast timers (order resync every second),
    /// up to 3 orders with an edit every ~400 ms. A seed costs milliseconds.
    pub fn quick() -> Self {
        Self {
            profile: "quick",
            devices_min: 3,
            devices_max: 5,
            safety_ms: 6_000,
            liveness_deadline_ms: 30_000,
            sale_gap_mean_ms: 220,
            burst_per_mille: 80,
            fault_gap_mean_ms: 350,
            fault_length_mean_ms: 600,
            writer_group_max: 8,
            disk_latency_max_ms: 4,
            latency_max_ms: 30,
            drop_per_mille: 60,
            duplicate_per_mille: 60,
            delay_per_mille: 20,
            delay_spike_max_ms: 400,
            skew_max_ms: 90_000,
            replicator: ReplicatorConfig {
                anti_entropy_interval_ms: 300,
                ack_timeout_ms: 150,
                batch_entries_max: 16,
                batch_bytes_max: 4_096,
                batches_in_flight_max: 2,
            },
            orders_max: 3,
            order_edit_gap_mean_ms: 400,
            order_concurrent_per_mille: 250,
            order_writeback_max_ms: 400,
            order_compact_after: 8,
            order_book: OrderBookConfig {
                orders_max: 10_000,
                resync_interval_ms: 1_000,
            },
            cloud_round_ms: 500,
            cloud_outage_gap_mean_ms: 2_500,
            cloud_outage_length_mean_ms: 1_500,
        }
    }

    /// A store's business day: 12 hours of trading with faults, production replication
    /// timers (`ReplicatorConfig::default()`), 3–6 devices, a sale every ~40 s per device,
    /// up to 4 orders with an edit every ~60 s, order resync every 3 minutes.
    pub fn day() -> Self {
        Self {
            profile: "day",
            devices_min: 3,
            devices_max: 6,
            safety_ms: 12 * 3_600_000,
            liveness_deadline_ms: 600_000,
            sale_gap_mean_ms: 40_000,
            burst_per_mille: 50,
            fault_gap_mean_ms: 600_000,
            fault_length_mean_ms: 120_000,
            writer_group_max: 64,
            disk_latency_max_ms: 5,
            latency_max_ms: 20,
            drop_per_mille: 20,
            duplicate_per_mille: 20,
            delay_per_mille: 10,
            delay_spike_max_ms: 5_000,
            skew_max_ms: 600_000,
            replicator: ReplicatorConfig::default(),
            orders_max: 4,
            order_edit_gap_mean_ms: 60_000,
            order_concurrent_per_mille: 150,
            order_writeback_max_ms: 5_000,
            order_compact_after: 16,
            // The production resync (every 30 s, every order with every peer) would cost
            // ~30 times the rest of a store-day here; 3 minutes still recovers every lost
            // message well within the liveness deadline.
            order_book: OrderBookConfig {
                resync_interval_ms: 180_000,
                ..OrderBookConfig::default()
            },
            cloud_round_ms: 60_000,
            cloud_outage_gap_mean_ms: 4 * 3_600_000,
            cloud_outage_length_mean_ms: 2 * 3_600_000,
        }
    }

    /// Three days of trading with the store's internet down for simulated days at a time:
    /// 3–4 devices, a sale every ~10 minutes per device, LAN faults every ~6 hours, cloud
    /// outages of about a day, an upload round every 5 minutes; replication timers slowed
    /// to a minute (a quiet store) so a seed stays cheap.
    pub fn cloud_days() -> Self {
        let day = Self::day();
        Self {
            profile: "cloud-days",
            devices_min: 3,
            devices_max: 4,
            safety_ms: 3 * 86_400_000,
            sale_gap_mean_ms: 600_000,
            fault_gap_mean_ms: 6 * 3_600_000,
            fault_length_mean_ms: 1_800_000,
            replicator: ReplicatorConfig {
                anti_entropy_interval_ms: 60_000,
                ack_timeout_ms: 10_000,
                ..day.replicator.clone()
            },
            orders_max: 2,
            order_edit_gap_mean_ms: 3_600_000,
            order_book: OrderBookConfig {
                resync_interval_ms: 3_600_000,
                ..day.order_book.clone()
            },
            cloud_round_ms: 300_000,
            cloud_outage_gap_mean_ms: 86_400_000,
            cloud_outage_length_mean_ms: 86_400_000,
            ..day
        }
    }

    /// The profile called `name` (`quick`, `day`, `cloud-days`).
    pub fn by_name(name: &str) -> Option<Self> {
        match name {
            "quick" => Some(Self::quick()),
            "day" => Some(Self::day()),
            "cloud-days" => Some(Self::cloud_days()),
            _ => None,
        }
    }
}
