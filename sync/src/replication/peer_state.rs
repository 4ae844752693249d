//! What the replicator knows about one connected peer, and the per-device send pipes to it.

use super::VersionVector;
use std::collections::{BTreeMap, VecDeque};

/// One connected peer: what it is known to hold, when it next gets our vector, and one
/// flow-controlled pipe per device we send it.
#[derive(Clone, Debug)]
pub(super) struct PeerState {
    /// What the peer durably holds, from its vectors and acks (never goes down).
    pub acked: VersionVector,
    /// Whether a vector of the peer arrived on this connection (nothing is pushed before:
    /// we do not know where to start).
    pub heard_vector: bool,
    /// When our vector is next due to the peer, ms.
    pub vector_due_ms: u64,
    /// Send pipes by device.
    pub pipes: BTreeMap<String, Pipe>,
}

impl PeerState {
    /// A fresh connection at `now_ms`: our vector is due at once.
    pub fn new(now_ms: u64) -> Self {
        Self {
            acked: VersionVector::new(),
            heard_vector: false,
            vector_due_ms: now_ms,
            pipes: BTreeMap::new(),
        }
    }

    /// The peer durably holds `device_id` up to `seq` (from its vector or an ack).
    pub fn on_progress(&mut self, device_id: &str, seq: u64) {
        self.acked.advance(device_id, seq);
        if let Some(pipe) = self.pipes.get_mut(device_id) {
            pipe.on_acked(seq);
        }
    }

    /// The pipe of `device_id`, created at the peer's acknowledged position.
    pub fn pipe(&mut self, device_id: &str) -> &mut Pipe {
        let acked = self.acked.get(device_id);
        let pipe = self
            .pipes
            .entry(device_id.to_owned())
            .or_insert_with(|| Pipe::new(acked));
        pipe.on_acked(acked);
        pipe
    }

    /// The earliest time something is due on this connection, ms.
    pub fn next_due_ms(&self, ack_timeout_ms: u64) -> u64 {
        self.pipes
            .values()
            .filter_map(|pipe| pipe.oldest_sent_ms())
            .map(|sent_ms| sent_ms.saturating_add(ack_timeout_ms))
            .fold(self.vector_due_ms, u64::min)
    }

    /// Sends every pipe whose oldest batch has waited `ack_timeout_ms` back to the acked
    /// position. Returns how many went back.
    pub fn go_back_expired(&mut self, now_ms: u64, ack_timeout_ms: u64) -> u64 {
        let mut count = 0;
        for (device_id, pipe) in &mut self.pipes {
            let expired = pipe
                .oldest_sent_ms()
                .is_some_and(|sent_ms| sent_ms.saturating_add(ack_timeout_ms) <= now_ms);
            if expired {
                pipe.go_back(self.acked.get(device_id));
                count += 1;
            }
        }
        count
    }

    /// Checks the invariants of every pipe against the acked vector.
    pub fn assert_invariants(&self, batches_in_flight_max: usize) {
        for (device_id, pipe) in &self.pipes {
            pipe.assert_invariants(self.acked.get(device_id), batches_in_flight_max);
        }
    }
}

/// One unacknowledged batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct InFlight {
    /// Seq of its last entry.
    pub last_seq: u64,
    /// When it was sent, ms.
    pub sent_ms: u64,
}

/// The send state of one device's entries to one peer (a go-back-N window).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Pipe {
    /// Highest seq sent (acked or in flight).
    pub sent_up_to: u64,
    /// Unacknowledged batches, oldest first; their last seqs strictly increase and the
    /// newest ends at `sent_up_to`.
    pub in_flight: VecDeque<InFlight>,
}

impl Pipe {
    fn new(acked: u64) -> Self {
        Self {
            sent_up_to: acked,
            in_flight: VecDeque::new(),
        }
    }

    /// The peer holds everything up to `acked`: forget the batches that ends covers.
    pub fn on_acked(&mut self, acked: u64) {
        while self.in_flight.front().is_some_and(|b| b.last_seq <= acked) {
            self.in_flight.pop_front();
        }
        self.sent_up_to = self.sent_up_to.max(acked);
    }

    /// Records a batch `after + 1 ..= last_seq` sent at `now_ms`.
    pub fn record_sent(&mut self, last_seq: u64, now_ms: u64) {
        assert!(last_seq > self.sent_up_to, "a batch extends what was sent");
        self.in_flight.push_back(InFlight {
            last_seq,
            sent_ms: now_ms,
        });
        self.sent_up_to = last_seq;
    }

    /// Forgets everything unacknowledged; the next batch starts after `acked`.
    pub fn go_back(&mut self, acked: u64) {
        self.in_flight.clear();
        self.sent_up_to = acked;
    }

    fn oldest_sent_ms(&self) -> Option<u64> {
        self.in_flight.front().map(|b| b.sent_ms)
    }

    fn assert_invariants(&self, acked: u64, batches_in_flight_max: usize) {
        assert!(
            self.sent_up_to >= acked,
            "sent_up_to below the acked position"
        );
        assert!(
            self.in_flight.len() <= batches_in_flight_max,
            "window over its limit"
        );
        let mut previous = acked;
        for batch in &self.in_flight {
            assert!(
                batch.last_seq > previous,
                "in-flight batches ascend past the ack"
            );
            previous = batch.last_seq;
        }
        if let Some(newest) = self.in_flight.back() {
            assert_eq!(
                newest.last_seq, self.sent_up_to,
                "newest batch ends at sent_up_to"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipe_pops_acked_batches_and_goes_back_on_timeout() {
        let mut peer = PeerState::new(0);
        peer.on_progress("till-1", 2);
        peer.pipe("till-1").record_sent(5, 10);
        peer.pipe("till-1").record_sent(9, 11);
        peer.assert_invariants(4);
        assert_eq!(peer.next_due_ms(100), 0, "vector due at connect");
        peer.vector_due_ms = 1_000;
        assert_eq!(peer.next_due_ms(100), 110);
        peer.on_progress("till-1", 6);
        assert_eq!(peer.pipes["till-1"].in_flight.len(), 1);
        assert_eq!(peer.go_back_expired(110, 100), 0, "the 9 was sent at 11");
        assert_eq!(peer.go_back_expired(111, 100), 1);
        assert_eq!(peer.pipes["till-1"].sent_up_to, 6);
        peer.assert_invariants(4);
        // An ack beyond what was sent (the peer got it elsewhere) empties the window.
        peer.pipe("till-1").record_sent(8, 200);
        peer.on_progress("till-1", 20);
        assert_eq!(peer.pipes["till-1"].sent_up_to, 20);
        assert!(peer.pipes["till-1"].in_flight.is_empty());
        peer.assert_invariants(4);
    }
}
