//! Canaries: planted bugs, off unless a run asks for one, that the checkers must catch
//! (`tests/sim/canaries.rs` asserts they do). Six are in the simulator's model of the node
//! and its cloud;
//! one is in the production replicator, behind posmesh-sync's `canaries` feature.

use std::fmt;

/// A planted bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Canary {
    /// The journal writer answers a sale when its write is issued, before the fsync: a
    /// crash then loses an acknowledged sale. Caught by `durable-on-ack`.
    AckBeforeSync,
    /// A sale is answered only once the device is connected to a peer (as if it waited for
    /// replication): a partitioned till stops selling. Caught by `local-first`.
    WaitForPeer,
    /// A write refused by a full disk consumes its receipt numbers: a gap in the fiscal
    /// numbering. Caught by `receipt-numbers`.
    ReceiptLeak,
    /// The driver does not report a failed replicated store to the replicator
    /// (`handle_store_failed`): that device's journal stalls on this node. Caught by
    /// `convergence`.
    ForgetStoreFailed,
    /// The production replicator skips the `prev_hash` check of received entries
    /// (`Replicator::plant_canary(Canary::SkipLinkCheck)`): a tampered entry is stored.
    /// Caught by `tamper-refusal`.
    SkipLinkCheck,
    /// A local order edit's chunk is written without an fsync and the edit answered when
    /// the write is issued (the node's `persist(…, synced: false)` on the edit path): a
    /// crash before the write-back loses an acknowledged line that no peer got yet (the
    /// device was partitioned, its links clogged, or the message lost). Caught by
    /// `order-convergence`.
    OrderAckBeforeSync,
    /// The cloud stores an upload it already holds again instead of answering it as a
    /// duplicate (no idempotency by `(device, seq)`): a re-sent or relayed batch is doubled.
    /// Caught by `exactly-once-in-cloud`.
    CloudStoresDuplicates,
}

impl Canary {
    /// Every canary.
    pub const ALL: [Canary; 7] = [
        Canary::AckBeforeSync,
        Canary::WaitForPeer,
        Canary::ReceiptLeak,
        Canary::ForgetStoreFailed,
        Canary::SkipLinkCheck,
        Canary::OrderAckBeforeSync,
        Canary::CloudStoresDuplicates,
    ];

    /// Its command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Canary::AckBeforeSync => "ack-before-sync",
            Canary::WaitForPeer => "wait-for-peer",
            Canary::ReceiptLeak => "receipt-leak",
            Canary::ForgetStoreFailed => "forget-store-failed",
            Canary::SkipLinkCheck => "skip-link-check",
            Canary::OrderAckBeforeSync => "order-ack-before-sync",
            Canary::CloudStoresDuplicates => "cloud-stores-duplicates",
        }
    }

    /// The canary called `name`.
    pub fn from_name(name: &str) -> Option<Canary> {
        Canary::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The checker that must catch it.
    pub fn caught_by(self) -> &'static str {
        match self {
            Canary::AckBeforeSync => super::checkers::durable_on_ack::NAME,
            Canary::WaitForPeer => super::checkers::local_first::NAME,
            Canary::ReceiptLeak => super::checkers::receipt_numbers::NAME,
            Canary::ForgetStoreFailed => super::checkers::convergence::NAME,
            Canary::SkipLinkCheck => super::checkers::tamper_refusal::NAME,
            Canary::OrderAckBeforeSync => super::checkers::order_convergence::NAME,
            Canary::CloudStoresDuplicates => super::checkers::exactly_once_in_cloud::NAME,
        }
    }
}

impl fmt::Display for Canary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
