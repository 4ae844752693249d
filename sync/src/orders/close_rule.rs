//! Which sale wins when one order was closed more than once.
//!
//! # The rule
//! Devices close orders without asking each other (a sale never waits on a peer), so two
//! partitioned devices can both close the same order and take payment. Once both sales have
//! replicated, every device sees the same set of sales carrying the order id (the ledger is a
//! grow-only set that converges) and applies the same total order to it:
//!
//! 1. the earlier hybrid-logical-clock stamp of the sale entry wins (physical ms, then the
//!    logical counter) — the customer's first payment stands;
//! 2. on equal stamps, the lexicographically smaller device id;
//! 3. on the same device (a device never closes an order twice, but a bug must still resolve
//!    deterministically), the smaller sequence number.
//!
//! Every other sale of the order is a loser: the device that recorded it journals a full
//! refund of it to its original tender (reason `order_close_conflict`) and every device
//! raises a manager alert naming the order, the winner and the losers. The inputs are journal
//! entries, so all devices reach the same verdict with no further messages.

/// A sale that closed an order, as the rule sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClosingSale {
    /// Device that recorded the sale.
    pub device_id: String,
    /// Journal sequence number of the sale on that device.
    pub seq: u64,
    /// HLC physical component of the sale entry, ms since the Unix epoch.
    pub hlc_physical_ms: u64,
    /// HLC logical counter of the sale entry.
    pub hlc_logical: u32,
}

impl ClosingSale {
    fn order_key(&self) -> (u64, u32, &str, u64) {
        (
            self.hlc_physical_ms,
            self.hlc_logical,
            self.device_id.as_str(),
            self.seq,
        )
    }
}

/// The winning sale of an order's closing sales (see the module docs), `None` when there are
/// none. The result does not depend on the order of `sales`.
pub fn close_winner(sales: &[ClosingSale]) -> Option<&ClosingSale> {
    sales
        .iter()
        .min_by(|a, b| a.order_key().cmp(&b.order_key()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sale(device: &str, seq: u64, ms: u64, logical: u32) -> ClosingSale {
        ClosingSale {
            device_id: device.to_owned(),
            seq,
            hlc_physical_ms: ms,
            hlc_logical: logical,
        }
    }

    #[test]
    fn earliest_stamp_then_device_then_seq() {
        let a = sale("till-2", 7, 1_000, 0);
        let b = sale("till-1", 9, 1_001, 0);
        assert_eq!(close_winner(&[b.clone(), a.clone()]), Some(&a));
        let c = sale("till-1", 9, 1_000, 0);
        assert_eq!(close_winner(&[a.clone(), c.clone()]), Some(&c));
        let d = sale("till-2", 3, 1_000, 0);
        assert_eq!(close_winner(&[a, d.clone()]), Some(&d));
        assert_eq!(close_winner(&[]), None);
    }

    proptest! {
        #[test]
        fn verdict_ignores_arrival_order(
            raw in proptest::collection::vec((0u8..3, 1u64..5, 0u64..4, 0u32..2), 1..6),
            rotate in 0usize..6,
        ) {
            let sales: Vec<ClosingSale> = raw
                .iter()
                .map(|(d, seq, ms, l)| sale(&format!("till-{d}"), *seq, *ms, *l))
                .collect();
            let mut shuffled = sales.clone();
            shuffled.rotate_left(rotate % sales.len());
            shuffled.reverse();
            prop_assert_eq!(close_winner(&sales), close_winner(&shuffled));
        }
    }
}
