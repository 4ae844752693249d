//! [`FailoverNudge`]: start the pre-vote as soon as the dead leader's lease has run out,
//! instead of an election timeout later (sans-IO; time is fed in).
//!
//! Why. openraft 0.10.0-alpha.37 gives every follower a leader lease of
//! `election_timeout_max` (`engine_config.rs`, `leader_lease`), renewed by every
//! AppendEntries. Its election timer (`RaftCore::handle_tick_election`) only fires once the
//! vote is `is_expired(now, election_timeout)`, i.e. `lease + election_timeout` after the
//! last AppendEntries: 3 s + 1.5–3 s = 4.5–6 s with the store timings
//! ([`crate::RaftTimings::STORE`]), though the lease — the only reason a survivor refuses
//! to vote — ends at 3 s. The nudge fills that gap: a follower that has heard nothing from
//! its leader for `election_timeout_max` plus a small margin and a jitter asks openraft for
//! a **pre-vote** (`raft.trigger().elect(true)`). A pre-vote changes no term and no vote;
//! a survivor whose lease still runs, or a leader that a quorum still acknowledges, refuses
//! it (openraft `handle_vote_req`, `pre_elect`), so a nudge cannot depose a healthy leader;
//! openraft's own timer stays in place as the fallback.
//!
//! Rules (each one a test below):
//! - armed only by hearing a leader (`heard_from_leader`): a device that never heard one,
//!   e.g. right after a restart, leaves elections to openraft;
//! - fires only while this device is a follower (never on a leader, a candidate or a
//!   learner); any other role disarms it until a leader is heard again;
//! - at most [`NUDGES_PER_SILENCE`] nudges per silence, [`NUDGE_RETRY_MS`] apart (a
//!   pre-vote refused because the other survivor heard the old leader a few ms later is
//!   retried; a device cut off from the store does not nudge forever);
//! - jitter: 0–[`NUDGE_JITTER_MAX_MS`] ms, drawn deterministically from the node id and
//!   the number of silences seen, so two survivors rarely pre-vote at the same moment (two
//!   pre-votes granted at once lead to a split vote and a full election timeout), and the
//!   same two devices do not collide silence after silence.

/// Margin after the lease's end before the first nudge (ms): the other survivor may have
/// renewed its lease with the same AppendEntries a few ms after this device.
pub const NUDGE_MARGIN_MS: u64 = 20;
/// Upper bound of the per-silence jitter (ms). Far above a store's pre-vote round trip
/// (a few ms on Wi-Fi), far below the 1.5 s election timeout it saves.
pub const NUDGE_JITTER_MAX_MS: u64 = 300;
/// Delay between two nudges of one silence (ms): one store heartbeat interval.
pub const NUDGE_RETRY_MS: u64 = 250;
/// Nudges per silence at most; then openraft's own election timer is left alone.
pub const NUDGES_PER_SILENCE: u32 = 4;

/// This device's role as the nudge needs it (from openraft's `ServerState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NudgeRole {
    /// A voter following a leader (or waiting for one): may nudge.
    Follower,
    /// Leader, candidate, learner or shut down: never nudges.
    Other,
}

/// The nudge's state for one device. Times are milliseconds on one monotonic clock of the
/// caller's choosing.
#[derive(Clone, Debug)]
pub struct FailoverNudge {
    node_id: u64,
    /// The leader lease openraft gives a follower (ms) = `election_timeout_max`.
    lease_ms: u64,
    /// When this device last heard from a leader; `None`: disarmed.
    last_heard_ms: Option<u64>,
    /// Jitter of the current silence (ms).
    jitter_ms: u64,
    /// Nudges fired in the current silence.
    fired: u32,
    /// Silences seen (feeds the jitter).
    silences: u64,
}

impl FailoverNudge {
    /// A disarmed nudge for node `node_id` whose followers hold a leader lease of
    /// `lease_ms` (openraft: `election_timeout_max`, ms).
    pub fn new(node_id: u64, lease_ms: u64) -> Self {
        Self {
            node_id,
            lease_ms,
            last_heard_ms: None,
            jitter_ms: 0,
            fired: 0,
            silences: 0,
        }
    }

    /// This device heard from its leader at `now_ms` (an AppendEntries, heartbeat or
    /// snapshot it accepted): re-arms the nudge for the next silence.
    pub fn heard_from_leader(&mut self, now_ms: u64) {
        let fresh_silence = self.last_heard_ms.is_none() || self.fired > 0;
        if fresh_silence {
            self.silences += 1;
            self.jitter_ms = jitter_ms(self.node_id, self.silences);
        }
        self.last_heard_ms = Some(self.last_heard_ms.map_or(now_ms, |t| t.max(now_ms)));
        self.fired = 0;
    }

    /// When the next nudge is due (ms), if one is armed.
    pub fn due_at_ms(&self) -> Option<u64> {
        let heard = self.last_heard_ms?;
        if self.fired >= NUDGES_PER_SILENCE {
            return None;
        }
        Some(
            heard
                .saturating_add(self.lease_ms)
                .saturating_add(NUDGE_MARGIN_MS)
                .saturating_add(self.jitter_ms)
                .saturating_add(u64::from(self.fired) * NUDGE_RETRY_MS),
        )
    }

    /// Called periodically: `true` when the caller should start a pre-vote now
    /// (`raft.trigger().elect(true)`). Counts the nudge as fired.
    pub fn poll(&mut self, now_ms: u64, role: NudgeRole) -> bool {
        if role != NudgeRole::Follower {
            self.last_heard_ms = None;
            return false;
        }
        match self.due_at_ms() {
            Some(due) if now_ms >= due => {
                self.fired += 1;
                true
            }
            _ => false,
        }
    }
}

/// 0..=[`NUDGE_JITTER_MAX_MS`] from `node_id` and `silence` (splitmix64 finaliser).
fn jitter_ms(node_id: u64, silence: u64) -> u64 {
    let mut z = node_id ^ silence.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    z % (NUDGE_JITTER_MAX_MS + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: u64 = 3_000;

    fn armed(node: u64, at: u64) -> FailoverNudge {
        let mut nudge = FailoverNudge::new(node, LEASE);
        nudge.heard_from_leader(at);
        nudge
    }

    #[test]
    fn never_fires_before_a_leader_was_heard() {
        let mut nudge = FailoverNudge::new(7, LEASE);
        for now in (0..60_000).step_by(25) {
            assert!(!nudge.poll(now, NudgeRole::Follower));
        }
    }

    #[test]
    fn fires_once_after_the_lease_margin_and_jitter_not_before() {
        let mut nudge = armed(7, 1_000);
        let due = nudge.due_at_ms().expect("armed");
        assert!(due >= 1_000 + LEASE + NUDGE_MARGIN_MS);
        assert!(due <= 1_000 + LEASE + NUDGE_MARGIN_MS + NUDGE_JITTER_MAX_MS);
        assert!(!nudge.poll(due - 1, NudgeRole::Follower));
        assert!(nudge.poll(due, NudgeRole::Follower));
        // Not again at once: the next one is a retry interval later.
        assert!(!nudge.poll(due, NudgeRole::Follower));
        assert!(!nudge.poll(due + NUDGE_RETRY_MS - 1, NudgeRole::Follower));
        assert!(nudge.poll(due + NUDGE_RETRY_MS, NudgeRole::Follower));
    }

    #[test]
    fn a_long_silence_gets_a_bounded_number_of_nudges() {
        let mut nudge = armed(3, 0);
        let fired = (0..600_000)
            .step_by(10)
            .filter(|now| nudge.poll(*now, NudgeRole::Follower))
            .count();
        assert_eq!(fired, NUDGES_PER_SILENCE as usize);
        assert_eq!(nudge.due_at_ms(), None);
    }

    #[test]
    fn heartbeats_keep_it_quiet() {
        let mut nudge = armed(9, 0);
        for now in (0..120_000).step_by(25) {
            if now % 250 == 0 {
                nudge.heard_from_leader(now);
            }
            assert!(!nudge.poll(now, NudgeRole::Follower), "fired at {now}");
        }
    }

    #[test]
    fn never_fires_on_a_leader_candidate_or_learner_and_rearms_on_hearing_a_leader() {
        let mut nudge = armed(5, 0);
        for now in (0..20_000).step_by(25) {
            assert!(!nudge.poll(now, NudgeRole::Other));
        }
        // Disarmed: back to follower without hearing a leader, still nothing.
        for now in (20_000..40_000).step_by(25) {
            assert!(!nudge.poll(now, NudgeRole::Follower));
        }
        nudge.heard_from_leader(40_000);
        let due = nudge.due_at_ms().expect("re-armed");
        assert!(nudge.poll(due, NudgeRole::Follower));
    }

    #[test]
    fn hearing_a_leader_after_nudges_resets_the_count() {
        let mut nudge = armed(11, 0);
        let mut now = 0;
        while nudge.due_at_ms().is_some() {
            now += 10;
            nudge.poll(now, NudgeRole::Follower);
        }
        nudge.heard_from_leader(now);
        let due = nudge.due_at_ms().expect("re-armed");
        assert!(due >= now + LEASE);
        assert!(nudge.poll(due, NudgeRole::Follower));
    }

    #[test]
    fn an_out_of_order_older_heartbeat_does_not_move_the_deadline_back() {
        let mut nudge = armed(2, 5_000);
        let due = nudge.due_at_ms().expect("armed");
        nudge.heard_from_leader(4_000);
        assert_eq!(nudge.due_at_ms(), Some(due));
    }

    #[test]
    fn jitter_is_deterministic_bounded_and_differs_between_nodes_and_silences() {
        assert_eq!(jitter_ms(42, 1), jitter_ms(42, 1));
        let values: std::collections::BTreeSet<u64> = (0..200)
            .flat_map(|node| (1..4).map(move |silence| jitter_ms(node, silence)))
            .collect();
        assert!(values.iter().all(|j| *j <= NUDGE_JITTER_MAX_MS));
        // Spread over the range, not a constant.
        assert!(values.len() > 150, "only {} distinct jitters", values.len());
        assert!((0..50).any(|node| jitter_ms(node, 1) != jitter_ms(node, 2)));
    }
}
