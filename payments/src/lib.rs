//! posmesh payments: card authorization against an acquirer over ISO 8583, the acquirer
//! simulator, offline acceptance limits and card-data handling (issue 7, core only: the
//! node wiring — journal entries, store-and-forward queue, peer escrow — comes later).
//!
//! # Layout
//! - [`iso8583`] — sans-IO ISO 8583:1987 codec and TCP framing (2-byte length prefix).
//! - [`currency_numeric`] — ISO 4217 numeric codes (field 49) for the domain's currencies.
//! - [`connector`] — the [`connector::PaymentConnector`] trait, the sans-IO message
//!   builders (deterministic STAN/RRN, reversals, advices) and the ISO 8583 TCP connector.
//! - [`acquirer`] — the acquirer simulator: its decision core and its TCP server
//!   (`posmesh-acquirer` binary).
//! - [`offline_limits`] — the pure decision whether an offline card payment may be taken.
//! - [`emv_qr`] — EMV merchant-presented QR payloads (TLV, amount, CRC-16/CCITT-FALSE).
//! - [`card_data`] — masked PAN, keyed token (HMAC-SHA256), AES-256-GCM sealed card data.

pub mod acquirer;
pub mod card_data;
pub mod connector;
pub mod currency_numeric;
pub mod emv_qr;
pub mod iso8583;
pub mod offline_limits;
