//! Guarantee 3, convergence of the ledger: after the faults heal, every device holds every
//! entry of every device within the liveness deadline — byte for byte what the author wrote,
//! gap-free, every hash link intact ([`ChainVerifier`]), and the signed head at the last
//! entry verifying with the author's key.

use super::Violation;
use crate::sim::world::World;
use posmesh_sync::chain::ChainVerifier;
use posmesh_sync::chain_head::{public_key, ChainHead};
use posmesh_sync::replication::LedgerRead;

/// The checker's name.
pub const NAME: &str = "convergence";

/// Checks the finished run.
pub fn check(world: &World) -> Vec<Violation> {
    let mut violations = Vec::new();
    let converged = world.history.converged_at_ms.is_some();
    for device in &world.devices {
        let ledger = device.disk.durable();
        for author in &world.devices {
            let theirs = author.disk.durable().entries(&author.name);
            let mine = ledger.entries(&author.name);
            if !converged && mine.len() != theirs.len() {
                violations.push(Violation::new(
                    NAME,
                    &device.name,
                    None,
                    format!(
                        "holds {} of {}'s {} entries {} ms after the heal (deadline)",
                        mine.len(),
                        author.name,
                        theirs.len(),
                        world.now_ms - world.history.healed_at_ms
                    ),
                ));
            }
            if let Some(seq) = (1u64..)
                .zip(mine.iter().zip(theirs))
                .find_map(|(s, (a, b))| (a != b).then_some(s))
            {
                violations.push(Violation::new(
                    NAME,
                    &device.name,
                    Some(seq),
                    format!(
                        "holds an entry of {} that differs from the author's",
                        author.name
                    ),
                ));
                continue;
            }
            let mut verifier = ChainVerifier::new(&author.name);
            if let Some(broken) = (1u64..)
                .zip(mine)
                .find_map(|(seq, bytes)| verifier.push(seq, bytes).err())
            {
                violations.push(Violation::new(
                    NAME,
                    &device.name,
                    Some(broken.seq),
                    format!("chain of {} broken: {}", author.name, broken.kind),
                ));
                continue;
            }
            let (last, hash) = verifier.head();
            if last == 0 {
                continue;
            }
            let Some(head) = ledger.head_signature_at_or_before(&author.name, last) else {
                violations.push(Violation::new(
                    NAME,
                    &device.name,
                    Some(last),
                    format!("no signed head of {}", author.name),
                ));
                continue;
            };
            let verified = head.seq == last
                && ChainHead {
                    store_id: crate::sim::keys::STORE_ID.into(),
                    device_id: author.name.clone(),
                    device_incarnation: head.device_incarnation,
                    seq: last,
                    chain_hash: hash,
                }
                .verify(&public_key(&author.key), &head.signature)
                .is_ok();
            if !verified {
                violations.push(Violation::new(
                    NAME,
                    &device.name,
                    Some(last),
                    format!(
                        "the head of {} at its last entry is missing or does not verify",
                        author.name
                    ),
                ));
            }
        }
    }
    violations
}
