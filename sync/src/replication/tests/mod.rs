//! Tests of the replicator against an in-memory ledger: refusals, the sans-IO contract, and a
//! seeded simulation of a store with a faulty network.

mod harness;
mod mem_ledger;
mod refusals;
mod replicator_unit;
mod simulation;
