//! The identity of a journal entry.

use std::fmt;

/// `(device, seq)`: names one entry of the store's ledger. Displayed as `device/seq`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SaleRef {
    /// Device that wrote the entry.
    pub device_id: String,
    /// Its sequence number on that device.
    pub seq: u64,
}

impl fmt::Display for SaleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.device_id, self.seq)
    }
}
