//! All orders a node holds and their Automerge sync sessions with its peers (sans-IO).

use super::order_doc::{OrderDoc, OrderEdit, OrderError, OrderView};
use crate::replication::PeerId;
use automerge::sync::{Message as AmSyncMessage, State as AmSyncState, SyncDoc};
use automerge::ActorId;
use posmesh_proto::sync::v1::OrderSyncMessage;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, VecDeque};

/// Limits and timers of an [`OrderBook`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderBookConfig {
    /// Most orders held; a peer's message that would create one more is refused.
    pub orders_max: usize,
    /// Every this many ms each session starts over (a message lost without the connection
    /// dropping would otherwise stall it), ms of the driver's clock.
    pub resync_interval_ms: u64,
}

impl Default for OrderBookConfig {
    /// 10,000 orders (a day of a busy restaurant is a few hundred); resync every 30 s.
    fn default() -> Self {
        Self {
            orders_max: 10_000,
            resync_interval_ms: 30_000,
        }
    }
}

/// What the driver must act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrderEvent {
    /// A peer's changes were merged into the order: persist
    /// [`OrderBook::save_incremental`] (no fsync needed: peers hold them too).
    Merged {
        /// The order.
        order_id: String,
        /// Who sent the changes.
        peer: PeerId,
    },
    /// A peer's message was refused (counted; nothing changed).
    Refused {
        /// The sender.
        peer: PeerId,
        /// The order the message named.
        order_id: String,
        /// Why.
        reason: String,
    },
}

/// Counters of the order sync.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrderSyncStats {
    /// Messages handed to [`OrderBook::poll_transmit`].
    pub messages_sent: u64,
    /// Payload bytes of those messages.
    pub bytes_sent: u64,
    /// Messages received and applied.
    pub messages_received: u64,
    /// Messages refused.
    pub messages_refused: u64,
}

/// The orders of a node and one Automerge sync session per (connected peer, order).
///
/// Local edits ([`OrderBook::create`], [`OrderBook::edit`]) return after changing the
/// document in memory; the driver persists [`OrderBook::save_incremental`] durably before
/// acknowledging the edit, then collects [`OrderBook::poll_transmit`].
#[derive(Debug)]
pub struct OrderBook {
    local_device: String,
    actor: ActorId,
    config: OrderBookConfig,
    docs: BTreeMap<String, OrderDoc>,
    sessions: BTreeMap<PeerId, BTreeMap<String, AmSyncState>>,
    outbox: VecDeque<(PeerId, OrderSyncMessage)>,
    events: VecDeque<OrderEvent>,
    next_resync_ms: Option<u64>,
    stats: OrderSyncStats,
}

impl OrderBook {
    /// An empty book for `local_device`, editing as `actor` (see [`super::order_actor`]).
    pub fn new(local_device: &str, actor: ActorId, config: OrderBookConfig) -> Self {
        Self {
            local_device: local_device.to_owned(),
            actor,
            config,
            docs: BTreeMap::new(),
            sessions: BTreeMap::new(),
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            next_resync_ms: None,
            stats: OrderSyncStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> &OrderSyncStats {
        &self.stats
    }

    /// Adds an order loaded from storage (start-up).
    ///
    /// # Errors
    /// See [`OrderDoc::load`]; [`OrderError::AlreadyExists`] for a second load.
    pub fn load(&mut self, order_id: &str, bytes: &[u8]) -> Result<(), OrderError> {
        if self.docs.contains_key(order_id) {
            return Err(OrderError::AlreadyExists(order_id.to_owned()));
        }
        let doc = OrderDoc::load(order_id, bytes, self.actor.clone())?;
        self.docs.insert(order_id.to_owned(), doc);
        Ok(())
    }

    /// Creates an order on this device at `at_ms` (ms since the Unix epoch).
    ///
    /// # Errors
    /// [`OrderError::AlreadyExists`], [`OrderError::TooManyOrders`] and the checks of
    /// [`OrderDoc::create`].
    pub fn create(
        &mut self,
        order_id: &str,
        at_ms: i64,
        table: Option<&str>,
        customer: Option<&str>,
    ) -> Result<OrderView, OrderError> {
        if self.docs.contains_key(order_id) {
            return Err(OrderError::AlreadyExists(order_id.to_owned()));
        }
        if self.docs.len() >= self.config.orders_max {
            return Err(OrderError::TooManyOrders(self.config.orders_max));
        }
        let doc = OrderDoc::create(
            order_id,
            self.actor.clone(),
            &self.local_device,
            at_ms,
            table,
            customer,
        )?;
        let view = doc
            .view()?
            .ok_or_else(|| OrderError::NotFound(order_id.to_owned()))?;
        self.docs.insert(order_id.to_owned(), doc);
        self.offer_to_all(order_id);
        Ok(view)
    }

    /// Applies a local edit at `at_ms` and returns the order as it now is.
    ///
    /// # Errors
    /// [`OrderError::NotFound`] for an unknown order; see [`OrderDoc::apply`].
    pub fn edit(
        &mut self,
        order_id: &str,
        edit: &OrderEdit,
        at_ms: i64,
    ) -> Result<OrderView, OrderError> {
        let doc = self
            .docs
            .get_mut(order_id)
            .ok_or_else(|| OrderError::NotFound(order_id.to_owned()))?;
        doc.apply(edit, &self.local_device, at_ms)?;
        let view = doc
            .view()?
            .ok_or_else(|| OrderError::NotFound(order_id.to_owned()))?;
        self.offer_to_all(order_id);
        Ok(view)
    }

    /// The order, `None` when unknown here or its creation has not arrived yet.
    ///
    /// # Errors
    /// [`OrderError::Malformed`].
    pub fn view(&self, order_id: &str) -> Result<Option<OrderView>, OrderError> {
        match self.docs.get(order_id) {
            Some(doc) => doc.view(),
            None => Ok(None),
        }
    }

    /// Ids of the orders held, ascending.
    pub fn order_ids(&self) -> impl Iterator<Item = &str> {
        self.docs.keys().map(String::as_str)
    }

    /// Number of orders held.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// True when no order is held.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// The order's changes since its last save (for an incremental write), `None` for an
    /// unknown order; an empty vector when nothing changed.
    pub fn save_incremental(&mut self, order_id: &str) -> Option<Vec<u8>> {
        self.docs.get_mut(order_id).map(OrderDoc::save_incremental)
    }

    /// The whole order, compacted (to replace its stored chunks), `None` when unknown.
    pub fn save(&mut self, order_id: &str) -> Option<Vec<u8>> {
        self.docs.get_mut(order_id).map(OrderDoc::save)
    }

    /// SHA-256 over (order id, heads digest) of every order held, in id order: equal on two
    /// nodes exactly when they hold the same orders with the same changes.
    pub fn digest(&mut self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        for (order_id, doc) in &mut self.docs {
            hasher.update((order_id.len() as u64).to_be_bytes());
            hasher.update(order_id.as_bytes());
            hasher.update(doc.heads_digest());
        }
        hasher.finalize().into()
    }

    /// A connection to `peer` is up: start a session for every order.
    pub fn handle_connected(&mut self, peer: PeerId, now_ms: u64) {
        self.sessions.insert(peer.clone(), BTreeMap::new());
        self.next_resync_ms
            .get_or_insert(now_ms.saturating_add(self.config.resync_interval_ms));
        let order_ids: Vec<String> = self.docs.keys().cloned().collect();
        for order_id in order_ids {
            self.offer(&peer, &order_id, false);
        }
    }

    /// The connection to `peer` is gone: its sessions end.
    pub fn handle_disconnected(&mut self, peer: &PeerId) {
        self.sessions.remove(peer);
        self.outbox.retain(|(to, _)| to != peer);
        if self.sessions.is_empty() {
            self.next_resync_ms = None;
        }
    }

    /// A message from `peer`. A refusal is also reported as [`OrderEvent::Refused`].
    ///
    /// # Errors
    /// [`OrderError::InvalidId`], [`OrderError::TooManyOrders`] (for a new order), or
    /// [`OrderError::Automerge`] when the message does not decode or apply. Nothing changes.
    pub fn handle_message(
        &mut self,
        peer: &PeerId,
        message: &OrderSyncMessage,
    ) -> Result<(), OrderError> {
        let result = self.receive(peer, message);
        match &result {
            Ok(()) => self.stats.messages_received += 1,
            Err(error) => {
                self.stats.messages_refused += 1;
                self.events.push_back(OrderEvent::Refused {
                    peer: peer.clone(),
                    order_id: message.order_id.clone(),
                    reason: error.to_string(),
                });
            }
        }
        result
    }

    fn receive(&mut self, peer: &PeerId, message: &OrderSyncMessage) -> Result<(), OrderError> {
        let order_id = message.order_id.as_str();
        super::validate_order_id(order_id).map_err(OrderError::InvalidId)?;
        let decoded = AmSyncMessage::decode(&message.automerge_sync)
            .map_err(|e| OrderError::Automerge(e.to_string()))?;
        if !self.docs.contains_key(order_id) {
            if self.docs.len() >= self.config.orders_max {
                return Err(OrderError::TooManyOrders(self.config.orders_max));
            }
            let doc = OrderDoc::empty(order_id, self.actor.clone())?;
            self.docs.insert(order_id.to_owned(), doc);
        }
        let Some(doc) = self.docs.get_mut(order_id) else {
            return Err(OrderError::NotFound(order_id.to_owned()));
        };
        let sessions = self.sessions.entry(peer.clone()).or_default();
        if message.reset {
            sessions.remove(order_id);
        }
        let state = sessions.entry(order_id.to_owned()).or_default();
        let before = doc.heads_digest();
        let mut trial = state.clone();
        doc.automerge()
            .sync()
            .receive_sync_message(&mut trial, decoded)?;
        *state = trial;
        let changed = doc.heads_digest() != before;
        if changed {
            if let Err(error) = doc.view() {
                // Keep the merged changes (they are part of the order's history everywhere)
                // but tell the driver the order is unreadable.
                self.events.push_back(OrderEvent::Refused {
                    peer: peer.clone(),
                    order_id: order_id.to_owned(),
                    reason: error.to_string(),
                });
            }
            self.events.push_back(OrderEvent::Merged {
                order_id: order_id.to_owned(),
                peer: peer.clone(),
            });
            self.offer_to_all(order_id);
        } else {
            self.offer(peer, order_id, false);
        }
        Ok(())
    }

    /// Time passed: every `resync_interval_ms` every session starts over.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        let Some(due) = self.next_resync_ms else {
            return;
        };
        if now_ms < due {
            return;
        }
        self.next_resync_ms = Some(now_ms.saturating_add(self.config.resync_interval_ms));
        let peers: Vec<PeerId> = self.sessions.keys().cloned().collect();
        let order_ids: Vec<String> = self.docs.keys().cloned().collect();
        for peer in peers {
            if let Some(sessions) = self.sessions.get_mut(&peer) {
                sessions.clear();
            }
            for order_id in &order_ids {
                self.offer(&peer, order_id, true);
            }
        }
    }

    /// When [`OrderBook::handle_timeout`] is next due, if any peer is connected.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.next_resync_ms
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<(PeerId, OrderSyncMessage)> {
        self.outbox.pop_front()
    }

    /// The next event for the driver.
    pub fn poll_event(&mut self) -> Option<OrderEvent> {
        self.events.pop_front()
    }

    fn offer_to_all(&mut self, order_id: &str) {
        let peers: Vec<PeerId> = self.sessions.keys().cloned().collect();
        for peer in peers {
            self.offer(&peer, order_id, false);
        }
    }

    /// Queues the session's next message for (peer, order), if the protocol has one.
    fn offer(&mut self, peer: &PeerId, order_id: &str, reset: bool) {
        let (Some(sessions), Some(doc)) =
            (self.sessions.get_mut(peer), self.docs.get_mut(order_id))
        else {
            return;
        };
        let state = sessions.entry(order_id.to_owned()).or_default();
        if let Some(message) = doc.automerge().sync().generate_sync_message(state) {
            let bytes = message.encode();
            self.stats.messages_sent += 1;
            self.stats.bytes_sent += bytes.len() as u64;
            self.outbox.push_back((
                peer.clone(),
                OrderSyncMessage {
                    order_id: order_id.to_owned(),
                    automerge_sync: bytes,
                    reset,
                },
            ));
        }
    }
}
