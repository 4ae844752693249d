//! Ledger cuts: where a revoked or retired device's journal ends for the store.
//!
//! A revocation ([`StoreCommand::RevokeCertificate`](crate::StoreCommand)) or a retirement
//! ([`StoreCommand::RetireDevice`](crate::StoreCommand)) is enforced per connection at
//! the mesh and the cloud; but a device's journal entries travel through every other
//! device (anti-entropy relays them) and every uplink. Entries carry no Raft index, so
//! "never retroactive" needs a position in the device's own chain: the cut, the highest
//! sequence number of the device the leader's ledger held when it proposed the command
//! (its version-vector component). Every ledger ingest (replication on each device) and
//! the cloud's ingest keep the device's entries `1 ..= up_to_seq` and refuse those beyond
//! it, changing nothing. Entries the device made before the command but that had not
//! reached the leader are beyond the cut: refused too (they stay in the device's own data
//! directory, and on a device that took them before it knew the cut).
//!
//! The first cut of a device is kept: a later revocation of another certificate of the
//! same device, or a retirement after a revocation, never moves it (replicas that already
//! refused entries beyond it must not start accepting them). The cut is per device id, so
//! a device is enrolled again under a new id (a new data directory: a new journal and
//! key), as a retired or wiped till already is; under its old id, with a new certificate,
//! every entry it makes is beyond the cut.

use serde::{Deserialize, Serialize};

/// A cut as proposed in a command: the device and the last sequence number of its journal
/// the store keeps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerCut {
    /// The device whose journal is cut (for a revocation, the id in the certificate).
    pub device_id: String,
    /// The last kept sequence number (0: none of its entries is kept).
    pub up_to_seq: u64,
}

/// A cut as applied in [`crate::StoreState::ledger_cuts`] (keyed by device id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceCut {
    /// The last kept sequence number of the device's journal.
    pub up_to_seq: u64,
    /// Log index of the command that set it.
    pub cut_at_index: u64,
}
