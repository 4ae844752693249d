//! The node's side of the store mesh: one QUIC endpoint, the peer table, and the tasks that
//! dial, accept, keep one connection per peer and measure round trips.
//!
//! - [`manager`]: [`PeerManager`] — the driver (tokio); the rules it follows (peer table,
//!   backoff, simultaneous-dial tie-break) are the mesh crate's pure state machines.
//! - [`static_peer`]: `DEVICE@HOST:PORT` addresses from the configuration.

pub mod manager;
pub mod static_peer;

pub use manager::{ConnectionObserver, PeerManager};
pub use static_peer::StaticPeer;
