//! Store-and-forward: every [`PaymentsConfig::saf_interval_ms`](super::config::PaymentsConfig)
//! each device
//! - deletes sealed card data whose payment was acknowledged (a blob escrowed late);
//! - asks its peers for the card data of queued payments it lacks (peer escrow);
//! - raises an alert for each queued payment within the warning time of an expiry rule;
//! - if it is the forwarder (the Raft leader; a device without a mesh forwards its own),
//!   forwards queued payments in queue order: a 0220 advice, or a 0221 repeat (same STAN
//!   and RRN) when this device sent it before — the "sent" mark is written (synced) before
//!   the send, so a resend after a crash or a timeout is a repeat; it is taken back when
//!   the connection could not even be made (nothing left the device). The acquirer's answer is
//!   journaled as a `PaymentEvent` (`advice_accepted` / `advice_declined`) under an
//!   Idempotency-Key derived from the payment; that entry removes the payment from every
//!   device's queue and deletes its card data everywhere as it replicates. A decline after
//!   forwarding raises the `saf_declined` alert.
//! - if it is the forwarder but runs without `--acquirer`, nothing is forwarded: while the
//!   queue holds payments it raises [`SAF_FORWARDING_STALLED`] (subject: this device) and
//!   logs one WARN, and clears the alert once the condition ends (the queue empties,
//!   another device leads, or it was restarted with `--acquirer`).

use super::card_tender::{iso_datetime, sealing_id};
use crate::runtime::NodeContext;
use crate::storage::saf::{ADVICE_ACCEPTED, ADVICE_DECLINED};
use crate::storage::writer::{AppendCommand, Operation};
use posmesh_domain::{Currency, Money};
use posmesh_payments::card_data::SealedCardData;
use posmesh_payments::connector::{
    CardPayment, EntryMode, ForwardOutcome, PaymentConnector, PaymentRef, Terminal,
};
use posmesh_proto::journal::v1::PaymentEvent;
use posmesh_proto::storage::v1::{Alert, SafItem};
use sha2::Digest;
use std::sync::Arc;
use std::time::Duration;

/// Most queued payments looked at per tick.
pub const TICK_ITEMS_MAX: usize = 4096;
/// Most advices in flight at once.
pub const SENDS_IN_FLIGHT_MAX: usize = 8;
/// Most card-data digests asked of peers per housekeeping round.
pub const WANTED_MAX: usize = 256;
/// Advices marked "sent" with one synced write before they are sent.
pub const SEND_CHUNK_MAX: usize = 64;
/// Housekeeping (purge of acknowledged card data, escrow requests, expiry alerts) runs
/// every this many ticks: it reads every queued payment and every blob.
pub const HOUSEKEEPING_EVERY_TICKS: u64 = 10;

/// Alert kind: this device is the store's forwarder (the Raft leader, or a device without
/// a mesh) and its store-and-forward queue holds payments, but it runs without
/// `--acquirer`, so none is forwarded. Subject: this device.
pub const SAF_FORWARDING_STALLED: &str = "saf_forwarding_stalled";

/// Runs the store-and-forward loop until `stop`.
pub async fn run(node: Arc<NodeContext>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let interval = Duration::from_millis(node.payments.config.saf_interval_ms);
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks: u64 = 0;
    // Whether the stall alert is raised (`None`: not known yet, e.g. one left by an
    // earlier run of this device).
    let mut stalled: Option<bool> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        let housekeeping = ticks.is_multiple_of(HOUSEKEEPING_EVERY_TICKS);
        ticks += 1;
        if let Err(error) = tick_once(&node, housekeeping, &mut stalled).await {
            tracing::warn!(%error, "store-and-forward tick failed (will retry)");
        }
    }
}

/// Raises [`SAF_FORWARDING_STALLED`] (one WARN) when this device is the forwarder, runs
/// without an acquirer and `queued` payments wait; clears it when that ends. `stalled`:
/// whether the alert is up, as far as this run knows.
fn note_stall(node: &NodeContext, queued: usize, stalled: &mut Option<bool>) -> anyhow::Result<()> {
    let now = queued > 0 && node.payments.connector.is_none() && is_forwarder(node);
    let device = &node.identity.device_id;
    match (now, *stalled) {
        (true, Some(true)) | (false, Some(false)) => {}
        (true, _) => {
            let message = format!(
                "offline card payments wait to be forwarded ({queued} when raised), and this \
                 device ({device}), the store's forwarder (the Raft leader, or a device without \
                 a mesh), runs without --acquirer: none is forwarded. Restart it with \
                 --acquirer (every device of the store needs it: any may lead)"
            );
            tracing::warn!(queued, %device, "{message}");
            crate::runtime::raise_alert_now(&node.store, SAF_FORWARDING_STALLED, device, message);
            *stalled = Some(true);
        }
        (false, _) => {
            if node.store.clear_alert(SAF_FORWARDING_STALLED, device)? {
                tracing::info!(%device, "store-and-forward no longer stalled: alert cleared");
            }
            *stalled = Some(false);
        }
    }
    Ok(())
}

/// Whether this device forwards now.
fn is_forwarder(node: &NodeContext) -> bool {
    match &node.raft {
        Some(raft) => raft.status().role == "leader",
        None => true,
    }
}

async fn tick_once(
    node: &Arc<NodeContext>,
    housekeeping: bool,
    stalled: &mut Option<bool>,
) -> anyhow::Result<()> {
    let store = node.store.clone();
    let items = tokio::task::spawn_blocking(move || {
        if housekeeping {
            store.purge_acked_card_data()?;
        }
        store.saf_items(TICK_ITEMS_MAX)
    })
    .await??;
    metrics::gauge!("posmesh_saf_queue_payments").set(items.len() as f64);
    note_stall(node, items.len(), stalled)?;
    if items.is_empty() {
        return Ok(());
    }
    if housekeeping {
        let now_ms = i64::try_from(crate::clock::wall_clock_ms()).unwrap_or(i64::MAX);
        raise_expiry_alerts(node, &items, now_ms)?;
        let mut wanted = Vec::new();
        for item in &items {
            if wanted.len() < WANTED_MAX && node.store.card_data(&item.card_data_digest)?.is_none()
            {
                wanted.push(item.card_data_digest.clone());
            }
        }
        if let (Some(replication), false) = (&node.replication, wanted.is_empty()) {
            replication.want_card_data(wanted);
        }
    }
    let Some(connector) = node.payments.connector.clone() else {
        return Ok(());
    };
    if !is_forwarder(node) {
        return Ok(());
    }
    for chunk in items.chunks(SEND_CHUNK_MAX) {
        // One synced write marks the chunk "sent" before any of it is sent: a resend after
        // a crash or a timeout is then a 0221 repeat.
        let repeats = node.store.mark_saf_sent_all(chunk)?;
        let sent: Vec<(SafItem, bool)> = chunk.iter().cloned().zip(repeats).collect();
        if !forward_chunk(node, &connector, sent).await {
            break; // acquirer down: retry next tick
        }
    }
    Ok(())
}

/// Sends a chunk with at most [`SENDS_IN_FLIGHT_MAX`] in flight; `false` once the acquirer
/// stopped answering.
async fn forward_chunk(
    node: &Arc<NodeContext>,
    connector: &posmesh_payments::connector::IsoTcpConnector,
    chunk: Vec<(SafItem, bool)>,
) -> bool {
    let mut sends = tokio::task::JoinSet::new();
    let mut queue = chunk.into_iter();
    let mut failed = false;
    loop {
        while !failed && sends.len() < SENDS_IN_FLIGHT_MAX {
            let Some((item, repeat)) = queue.next() else {
                break;
            };
            let node = node.clone();
            let connector = connector.clone();
            sends.spawn(async move { forward_one(&node, connector, item, repeat).await });
        }
        let Some(done) = sends.join_next().await else {
            break;
        };
        match done {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => failed = true, // acquirer down: stop sending, retry next tick
            Ok(Err(error)) => {
                tracing::warn!(%error, "forwarding a payment failed");
                failed = true;
            }
            Err(error) => {
                tracing::warn!(%error, "forwarding task failed");
                failed = true;
            }
        }
    }
    !failed
}

/// Forwards one payment; `Ok(false)` when the acquirer did not answer (or the card data is
/// not here yet).
async fn forward_one(
    node: &NodeContext,
    mut connector: posmesh_payments::connector::IsoTcpConnector,
    item: SafItem,
    repeat: bool,
) -> anyhow::Result<bool> {
    let Some(sealed) = node.store.card_data(&item.card_data_digest)? else {
        tracing::debug!(payment = %payment_label(&item), "card data not here yet: asked of peers");
        return Ok(true);
    };
    let reference = PaymentRef {
        sale_id: item.payment_sale_id.clone(),
        tender_index: u16::try_from(item.tender_index).unwrap_or(u16::MAX),
        attempt: u16::try_from(item.payment_attempt).unwrap_or(u16::MAX),
    };
    let card = SealedCardData::from_bytes(sealed)
        .open(&node.payments.keys.forwarding_key, &sealing_id(&reference))
        .map_err(|e| anyhow::anyhow!("card data of {}: {e}", payment_label(&item)))?;
    let currency = Currency::from_code(&item.currency)
        .map_err(|e| anyhow::anyhow!("payment {}: {e}", payment_label(&item)))?;
    let payment = CardPayment {
        reference,
        card,
        amount: Money::new(item.amount_minor, currency),
        taken_at_utc: iso_datetime(item.taken_at_ms),
        taken_at_local: iso_datetime(item.taken_at_ms),
        entry_mode: EntryMode::Manual,
    };
    connector.terminal = Terminal::new(&item.terminal_id, &node.payments.config.merchant_id)
        .map_err(|e| anyhow::anyhow!("terminal of {}: {e}", payment_label(&item)))?;
    let outcome = connector.forward(&payment, repeat).await;
    let (kind, response_code, detail) = match outcome {
        ForwardOutcome::Accepted => (ADVICE_ACCEPTED, "00".to_owned(), String::new()),
        ForwardOutcome::Declined {
            response_code,
            reason,
        } => (ADVICE_DECLINED, response_code, reason.to_owned()),
        ForwardOutcome::Failed { cause } => {
            tracing::info!(payment = %payment_label(&item), %cause, "advice not answered: resent later as 0221");
            return Ok(false);
        }
        ForwardOutcome::NotSent { cause } => {
            if !repeat {
                // Never left this device: the next send is still a first 0220.
                node.store.unmark_saf_sent(&item)?;
            }
            tracing::info!(payment = %payment_label(&item), %cause, "acquirer unreachable: advice not sent");
            return Ok(false);
        }
    };
    metrics::counter!("posmesh_saf_forwarded_total", "answer" => kind).increment(1);
    let event = PaymentEvent {
        sale_device_id: item.device_id.clone(),
        sale_seq: item.seq,
        tender_index: item.tender_index,
        kind: kind.to_owned(),
        detail: detail.clone(),
        response_code: response_code.clone(),
        card_data_digest: item.card_data_digest.clone(),
    };
    let key = format!(
        "saf-ack:{}:{}:{}",
        item.device_id, item.seq, item.tender_index
    );
    let hash: [u8; 32] = sha2::Sha256::digest(key.as_bytes()).into();
    let (occurred_at_ms, business_date) = node
        .dated(None)
        .map_err(|e| anyhow::anyhow!("dating the acknowledgement: {}", e.message))?;
    node.writer
        .append(AppendCommand {
            idempotency_key: key,
            request_hash: hash,
            occurred_at_ms,
            business_date,
            catalog_version: 0,
            operator_id: String::new(),
            operation: Operation::Payment(event),
        })
        .await?;
    if kind == ADVICE_DECLINED {
        node.store.raise_alert(&Alert {
            kind: "saf_declined".into(),
            subject: format!("{}/{}#{}", item.device_id, item.seq, item.tender_index),
            message: format!(
                "offline card payment {} of {} {} (card {}) was declined after forwarding: {detail} (code {response_code}); collect the money another way",
                payment_label(&item),
                item.amount_minor,
                item.currency,
                item.masked_pan
            ),
            raised_at_ms: occurred_at_ms,
        })?;
    }
    Ok(true)
}

/// Raises `saf_expiry_<hours>h` for each payment within the warning time of a rule.
fn raise_expiry_alerts(node: &NodeContext, items: &[SafItem], now_ms: i64) -> anyhow::Result<()> {
    let config = &node.payments.config;
    let warn_ms =
        i64::try_from(config.saf_expiry_warn_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    for item in items {
        let age_ms = now_ms.saturating_sub(item.taken_at_ms);
        for hours in &config.saf_expiry_hours {
            let rule_ms = i64::try_from(hours.saturating_mul(3_600_000)).unwrap_or(i64::MAX);
            if age_ms >= rule_ms.saturating_sub(warn_ms) {
                let left_mins = rule_ms.saturating_sub(age_ms) / 60_000;
                node.store.raise_alert(&Alert {
                    kind: format!("saf_expiry_{hours}h"),
                    subject: payment_label(item),
                    message: format!(
                        "offline card payment {} ({} {}, card {}) is not forwarded yet and reaches its {hours} h expiry in {left_mins} minutes; restore the acquirer connection",
                        payment_label(item),
                        item.amount_minor,
                        item.currency,
                        item.masked_pan
                    ),
                    raised_at_ms: now_ms,
                })?;
            }
        }
    }
    Ok(())
}

fn payment_label(item: &SafItem) -> String {
    format!("{}/{}#{}", item.device_id, item.seq, item.tender_index)
}
