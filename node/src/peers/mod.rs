//! The node's side of the store mesh: one QUIC endpoint, the peer table, and the tasks that
//! dial, accept, keep one connection per peer and measure round trips.
//!
//! - [`manager`]: [`PeerManager`] — the driver (tokio); the rules it follows (peer table,
//!   backoff, simultaneous-dial tie-break) are the mesh crate's pure state machines.
//! - [`static_peer`]: `DEVICE@HOST:PORT` addresses from the configuration.
//! - [`retired_gate`]: devices retired from the store are refused at the mesh.

pub mod manager;
pub mod retired_gate;
pub mod static_peer;

pub use manager::{ConnectionObserver, PeerManager};
pub use retired_gate::RetiredGate;
pub use static_peer::StaticPeer;
