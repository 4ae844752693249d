//! The sales ledger as the node sees it: naming entries, mapping domain values to journal
//! messages, and dating them.
//!
//! - [`sale_ref`]: `(device, seq)`, the identity of a journal entry.
//! - [`convert`]: domain [`PricedSale`](posmesh_domain::PricedSale) ⇄ journal `Sale`, refunds.
//! - [`business_date`]: the store's business date of an instant.

pub mod business_date;
pub mod convert;
pub mod sale_ref;
