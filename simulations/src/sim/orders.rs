//! The node's orders driver, modelled (`node/src/orders/service.rs`): each device holds a
//! production [`OrderBook`] and the [`World`] carries out what it asks.
//!
//! - **Actors**: every boot raises the device's order session (durably, before any edit)
//!   and the book edits as `order_actor(device, 1, session)` — a restart never reuses an
//!   actor.
//! - **Local edits** (open an order, add a line, set a quantity, remove a line, set the
//!   table or customer): the book applies the edit in memory, the driver writes
//!   `save_incremental` as the order's next chunk **with an fsync** and acknowledges the
//!   edit only when the fsync completes. The book's messages wait for that fsync (the node
//!   sends after persisting), so a crash before it loses an edit nobody else has — and
//!   nobody was told it was done. (Canary `order-ack-before-sync` writes the chunk without
//!   an fsync and answers at once: a crash before the write-back loses an acknowledged
//!   edit unless a peer got it first.)
//! - **Merged peer changes** ([`OrderEvent::Merged`]): written as the next chunk
//!   **unsynced** (peers hold them too); a crash may lose them.
//! - **Compaction**: at `order_compact_after` chunks the order is stored as one `save`
//!   replacing its chunks. A chunk write refused by a full disk marks the order for a whole
//!   `save` at its next write (otherwise the refused chunk's changes would be missing under
//!   every later chunk, and the stored order would no longer load).
//! - **Restart**: the book is rebuilt from the durable chunks (`OrderBook::load` of the
//!   concatenated chunks of each order) with a new session actor.
//! - **Sync**: order messages travel the same connections as the ledger's ([`Wire::Order`]),
//!   with the same partitions, clogs, loss, duplication, delays and reordering; the book's
//!   periodic resync (`OrderBookConfig::resync_interval_ms`) recovers lost messages.

use super::canary::Canary;
use super::disk::{DiskError, OrderWrite};
use super::history::{OrderFailure, OrderOp, OrderOutcome, OrderRecord, OrdersSnapshot};
use super::network::Wire;
use super::world::World;
use posmesh_sync::orders::{order_actor, OrderBook, OrderEdit, OrderEvent, OrderView};
use std::collections::BTreeMap;

/// The journal incarnation of every simulated device (devices are never wiped).
const INCARNATION: u64 = 1;

/// The workload keeps an order's lines around this many (a real tab's size): at this many,
/// an edit that would add a line removes one instead. Automerge documents grow with every
/// change, so this also keeps a store-day's documents to a few hundred changes.
const LINES_MAX: usize = 12;

/// Views of every order a book holds.
fn views(book: &OrderBook) -> BTreeMap<String, Result<Option<OrderView>, String>> {
    book.order_ids()
        .map(|id| (id.to_owned(), book.view(id).map_err(|e| e.to_string())))
        .collect()
}

impl World {
    /// Boots device `d`'s order book from its durable chunks with a new session's actor.
    pub(super) fn boot_orders(&mut self, d: usize) {
        let config = self.config.order_book.clone();
        let device = &mut self.devices[d];
        device.order_session += 1;
        let actor = order_actor(&device.name, INCARNATION, device.order_session);
        let mut book = OrderBook::new(&device.name, actor, config);
        let mut failures = Vec::new();
        device.order_chunk_counts.clear();
        device.order_resave.clear();
        device.order_gate = None;
        device.order_writes.clear();
        for (order_id, chunks) in device.disk.order_chunks() {
            match book.load(order_id, &chunks.concat()) {
                Ok(()) => {
                    device
                        .order_chunk_counts
                        .insert(order_id.clone(), chunks.len());
                }
                Err(error) => failures.push((order_id.clone(), error.to_string())),
            }
        }
        let (name, session, held) = (device.name.clone(), device.order_session, book.len());
        device.orders = Some(book);
        self.record("orders-boot", &[d as u64, session, held as u64], || {
            format!("{name} loads {held} orders, session {session}")
        });
        for (order_id, error) in failures {
            self.record("order-load-failed", &[d as u64], || {
                format!("{name} cannot load order {order_id}: {error}")
            });
            self.history.order_failures.push(OrderFailure {
                at_ms: self.now_ms,
                device: d,
                order_id,
                what: format!("stored chunks do not load: {error}"),
            });
        }
    }

    /// Device `d` lost power: its book is gone, its unanswered edits are interrupted.
    pub(super) fn crash_orders(&mut self, d: usize) {
        let device = &mut self.devices[d];
        if let Some(book) = device.orders.take() {
            super::device::add_order_stats(&mut device.past_order_stats, book.stats());
        }
        device.order_gate = None;
        let writes = std::mem::take(&mut device.order_writes);
        for id in writes.into_values().flatten() {
            let record = &mut self.history.orders[id];
            if record.outcome == OrderOutcome::Pending {
                record.outcome = OrderOutcome::Interrupted { at_ms: self.now_ms };
            }
        }
    }

    fn new_order_record(&mut self, d: usize, order_id: String, op: OrderOp) -> usize {
        let id = self.history.orders.len();
        let outcome = if self.devices[d].up {
            OrderOutcome::Pending
        } else {
            OrderOutcome::Refused {
                at_ms: self.now_ms,
                because: "device down".into(),
            }
        };
        self.history.orders.push(OrderRecord {
            device: d,
            order_id,
            op,
            requested_ms: self.now_ms,
            applied: false,
            outcome,
        });
        id
    }

    fn refuse_order(&mut self, id: usize, because: String) {
        self.history.orders[id].outcome = OrderOutcome::Refused {
            at_ms: self.now_ms,
            because,
        };
    }

    fn ack_order(&mut self, d: usize, id: usize) {
        let record = &mut self.history.orders[id];
        if record.outcome != OrderOutcome::Pending {
            return; // answered early (canary) and now synced
        }
        record.outcome = OrderOutcome::Acked { at_ms: self.now_ms };
        let name = self.devices[d].name.clone();
        let order_id = record.order_id.clone();
        self.record("order-ack", &[d as u64, id as u64], || {
            format!("{name} acks order request #{id} ({order_id})")
        });
    }

    /// A POS app opens order number `k` on device `d`.
    pub fn create_order(&mut self, d: usize, k: u64) {
        let order_id = format!("{}-tab-{k}", self.devices[d].name);
        let id = self.new_order_record(d, order_id.clone(), OrderOp::Create);
        let name = self.devices[d].name.clone();
        self.record("order-create", &[d as u64, id as u64, k], || {
            format!("{name} opens order {order_id} (request #{id})")
        });
        if !self.devices[d].up {
            return;
        }
        let table = format!("{}", self.rng.between(1, 30));
        let local_ms = self.devices[d].local_ms(self.now_ms);
        let Some(book) = self.devices[d].orders.as_mut() else {
            return;
        };
        let at_ms = i64::try_from(local_ms).unwrap_or(i64::MAX);
        match book.create(&order_id, at_ms, Some(&table), None) {
            Ok(_) => self.persist_local(d, id, &order_id),
            Err(error) => self.refuse_order(id, error.to_string()),
        }
        self.drain_orders(d);
    }

    /// A POS app edits an order on device `d`; `pick` chooses which of the orders it holds.
    pub fn edit_order(&mut self, d: usize, pick: u64) {
        let name = self.devices[d].name.clone();
        if !self.devices[d].up {
            self.record("order-edit", &[d as u64], || {
                format!("{name} is down: order edit refused")
            });
            return;
        }
        let Some(book) = self.devices[d].orders.as_ref() else {
            return;
        };
        // The order `pick` chooses, or the next one the device can read.
        let ids: Vec<&str> = book.order_ids().collect();
        let start = (pick % ids.len().max(1) as u64) as usize;
        let view =
            (0..ids.len()).find_map(|k| book.view(ids[(start + k) % ids.len()]).ok().flatten());
        let Some(view) = view else {
            self.record("order-edit", &[d as u64], || {
                format!("{name} holds no order to edit")
            });
            return;
        };
        let order_id = view.order_id.clone();
        let line = (!view.lines.is_empty()).then(|| {
            let i = self.rng.index(view.lines.len());
            view.lines[i].line_id.clone()
        });
        let mut roll = self.rng.below(100);
        if view.lines.len() >= LINES_MAX && roll < 40 {
            roll = 60; // a long tab: remove a line instead of adding one
        }
        let edit = match (roll, line) {
            (40..=59, Some(line_id)) => OrderEdit::SetQuantity {
                line_id,
                quantity: self.rng.between(1, 9) as i64,
            },
            (60..=74, Some(line_id)) => OrderEdit::RemoveLine { line_id },
            (75..=89, _) => OrderEdit::SetTable(
                (!self.rng.chance(100)).then(|| format!("{}", self.rng.between(1, 30))),
            ),
            (90.., _) => OrderEdit::SetCustomer(
                (!self.rng.chance(100)).then(|| format!("c{}", self.rng.below(50))),
            ),
            _ => {
                self.history.lines_added += 1;
                OrderEdit::AddLine {
                    line_id: format!("{name}-l{}", self.history.lines_added),
                    sku: format!("sku-{}", self.rng.below(20)),
                    quantity: self.rng.between(1, 5) as i64,
                }
            }
        };
        let id = self.new_order_record(d, order_id.clone(), OrderOp::Edit(edit.clone()));
        self.record("order-edit", &[d as u64, id as u64], || {
            format!("{name} edits {order_id} (request #{id}): {edit:?}")
        });
        let local_ms = self.devices[d].local_ms(self.now_ms);
        let Some(book) = self.devices[d].orders.as_mut() else {
            return;
        };
        let at_ms = i64::try_from(local_ms).unwrap_or(i64::MAX);
        match book.edit(&order_id, &edit, at_ms) {
            Ok(_) => self.persist_local(d, id, &order_id),
            Err(error) => self.refuse_order(id, error.to_string()),
        }
        self.drain_orders(d);
    }

    /// A local edit was applied in memory: write its chunk with an fsync, answer when done
    /// (the book's messages wait for it).
    fn persist_local(&mut self, d: usize, id: usize, order_id: &str) {
        self.history.orders[id].applied = true;
        // Canary: the edit's chunk is written without an fsync and the edit answered (and
        // its changes sent) as soon as the write is issued.
        let careless = self.canary == Some(Canary::OrderAckBeforeSync);
        match self.persist_order(d, order_id, !careless) {
            Ok(Some(_)) if careless => self.ack_order(d, id),
            Ok(Some(disk_id)) => {
                let device = &mut self.devices[d];
                device.order_writes.entry(disk_id).or_default().push(id);
                device.order_gate = Some(disk_id);
            }
            Ok(None) => self.ack_order(d, id),
            Err(DiskError::Full) => {
                // In memory but not durable: refused, yet its changes may still spread.
                self.refuse_order(id, "disk full".into());
            }
        }
    }

    /// Writes the order's changes since its last write as its next chunk (or the whole
    /// order, compacting or after a refused write). Returns the disk's id of the write,
    /// `None` when there was nothing to write.
    fn persist_order(
        &mut self,
        d: usize,
        order_id: &str,
        sync: bool,
    ) -> Result<Option<u64>, DiskError> {
        let compact_after = self.config.order_compact_after.max(1);
        let latency = if sync {
            self.rng.between(1, self.config.disk_latency_max_ms)
        } else {
            self.rng.between(1, self.config.order_writeback_max_ms)
        };
        let now_ms = self.now_ms;
        let device = &mut self.devices[d];
        let Some(book) = device.orders.as_mut() else {
            return Ok(None);
        };
        let count = device
            .order_chunk_counts
            .get(order_id)
            .copied()
            .unwrap_or(0);
        let replace = device.order_resave.contains(order_id) || count + 1 >= compact_after;
        let bytes = if replace {
            book.save(order_id)
        } else {
            book.save_incremental(order_id)
        };
        let Some(bytes) = bytes.filter(|b| !b.is_empty()) else {
            return Ok(None);
        };
        let size = bytes.len() as u64;
        let write = OrderWrite {
            order_id: order_id.to_owned(),
            bytes,
            replace,
        };
        let result = device.disk.write_order(write, sync, now_ms, latency);
        match result {
            Ok(_) => {
                device.order_resave.remove(order_id);
                let stored = if replace { 1 } else { count + 1 };
                device
                    .order_chunk_counts
                    .insert(order_id.to_owned(), stored);
            }
            Err(DiskError::Full) => {
                device.order_resave.insert(order_id.to_owned());
            }
        }
        let name = device.name.clone();
        let kind = if result.is_ok() {
            "order-write"
        } else {
            "order-write-failed"
        };
        self.record(kind, &[d as u64, size, u64::from(sync)], || {
            format!(
                "{name} writes {} of {order_id}, {size} bytes{}{}",
                if replace { "all" } else { "a chunk" },
                if sync { ", fsync" } else { "" },
                if result.is_ok() { "" } else { ": disk full" }
            )
        });
        result.map(Some)
    }

    /// An order chunk write of device `d` became durable.
    pub(super) fn on_order_durable(&mut self, d: usize, disk_id: u64) {
        let device = &mut self.devices[d];
        let answered = device.order_writes.remove(&disk_id).unwrap_or_default();
        let opened = device.order_gate == Some(disk_id);
        if opened {
            device.order_gate = None;
        }
        for id in answered {
            self.ack_order(d, id);
        }
        if opened {
            self.drain_orders(d);
        }
    }

    /// Carries out device `d`'s order events (persisting merged changes, recording
    /// refusals) and, unless a local edit is still being written, its transmits.
    pub(super) fn drain_orders(&mut self, d: usize) {
        loop {
            let Some(book) = self.devices[d].orders.as_mut() else {
                return;
            };
            let Some(event) = book.poll_event() else {
                break;
            };
            match event {
                OrderEvent::Merged { order_id, .. } => {
                    let _ = self.persist_order(d, &order_id, false);
                }
                OrderEvent::Refused {
                    peer,
                    order_id,
                    reason,
                } => {
                    let name = self.devices[d].name.clone();
                    self.record("order-refused", &[d as u64], || {
                        format!(
                            "{name} refused an order message of {peer} for {order_id}: {reason}"
                        )
                    });
                    self.history.order_failures.push(OrderFailure {
                        at_ms: self.now_ms,
                        device: d,
                        order_id,
                        what: format!("refused a sync message from {peer}: {reason}"),
                    });
                }
            }
        }
        if self.devices[d].order_gate.is_some() {
            return;
        }
        while let Some((peer, message)) = self.devices[d]
            .orders
            .as_mut()
            .and_then(OrderBook::poll_transmit)
        {
            self.send(d, &peer, Wire::Order(message));
        }
    }

    /// Whether every device is up, has no local order write in progress, and holds the same
    /// orders with the same changes (equal `OrderBook::digest()`).
    pub fn orders_converged(&mut self) -> bool {
        let mut first = None;
        for device in &mut self.devices {
            if device.order_gate.is_some() {
                return false;
            }
            let Some(book) = device.orders.as_mut() else {
                return false;
            };
            let digest = book.digest();
            match first {
                None => first = Some(digest),
                Some(f) if f != digest => return false,
                Some(_) => {}
            }
        }
        true
    }

    /// Each device's orders now: digest, views, and the orders reloaded from its durable
    /// chunks (when no write is pending). For the checkers.
    pub fn snapshot_orders(&mut self) -> Vec<OrdersSnapshot> {
        let config = self.config.order_book.clone();
        self.devices
            .iter_mut()
            .map(|device| {
                let mut snapshot = OrdersSnapshot::default();
                if let Some(book) = device.orders.as_mut() {
                    snapshot.digest = Some(book.digest());
                    snapshot.views = views(book);
                }
                if device.disk.pending() == 0 {
                    let actor = order_actor(&device.name, INCARNATION, u64::MAX);
                    let mut reloaded = OrderBook::new(&device.name, actor, config.clone());
                    let mut loaded = BTreeMap::new();
                    for (order_id, chunks) in device.disk.order_chunks() {
                        match reloaded.load(order_id, &chunks.concat()) {
                            Ok(()) => {
                                let view = reloaded.view(order_id).map_err(|e| e.to_string());
                                loaded.insert(order_id.clone(), view);
                            }
                            Err(error) => {
                                loaded.insert(order_id.clone(), Err(error.to_string()));
                            }
                        }
                    }
                    snapshot.reloaded = Some(loaded);
                }
                snapshot
            })
            .collect()
    }
}
