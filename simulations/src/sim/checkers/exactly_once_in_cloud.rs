//! Guarantee 4, exactly once in the cloud: however uploads were lost, re-sent, duplicated
//! or sent by several devices at once, and through cloud outages, the cloud stored every
//! `(device, seq)` at most once, only bytes the author wrote, and — once the store healed
//! and the liveness deadline passed — every entry every author durably wrote, every
//! acknowledged sale included.

use super::Violation;
use crate::sim::history::SaleOutcome;
use crate::sim::world::World;
use posmesh_sync::chain::entry_hash;
use std::collections::BTreeMap;

/// The checker's name.
pub const NAME: &str = "exactly-once-in-cloud";

/// Checks the finished run (nothing when the run has no cloud).
pub fn check(world: &World) -> Vec<Violation> {
    let mut violations = Vec::new();
    if world.config.cloud_round_ms == 0 {
        return violations;
    }
    let cloud = &world.cloud;
    let mut stored: BTreeMap<&(String, u64), u32> = BTreeMap::new();
    for key in &cloud.stored_log {
        *stored.entry(key).or_insert(0) += 1;
    }
    for ((device, seq), times) in stored {
        if times > 1 {
            violations.push(Violation::new(
                NAME,
                device,
                Some(*seq),
                format!("stored {times} times in the cloud"),
            ));
        }
    }
    for ((device, seq), bytes) in &cloud.entries {
        match world.history.authored.get(&(device.clone(), *seq)) {
            Some(hash) if *hash == entry_hash(bytes) => {}
            Some(_) => violations.push(Violation::new(
                NAME,
                device,
                Some(*seq),
                "the cloud holds other bytes than the author wrote".into(),
            )),
            None => violations.push(Violation::new(
                NAME,
                device,
                Some(*seq),
                "the cloud holds an entry its author never made durable".into(),
            )),
        }
    }
    if world.history.cloud_converged_at_ms.is_none() {
        let cloud_vector = cloud.version_vector();
        for (author, seq) in world.authored() {
            let held = cloud_vector.get(author);
            if held != seq {
                violations.push(Violation::new(
                    NAME,
                    author,
                    None,
                    format!(
                        "the cloud holds {held} of {seq} entries {} ms after the heal (deadline)",
                        world.now_ms - world.history.healed_at_ms
                    ),
                ));
            }
        }
    }
    for sale in &world.history.sales {
        if let SaleOutcome::Acked { seq, hash, .. } = &sale.outcome {
            let device = &world.devices[sale.device].name;
            let in_cloud = cloud.entries.get(&(device.clone(), *seq));
            if world.history.cloud_converged_at_ms.is_some()
                && in_cloud.map(|b| entry_hash(b)) != Some(*hash)
            {
                violations.push(Violation::new(
                    NAME,
                    device,
                    Some(*seq),
                    "an acknowledged sale is not in the cloud after convergence".into(),
                ));
            }
        }
    }
    violations
}
