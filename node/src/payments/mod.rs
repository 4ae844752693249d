//! Card payments on a device: the node side of `posmesh_payments`.
//!
//! - [`config`]: the `posmesh device` payment flags (acquirer, terminal, offline limits,
//!   expiry rules, card secret).
//! - [`keys`]: the store card secret and the keys derived from it (key handling).
//! - [`card_tender`]: taking one card tender of a sale — online authorization (timeout →
//!   reversal → not approved), else offline within the limits, with the card data sealed
//!   outside the hash chain; a durable reversal record for every authorisation in flight,
//!   reversed after a crash ([`card_tender::run_pending_reversals`]).
//! - [`card_void`]: voiding a card sale — the acquirer reverses every card payment of the
//!   sale before the void is journaled (an offline payment once it is forwarded).
//! - [`qr_wallet`]: QR wallet tenders (EMV merchant-presented QR, simulated confirmation).
//! - [`forwarder`]: store-and-forward — the Raft leader forwards every queued offline
//!   payment of the store (0220, resends 0221) and journals the acquirer's answer;
//!   expiry alerts; card-data escrow requests.
//!
//! # Who forwards
//! Exactly one device forwards at a time: the store's Raft leader (a device without a mesh
//! forwards its own). Leadership is already the store's single-writer lease (openraft
//! leader lease), needs no extra Raft writes per payment, and moves on its own when the
//! leader dies; a forwarding lease committed through Raft would add a write per renewal for
//! the same effect. During a leader change two devices may briefly both send the same
//! advice: both carry the same STAN and RRN (derived from the payment), so the acquirer
//! takes it once and answers the repeat with the original answer; the acknowledgement is
//! journaled under an Idempotency-Key derived from the payment.

pub mod card_tender;
pub mod card_void;
pub mod config;
pub mod forwarder;
pub mod keys;
pub mod qr_wallet;

use config::PaymentsConfig;
use keys::StoreCardKeys;
use posmesh_domain::Currency;
use posmesh_payments::connector::{IsoTcpConnector, Terminal};
use posmesh_payments::offline_limits::OfflineLimits;
use std::sync::Arc;
use std::time::Duration;

/// The device's payment set-up, shared by the API and the forwarder.
#[derive(Debug)]
pub struct PaymentsService {
    /// The flags it was built from.
    pub config: PaymentsConfig,
    /// This device's card acceptor (terminal and merchant id).
    pub terminal: Terminal,
    /// The acquirer connection, if configured.
    pub connector: Option<IsoTcpConnector>,
    /// The store's card-data keys.
    pub keys: StoreCardKeys,
    /// The offline rules (currency = the catalog's).
    pub limits: OfflineLimits,
    /// Held from the offline decision until the payment is journaled, so two concurrent
    /// offline payments cannot both fit the same room.
    pub offline_lock: Arc<tokio::sync::Mutex<()>>,
    /// Open QR wallet payment requests.
    pub qr: std::sync::Mutex<qr_wallet::QrSessions>,
    /// Card payments (sealing ids) being authorised or reversed right now, and by whom
    /// ([`card_tender::InFlight`]).
    pub in_flight: card_tender::InFlightSet,
    /// Wakes [`card_tender::run_pending_reversals`] when a request leaves a reversal
    /// unanswered.
    pub reversal_wakeup: Arc<tokio::sync::Notify>,
}

impl PaymentsService {
    /// Builds the service for device `device_id` of `store_id`, counting in `currency`.
    ///
    /// # Errors
    /// A terminal or merchant id that does not fit ISO 8583 fields 41/42, non-positive
    /// limits, or an unreadable card secret file.
    pub fn new(
        config: &PaymentsConfig,
        store_id: &str,
        device_id: &str,
        currency: Currency,
    ) -> anyhow::Result<PaymentsService> {
        let terminal_id = match &config.terminal_id {
            Some(id) => id.clone(),
            None => {
                let start = device_id.len().saturating_sub(8);
                device_id[start..].to_owned()
            }
        };
        let terminal = Terminal::new(&terminal_id, &config.merchant_id)
            .map_err(|e| anyhow::anyhow!("--terminal-id / --merchant-id: {e}"))?;
        if config.offline_floor_limit_minor < 0 || config.offline_device_cap_minor < 0 {
            anyhow::bail!("offline limits must be >= 0 minor units");
        }
        let keys = StoreCardKeys::load(config.card_secret_file.as_deref(), store_id)?;
        if keys.lab {
            tracing::warn!("no --card-secret-file: card data is sealed under the LAB secret derived from the store id (not for production)");
        }
        let connector = config.acquirer.map(|addr| IsoTcpConnector {
            addr,
            terminal: terminal.clone(),
            timeout: Duration::from_millis(config.acquirer_timeout_ms),
        });
        Ok(PaymentsService {
            config: config.clone(),
            terminal,
            connector,
            keys,
            limits: OfflineLimits {
                currency,
                floor_limit_minor: config.offline_floor_limit_minor,
                device_cap_minor: config.offline_device_cap_minor,
                max_offline_age_secs: config.offline_max_age_secs,
            },
            offline_lock: Arc::new(tokio::sync::Mutex::new(())),
            qr: std::sync::Mutex::new(qr_wallet::QrSessions::default()),
            in_flight: card_tender::InFlightSet::default(),
            reversal_wakeup: Arc::new(tokio::sync::Notify::new()),
        })
    }
}

impl PaymentsService {
    /// The QR sessions (a poisoned lock is still usable: every change is one map update).
    pub fn lock_qr(&self) -> std::sync::MutexGuard<'_, qr_wallet::QrSessions> {
        self.qr.lock().unwrap_or_else(|p| p.into_inner())
    }
}
