//! Limits and timers of the [`Replicator`](super::Replicator).

use crate::SyncError;

/// Limits and timers of one node's replication. Every field is a limit or a duration; all
/// must be non-zero ([`ReplicatorConfig::validate`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicatorConfig {
    /// How often the node sends its version vector to every connected peer (the anti-entropy
    /// round of Demers et al. 1987), milliseconds. Also sent at once on connect.
    pub anti_entropy_interval_ms: u64,
    /// How long an unacknowledged batch stays in flight before the sender goes back to the
    /// peer's acknowledged position and re-sends from there ("go-back-N"), milliseconds.
    /// Should exceed a round trip plus the receiver's store (fsync) time.
    pub ack_timeout_ms: u64,
    /// Most entries in one batch. Must be at least the largest batch the journal writer signs
    /// at once (signed heads are one per writer batch; a sent batch always ends at one).
    pub batch_entries_max: usize,
    /// Most entry bytes in one batch (sum of stored entry sizes), bytes. A single entry larger
    /// than this still goes alone. Like `batch_entries_max`, must hold the writer's largest
    /// signed batch, or the range after it cannot be cut at a head and stalls.
    pub batch_bytes_max: usize,
    /// Flow control: most unacknowledged batches per (peer, device) on the sending side, and
    /// most verified batches a receiver parks per device behind a pending store.
    pub batches_in_flight_max: usize,
}

impl Default for ReplicatorConfig {
    /// Store-LAN defaults: a vector exchange every 5 s, batches of up to 1 024 entries /
    /// 1 MiB, four batches in flight per peer and device, 2 s ack timeout.
    fn default() -> Self {
        Self {
            anti_entropy_interval_ms: 5_000,
            ack_timeout_ms: 2_000,
            batch_entries_max: 1_024,
            batch_bytes_max: 1 << 20,
            batches_in_flight_max: 4,
        }
    }
}

impl ReplicatorConfig {
    /// Checks that every limit is usable.
    ///
    /// # Errors
    /// [`SyncError::InvalidConfig`] naming the first field that is zero.
    pub fn validate(&self) -> Result<(), SyncError> {
        let fields = [
            (
                "anti_entropy_interval_ms",
                self.anti_entropy_interval_ms == 0,
            ),
            ("ack_timeout_ms", self.ack_timeout_ms == 0),
            ("batch_entries_max", self.batch_entries_max == 0),
            ("batch_bytes_max", self.batch_bytes_max == 0),
            ("batches_in_flight_max", self.batches_in_flight_max == 0),
        ];
        match fields.iter().find(|(_, zero)| *zero) {
            Some((name, _)) => Err(SyncError::InvalidConfig {
                reason: format!("{name} must be > 0"),
            }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_limits_are_refused() {
        ReplicatorConfig::default()
            .validate()
            .expect("defaults are valid");
        let config = ReplicatorConfig {
            batches_in_flight_max: 0,
            ..ReplicatorConfig::default()
        };
        assert_eq!(
            config.validate(),
            Err(SyncError::InvalidConfig {
                reason: "batches_in_flight_max must be > 0".into()
            })
        );
    }
}
