//! The name of a connected peer.

use std::fmt;

/// Identifies a peer connection to the [`Replicator`](super::Replicator): on a node, the
/// peer's device id (or `cloud`) from its mTLS certificate; in the simulator, the simulated
/// node's name. The replicator only compares and orders them.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerId(pub String);

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for PeerId {
    fn from(name: &str) -> Self {
        PeerId(name.to_owned())
    }
}
