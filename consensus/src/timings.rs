//! [`RaftTimings`]: openraft's timings for a store network, and the [`raft_config`] built
//! from them.
//!
//! openraft's defaults (heartbeat 50 ms, election timeout 150–300 ms) are datacenter values.
//! A store's devices sit on Wi-Fi that drops for a second when a handheld roams between
//! access points or a microwave runs; with the defaults every such flap would start an
//! election, and every election stalls store-wide decisions (gift cards, day close) for its
//! duration. The store values trade a slower failover (a few seconds, invisible at a till:
//! sales never wait on Raft) for far fewer needless elections.
//!
//! Failover time. openraft 0.10.0-alpha.37 holds a follower's leader lease for
//! `election_timeout_max` after each AppendEntries and starts its election timer only after
//! the lease (`lease + election timeout`: 4.5–6 s here), though the lease alone decides
//! when the survivors may vote. [`crate::failover_nudge`] starts a pre-vote right after
//! the lease instead (3.0–3.3 s after the last AppendEntries), keeping these timings and
//! their Wi-Fi-flap tolerance; shorter timings were rejected because they would turn every
//! roam of a handheld into an election.

use openraft::{Config, SnapshotPolicy};

/// The timings of a store's Raft group. All durations in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RaftTimings {
    /// How often the leader sends heartbeats (ms). Raft paper §5.2: heartbeats must come
    /// well within the election timeout; 250 ms gives 6+ heartbeats per minimum election
    /// timeout, so a follower starts an election only after ~1.5 s of silence.
    pub heartbeat_ms: u64,
    /// Lower bound of the randomised election timeout (ms). 1,500 ms rides out a typical
    /// Wi-Fi roam (0.3–1 s) without an election. openraft also uses the maximum as the
    /// leader lease (a leader refuses new proposals once it has not heard from a quorum for
    /// that long: openraft docs, "CheckQuorum").
    pub election_timeout_min_ms: u64,
    /// Upper bound of the randomised election timeout (ms). A range twice the minimum keeps
    /// split votes rare (Raft paper §5.2, §9.3: randomised timeouts spread over a range much
    /// larger than the broadcast time).
    pub election_timeout_max_ms: u64,
    /// How long sending and installing a snapshot may take (ms). Generous: a snapshot goes
    /// to a new or long-offline device over Wi-Fi, maybe a few MB at a few hundred kB/s.
    pub install_snapshot_timeout_ms: u64,
    /// Build a snapshot after this many log entries since the last one. A store writes
    /// hundreds of Raft entries a day, so 5,000 is a few days: snapshots stay rare and small.
    pub snapshot_every_entries: u64,
    /// How many entries already in a snapshot to keep in the log, so a follower that is only
    /// a little behind catches up from the log instead of a snapshot.
    pub keep_logs_in_snapshot: u64,
    /// Run a pre-vote round before an election (openraft 0.10 `enable_pre_vote`, Raft
    /// thesis §9.6): a device that was off the Wi-Fi cannot win, so it does not bump the
    /// term and depose a healthy leader when it comes back.
    pub pre_vote: bool,
}

impl RaftTimings {
    /// The values for a store's network (see the field docs for the reasons).
    pub const STORE: RaftTimings = RaftTimings {
        heartbeat_ms: 250,
        election_timeout_min_ms: 1_500,
        election_timeout_max_ms: 3_000,
        install_snapshot_timeout_ms: 60_000,
        snapshot_every_entries: 5_000,
        keep_logs_in_snapshot: 1_000,
        pre_vote: true,
    };
}

/// Margin on top of the longest failover in [`RaftTimings::leader_wait_ms`] (ms): the vote
/// round, the new leader's first heartbeat and a loaded device's scheduling delays.
pub const LEADER_WAIT_MARGIN_MS: u64 = 500;

impl RaftTimings {
    /// How long a store-wide write (or linearizable read) that finds no leader to send
    /// it to may wait for one before it is answered "no quorum" (ms).
    ///
    /// A leader that dies is replaced once the survivors' lease on it has run out
    /// (`election_timeout_max` after its last AppendEntries) and an election completes:
    /// 3.0–3.3 s with the failover nudge, at worst a full election timeout after the
    /// lease when the nudge's pre-votes fail (openraft's own timer,
    /// [`crate::failover_nudge`]). So: lease + `election_timeout_max` +
    /// [`LEADER_WAIT_MARGIN_MS`] — 6.5 s with the store timings.
    pub fn leader_wait_ms(&self) -> u64 {
        self.election_timeout_max_ms
            .saturating_mul(2)
            .saturating_add(LEADER_WAIT_MARGIN_MS)
    }

    /// How long a follower may have heard nothing from its leader and still send it a
    /// client's write (ms): two heartbeat intervals. After that the leader may be dead
    /// with its connection not yet timed out (a SIGKILLed process's QUIC connection lives
    /// until its idle timeout); a write sent to it would get no answer and its outcome
    /// would be unknown, so the write waits for the leader to be heard again, or for a
    /// new one ([`RaftTimings::leader_wait_ms`]), instead.
    pub fn leader_silence_max_ms(&self) -> u64 {
        self.heartbeat_ms.saturating_mul(2)
    }
}

impl Default for RaftTimings {
    fn default() -> Self {
        RaftTimings::STORE
    }
}

/// The openraft [`Config`] for `timings`, validated.
///
/// # Errors
/// openraft's [`openraft::ConfigError`] if the values are inconsistent (e.g. a heartbeat not
/// shorter than the election timeout).
pub fn raft_config(
    cluster_name: &str,
    timings: RaftTimings,
) -> Result<Config, openraft::ConfigError> {
    let config = Config {
        cluster_name: cluster_name.to_owned(),
        heartbeat_interval: timings.heartbeat_ms,
        election_timeout_min: timings.election_timeout_min_ms,
        election_timeout_max: timings.election_timeout_max_ms,
        install_snapshot_timeout: timings.install_snapshot_timeout_ms,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(timings.snapshot_every_entries),
        max_in_snapshot_log_to_keep: timings.keep_logs_in_snapshot,
        enable_pre_vote: Some(timings.pre_vote),
        // Replicate an entry as soon as the leader has written it, not once the leader's own
        // fsync has completed: the leader's and the followers' fsyncs then overlap instead of
        // running one after the other (Raft paper §10.2.1: the leader may write its log in
        // parallel with replicating it; it counts itself towards the quorum only once its
        // own write is durable, which openraft's `IOFlushed` still enforces). openraft's
        // default (off) waits for the next event-loop turn, which with one client is the
        // leader's own fsync completing.
        broadcast_submitted_on_append: Some(true),
        ..Config::default()
    };
    config.validate()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_timings_validate_and_are_above_the_datacenter_defaults() {
        let config = raft_config("store", RaftTimings::STORE).expect("valid");
        let defaults = Config::default();
        assert!(config.heartbeat_interval > defaults.heartbeat_interval);
        assert!(config.election_timeout_min > defaults.election_timeout_min);
        assert!(config.election_timeout_max >= 2 * config.election_timeout_min);
        assert!(config.heartbeat_interval * 6 <= config.election_timeout_min);
        assert_eq!(config.enable_pre_vote, Some(true));
        assert_eq!(config.broadcast_submitted_on_append, Some(true));
    }

    #[test]
    fn a_write_waits_out_the_longest_failover_and_sends_only_to_a_leader_heard_lately() {
        let store = RaftTimings::STORE;
        // The lease plus openraft's longest election timeout, plus the margin.
        assert_eq!(store.leader_wait_ms(), 6_500);
        assert!(store.leader_wait_ms() > store.election_timeout_max_ms * 2);
        // Heartbeats keep a live leader fresh; silence is noticed well before the lease ends.
        assert_eq!(store.leader_silence_max_ms(), 500);
        assert!(store.leader_silence_max_ms() > store.heartbeat_ms);
        assert!(store.leader_silence_max_ms() < store.election_timeout_min_ms);
        let fast = RaftTimings {
            heartbeat_ms: 50,
            election_timeout_min_ms: 150,
            election_timeout_max_ms: 300,
            ..store
        };
        assert_eq!(fast.leader_wait_ms(), 1_100);
        assert_eq!(fast.leader_silence_max_ms(), 100);
    }
}
