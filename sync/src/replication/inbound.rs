//! The receive state of one device's journal while a store of it is pending.

use super::batch_check::VerifiedBatch;
use super::PeerId;
use crate::chain::ChainHash;
use std::collections::{BTreeSet, VecDeque};

/// A verified batch waiting behind the pending store of its device.
#[derive(Clone, Debug)]
pub(super) struct ParkedBatch {
    pub from_peer: PeerId,
    pub batch: VerifiedBatch,
}

/// Exists for a device exactly while a `Store` of it is outstanding (emitted, not yet
/// confirmed by `handle_stored`). Batches that continue it are verified at once and parked,
/// in order, so the driver never holds two overlapping unstored batches of one device.
#[derive(Clone, Debug)]
pub(super) struct Inbound {
    /// Last seq of the outstanding store.
    pub pending_up_to: u64,
    /// Peers to ack when the outstanding store is confirmed (its sender, and senders of
    /// batches it covered).
    pub ack_peers: BTreeSet<PeerId>,
    /// Verified batches continuing the pending one, contiguous, oldest first.
    pub parked: VecDeque<ParkedBatch>,
    /// Last seq accepted (pending or parked) and its chain hash: the next batch must link here.
    pub tail_seq: u64,
    /// Chain hash of entry `tail_seq`.
    pub tail_hash: ChainHash,
}

impl Inbound {
    /// A store of `batch` from `from_peer` was just emitted.
    pub fn pending(from_peer: PeerId, batch: &VerifiedBatch) -> Self {
        Self {
            pending_up_to: batch.last_seq(),
            ack_peers: BTreeSet::from([from_peer]),
            parked: VecDeque::new(),
            tail_seq: batch.last_seq(),
            tail_hash: batch.last_hash,
        }
    }

    /// Parks a verified batch that starts right after the tail.
    pub fn park(&mut self, from_peer: PeerId, batch: VerifiedBatch) {
        assert_eq!(
            batch.first_seq(),
            self.tail_seq + 1,
            "parked batches are contiguous"
        );
        self.tail_seq = batch.last_seq();
        self.tail_hash = batch.last_hash;
        self.parked.push_back(ParkedBatch { from_peer, batch });
    }

    /// The pending store is confirmed: the next parked batch (if any) becomes pending.
    pub fn advance(&mut self) -> Option<ParkedBatch> {
        let next = self.parked.pop_front()?;
        assert_eq!(
            next.batch.first_seq(),
            self.pending_up_to + 1,
            "park continues the store"
        );
        self.pending_up_to = next.batch.last_seq();
        self.ack_peers = BTreeSet::from([next.from_peer.clone()]);
        Some(next)
    }

    pub fn assert_invariants(&self) {
        assert!(
            self.tail_seq >= self.pending_up_to,
            "tail at or after the pending store"
        );
        let mut previous = self.pending_up_to;
        for parked in &self.parked {
            assert_eq!(parked.batch.first_seq(), previous + 1, "park is contiguous");
            previous = parked.batch.last_seq();
        }
        assert_eq!(previous, self.tail_seq, "park ends at the tail");
    }
}
