//! `posmesh import`: replays a till export (CSV) into a node through its sales API.
//!
//! - [`till_export`]: parsing the export into transactions (pure; reports every skipped
//!   line and why).
//! - [`replay`]: sending the transactions as sales, concurrently, with retries, a progress
//!   bar and a summary with totals per day.

pub mod replay;
pub mod till_export;
