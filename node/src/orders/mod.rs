//! Shared orders (open tabs) on a device node: the tokio driver of the sans-IO
//! [`posmesh_sync::orders::OrderBook`], their storage, and close conflicts.
//!
//! - [`service`]: [`OrdersService`] — edits from the API (durable before answered), Automerge
//!   sync with peers over the mesh's `Sync` streams, persistence in chunks with compaction,
//!   load on start.
//! - [`close_conflicts`]: an order closed on two partitioned devices — the deterministic
//!   winner, the manager alert, and the loser's compensating refund.

pub mod close_conflicts;
pub mod service;

pub use service::{OrderSyncSink, OrdersError, OrdersService};
