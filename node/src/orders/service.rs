//! [`OrdersService`]: the shared orders of a device node.

use crate::clock;
use crate::ledger::business_date::BusinessCalendar;
use crate::storage::writer::JournalWriter;
use crate::storage::{JournalStore, StorageError};
use posmesh_proto::sync::v1::OrderSyncMessage;
use posmesh_sync::orders::{
    order_actor, OrderBook, OrderBookConfig, OrderEdit, OrderError, OrderEvent, OrderView,
};
use posmesh_sync::replication::PeerId;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};

/// An order's stored chunks are compacted into one once there are this many.
pub const COMPACT_AFTER_CHUNKS: u64 = 32;

/// Where order sync messages go: the mesh links of the ledger replication.
pub trait OrderSyncSink: Send + Sync {
    /// Sends `message` to `peer` if a link to it is up (dropped otherwise: the sync
    /// protocol starts over on the next connection or resync).
    fn send_order_sync(&self, peer: &PeerId, message: OrderSyncMessage);
}

/// Why an order operation was refused. Nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum OrdersError {
    /// The order's own rules (see [`OrderError`]).
    #[error(transparent)]
    Order(#[from] OrderError),
    /// The order has a closing sale: it can no longer change.
    #[error("order {order_id} was closed by sale {by}")]
    Closed {
        /// The order.
        order_id: String,
        /// Its (first) closing sale, "device/seq".
        by: String,
    },
    /// The edit could not be made durable.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

struct Inner {
    book: OrderBook,
    /// Per order: (chunks stored, next chunk number).
    chunks: BTreeMap<String, (u64, u64)>,
    /// Orders whose last write failed: the changes it carried are only in memory, so the
    /// next write stores the whole document (a chunk after a gap would not load).
    unsaved: std::collections::BTreeSet<String>,
}

/// The shared orders of this node: every edit is durable (synced) before it is answered,
/// then offered to every connected peer; peers' changes are merged, stored (unsynced: the
/// peers hold them too) and relayed.
///
/// Locks: `inner` is never held across an `.await`; the sink is called with it released.
pub struct OrdersService {
    local_device: String,
    pub(super) store: Arc<JournalStore>,
    /// Taken out at shutdown ([`OrdersService::shutdown`]): the journal writer thread ends
    /// only when every handle is gone.
    writer: Mutex<Option<JournalWriter>>,
    pub(super) calendar: BusinessCalendar,
    inner: Mutex<Inner>,
    sink: OnceLock<Weak<dyn OrderSyncSink>>,
    origin: Instant,
    wake: Notify,
}

impl OrdersService {
    /// Loads the stored orders of `store` and starts the resync timer task (until `stop`).
    /// The node's edits in this run use the actor of a new session (see
    /// [`posmesh_sync::orders::order_actor`]). An order whose stored bytes do not load is
    /// logged and skipped (its peers still hold it; sync brings it back).
    ///
    /// # Errors
    /// Storage errors.
    pub fn start(
        store: Arc<JournalStore>,
        writer: JournalWriter,
        calendar: BusinessCalendar,
        local_device: &str,
        incarnation: u64,
        stop: watch::Receiver<bool>,
    ) -> Result<Arc<Self>, StorageError> {
        let session = store.next_orders_session()?;
        let actor = order_actor(local_device, incarnation, session);
        let mut book = OrderBook::new(local_device, actor, OrderBookConfig::default());
        let mut chunks = BTreeMap::new();
        for (order_id, stored) in store.stored_orders()? {
            match book.load(&order_id, &stored.bytes) {
                Ok(()) => {
                    chunks.insert(order_id, (stored.chunks, stored.next_chunk));
                }
                Err(error) => {
                    tracing::error!(order = %order_id, %error, "stored order does not load; skipped");
                }
            }
        }
        tracing::info!(orders = book.len(), session, "orders loaded");
        let service = Arc::new(Self {
            local_device: local_device.to_owned(),
            store,
            writer: Mutex::new(Some(writer)),
            calendar,
            inner: Mutex::new(Inner {
                book,
                chunks,
                unsaved: std::collections::BTreeSet::new(),
            }),
            sink: OnceLock::new(),
            origin: clock::monotonic_now(),
            wake: Notify::new(),
        });
        tokio::spawn(service.clone().run_timer(stop));
        // Conflicts stored before a crash may not have been settled yet.
        tokio::spawn(service.clone().settle_all_close_conflicts());
        Ok(service)
    }

    /// Releases the journal writer (node shutdown): compensations after this fail with
    /// "writer stopped" and are retried at the next start.
    pub fn shutdown(&self) {
        self.writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
    }

    /// The journal writer, until shutdown.
    pub(super) fn writer(&self) -> Option<JournalWriter> {
        self.writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Connects the service to the mesh (once; later calls are ignored).
    pub fn attach_sink(&self, sink: Weak<dyn OrderSyncSink>) {
        let _ = self.sink.set(sink);
    }

    /// This node's device id.
    pub fn local_device(&self) -> &str {
        &self.local_device
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Book calls complete or panic before changing state (sans-IO core), so a poisoned
        // lock still holds a consistent book.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Creates an order with its first `lines` (`OrderEdit::AddLine`s, checked by the
    /// caller) — blocking: syncs to disk. An existing id answers the order as it is, with
    /// `false` (a retried request).
    ///
    /// # Errors
    /// See [`OrdersError`].
    pub fn create(
        &self,
        order_id: &str,
        at_ms: i64,
        table: Option<&str>,
        customer: Option<&str>,
        lines: &[OrderEdit],
    ) -> Result<(OrderView, bool), OrdersError> {
        let mut inner = self.lock();
        if let Some(view) = inner.book.view(order_id)? {
            return Ok((view, false));
        }
        let mut view = inner.book.create(order_id, at_ms, table, customer)?;
        for line in lines {
            view = inner.book.edit(order_id, line, at_ms)?;
        }
        self.persist(&mut inner, order_id, true)?;
        let outgoing = drain_transmits(&mut inner.book);
        drop(inner);
        self.send(outgoing);
        Ok((view, true))
    }

    /// Applies a local edit (blocking: syncs to disk before returning).
    ///
    /// # Errors
    /// [`OrdersError::Closed`] for a closed order; see [`OrdersError`].
    pub fn edit(
        &self,
        order_id: &str,
        edit: &OrderEdit,
        at_ms: i64,
    ) -> Result<OrderView, OrdersError> {
        self.refuse_closed(order_id)?;
        let mut inner = self.lock();
        let view = inner.book.edit(order_id, edit, at_ms)?;
        if let Err(error) = self.persist(&mut inner, order_id, true) {
            // The edit is in memory but not durable: it was not acknowledged, yet it may
            // still reach peers. Say so; the client retries and sees the line present.
            tracing::error!(order = %order_id, %error, "order edit not persisted");
            return Err(error.into());
        }
        let outgoing = drain_transmits(&mut inner.book);
        drop(inner);
        self.send(outgoing);
        Ok(view)
    }

    /// The order, `None` when unknown here.
    ///
    /// # Errors
    /// [`OrderError::Malformed`].
    pub fn view(&self, order_id: &str) -> Result<Option<OrderView>, OrderError> {
        self.lock().book.view(order_id)
    }

    /// Every readable order, by id (malformed ones are logged and left out).
    pub fn views(&self) -> Vec<OrderView> {
        let inner = self.lock();
        inner
            .book
            .order_ids()
            .filter_map(|id| match inner.book.view(id) {
                Ok(view) => view,
                Err(error) => {
                    tracing::warn!(order = %id, %error, "order unreadable");
                    None
                }
            })
            .collect()
    }

    /// Digest of every order held (see [`OrderBook::digest`]) and how many there are.
    pub fn digest(&self) -> ([u8; 32], usize) {
        let mut inner = self.lock();
        let count = inner.book.len();
        (inner.book.digest(), count)
    }

    /// Refuses edits of an order that has a closing sale.
    pub fn refuse_closed(&self, order_id: &str) -> Result<(), OrdersError> {
        if let Some(first) = self.store.order_sales(order_id)?.into_iter().next() {
            return Err(OrdersError::Closed {
                order_id: order_id.to_owned(),
                by: format!("{}/{}", first.device_id, first.seq),
            });
        }
        Ok(())
    }

    /// A mesh link to `peer` is up.
    pub fn connected(&self, peer: &PeerId) {
        let now_ms = self.now_ms();
        let mut inner = self.lock();
        inner.book.handle_connected(peer.clone(), now_ms);
        let outgoing = drain_transmits(&mut inner.book);
        drop(inner);
        self.send(outgoing);
        self.wake.notify_one();
    }

    /// The mesh link to `peer` is gone.
    pub fn disconnected(&self, peer: &PeerId) {
        self.lock().book.handle_disconnected(peer);
    }

    /// An order sync message from `peer`: merged, stored, answered and relayed.
    pub fn on_message(&self, peer: &PeerId, message: &OrderSyncMessage) {
        let mut inner = self.lock();
        if let Err(error) = inner.book.handle_message(peer, message) {
            tracing::debug!(%peer, order = %message.order_id, %error, "order sync message refused");
        }
        let mut merged = Vec::new();
        while let Some(event) = inner.book.poll_event() {
            match event {
                OrderEvent::Merged { order_id, .. } => merged.push(order_id),
                OrderEvent::Refused {
                    peer,
                    order_id,
                    reason,
                } => {
                    tracing::warn!(%peer, order = %order_id, %reason, "refused order sync message");
                    metrics::counter!("posmesh_order_sync_refused_total").increment(1);
                }
            }
        }
        for order_id in merged {
            if let Err(error) = self.persist(&mut inner, &order_id, false) {
                tracing::error!(order = %order_id, %error, "cannot store merged order changes");
            }
        }
        let outgoing = drain_transmits(&mut inner.book);
        drop(inner);
        self.send(outgoing);
    }

    /// Writes the order's changes since its last save as its next chunk, compacting when it
    /// has [`COMPACT_AFTER_CHUNKS`] — or the whole document when an earlier write failed.
    fn persist(&self, inner: &mut Inner, order_id: &str, synced: bool) -> Result<(), StorageError> {
        let Some(bytes) = inner.book.save_incremental(order_id) else {
            return Ok(());
        };
        let after_failure = inner.unsaved.contains(order_id);
        if bytes.is_empty() && !after_failure {
            return Ok(());
        }
        let (count, next) = inner.chunks.get(order_id).copied().unwrap_or((0, 0));
        let written = if after_failure || count + 1 >= COMPACT_AFTER_CHUNKS {
            let whole = inner.book.save(order_id).unwrap_or_default();
            let written = self.store.compact_order(order_id, next, &whole);
            if written.is_ok() {
                metrics::counter!("posmesh_order_compactions_total").increment(1);
                inner.chunks.insert(order_id.to_owned(), (1, next + 1));
            }
            written
        } else {
            let written = self.store.put_order_chunk(order_id, next, &bytes, synced);
            if written.is_ok() {
                inner
                    .chunks
                    .insert(order_id.to_owned(), (count + 1, next + 1));
            }
            written
        };
        match written {
            Ok(()) => {
                inner.unsaved.remove(order_id);
                Ok(())
            }
            Err(error) => {
                inner.unsaved.insert(order_id.to_owned());
                Err(error)
            }
        }
    }

    fn send(&self, outgoing: Vec<(PeerId, OrderSyncMessage)>) {
        if outgoing.is_empty() {
            return;
        }
        let Some(sink) = self.sink.get().and_then(Weak::upgrade) else {
            return;
        };
        for (peer, message) in outgoing {
            sink.send_order_sync(&peer, message);
        }
    }

    /// Runs the book's resync timer until `stop`.
    async fn run_timer(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            let due = self.lock().book.poll_timeout();
            let sleep = async {
                match due {
                    Some(ms) => {
                        let at =
                            tokio::time::Instant::from_std(self.origin + Duration::from_millis(ms));
                        tokio::time::sleep_until(at).await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = sleep => {
                    let now_ms = self.now_ms();
                    let mut inner = self.lock();
                    inner.book.handle_timeout(now_ms);
                    let outgoing = drain_transmits(&mut inner.book);
                    drop(inner);
                    self.send(outgoing);
                }
                () = self.wake.notified() => {}
                _ = stop.wait_for(|stopped| *stopped) => return,
            }
        }
    }
}

fn drain_transmits(book: &mut OrderBook) -> Vec<(PeerId, OrderSyncMessage)> {
    std::iter::from_fn(|| book.poll_transmit()).collect()
}
