//! Guarantee 3, convergence of the Automerge orders (and guarantee 1 for order edits):
//! after the faults heal,
//! - every device holds the same orders with the same changes (`OrderBook::digest()` equal
//!   within the liveness deadline) and reads every order the same way (equal views);
//! - every acknowledged order is held everywhere; every acknowledged `AddLine` whose line no
//!   applied `RemoveLine` touched is present on every device with its SKU; no line removed
//!   by an acknowledged `RemoveLine` is present anywhere (a removal wins over a concurrent
//!   quantity change, and line ids are never reused);
//! - no device refused a peer's order message, stored chunks always load (at restarts and
//!   at the end), and every order reads without a schema error.
//!
//! Edits that were never acknowledged (interrupted by a crash, refused by a full disk after
//! they were applied in memory) may or may not survive; only acknowledged ones bind.

use super::Violation;
use crate::sim::history::{OrderOp, OrderOutcome};
use crate::sim::world::World;
use posmesh_sync::orders::{OrderEdit, OrderView};
use std::collections::{BTreeMap, BTreeSet};

/// The checker's name.
pub const NAME: &str = "order-convergence";

fn violation(device: &str, message: String) -> Violation {
    Violation::new(NAME, device, None, message)
}

/// Checks the finished run (reads `history.orders_final`, taken by the run).
pub fn check(world: &World) -> Vec<Violation> {
    let mut violations = Vec::new();
    let history = &world.history;
    let finals = &history.orders_final;
    let name = |d: usize| world.devices[d].name.as_str();
    for failure in &history.order_failures {
        violations.push(violation(
            name(failure.device),
            format!(
                "order {}: {} (at {} ms)",
                failure.order_id, failure.what, failure.at_ms
            ),
        ));
    }
    if finals.len() != world.devices.len() {
        return violations;
    }
    // Digests and views agree everywhere.
    let reference = finals[0].digest;
    for (d, snapshot) in finals.iter().enumerate() {
        match snapshot.digest {
            None => violations.push(violation(name(d), "is down at the end".into())),
            Some(digest) if Some(digest) != reference => violations.push(violation(
                name(d),
                format!(
                    "order digest differs from {}'s {} ms after the heal{}",
                    name(0),
                    world.now_ms - history.healed_at_ms,
                    if history.converged_at_ms.is_none() {
                        " (liveness deadline passed)"
                    } else {
                        ""
                    }
                ),
            )),
            Some(_) => {}
        }
    }
    let order_ids: BTreeSet<&String> = finals.iter().flat_map(|s| s.views.keys()).collect();
    for order_id in &order_ids {
        let mut first: Option<(usize, &Result<Option<OrderView>, String>)> = None;
        for (d, snapshot) in finals.iter().enumerate() {
            let Some(view) = snapshot.views.get(*order_id) else {
                violations.push(violation(name(d), format!("order {order_id}: not held")));
                continue;
            };
            if let Err(error) = view {
                violations.push(violation(
                    name(d),
                    format!("order {order_id}: does not read: {error}"),
                ));
            }
            match first {
                None => first = Some((d, view)),
                Some((f, theirs)) if theirs != view => violations.push(violation(
                    name(d),
                    format!(
                        "order {order_id}: reads {} but {} reads {}",
                        summary(view),
                        name(f),
                        summary(theirs)
                    ),
                )),
                Some(_) => {}
            }
        }
    }
    // Acknowledged edits.
    let mut removed_any: BTreeSet<(&str, &str)> = BTreeSet::new();
    for record in &history.orders {
        if let (true, OrderOp::Edit(OrderEdit::RemoveLine { line_id })) =
            (record.applied, &record.op)
        {
            removed_any.insert((record.order_id.as_str(), line_id.as_str()));
        }
    }
    for (id, record) in history.orders.iter().enumerate() {
        let OrderOutcome::Acked { at_ms } = record.outcome else {
            continue;
        };
        let order_id = record.order_id.as_str();
        for (d, snapshot) in finals.iter().enumerate() {
            let view = snapshot
                .views
                .get(order_id)
                .and_then(|v| v.as_ref().ok())
                .and_then(Option::as_ref);
            let by = name(record.device);
            match &record.op {
                OrderOp::Create => {
                    if view.is_none() {
                        violations.push(violation(
                            name(d),
                            format!(
                                "order {order_id}: opened on {by} and acknowledged at {at_ms} ms (request #{id}), missing"
                            ),
                        ));
                    }
                }
                OrderOp::Edit(OrderEdit::AddLine { line_id, sku, .. }) => {
                    if removed_any.contains(&(order_id, line_id.as_str())) {
                        continue;
                    }
                    let line = view.and_then(|v| v.lines.iter().find(|l| &l.line_id == line_id));
                    match line {
                        None => violations.push(violation(
                            name(d),
                            format!(
                                "order {order_id} line {line_id}: added on {by} and acknowledged at {at_ms} ms (request #{id}), never removed, missing"
                            ),
                        )),
                        Some(line) if &line.sku != sku => violations.push(violation(
                            name(d),
                            format!(
                                "order {order_id} line {line_id}: added as {sku} on {by}, reads {}",
                                line.sku
                            ),
                        )),
                        Some(_) => {}
                    }
                }
                OrderOp::Edit(OrderEdit::RemoveLine { line_id }) => {
                    if view.is_some_and(|v| v.lines.iter().any(|l| &l.line_id == line_id)) {
                        violations.push(violation(
                            name(d),
                            format!(
                                "order {order_id} line {line_id}: removed on {by} and acknowledged at {at_ms} ms (request #{id}), still present"
                            ),
                        ));
                    }
                }
                OrderOp::Edit(_) => {}
            }
        }
    }
    // What each device stored reloads.
    for (d, snapshot) in finals.iter().enumerate() {
        let Some(reloaded) = &snapshot.reloaded else {
            continue;
        };
        for (order_id, view) in reloaded {
            if let Err(error) = view {
                violations.push(violation(
                    name(d),
                    format!("order {order_id}: stored chunks do not reload: {error}"),
                ));
            }
        }
    }
    violations
}

/// A short text of a view for a violation message.
fn summary(view: &Result<Option<OrderView>, String>) -> String {
    match view {
        Err(error) => format!("an error ({error})"),
        Ok(None) => "nothing (creation not arrived)".into(),
        Ok(Some(v)) => {
            let lines: BTreeMap<&str, i64> = v
                .lines
                .iter()
                .map(|l| (l.line_id.as_str(), l.quantity))
                .collect();
            format!(
                "table {:?} customer {:?} lines {lines:?}",
                v.table, v.customer
            )
        }
    }
}
