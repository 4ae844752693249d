//! Guarantee 5, unique, gap-free receipt numbers per device, never reused after a crash: on
//! every device's own disk the receipt numbers of its entries run 1, 2, 3, … in seq order,
//! and no two acknowledged sales of a device carry the same receipt number.

use super::Violation;
use crate::sim::history::SaleOutcome;
use crate::sim::world::World;
use posmesh_proto::journal::v1::JournalEntry;
use prost::Message as _;
use std::collections::BTreeMap;

/// The checker's name.
pub const NAME: &str = "receipt-numbers";

/// Checks the finished run.
pub fn check(world: &World) -> Vec<Violation> {
    let mut violations = Vec::new();
    for device in &world.devices {
        let mut expected = 1;
        for (seq, bytes) in (1u64..).zip(device.disk.durable().entries(&device.name)) {
            let Ok(entry) = JournalEntry::decode(bytes.as_slice()) else {
                violations.push(Violation::new(
                    NAME,
                    &device.name,
                    Some(seq),
                    "own entry does not decode".into(),
                ));
                break;
            };
            if entry.receipt_no == 0 {
                continue;
            }
            if entry.receipt_no != expected {
                violations.push(Violation::new(
                    NAME,
                    &device.name,
                    Some(seq),
                    format!(
                        "receipt number {} where {expected} was due (gap or reuse)",
                        entry.receipt_no
                    ),
                ));
                break;
            }
            expected += 1;
        }
    }
    let mut acked: BTreeMap<(usize, u64), (usize, u64)> = BTreeMap::new();
    for (sale_id, sale) in world.history.sales.iter().enumerate() {
        if let SaleOutcome::Acked {
            receipt_no, seq, ..
        } = sale.outcome
        {
            if let Some((other, _)) = acked.insert((sale.device, receipt_no), (sale_id, seq)) {
                violations.push(Violation::new(
                    NAME,
                    &world.devices[sale.device].name,
                    Some(seq),
                    format!(
                        "receipt {receipt_no} acknowledged twice: sales #{other} and #{sale_id}"
                    ),
                ));
            }
        }
    }
    violations
}
