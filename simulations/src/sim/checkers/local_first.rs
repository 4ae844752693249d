//! Guarantee 2, local first: a sale asked of a running device is answered from that device
//! alone — acknowledged within the time its own disk needs, however the network is
//! partitioned, clogged or lossy. The bound per sale is `writes × devices ×
//! disk_latency_max_ms`, where `writes` counts the device's writes that must complete before
//! the answer (the write in progress, the groups queued before the sale, its own group) and
//! each of them may wait behind at most one replicated store per other device on the same
//! disk (the replicator keeps one store per device outstanding). A sale may be refused only
//! for a full disk or interrupted only by a crash of the device itself; one never answered is
//! a violation.

use super::Violation;
use crate::sim::history::SaleOutcome;
use crate::sim::world::World;

/// The checker's name.
pub const NAME: &str = "local-first";

/// Checks the finished run.
pub fn check(world: &World) -> Vec<Violation> {
    let per_write = world.devices.len() as u64 * world.config.disk_latency_max_ms;
    let mut violations = Vec::new();
    for (sale_id, sale) in world.history.sales.iter().enumerate() {
        let name = &world.devices[sale.device].name;
        let bound = sale.writes_to_wait * per_write;
        match sale.outcome {
            SaleOutcome::Pending => violations.push(Violation::new(
                NAME,
                name,
                None,
                format!(
                    "sale #{sale_id} asked at {} ms was never answered",
                    sale.requested_ms
                ),
            )),
            SaleOutcome::Acked { at_ms, seq, .. } if at_ms - sale.requested_ms > bound => {
                violations.push(Violation::new(
                    NAME,
                    name,
                    Some(seq),
                    format!(
                        "sale #{sale_id} asked at {} ms was acknowledged after {} ms (bound {bound} ms: it waited on something other than its disk)",
                        sale.requested_ms,
                        at_ms - sale.requested_ms
                    ),
                ))
            }
            _ => {}
        }
    }
    violations
}
