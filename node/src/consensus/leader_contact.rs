//! [`LeaderContact`]: when this device last heard from a leader (an AppendEntries or
//! heartbeat it accepted, a snapshot it installed), so a follower forwards a client's write
//! only to a leader it heard from lately
//! ([`posmesh_consensus::RaftTimings::leader_silence_max_ms`]): a leader killed a moment
//! ago keeps its mesh connection until the connection times out, and a write sent to it
//! would end `outcome_unknown`; waiting for the leader to be heard again, or for the next
//! one, ends in a committed write instead.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Never heard from a leader.
const NEVER: u64 = u64::MAX;

/// The last time a leader was heard, on a monotonic clock.
pub struct LeaderContact {
    origin: Instant,
    /// Milliseconds after `origin`; [`NEVER`] before the first.
    last_ms: AtomicU64,
}

impl Default for LeaderContact {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
            last_ms: AtomicU64::new(NEVER),
        }
    }
}

impl LeaderContact {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(NEVER - 1)
    }

    /// A leader was heard now.
    pub fn heard(&self) {
        self.last_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// How long ago a leader was last heard; `None`: never since this process started.
    pub fn silent_for(&self) -> Option<Duration> {
        let last = self.last_ms.load(Ordering::Relaxed);
        (last != NEVER).then(|| Duration::from_millis(self.now_ms().saturating_sub(last)))
    }

    /// Whether a leader was heard within `max`.
    pub fn heard_within(&self, max: Duration) -> bool {
        self.silent_for().is_some_and(|silent| silent <= max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leader_counts_as_heard_only_within_the_window() {
        let contact = LeaderContact::default();
        assert_eq!(contact.silent_for(), None);
        assert!(!contact.heard_within(Duration::from_secs(3600)));
        contact.heard();
        assert!(contact.heard_within(Duration::from_millis(500)));
        std::thread::sleep(Duration::from_millis(30));
        assert!(!contact.heard_within(Duration::from_millis(10)));
        assert!(contact.silent_for() >= Some(Duration::from_millis(30)));
        contact.heard();
        assert!(contact.heard_within(Duration::from_secs(1)));
    }
}
