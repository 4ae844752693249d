//! Read access to the node's ledger, implemented by the driver (the node's RocksDB journal,
//! the simulator's in-memory store).

use super::VersionVector;
use crate::chain::ChainHash;
use posmesh_proto::journal::v1::ChainHeadSignature;

/// What the [`Replicator`](super::Replicator) reads from the node's ledger: the journals of
/// every device of the store, the local device's included.
///
/// The replicator never writes: it asks the driver to persist received batches through
/// [`ReplicationEvent::Store`](super::ReplicationEvent::Store). Calls are synchronous and
/// made from inside the replicator's `handle_*` methods; they must not call back into the
/// replicator.
///
/// # Obligations
/// An implementation must uphold all of these; the replicator asserts the cheap ones and the
/// conformance of a backend is what the simulation tests exercise.
/// - **Durable only.** Everything returned is on disk (fsynced). An entry, head signature or
///   version-vector component that a crash could still lose must not be visible here:
///   peers are told (acked, advertised) what these methods return, and a peer may then stop
///   re-sending it.
/// - **Contiguous.** For every device, the stored entries are exactly `1 ..= n` for some `n`
///   (the device's component of [`version_vector`](Self::version_vector)); nothing beyond a
///   gap is ever stored.
/// - **Immutable.** A stored entry's bytes never change and are the bytes the writing device
///   produced (the chain hash is taken over them, never over a re-encoding).
/// - **Monotone.** The version vector never goes down while the replicator runs.
/// - **One writer per chain.** While a `Store` of a device is outstanding, entries of that
///   device reach the ledger only through that `Store` (the replicator asserts it).
/// - **Signed heads are dense.** The writing device signs the head of every batch it
///   writes, and a receiver stores the head signature of every batch it stores, so every
///   stored entry is covered by a signed head at or after it that is also stored, at most one
///   writer batch away. The replicator's `batch_entries_max` must be at least the writer's
///   largest batch, otherwise a range can stall (counted in
///   [`ReplicatorStats::batches_stalled_without_head`](super::ReplicatorStats)).
pub trait LedgerRead {
    /// For each device of which anything is held, the highest sequence number `n` such that
    /// entries `1 ..= n` are all durably stored.
    fn version_vector(&self) -> VersionVector;

    /// Up to `limit` stored entries of `device_id` with sequence numbers `after_seq + 1`,
    /// `after_seq + 2`, … in ascending order and without gaps, as `(seq, stored bytes)`.
    /// Fewer (or none) when fewer are stored. Only durable entries.
    fn entries_after(&self, device_id: &str, after_seq: u64, limit: usize) -> Vec<(u64, Vec<u8>)>;

    /// The stored head signature of `device_id` with the greatest `seq` that is ≤ `seq`, or
    /// `None` when no stored signature is at or before `seq`. Its `device_id` is `device_id`.
    fn head_signature_at_or_before(&self, device_id: &str, seq: u64) -> Option<ChainHeadSignature>;

    /// The chain hash ([`entry_hash`](crate::chain::entry_hash)) of the stored entry
    /// `(device_id, seq)`, or `None` when that entry is not stored. Must be `Some` for every
    /// `1 ..= version_vector().get(device_id)`; the replicator needs it to check that the
    /// next received batch links to what is held. (It handles `seq` 0, the genesis, itself.)
    fn chain_hash(&self, device_id: &str, seq: u64) -> Option<ChainHash>;

    /// The store's ledger cut of `device_id`: the last sequence number of its journal the
    /// store keeps, once its certificate was revoked or it was retired (committed through
    /// the store's Raft group, `posmesh_consensus::ledger_cut`); `None` while it has none.
    /// The replicator neither sends nor accepts the device's entries beyond it
    /// ([`RefusalReason::BeyondCut`](super::RefusalReason::BeyondCut)); entries held
    /// beyond it stay where they are.
    ///
    /// Obligation: once `Some`, the answer never changes (a cut never moves). The default
    /// is a ledger without cuts.
    fn cut(&self, device_id: &str) -> Option<u64> {
        let _ = device_id;
        None
    }
}
