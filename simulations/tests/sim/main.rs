//! The deterministic simulator's own tests: a sweep of ≥ 1,000 seeds with every fault kind
//! and 0 violations, exact replay, and canaries that the checkers must catch.

mod canaries;
mod cli;
mod raft;
mod replay;
mod snapshot_receive;
mod sweep;
