//! The replicator's tests (posmesh-sync's sans-IO core) over the simulator's ledger and
//! world: the contract input by input, and every refusal reason.

mod refusals;
mod replicator_unit;

/// What the tests share: ledgers with real chains and keys of a fixed seed.
mod support {
    use posmesh_simulations::sim::keys::device_key;
    pub use posmesh_simulations::sim::ledger::Ledger;
    use posmesh_simulations::sim::writer::{JournalWriter, SaleInput};
    use posmesh_sync::chain_head::public_key;

    /// The seed the keys of these tests derive from.
    pub const SEED: u64 = 7;

    /// An empty ledger knowing the keys of `devices`.
    pub fn ledger(devices: &[&str]) -> Ledger {
        Ledger::new(
            devices
                .iter()
                .map(|d| ((*d).to_owned(), public_key(&device_key(SEED, d))))
                .collect(),
        )
    }

    /// `device`'s journal writer appends `count` sales as one signed group.
    pub fn append_local(ledger: &mut Ledger, device: &str, count: u64) {
        let writer = JournalWriter::resume(device, device_key(SEED, device), ledger);
        let sales: Vec<SaleInput> = (0..count)
            .map(|i| SaleInput {
                sale_id: writer.last_seq() + i,
                quantity: 1,
                unit_price_minor: 250,
            })
            .collect();
        let prepared = writer.prepare(&sales, 1_000 * (writer.last_seq() + 1));
        let write = prepared.write;
        ledger.append(&write.device_id, &write.entries, &write.head);
    }
}

/// Lets the moved tests keep their `crate::replication` paths.
mod replication {
    pub use posmesh_sync::replication::*;
}

/// Lets the moved tests keep their `crate::chain` paths.
mod chain {
    pub use posmesh_sync::chain::*;
}
