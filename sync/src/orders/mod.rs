//! Shared orders (open tabs, parked carts) as Automerge documents, edited on any device of
//! the store and merged without coordination.
//!
//! An order is a JSON-like CRDT document (Kleppmann & Beresford, "A Conflict-Free Replicated
//! JSON Datatype", 2017, as implemented by [automerge]): lines keyed by a line id that is
//! unique to the device that added it (so concurrent additions both survive), quantities,
//! table and customer as registers (concurrent sets resolve the same way everywhere,
//! Automerge's rule: the operation with the higher Lamport timestamp, then the higher actor id,
//! wins), removal by deleting the line's key (a removal concurrent with a quantity change
//! removes the line).
//!
//! Devices exchange documents with Automerge's sync protocol (Bloom-filter based, one session
//! per peer and order) in [`OrderBook`], a sans-IO state machine like the ledger's
//! [`crate::replication::Replicator`]: the driver passes edits, messages and time in and
//! carries out what [`OrderBook::poll_transmit`] and [`OrderBook::poll_event`] return.
//!
//! Actor ids are explicit, never random: [`order_actor`] derives them from the device id,
//! its incarnation and a session number the node raises (durably) at every start, so a
//! device that lost unsynced edits in a crash never reuses an (actor, sequence) pair.
//!
//! Closing an order is a ledger fact, not a document fact: the closing device records one
//! sale carrying the order id in its journal. Two devices that close the same order while
//! partitioned both record a sale; [`close_rule`] picks the winner the same way on every
//! device once both sales have replicated, and the loser's device compensates (a journaled
//! refund) and raises a manager alert.
//!
//! # Layout
//! - [`order_doc`] — [`OrderDoc`]: the document schema, edits and the typed [`OrderView`].
//! - [`order_book`] — [`OrderBook`]: all orders of a node and their sync sessions.
//! - [`actor`] — [`order_actor`].
//! - [`close_rule`] — the deterministic winner of a close conflict.
//! - [`order_id`] — [`validate_order_id`] and the id derivations.

pub mod actor;
pub mod close_rule;
pub mod order_book;
pub mod order_doc;
pub mod order_id;

pub use actor::order_actor;
pub use close_rule::{close_winner, ClosingSale};
pub use order_book::{OrderBook, OrderBookConfig, OrderEvent, OrderSyncStats};
pub use order_doc::{OrderDoc, OrderEdit, OrderError, OrderLine, OrderView, ORDER_QUANTITY_MAX};
pub use order_id::{validate_order_id, ORDER_ID_LEN_MAX};

#[cfg(test)]
mod tests;
