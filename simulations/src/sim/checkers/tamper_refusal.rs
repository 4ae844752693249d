//! Tamper refusal (guarantees 3 and 8): a batch altered by a byzantine link — an entry
//! changed, or a head re-signed with another device's key — is refused by the receiver's
//! replicator (a `Refused` event, an alert for the manager) and nothing of it is stored
//! anywhere. Checked three ways: no `Store` action ever carried bytes their author did not
//! write; at the end every device holds only the authors' bytes; and no honest batch was
//! ever refused (a refusal without tampering is a false alarm, also a bug).

use super::Violation;
use crate::sim::world::World;
use std::collections::BTreeSet;

/// The checker's name.
pub const NAME: &str = "tamper-refusal";

/// Checks the finished run.
pub fn check(world: &World) -> Vec<Violation> {
    let mut violations = Vec::new();
    let mut reported = BTreeSet::new();
    for foreign in &world.history.foreign_stores {
        let name = &world.devices[foreign.device].name;
        if reported.insert((foreign.device, foreign.author.clone(), foreign.seq)) {
            violations.push(Violation::new(
                NAME,
                name,
                Some(foreign.seq),
                format!(
                    "accepted and stored an entry of {} its author never wrote (at {} ms)",
                    foreign.author, foreign.at_ms
                ),
            ));
        }
    }
    for (index, device) in world.devices.iter().enumerate() {
        let ledger = device.disk.durable();
        for author in ledger.devices() {
            for (seq, hash) in (1u64..).zip(ledger.hashes(author)) {
                let written = world.history.authored.get(&(author.to_owned(), seq));
                if written != Some(hash) && reported.insert((index, author.to_owned(), seq)) {
                    violations.push(Violation::new(
                        NAME,
                        &device.name,
                        Some(seq),
                        format!("holds an entry of {author} its author never wrote"),
                    ));
                }
            }
        }
    }
    for refusal in world.history.refusals.iter().filter(|r| !r.tampered) {
        violations.push(Violation::new(
            NAME,
            &world.devices[refusal.device].name,
            None,
            format!(
                "refused an honest batch of {} from {} at {} ms: {}",
                refusal.author, refusal.peer, refusal.at_ms, refusal.reason
            ),
        ));
    }
    violations
}
