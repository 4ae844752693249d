//! The node's only access to the operating system's clock. Core crates never read it: the
//! node passes the time in (so the simulator can pass virtual time instead).
#![allow(clippy::disallowed_methods)]

use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock time, milliseconds since the Unix epoch (0 if the clock is before 1970).
pub fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A monotonic instant, for measuring durations (latency, timeouts).
pub fn monotonic_now() -> std::time::Instant {
    std::time::Instant::now()
}
