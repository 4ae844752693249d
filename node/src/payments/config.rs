//! Payment flags of `posmesh device` (each also settable from the environment).

use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Card payment configuration of a device.
///
/// Without `--acquirer` the device has no acquirer to call: every card tender that carries
/// card data is decided offline (within the offline limits), and forwarded once an
/// acquirer is configured. A card tender *without* card data is a payment taken on an
/// external (standalone) terminal and is recorded as given.
#[derive(Args, Clone, Debug)]
pub struct PaymentsConfig {
    /// The acquirer (or `posmesh-acquirer` simulator): ISO 8583:1987 over TCP. Give it to
    /// every device of a store: the Raft leader forwards the offline payments, and a leader
    /// without it forwards none (alert `saf_forwarding_stalled`).
    #[arg(long, env = "POSMESH_ACQUIRER")]
    pub acquirer: Option<SocketAddr>,
    /// Card acceptor terminal id, ISO 8583 field 41 (at most 8 printable characters).
    /// Default: derived from the device id (its last 8 characters).
    #[arg(long, env = "POSMESH_TERMINAL_ID")]
    pub terminal_id: Option<String>,
    /// Card acceptor (merchant) id, ISO 8583 field 42 (at most 15 printable characters).
    #[arg(long, env = "POSMESH_MERCHANT_ID", default_value = "POSMESH-STORE")]
    pub merchant_id: String,
    /// Bound on one exchange with the acquirer (connect + send + answer), ms. An
    /// authorization not answered in time is reversed and the payment is not approved.
    #[arg(long, env = "POSMESH_ACQUIRER_TIMEOUT_MS", default_value_t = 3000,
          value_parser = clap::value_parser!(u64).range(50..=60_000))]
    pub acquirer_timeout_ms: u64,
    /// Offline floor limit: the largest card payment taken without the acquirer, minor
    /// units of the catalog's currency.
    #[arg(
        long,
        env = "POSMESH_OFFLINE_FLOOR_LIMIT_MINOR",
        default_value_t = 5000
    )]
    pub offline_floor_limit_minor: i64,
    /// Per-device cap on unforwarded offline card payments, minor units.
    #[arg(
        long,
        env = "POSMESH_OFFLINE_DEVICE_CAP_MINOR",
        default_value_t = 50_000
    )]
    pub offline_device_cap_minor: i64,
    /// Maximum offline age: once the device's oldest unforwarded payment is older than
    /// this, it takes no more offline card payments, seconds.
    #[arg(long, env = "POSMESH_OFFLINE_MAX_AGE_SECS", default_value_t = 12 * 3600)]
    pub offline_max_age_secs: u64,
    /// Expiry rules of unforwarded offline payments, hours (repeat or comma-separate, e.g.
    /// `24,72`): an acquirer refuses an advice older than its rule. For each rule an alert
    /// `saf_expiry_<hours>h` is raised once a payment is within `--saf-expiry-warn-secs`
    /// of it.
    #[arg(long = "saf-expiry-hours", env = "POSMESH_SAF_EXPIRY_HOURS",
          value_delimiter = ',', default_values_t = [24u64, 72])]
    pub saf_expiry_hours: Vec<u64>,
    /// How long before an expiry rule the alert is raised, seconds.
    #[arg(long, env = "POSMESH_SAF_EXPIRY_WARN_SECS", default_value_t = 4 * 3600)]
    pub saf_expiry_warn_secs: u64,
    /// Store-and-forward tick: how often the forwarder looks at the queue, ms.
    #[arg(long, env = "POSMESH_SAF_INTERVAL_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(50..=600_000))]
    pub saf_interval_ms: u64,
    /// File holding the store's card-data secret (64 hex characters = 32 bytes), the same
    /// on every device of the store. Without it a lab secret derived from the store id is
    /// used (NOT for production: see `posmesh_node::payments::keys`).
    #[arg(long, env = "POSMESH_CARD_SECRET_FILE")]
    pub card_secret_file: Option<PathBuf>,
}
