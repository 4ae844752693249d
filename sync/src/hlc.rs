//! Hybrid logical clock (Kulkarni, Demirbas et al., "Logical Physical Clocks and Consistent
//! Snapshots in Globally Distributed Databases", 2014).
//!
//! Timestamps are `(physical_ms, logical)`: they never go backwards on one node even when the
//! wall clock does, and they stay close to physical time. The clock does not read the OS
//! clock: the caller passes the wall time in.

/// An HLC timestamp: milliseconds since the Unix epoch plus a logical counter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HlcTimestamp {
    /// Physical component, milliseconds since the Unix epoch (UTC).
    pub physical_ms: u64,
    /// Logical counter within one physical millisecond.
    pub logical: u32,
}

/// The clock state of one node.
#[derive(Clone, Debug, Default)]
pub struct HybridLogicalClock {
    last: HlcTimestamp,
}

impl HybridLogicalClock {
    /// A clock that has issued nothing yet; after a restart, seed it with [`Self::observe`]
    /// of the last timestamp the node persisted so it never issues an earlier one.
    pub fn new() -> Self {
        Self::default()
    }

    /// The last timestamp issued or observed.
    pub fn last(&self) -> HlcTimestamp {
        self.last
    }

    /// Issues a timestamp for a local event at wall time `wall_ms` (ms since the Unix epoch).
    /// The result is strictly greater than every timestamp issued or observed before.
    pub fn tick(&mut self, wall_ms: u64) -> HlcTimestamp {
        let next = if wall_ms > self.last.physical_ms {
            HlcTimestamp {
                physical_ms: wall_ms,
                logical: 0,
            }
        } else {
            self.successor_of_last()
        };
        debug_assert!(next > self.last);
        self.last = next;
        next
    }

    /// Merges a timestamp received from another node (or read back from disk), so later
    /// local timestamps order after it.
    pub fn observe(&mut self, remote: HlcTimestamp) {
        if remote > self.last {
            self.last = remote;
        }
    }

    fn successor_of_last(&self) -> HlcTimestamp {
        match self.last.logical.checked_add(1) {
            Some(logical) => HlcTimestamp {
                physical_ms: self.last.physical_ms,
                logical,
            },
            // 4 billion events in one millisecond: borrow the next millisecond.
            None => HlcTimestamp {
                physical_ms: self.last.physical_ms.saturating_add(1),
                logical: 0,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_wall_clock_when_it_moves_forward() {
        let mut clock = HybridLogicalClock::new();
        assert_eq!(
            clock.tick(1_000),
            HlcTimestamp {
                physical_ms: 1_000,
                logical: 0
            }
        );
        assert_eq!(
            clock.tick(2_000),
            HlcTimestamp {
                physical_ms: 2_000,
                logical: 0
            }
        );
    }

    #[test]
    fn never_goes_backwards_when_the_wall_clock_does() {
        let mut clock = HybridLogicalClock::new();
        let a = clock.tick(5_000);
        let b = clock.tick(4_000);
        let c = clock.tick(5_000);
        assert!(a < b && b < c);
        assert_eq!(
            b,
            HlcTimestamp {
                physical_ms: 5_000,
                logical: 1
            }
        );
    }

    #[test]
    fn orders_after_an_observed_remote_timestamp() {
        let mut clock = HybridLogicalClock::new();
        clock.observe(HlcTimestamp {
            physical_ms: 9_000,
            logical: 7,
        });
        assert_eq!(
            clock.tick(1_000),
            HlcTimestamp {
                physical_ms: 9_000,
                logical: 8
            }
        );
    }

    #[test]
    fn logical_overflow_borrows_the_next_millisecond() {
        let mut clock = HybridLogicalClock::new();
        clock.observe(HlcTimestamp {
            physical_ms: 10,
            logical: u32::MAX,
        });
        assert_eq!(
            clock.tick(10),
            HlcTimestamp {
                physical_ms: 11,
                logical: 0
            }
        );
    }
}
