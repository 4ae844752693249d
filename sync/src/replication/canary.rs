//! Planted bugs (feature `canaries`): deliberate defects the deterministic simulator switches
//! on at run time to prove that its checkers catch them (posmesh-simulations, `--canary`).
//! Off unless [`Replicator::plant_canary`](super::Replicator::plant_canary) is called; the
//! node never calls it.

/// A deliberate bug of the replicator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Canary {
    /// Accept received entries without checking that each links by hash (`prev_hash`) to
    /// the one before: a tampered entry inside a batch is stored. The head signature is still
    /// checked, so only tampering before a batch's last entry gets through.
    SkipLinkCheck,
}
