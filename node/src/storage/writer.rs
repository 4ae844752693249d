//! The journal writer: the one thread that appends to the local device's journal, with
//! group commit.
//!
//! Requests from all API handlers queue on a bounded channel. The writer takes the first
//! waiting request, then every other one already queued (up to [`BATCH_ENTRIES_MAX`]),
//! checks each against the journal and the requests before it in the same group
//! (Idempotency-Keys, void and refund rules), assigns gap-free sequence and receipt numbers,
//! links the hash chain, and writes the whole group as one RocksDB `WriteBatch` with a synced
//! WAL. Only after that fsync returns does any request in the group get its answer, so an
//! acknowledged entry is on disk (DESIGN guarantee 1), and concurrent sales share one fsync.
//! A request refused by a check writes nothing and leaves the counters untouched; if the
//! write itself fails, every request of the group is refused and the in-memory head is left
//! as it was, so numbering stays gap-free (guarantee 5).

use super::keys::{
    self, CF_CHAIN_HEADS, CF_DEVICE_META, CF_IDEMPOTENCY, CF_JOURNAL, CF_ORDER_SALES,
    CF_SALE_STATUS,
};
use super::{JournalStore, StorageError};
use crate::clock;
use crate::ledger::convert;
use crate::ledger::sale_ref::SaleRef;
use posmesh_domain::{price_refund, PricedSale, RefundRequest, SaleError};
use posmesh_proto::journal::v1::{
    journal_entry::Payload, ChainHeadSignature, Hlc, JournalEntry, PaymentEvent, Tender, Void,
};
use posmesh_proto::storage::v1::{IdempotencyRecord, LocalHead, LocalIdentity, SaleStatus};
use posmesh_sync::chain::{self, ChainHash};
use posmesh_sync::chain_head::ChainHead;
use posmesh_sync::hlc::{HlcTimestamp, HybridLogicalClock};
use prost::Message;
use rocksdb::WriteBatch;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot, watch};

/// Most requests committed by one group (one WriteBatch, one fsync).
pub const BATCH_ENTRIES_MAX: usize = 512;
/// Most requests waiting for the writer; further callers wait for room (backpressure).
pub const QUEUE_DEPTH_MAX: usize = 4096;
/// Group commit delay: when a group already has at least [`COMMIT_SIBLINGS_MIN`] requests
/// (the writer is under concurrent load), wait this long for more before the fsync, so
/// more sales share it (PostgreSQL's `commit_delay` / `commit_siblings`). A lone request
/// never waits.
pub const COMMIT_DELAY: std::time::Duration = std::time::Duration::from_micros(200);
/// Requests already in a group before [`COMMIT_DELAY`] applies.
pub const COMMIT_SIBLINGS_MIN: usize = 8;

/// What the caller wants appended.
#[derive(Clone, Debug)]
pub enum Operation {
    /// A new sale, already priced and validated by the domain.
    Sale(Box<PricedSale>),
    /// A refund of lines of an earlier sale.
    Refund {
        /// The sale refunded.
        original: SaleRef,
        /// Lines and quantities to refund, and the refund tender.
        request: RefundRequest,
        /// Free-text reason (e.g. "damaged").
        reason: String,
    },
    /// A sale that closes the shared order `order_id` (priced from the order's lines).
    /// Refused when the order already has a closing sale this node knows of.
    CloseOrder {
        /// The order closed.
        order_id: String,
        /// The sale, priced and validated by the domain.
        sale: Box<PricedSale>,
    },
    /// Cancels an earlier sale in full.
    Void {
        /// The sale voided.
        original: SaleRef,
        /// Free-text reason.
        reason: String,
    },
    /// A sale paid (partly) by card: the priced sale and, per card tender, the card fields
    /// the journal records (masked PAN, token, trace numbers, offline flag and card-data
    /// digest — never the clear PAN).
    CardSale {
        /// The sale, priced and validated by the domain.
        sale: Box<PricedSale>,
        /// Card fields by tender index (kind, amount and change come from the sale).
        cards: Vec<(usize, Tender)>,
    },
    /// A payment lifecycle event (the acquirer's answer to a store-and-forward advice).
    /// Prints no receipt.
    Payment(PaymentEvent),
}

/// One request to the writer.
#[derive(Clone, Debug)]
pub struct AppendCommand {
    /// The client's Idempotency-Key (validated by the API).
    pub idempotency_key: String,
    /// SHA-256 of the operation name and its canonical request: the same key with another
    /// hash is a conflict.
    pub request_hash: [u8; 32],
    /// When the event happened at the till, ms since the Unix epoch.
    pub occurred_at_ms: i64,
    /// Business date in the store's time zone, "YYYY-MM-DD".
    pub business_date: String,
    /// Catalog version used for pricing (0 for voids).
    pub catalog_version: u64,
    /// Operator ("" until operators exist).
    pub operator_id: String,
    /// What to append.
    pub operation: Operation,
}

/// A committed entry, as answered to the caller.
#[derive(Clone, Debug)]
pub struct Committed {
    /// The entry as stored.
    pub entry: JournalEntry,
    /// Its chain hash.
    pub chain_hash: ChainHash,
    /// True when the Idempotency-Key had been used with the same request before, and this is
    /// the original entry again.
    pub replayed: bool,
}

/// Why an append was refused. Nothing was written.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AppendError {
    /// The Idempotency-Key was used before with a different request.
    #[error("Idempotency-Key {key:?} was already used with a different request")]
    IdempotencyConflict {
        /// The key.
        key: String,
    },
    /// The referenced sale is not in the journal.
    #[error("sale {0} not found")]
    UnknownSale(SaleRef),
    /// The referenced entry is not a sale (e.g. a refund).
    #[error("entry {0} is not a sale")]
    NotASale(SaleRef),
    /// The sale was voided already.
    #[error("sale {0} is voided")]
    SaleVoided(SaleRef),
    /// The sale has refunds, so it cannot be voided (refund the rest instead).
    #[error("sale {0} has refunds and cannot be voided; refund the remaining lines instead")]
    SaleHasRefunds(SaleRef),
    /// The order was closed already (by this device or one whose sale replicated here).
    #[error("order {order_id} was already closed by sale {by}")]
    OrderClosed {
        /// The order.
        order_id: String,
        /// Its closing sale.
        by: SaleRef,
    },
    /// The refund breaks a domain rule (e.g. more than the original).
    #[error(transparent)]
    Refund(#[from] SaleError),
    /// The write failed (disk full, I/O error): retry later with the same key.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The writer has stopped (node shutting down).
    #[error("the journal writer has stopped")]
    WriterStopped,
}

/// Counters of the writer, read by the management API and benchmarks.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Groups committed (= synced WAL writes).
    pub group_commits: AtomicU64,
    /// Entries appended.
    pub entries_appended: AtomicU64,
}

/// Handle to the writer thread; cheap to clone.
#[derive(Clone)]
pub struct JournalWriter {
    tx: mpsc::Sender<Pending>,
    stats: Arc<WriterStats>,
    commits: watch::Receiver<u64>,
}

/// Where the answer to one request goes.
type Reply = oneshot::Sender<Result<Committed, AppendError>>;

struct Pending {
    command: AppendCommand,
    reply: Reply,
}

impl JournalWriter {
    /// Starts the writer thread for the local device's journal in `store`.
    pub fn spawn(
        store: Arc<JournalStore>,
        identity: LocalIdentity,
    ) -> Result<(Self, std::thread::JoinHandle<()>), StorageError> {
        let head = store.head()?;
        let signing_key = store.signing_key()?;
        let mut clock = HybridLogicalClock::new();
        clock.observe(HlcTimestamp {
            physical_ms: head.hlc_physical_ms,
            logical: head.hlc_logical,
        });
        let stats = Arc::new(WriterStats::default());
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH_MAX);
        let (commits_tx, commits) = watch::channel(head.last_seq);
        let mut state = WriterState {
            store,
            identity,
            signing_key,
            head,
            clock,
            stats: stats.clone(),
            commits: commits_tx,
        };
        let handle = std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || state.run(rx))
            .map_err(StorageError::Io)?;
        Ok((Self { tx, stats, commits }, handle))
    }

    /// Appends one entry and waits until it is durable (or refused).
    pub async fn append(&self, command: AppendCommand) -> Result<Committed, AppendError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Pending { command, reply })
            .await
            .map_err(|_| AppendError::WriterStopped)?;
        answer.await.map_err(|_| AppendError::WriterStopped)?
    }

    /// The writer's counters.
    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// The last durable seq of the local journal; changes after every successful group
    /// commit (once its fsync returned), so replication can push new entries at once.
    pub fn subscribe_commits(&self) -> watch::Receiver<u64> {
        self.commits.clone()
    }
}

struct WriterState {
    store: Arc<JournalStore>,
    identity: LocalIdentity,
    signing_key: ed25519_dalek::SigningKey,
    head: LocalHead,
    clock: HybridLogicalClock,
    stats: Arc<WriterStats>,
    /// Told the last durable seq after every successful group commit.
    commits: watch::Sender<u64>,
}

/// What the checks decided for one request of a group.
enum Decision {
    /// Answer with this committed entry once the group's write succeeds.
    Append(Box<Committed>),
    /// The key was used before with the same request: answer the original entry.
    Replay(Box<Committed>),
}

/// Changes made by earlier requests of the same group, seen by later ones.
#[derive(Default)]
struct GroupOverlay {
    idempotency: HashMap<String, IdempotencyRecord>,
    statuses: HashMap<SaleRef, SaleStatus>,
    entries: HashMap<u64, Committed>,
    /// Orders closed by this group, with their closing sale's seq.
    closed_orders: HashMap<String, u64>,
}

impl WriterState {
    fn run(&mut self, mut rx: mpsc::Receiver<Pending>) {
        while let Some(first) = rx.blocking_recv() {
            let mut group = vec![first];
            drain_into(&mut rx, &mut group);
            if group.len() >= COMMIT_SIBLINGS_MIN && group.len() < BATCH_ENTRIES_MAX {
                std::thread::sleep(COMMIT_DELAY);
                drain_into(&mut rx, &mut group);
            }
            self.commit_group(group);
        }
    }

    fn commit_group(&mut self, group: Vec<Pending>) {
        let store = self.store.clone();
        let _derived = store.lock_derived_records();
        let mut batch = WriteBatch::default();
        let mut overlay = GroupOverlay::default();
        let mut head = self.head.clone();
        let mut clock = self.clock.clone();
        let wall_ms = clock::wall_clock_ms();
        let mut decisions = Vec::with_capacity(group.len());
        for pending in group {
            let decision = self.decide(
                &pending.command,
                &mut head,
                &mut clock,
                wall_ms,
                &mut overlay,
                &mut batch,
            );
            decisions.push((pending.reply, decision));
        }
        let appended = head.last_seq - self.head.last_seq;
        if appended > 0 {
            batch.put_cf(
                self.store.cf(CF_DEVICE_META),
                keys::META_HEAD,
                head.encode_to_vec(),
            );
            let signed = self.sign_head(&head);
            batch.put_cf(
                self.store.cf(CF_CHAIN_HEADS),
                keys::entry_key(&self.identity.device_id, head.last_seq),
                signed.encode_to_vec(),
            );
            let started = clock::monotonic_now();
            let written = self.store.write_synced(batch);
            metrics::histogram!("posmesh_journal_fsync_seconds").record(started.elapsed());
            if let Err(error) = written {
                tracing::error!(%error, entries = appended, "journal group commit failed");
                metrics::counter!("posmesh_journal_write_failures_total").increment(1);
                answer_all_failed(decisions, &error);
                return;
            }
            self.stats.group_commits.fetch_add(1, Ordering::Relaxed);
            self.stats
                .entries_appended
                .fetch_add(appended, Ordering::Relaxed);
            metrics::counter!("posmesh_journal_entries_appended_total").increment(appended);
            metrics::histogram!("posmesh_journal_group_entries").record(appended as f64);
            self.commits.send_replace(head.last_seq);
        }
        assert!(
            head.last_seq >= self.head.last_seq
                && head.last_receipt_no >= self.head.last_receipt_no
        );
        self.head = head;
        self.clock = clock;
        for (reply, decision) in decisions {
            let answer = decision.map(|d| match d {
                Decision::Append(committed) => *committed,
                Decision::Replay(committed) => *committed,
            });
            // The caller may have gone away (client disconnected): the entry stays committed.
            let _ = reply.send(answer);
        }
    }

    /// The Ed25519 signature of the group's new head: one per batch covers every entry of
    /// it through the hash chain.
    fn sign_head(&self, head: &LocalHead) -> ChainHeadSignature {
        let chain_hash: ChainHash = head.head_hash.as_slice().try_into().unwrap_or_else(|_| {
            panic!(
                "journal head hash has {} bytes, not 32",
                head.head_hash.len()
            )
        });
        let chain_head = ChainHead {
            store_id: self.identity.store_id.clone(),
            device_id: self.identity.device_id.clone(),
            device_incarnation: self.identity.device_incarnation,
            seq: head.last_seq,
            chain_hash,
        };
        ChainHeadSignature {
            device_id: chain_head.device_id.clone(),
            device_incarnation: chain_head.device_incarnation,
            seq: chain_head.seq,
            chain_hash: chain_hash.to_vec(),
            signature: chain_head.sign(&self.signing_key).to_vec(),
        }
    }

    fn decide(
        &self,
        command: &AppendCommand,
        head: &mut LocalHead,
        clock: &mut HybridLogicalClock,
        wall_ms: u64,
        overlay: &mut GroupOverlay,
        batch: &mut WriteBatch,
    ) -> Result<Decision, AppendError> {
        if let Some(record) = self.used_key(&command.idempotency_key, overlay)? {
            if record.request_hash != command.request_hash {
                return Err(AppendError::IdempotencyConflict {
                    key: command.idempotency_key.clone(),
                });
            }
            return self.replay(&record, overlay);
        }
        let (payload, status_change) = self.payload_for(&command.operation, overlay)?;
        let entry = self.append_entry(command, payload, head, clock, wall_ms, batch);
        super::saf::index_entry(&self.store, &entry.entry, batch)?;
        let seq = entry.entry.seq;
        if let Operation::CloseOrder { order_id, .. } = &command.operation {
            let hlc = entry.entry.hlc.unwrap_or_default();
            batch.put_cf(
                self.store.cf(CF_ORDER_SALES),
                keys::order_sale_key(order_id, &self.identity.device_id, seq),
                keys::order_sale_value(hlc.physical_ms, hlc.logical),
            );
            overlay.closed_orders.insert(order_id.clone(), seq);
        }
        if let Some((sale, mut status)) = status_change {
            match &command.operation {
                Operation::Void { .. } => {
                    status.voided_by_device_id = self.identity.device_id.clone();
                    status.voided_by_seq = seq;
                }
                Operation::Refund { .. } => {
                    status
                        .refunds
                        .push(format!("{}/{seq}", self.identity.device_id));
                }
                Operation::Sale(_)
                | Operation::CloseOrder { .. }
                | Operation::CardSale { .. }
                | Operation::Payment(_) => {}
            }
            batch.put_cf(
                self.store.cf(CF_SALE_STATUS),
                keys::entry_key(&sale.device_id, sale.seq),
                status.encode_to_vec(),
            );
            overlay.statuses.insert(sale, status);
        }
        let record = IdempotencyRecord {
            request_hash: command.request_hash.to_vec(),
            device_id: self.identity.device_id.clone(),
            seq,
        };
        batch.put_cf(
            self.store.cf(CF_IDEMPOTENCY),
            command.idempotency_key.as_bytes(),
            record.encode_to_vec(),
        );
        overlay
            .idempotency
            .insert(command.idempotency_key.clone(), record);
        overlay.entries.insert(seq, entry.clone());
        Ok(Decision::Append(Box::new(entry)))
    }

    /// Assigns the next seq (and receipt number), links the chain and adds the entry to the
    /// batch.
    fn append_entry(
        &self,
        command: &AppendCommand,
        payload: Payload,
        head: &mut LocalHead,
        clock: &mut HybridLogicalClock,
        wall_ms: u64,
        batch: &mut WriteBatch,
    ) -> Committed {
        let seq = head.last_seq + 1;
        // Sales, refunds and voids all print a receipt; payment events do not.
        let receipt_no = if matches!(payload, Payload::Payment(_)) {
            0
        } else {
            head.last_receipt_no + 1
        };
        let hlc = clock.tick(wall_ms);
        let mut entry = JournalEntry {
            store_id: self.identity.store_id.clone(),
            device_id: self.identity.device_id.clone(),
            device_incarnation: self.identity.device_incarnation,
            seq,
            receipt_no,
            prev_hash: Vec::new(),
            hlc: Some(Hlc {
                physical_ms: hlc.physical_ms,
                logical: hlc.logical,
            }),
            business_date: command.business_date.clone(),
            operator_id: command.operator_id.clone(),
            shift_id: String::new(),
            catalog_version: command.catalog_version,
            occurred_at_ms: command.occurred_at_ms,
            idempotency_key: command.idempotency_key.clone(),
            payload: Some(payload),
        };
        let prev: ChainHash = head.head_hash.as_slice().try_into().unwrap_or_else(|_| {
            panic!(
                "journal head hash has {} bytes, not 32",
                head.head_hash.len()
            )
        });
        let (bytes, hash) = chain::link_entry(&mut entry, &prev);
        batch.put_cf(
            self.store.cf(CF_JOURNAL),
            keys::entry_key(&entry.device_id, seq),
            bytes,
        );
        head.last_seq = seq;
        head.last_receipt_no = head.last_receipt_no.max(receipt_no);
        head.head_hash = hash.to_vec();
        head.hlc_physical_ms = hlc.physical_ms;
        head.hlc_logical = hlc.logical;
        Committed {
            entry,
            chain_hash: hash,
            replayed: false,
        }
    }

    /// The payload to journal, and the status change of the sale it refers to.
    fn payload_for(
        &self,
        operation: &Operation,
        overlay: &GroupOverlay,
    ) -> Result<(Payload, Option<(SaleRef, SaleStatus)>), AppendError> {
        match operation {
            Operation::Sale(sale) => Ok((Payload::Sale(convert::sale_to_proto(sale)), None)),
            Operation::CardSale { sale, cards } => {
                let mut sale = convert::sale_to_proto(sale);
                for (index, card) in cards {
                    if let Some(tender) = sale.tenders.get_mut(*index) {
                        *tender = Tender {
                            kind: tender.kind,
                            amount_minor: tender.amount_minor,
                            change_minor: tender.change_minor,
                            ..card.clone()
                        };
                    }
                }
                Ok((Payload::Sale(sale), None))
            }
            Operation::Payment(event) => Ok((Payload::Payment(event.clone()), None)),
            Operation::CloseOrder { order_id, sale } => {
                if let Some(seq) = overlay.closed_orders.get(order_id) {
                    return Err(AppendError::OrderClosed {
                        order_id: order_id.clone(),
                        by: SaleRef {
                            device_id: self.identity.device_id.clone(),
                            seq: *seq,
                        },
                    });
                }
                if let Some(first) = self.store.order_sales(order_id)?.into_iter().next() {
                    return Err(AppendError::OrderClosed {
                        order_id: order_id.clone(),
                        by: SaleRef {
                            device_id: first.device_id,
                            seq: first.seq,
                        },
                    });
                }
                let sale = convert::order_sale_to_proto(sale, order_id);
                Ok((Payload::Sale(sale), None))
            }
            Operation::Void { original, reason } => {
                let (entry, status) = self.original_sale(original, overlay)?;
                if !status.voided_by_device_id.is_empty() {
                    return Err(AppendError::SaleVoided(original.clone()));
                }
                if !status.refunds.is_empty() {
                    return Err(AppendError::SaleHasRefunds(original.clone()));
                }
                let void = Void {
                    original_device_id: original.device_id.clone(),
                    original_seq: original.seq,
                    original_receipt_no: entry.receipt_no,
                    reason: reason.clone(),
                };
                Ok((Payload::Void(void), Some((original.clone(), status))))
            }
            Operation::Refund {
                original,
                request,
                reason,
            } => {
                let (entry, mut status) = self.original_sale(original, overlay)?;
                if !status.voided_by_device_id.is_empty() {
                    return Err(AppendError::SaleVoided(original.clone()));
                }
                let Some(Payload::Sale(sale)) = &entry.payload else {
                    return Err(AppendError::NotASale(original.clone()));
                };
                let priced =
                    convert::sale_from_proto(sale, entry.catalog_version).map_err(|e| {
                        StorageError::Corrupt {
                            what: format!("sale {original}"),
                            reason: e,
                        }
                    })?;
                status.refunded_quantity.resize(priced.lines.len(), 0);
                let refund = price_refund(&priced, &status.refunded_quantity, request)?;
                for line in &refund.lines {
                    let slot = &mut status.refunded_quantity[line.line_index as usize];
                    *slot += line.quantity;
                    assert!(*slot <= priced.lines[line.line_index as usize].quantity);
                }
                let refund = convert::refund_to_proto(original, entry.receipt_no, &refund, reason);
                Ok((Payload::Refund(refund), Some((original.clone(), status))))
            }
        }
    }

    /// The original sale and its current status (this group's changes included).
    fn original_sale(
        &self,
        original: &SaleRef,
        overlay: &GroupOverlay,
    ) -> Result<(JournalEntry, SaleStatus), AppendError> {
        let entry = if original.device_id == self.identity.device_id
            && overlay.entries.contains_key(&original.seq)
        {
            overlay.entries[&original.seq].entry.clone()
        } else {
            self.store
                .entry(&original.device_id, original.seq)?
                .ok_or_else(|| AppendError::UnknownSale(original.clone()))?
        };
        if !matches!(entry.payload, Some(Payload::Sale(_))) {
            return Err(AppendError::NotASale(original.clone()));
        }
        let status = match overlay.statuses.get(original) {
            Some(status) => status.clone(),
            None => self
                .store
                .sale_status(&original.device_id, original.seq)?
                .unwrap_or_default(),
        };
        Ok((entry, status))
    }

    fn used_key(
        &self,
        key: &str,
        overlay: &GroupOverlay,
    ) -> Result<Option<IdempotencyRecord>, StorageError> {
        match overlay.idempotency.get(key) {
            Some(record) => Ok(Some(record.clone())),
            None => self.store.idempotency(key),
        }
    }

    fn replay(
        &self,
        record: &IdempotencyRecord,
        overlay: &GroupOverlay,
    ) -> Result<Decision, AppendError> {
        if let Some(committed) = overlay.entries.get(&record.seq) {
            let mut again = committed.clone();
            again.replayed = true;
            return Ok(Decision::Replay(Box::new(again)));
        }
        let bytes = self
            .store
            .entry_bytes(&record.device_id, record.seq)?
            .ok_or_else(|| StorageError::Corrupt {
                what: format!("idempotency record → {}/{}", record.device_id, record.seq),
                reason: "entry missing".into(),
            })?;
        let entry = super::journal_store::decode_entry(&record.device_id, record.seq, &bytes)?;
        Ok(Decision::Replay(Box::new(Committed {
            entry,
            chain_hash: chain::entry_hash(&bytes),
            replayed: true,
        })))
    }
}

/// Moves every request already queued into `group`, up to [`BATCH_ENTRIES_MAX`].
fn drain_into(rx: &mut mpsc::Receiver<Pending>, group: &mut Vec<Pending>) {
    while group.len() < BATCH_ENTRIES_MAX {
        match rx.try_recv() {
            Ok(next) => group.push(next),
            Err(_) => break,
        }
    }
}

fn answer_all_failed(decisions: Vec<(Reply, Result<Decision, AppendError>)>, error: &StorageError) {
    for (reply, decision) in decisions {
        let answer = match decision {
            Err(refused) => Err(refused),
            // Even a replay may point at an entry of this failed group: refuse all.
            Ok(_) => Err(AppendError::Storage(StorageError::WriteFailed(
                error.to_string(),
            ))),
        };
        let _ = reply.send(answer);
    }
}
