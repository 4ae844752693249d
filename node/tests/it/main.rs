//! Integration tests of the `posmesh` binary: one test binary (each extra binary links
//! RocksDB again), one module per topic.

mod bad_input;
mod closed_stdout;
mod cloud_loopback;
mod consensus_loopback;
mod consensus_recovery;
mod crash_durability;
mod day_close_loopback;
mod demo;
mod demo_netns;
mod guarded_client_keys_loopback;
mod guarded_failover_loopback;
mod identity_conflict_loopback;
mod import_bakery;
mod lab_mesh;
mod lost_raft_state_loopback;
mod mesh_loopback;
mod orders_loopback;
mod payments_loopback;
mod precheck_loopback;
mod raft_groups;
mod refused_start;
mod replication_loopback;
mod restore_loopback;
mod revocation_loopback;
mod snapshot_loopback;
mod staff_loopback;
mod store_idempotency_loopback;
mod support;
mod tax_rates_loopback;
