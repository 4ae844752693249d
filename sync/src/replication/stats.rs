//! Counters of the replicator's code paths.

/// How often each path of the [`Replicator`](super::Replicator) ran since it was created.
/// Rare paths are counted so tests and the simulator can show they reached them
/// (FoundationDB's practice); the node exports them as metrics. All counts, no units.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplicatorStats {
    /// Version vectors sent.
    pub vectors_sent: u64,
    /// Entry batches sent (first sends and re-sends).
    pub batches_sent: u64,
    /// Entry batches received from connected peers.
    pub batches_received: u64,
    /// Received batches whose entries were all held or already pending: nothing stored.
    pub batches_duplicate: u64,
    /// Received batches that overlapped what was held or pending and were trimmed to the rest.
    pub batches_trimmed: u64,
    /// Received batches that started beyond what was held or pending (a gap): ignored, the
    /// range comes again through re-sends and anti-entropy.
    pub batches_gap_ignored: u64,
    /// Received batches refused as tampered, forged or malformed, or beyond a ledger cut.
    pub batches_refused: u64,
    /// Of `batches_refused`, those reaching beyond the device's ledger cut.
    pub batches_beyond_cut: u64,
    /// Verified batches parked behind a pending store of the same device.
    pub batches_parked: u64,
    /// Verified batches dropped because the device's park was full.
    pub batches_park_full: u64,
    /// `Store` events emitted.
    pub stores_emitted: u64,
    /// Stores the driver confirmed with `handle_stored`.
    pub stores_confirmed: u64,
    /// Stores the driver reported as failed with `handle_store_failed`.
    pub stores_failed: u64,
    /// Acks sent.
    pub acks_sent: u64,
    /// Times an unacknowledged pipe went back to the peer's acknowledged position.
    pub go_backs: u64,
    /// Times a sender could not cut a batch at a signed head within its limits.
    pub batches_stalled_without_head: u64,
    /// Messages from peers that are not connected, ignored.
    pub messages_from_unknown_peer: u64,
    /// Messages of a kind this version does not know (a newer peer), ignored.
    pub messages_unknown_kind: u64,
}
