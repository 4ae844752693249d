//! Guarantee 1, durable on ack: every sale a device acknowledged is on that device's disk
//! at the end of the run, with the bytes it had when acknowledged — whatever crashes
//! happened in between. Also: no durable entry of a device's own journal is ever written
//! twice with different bytes.

use super::Violation;
use crate::sim::history::SaleOutcome;
use crate::sim::world::World;

/// The checker's name.
pub const NAME: &str = "durable-on-ack";

/// Checks the finished run.
pub fn check(world: &World) -> Vec<Violation> {
    let mut violations = Vec::new();
    for (sale_id, sale) in world.history.sales.iter().enumerate() {
        let SaleOutcome::Acked {
            at_ms, seq, hash, ..
        } = sale.outcome
        else {
            continue;
        };
        let device = &world.devices[sale.device];
        let held = device.disk.durable().hashes(&device.name);
        let stored = usize::try_from(seq - 1).ok().and_then(|i| held.get(i));
        let problem = match stored {
            None => "is not on the device's disk (lost)",
            Some(h) if *h != hash => "was replaced on disk by other bytes (lost, seq reused)",
            Some(_) => continue,
        };
        violations.push(Violation::new(
            NAME,
            &device.name,
            Some(seq),
            format!("sale #{sale_id} acknowledged at {at_ms} ms {problem}"),
        ));
    }
    for (device, seq) in &world.history.rewritten {
        violations.push(Violation::new(
            NAME,
            device,
            Some(*seq),
            "a durable entry of the device's own journal was written again with other bytes".into(),
        ));
    }
    violations
}
