//! The fault schedule of the safety phase, drawn from the seed before the run starts, and the
//! count of faults injected by kind.
//!
//! Scheduled faults (agenda [`Action`]s): partitions of one link, of one device from all
//! others, or of the store into two halves; swizzle-clogging (FoundationDB's practice: a
//! random set of directed links clogged one by one, then unclogged in a random order);
//! crashes that lose unsynced writes, with a restart later; a full disk for a while; a
//! byzantine link that tampers with batches for a while. Per-message faults (loss,
//! duplication, delay spikes, reordering by latency) are drawn as messages are sent. Clock
//! skew is drawn per device at start and at each restart.

use super::config::SimConfig;
use super::network::TamperKind;
use super::rng::SimRng;
use std::collections::BTreeMap;
use std::fmt;

/// Something scheduled to happen at a virtual time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// A POS app asks device `0` for a sale.
    Sale(usize),
    /// The link between two devices goes down (a partition).
    Cut(usize, usize),
    /// The link between two devices comes back.
    Mend(usize, usize),
    /// The directed link `from → to` clogs (messages wait).
    Clog(usize, usize),
    /// The directed link unclogs.
    Unclog(usize, usize),
    /// The device loses power: unsynced writes are lost.
    Crash(usize),
    /// The device boots again from its disk.
    Restart(usize),
    /// The device's disk fills up.
    DiskFull(usize),
    /// The device's disk has room again.
    DiskFreed(usize),
    /// The directed link `from → to` starts altering batches.
    TamperStart(usize, usize, TamperKind),
    /// The directed link is honest again.
    TamperStop(usize, usize),
    /// A POS app opens an order (a tab) on the device; `1` numbers it in the run.
    OrderCreate(usize, u64),
    /// A POS app edits an order on the device; `pick` chooses which (two edits with the
    /// same pick at the same instant edit the same order when both devices hold it).
    OrderEdit {
        /// The device.
        device: usize,
        /// Chooses the order among those the device holds.
        pick: u64,
    },
    /// The store loses its internet: the cloud is unreachable.
    CloudDown,
    /// The store's internet is back.
    CloudUp,
}

/// Faults injected in a run, by kind (ordered, so output is stable).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts(pub BTreeMap<&'static str, u64>);

impl FaultCounts {
    /// Counts one fault of `kind`.
    pub fn add(&mut self, kind: &'static str) {
        *self.0.entry(kind).or_insert(0) += 1;
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &FaultCounts) {
        for (kind, count) in &other.0 {
            *self.0.entry(kind).or_insert(0) += count;
        }
    }

    /// All faults.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }
}

impl fmt::Display for FaultCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (kind, count) in &self.0 {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{kind} {count}")?;
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

/// The agenda: actions by (time, insertion order).
pub type Agenda = BTreeMap<(u64, u64), Action>;

/// Draws a gap with mean `mean` (uniform in `1 ..= 2 * mean`).
pub fn gap(rng: &mut SimRng, mean: u64) -> u64 {
    rng.between(1, mean.saturating_mul(2).max(1))
}

/// Appends the sales of the safety phase for `devices` devices to `agenda`.
pub fn schedule_sales(config: &SimConfig, devices: usize, rng: &mut SimRng, agenda: &mut Agenda) {
    let mut order = agenda.len() as u64;
    for device in 0..devices {
        let mut t = gap(rng, config.sale_gap_mean_ms);
        while t < config.safety_ms {
            let burst = if rng.chance(config.burst_per_mille) {
                rng.between(2, 6)
            } else {
                1
            };
            for _ in 0..burst {
                order += 1;
                agenda.insert((t, order), Action::Sale(device));
            }
            t += gap(rng, config.sale_gap_mean_ms);
        }
    }
}

/// Appends the order workload of the safety phase for `devices` devices to `agenda`: a few
/// orders opened in the first half, edits on random devices until the end, some of them in
/// concurrent pairs (two devices at the same instant, often in different partitions).
pub fn schedule_orders(config: &SimConfig, devices: usize, rng: &mut SimRng, agenda: &mut Agenda) {
    let mut order = 2_000_000_000;
    let mut put = |agenda: &mut Agenda, t: u64, action: Action| {
        order += 1;
        agenda.insert((t, order), action);
    };
    if config.orders_max == 0 {
        return;
    }
    let count = rng.between(1, config.orders_max);
    let mut first_ms = config.safety_ms;
    for k in 0..count {
        let t = rng.below(config.safety_ms / 2);
        first_ms = first_ms.min(t);
        put(agenda, t, Action::OrderCreate(rng.index(devices), k + 1));
    }
    let mut t = first_ms + gap(rng, config.order_edit_gap_mean_ms);
    while t < config.safety_ms {
        let device = rng.index(devices);
        let pick = rng.next_u64();
        put(agenda, t, Action::OrderEdit { device, pick });
        if devices > 1 && rng.chance(config.order_concurrent_per_mille) {
            let other = (device + 1 + rng.index(devices - 1)) % devices;
            put(
                agenda,
                t,
                Action::OrderEdit {
                    device: other,
                    pick,
                },
            );
        }
        t += gap(rng, config.order_edit_gap_mean_ms);
    }
}

/// Appends the faults of the safety phase for `devices` devices to `agenda`. Ends of faults
/// may fall after the safety phase; the heal supersedes them.
pub fn schedule_faults(config: &SimConfig, devices: usize, rng: &mut SimRng, agenda: &mut Agenda) {
    let mut order = 1_000_000_000;
    let mut put = |agenda: &mut Agenda, t: u64, action: Action| {
        order += 1;
        agenda.insert((t, order), action);
    };
    let n = devices;
    let mut t = gap(rng, config.fault_gap_mean_ms);
    while t < config.safety_ms {
        let length = gap(rng, config.fault_length_mean_ms);
        let a = rng.index(n);
        let b = (a + 1 + rng.index(n - 1)) % n;
        match rng.below(100) {
            0..=19 => {
                put(agenda, t, Action::Cut(a, b));
                put(agenda, t + length, Action::Mend(a, b));
            }
            20..=29 => {
                for other in (0..n).filter(|&o| o != a) {
                    put(agenda, t, Action::Cut(a, other));
                    put(agenda, t + length, Action::Mend(a, other));
                }
            }
            30..=37 => {
                let mut members: Vec<usize> = (0..n).collect();
                rng.shuffle(&mut members);
                let cut = 1 + rng.index(n - 1);
                for &x in &members[..cut] {
                    for &y in &members[cut..] {
                        put(agenda, t, Action::Cut(x, y));
                        put(agenda, t + length, Action::Mend(x, y));
                    }
                }
            }
            38..=49 => {
                // Swizzle-clog: links clogged one by one, unclogged in a random order.
                let mut links: Vec<(usize, usize)> = (0..n)
                    .flat_map(|x| (0..n).filter(move |&y| y != x).map(move |y| (x, y)))
                    .collect();
                rng.shuffle(&mut links);
                links.truncate(rng.between(2, links.len() as u64) as usize);
                let step = (length / (2 * links.len() as u64)).max(1);
                for (i, &(x, y)) in (0u64..).zip(&links) {
                    put(agenda, t + i * step, Action::Clog(x, y));
                }
                let unclog_at = t + step * links.len() as u64;
                rng.shuffle(&mut links);
                for (i, &(x, y)) in (0u64..).zip(&links) {
                    put(agenda, unclog_at + i * step, Action::Unclog(x, y));
                }
            }
            50..=69 => {
                put(agenda, t, Action::Crash(a));
                put(agenda, t + length / 2 + 1, Action::Restart(a));
            }
            70..=84 => {
                put(agenda, t, Action::DiskFull(a));
                put(agenda, t + length / 2 + 1, Action::DiskFreed(a));
            }
            _ => {
                let kind = match rng.below(3) {
                    0 => TamperKind::MiddleEntry,
                    1 => TamperKind::LastEntry,
                    _ => TamperKind::ForeignKey,
                };
                put(agenda, t, Action::TamperStart(a, b, kind));
                put(agenda, t + length, Action::TamperStop(a, b));
            }
        }
        t += gap(rng, config.fault_gap_mean_ms);
    }
}

/// Appends the cloud outages of the safety phase to `agenda` (none when the run has no
/// cloud): the store's internet goes down for `cloud_outage_length_mean_ms` on average, every
/// `cloud_outage_gap_mean_ms` on average.
pub fn schedule_cloud_outages(config: &SimConfig, rng: &mut SimRng, agenda: &mut Agenda) {
    if config.cloud_round_ms == 0 || config.cloud_outage_gap_mean_ms == 0 {
        return;
    }
    let mut order = 3_000_000_000;
    let mut t = gap(rng, config.cloud_outage_gap_mean_ms);
    while t < config.safety_ms {
        let length = gap(rng, config.cloud_outage_length_mean_ms);
        order += 1;
        agenda.insert((t, order), Action::CloudDown);
        order += 1;
        agenda.insert((t + length, order), Action::CloudUp);
        t += length + gap(rng, config.cloud_outage_gap_mean_ms);
    }
}
