//! The deterministic simulator (see the crate docs for what is simulated and how).
#![deny(clippy::disallowed_methods)]

pub mod canary;
pub mod checkers;
pub mod cloud;
pub mod config;
pub mod device;
pub mod disk;
pub mod faults;
pub mod history;
pub mod keys;
pub mod ledger;
pub mod network;
pub mod orders;
pub mod payments;
pub mod rng;
pub mod run;
pub mod tamper;
pub mod trace;
pub mod world;
pub mod writer;

pub use canary::Canary;
pub use checkers::Violation;
pub use config::SimConfig;
pub use run::{run_seed, sweep, OrderCounts, Outcome, RunOptions, SweepReport};
pub use world::World;
