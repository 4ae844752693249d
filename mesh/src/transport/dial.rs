//! [`keep_connection`]: one connection per peer pair when two devices dial each other at
//! once.

/// Which way a connection was set up, seen from the local node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DialDirection {
    /// We dialed.
    Outgoing,
    /// The peer dialed us.
    Incoming,
}

/// Whether to keep a connection between `local_device` and `remote_device` when a second
/// one exists: the connection dialed by the lexically smaller device id wins, so both ends
/// keep the same one without talking. Equal ids (a node talking to itself) keep none.
///
/// Compare ids of the same namespace: within a store, device ids; across roles pass
/// [`crate::identity::PeerIdentity::to_dns_name`] on both sides.
pub fn keep_connection(local_device: &str, remote_device: &str, direction: DialDirection) -> bool {
    match direction {
        DialDirection::Outgoing => local_device < remote_device,
        DialDirection::Incoming => remote_device < local_device,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn smaller_dialer_wins() {
        assert!(keep_connection("a", "b", DialDirection::Outgoing));
        assert!(!keep_connection("a", "b", DialDirection::Incoming));
        assert!(!keep_connection("b", "a", DialDirection::Outgoing));
        assert!(keep_connection("b", "a", DialDirection::Incoming));
        assert!(!keep_connection("a", "a", DialDirection::Outgoing));
        assert!(!keep_connection("a", "a", DialDirection::Incoming));
    }

    proptest! {
        /// Both ends of a simultaneous dial keep the same connection, exactly one.
        #[test]
        fn both_ends_agree(x in "[a-z0-9-]{1,12}", y in "[a-z0-9-]{1,12}") {
            prop_assume!(x != y);
            // Connection 1: x dialed y. Connection 2: y dialed x.
            let c1_at_x = keep_connection(&x, &y, DialDirection::Outgoing);
            let c1_at_y = keep_connection(&y, &x, DialDirection::Incoming);
            let c2_at_x = keep_connection(&x, &y, DialDirection::Incoming);
            let c2_at_y = keep_connection(&y, &x, DialDirection::Outgoing);
            prop_assert_eq!(c1_at_x, c1_at_y);
            prop_assert_eq!(c2_at_x, c2_at_y);
            prop_assert!(c1_at_x ^ c2_at_x);
        }
    }
}
