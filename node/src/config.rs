//! Configuration of a device node: command-line flags, each also settable from the
//! environment (`POSMESH_…`), with defaults a single store device can run on.

use crate::ledger::business_date::{BusinessCalendar, CalendarError};
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use thiserror::Error;

/// Longest store or device id, characters (a DNS label: ids travel in certificates).
pub const ID_LEN_MAX: usize = 63;

/// `posmesh device` flags.
#[derive(Args, Clone, Debug)]
pub struct DeviceConfig {
    /// Directory of this device's database (created on first start).
    #[arg(long, env = "POSMESH_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Store id, e.g. `edinburgh-01` (lower-case letters, digits and `-`, at most 63; it is
    /// part of the device certificate's DNS name).
    #[arg(long, env = "POSMESH_STORE_ID")]
    pub store_id: String,
    /// Device id within the store, e.g. `till-1` (same alphabet). A replaced device gets a
    /// new id.
    #[arg(long, env = "POSMESH_DEVICE_ID")]
    pub device_id: String,
    /// Human name of the store, printed on receipts.
    #[arg(long, env = "POSMESH_STORE_NAME", default_value = "posmesh store")]
    pub store_name: String,
    /// Catalog file (TOML; prices in minor units). See `catalog/bakery.toml`.
    #[arg(long, env = "POSMESH_CATALOG")]
    pub catalog: PathBuf,
    /// Address of the local sales API for POS apps. Loopback by default; port 0 picks a
    /// free port (see `--ready-file`).
    #[arg(long, env = "POSMESH_API_LISTEN", default_value = "127.0.0.1:7070")]
    pub api_listen: SocketAddr,
    /// Address of the management API (`posmesh status`). Loopback by default.
    #[arg(long, env = "POSMESH_MGMT_LISTEN", default_value = "127.0.0.1:7071")]
    pub mgmt_listen: SocketAddr,
    /// IANA time zone of the store: business dates are local calendar days.
    #[arg(long, env = "POSMESH_TIME_ZONE", default_value = "Europe/London")]
    pub time_zone: String,
    /// Local hour (0–23) at which the business day starts; sales before it belong to the
    /// previous business date.
    #[arg(long, env = "POSMESH_BUSINESS_DAY_START_HOUR", default_value_t = 0)]
    pub business_day_start_hour: u8,
    /// Directory with this device's certificate (`node.pem`, `node.key`, `ca.pem`, and
    /// `crl.pem` if any) from `posmesh ca issue`. Without it the device runs alone: it
    /// takes sales, but joins no mesh.
    #[arg(long, env = "POSMESH_IDENTITY_DIR")]
    pub identity_dir: Option<PathBuf>,
    /// UDP address of the mesh endpoint (QUIC with mutual TLS; used with `--identity-dir`).
    #[arg(long, env = "POSMESH_MESH_LISTEN", default_value = "0.0.0.0:7072")]
    pub mesh_listen: SocketAddr,
    /// Static peers as `DEVICE@HOST:PORT` (repeat the flag, or comma-separate in the
    /// environment), for networks that block multicast.
    #[arg(long = "peer", env = "POSMESH_PEERS", value_delimiter = ',')]
    pub peers: Vec<crate::peers::StaticPeer>,
    /// Network interfaces on which mDNS announces and browses (repeat, or comma-separate).
    /// None: no mDNS (static peers only).
    #[arg(
        long = "mdns-interface",
        env = "POSMESH_MDNS_INTERFACES",
        value_delimiter = ','
    )]
    pub mdns_interfaces: Vec<String>,
    /// Make this device the first member of the store's Raft group if the group was never
    /// initialised here (the store's first device; others join as learners automatically
    /// once connected, and become voters while the store has fewer than 5); the new group
    /// follows the newest rules version from its first entry. Needs `--identity-dir` (Raft
    /// runs over the mesh).
    #[arg(long, env = "POSMESH_RAFT_BOOTSTRAP")]
    pub raft_bootstrap: bool,
    /// Once both APIs listen, write their addresses to this file as JSON
    /// (`{"api": "127.0.0.1:7070", "mgmt": "127.0.0.1:7071", "mesh": "0.0.0.0:7072" or null,
    /// "pid": 123}`).
    #[arg(long, env = "POSMESH_READY_FILE")]
    pub ready_file: Option<PathBuf>,
    /// Card payments: acquirer, terminal, offline limits, expiry rules, card secret.
    #[command(flatten)]
    pub payments: crate::payments::config::PaymentsConfig,
    /// UDP address of the chain's cloud (`posmesh cloud serve`): this device uploads what
    /// the cloud lacks of the store's ledger (every device's entries it holds) and brings
    /// the catalog published there into the store's Raft group. Needs `--identity-dir` (the
    /// device certificate is its identity at the cloud).
    #[arg(long, env = "POSMESH_CLOUD")]
    pub cloud: Option<SocketAddr>,
    /// Most entries per upload batch (must hold the journal writer's largest group commit;
    /// small values make tests interrupt uploads mid-way).
    #[arg(
        long,
        env = "POSMESH_CLOUD_BATCH_ENTRIES_MAX",
        default_value_t = 1_024,
        hide = true
    )]
    pub cloud_batch_entries_max: usize,
    /// Build a Raft snapshot after this many log entries since the last one (≥ 1). The
    /// default suits a store (a few days of decisions); a small value makes devices that
    /// join or come back late catch up from a snapshot sooner.
    #[arg(
        long,
        env = "POSMESH_RAFT_SNAPSHOT_EVERY_ENTRIES",
        default_value_t = posmesh_consensus::RaftTimings::STORE.snapshot_every_entries,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub raft_snapshot_every_entries: u64,
    /// Log entries already in a snapshot that are kept, so a device only a little behind
    /// catches up from the log rather than from a whole snapshot.
    #[arg(
        long,
        env = "POSMESH_RAFT_SNAPSHOT_KEEP_ENTRIES",
        default_value_t = posmesh_consensus::RaftTimings::STORE.keep_logs_in_snapshot
    )]
    pub raft_snapshot_keep_entries: u64,
}

/// A configuration value that cannot work.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// An id is not a DNS label of lower-case letters, digits and `-`.
    #[error("{what} {value:?} is invalid: {why} (use 1–63 lower-case letters, digits or '-', not starting or ending with '-')")]
    InvalidId {
        /// `store id` or `device id`.
        what: &'static str,
        /// The value given.
        value: String,
        /// The rule it breaks.
        why: String,
    },
    /// A flag that only works with another one.
    #[error("{flag} needs --identity-dir (the store mesh runs only with a device certificate)")]
    NeedsIdentity {
        /// The flag given.
        flag: &'static str,
    },
    /// An mDNS interface that does not exist on this host.
    #[error("--mdns-interface {0:?}: no such network interface on this host")]
    UnknownInterface(String),
    /// Time zone or business day start.
    #[error(transparent)]
    Calendar(#[from] CalendarError),
}

impl DeviceConfig {
    /// Checks the values that the flags' types do not, and builds the business calendar.
    pub fn validate(&self) -> Result<BusinessCalendar, ConfigError> {
        validate_id("store id", &self.store_id)?;
        validate_id("device id", &self.device_id)?;
        if self.identity_dir.is_none() {
            if !self.peers.is_empty() {
                return Err(ConfigError::NeedsIdentity { flag: "--peer" });
            }
            if self.cloud.is_some() {
                return Err(ConfigError::NeedsIdentity { flag: "--cloud" });
            }
            if !self.mdns_interfaces.is_empty() {
                return Err(ConfigError::NeedsIdentity {
                    flag: "--mdns-interface",
                });
            }
        }
        for interface in &self.mdns_interfaces {
            let known = std::path::Path::new("/sys/class/net")
                .join(interface)
                .exists();
            if !known || interface.contains('/') {
                return Err(ConfigError::UnknownInterface(interface.clone()));
            }
        }
        Ok(BusinessCalendar::new(
            &self.time_zone,
            self.business_day_start_hour,
        )?)
    }
}

/// Checks a store or device id: a DNS label of 1–[`ID_LEN_MAX`] lower-case letters,
/// digits and `-` (the same rule as the mesh's certificate identities, so a device that
/// starts alone can later join the mesh with the same id and data directory).
pub fn validate_id(what: &'static str, value: &str) -> Result<(), ConfigError> {
    posmesh_mesh::identity::validate_id(value).map_err(|e| ConfigError::InvalidId {
        what,
        value: value.to_owned(),
        why: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert!(validate_id("device id", "till-1").is_ok());
        assert!(validate_id("device id", "").is_err());
        assert!(validate_id("device id", "till/1").is_err());
        assert!(validate_id("device id", "till\u{0}1").is_err());
        assert!(validate_id("device id", &"x".repeat(64)).is_err());
        assert!(validate_id("device id", "Till-1").is_err());
        assert!(validate_id("device id", "till_1").is_err());
        assert!(validate_id("device id", "-till").is_err());
    }
}
