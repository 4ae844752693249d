//! [`Network`]: the store LAN between simulated devices. A connection (a QUIC connection in
//! the node) exists per pair of devices while neither is partitioned from the other and both
//! are up. Each message travels its directed link with its own seeded latency, so messages
//! reorder; the world decides drops, duplicates, delay spikes and tampering when it sends. A
//! clogged directed link holds its messages (the connection stays up) until it is unclogged.
//! Cutting a connection loses what is in flight on it. Ledger replication and order sync
//! share the connections (the node multiplexes both on its one sync stream per peer).

use posmesh_proto::sync::v1::{OrderSyncMessage, SyncMessage};
use std::collections::{BTreeMap, BTreeSet};

/// How a byzantine link alters an entry batch (see [`super::tamper`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TamperKind {
    /// An entry before the batch's last is altered: the hash chain breaks at the next one.
    MiddleEntry,
    /// The last entry is altered: its hash no longer matches the signed head.
    LastEntry,
    /// The last entry is altered and the head re-signed with another device's key.
    ForeignKey,
}

/// What travels on a connection (the node's `SyncFrame`).
#[derive(Clone, Debug)]
pub enum Wire {
    /// A message of the ledger's replicator.
    Ledger(SyncMessage),
    /// A message of the order book's Automerge sync.
    Order(OrderSyncMessage),
}

/// A message on its way.
#[derive(Clone, Debug)]
pub struct Envelope {
    /// Send order, run-unique.
    pub id: u64,
    /// Sender (device index).
    pub from: usize,
    /// Receiver (device index).
    pub to: usize,
    /// Earliest delivery, ms of virtual time.
    pub deliver_ms: u64,
    /// The message.
    pub message: Wire,
    /// Set when a byzantine link altered the message.
    pub tampered: Option<TamperKind>,
}

/// The unordered pair of two device indexes, lower first.
pub fn pair(a: usize, b: usize) -> (usize, usize) {
    (a.min(b), a.max(b))
}

/// The simulated LAN.
#[derive(Clone, Debug, Default)]
pub struct Network {
    connected: BTreeSet<(usize, usize)>,
    clogged: BTreeSet<(usize, usize)>,
    tampering: BTreeMap<(usize, usize), TamperKind>,
    in_flight: Vec<Envelope>,
    next_id: u64,
    /// Per directed link, the id of the newest message delivered (to count reorderings).
    last_delivered: BTreeMap<(usize, usize), u64>,
}

impl Network {
    /// Whether `a` and `b` are connected.
    pub fn is_connected(&self, a: usize, b: usize) -> bool {
        self.connected.contains(&pair(a, b))
    }

    /// Connects `a` and `b`; returns whether they were not connected before.
    pub fn connect(&mut self, a: usize, b: usize) -> bool {
        self.connected.insert(pair(a, b))
    }

    /// Cuts the connection of `a` and `b`, losing what is in flight between them; returns
    /// whether they were connected.
    pub fn disconnect(&mut self, a: usize, b: usize) -> bool {
        let key = pair(a, b);
        self.in_flight.retain(|m| pair(m.from, m.to) != key);
        self.connected.remove(&key)
    }

    /// Clogs the directed link `from → to` (messages wait); returns whether it changed.
    pub fn clog(&mut self, from: usize, to: usize) -> bool {
        self.clogged.insert((from, to))
    }

    /// Unclogs `from → to`: the messages held deliver at once, in send order.
    pub fn unclog(&mut self, from: usize, to: usize) -> bool {
        self.clogged.remove(&(from, to))
    }

    /// Unclogs every link.
    pub fn unclog_all(&mut self) {
        self.clogged.clear();
    }

    /// Makes `from → to` byzantine (`Some`) or honest again (`None`).
    pub fn set_tampering(&mut self, from: usize, to: usize, kind: Option<TamperKind>) {
        match kind {
            Some(kind) => self.tampering.insert((from, to), kind),
            None => self.tampering.remove(&(from, to)),
        };
    }

    /// How `from → to` tampers, if it does.
    pub fn tampering(&self, from: usize, to: usize) -> Option<TamperKind> {
        self.tampering.get(&(from, to)).copied()
    }

    /// Every link honest again.
    pub fn stop_tampering(&mut self) {
        self.tampering.clear();
    }

    /// Puts a message on the wire; returns its id.
    pub fn send(
        &mut self,
        from: usize,
        to: usize,
        deliver_ms: u64,
        message: Wire,
        tampered: Option<TamperKind>,
    ) -> u64 {
        self.next_id += 1;
        self.in_flight.push(Envelope {
            id: self.next_id,
            from,
            to,
            deliver_ms,
            message,
            tampered,
        });
        self.next_id
    }

    /// When the next message can be delivered (clogged links wait), ms.
    pub fn next_due_ms(&self) -> Option<u64> {
        self.in_flight
            .iter()
            .filter(|m| !self.clogged.contains(&(m.from, m.to)))
            .map(|m| m.deliver_ms)
            .min()
    }

    /// Takes the next message due by `now_ms`, in (delivery time, send order) order, and
    /// whether it overtook a message sent before it on the same link.
    pub fn pop_due(&mut self, now_ms: u64) -> Option<(Envelope, bool)> {
        let index = self
            .in_flight
            .iter()
            .enumerate()
            .filter(|(_, m)| m.deliver_ms <= now_ms && !self.clogged.contains(&(m.from, m.to)))
            .min_by_key(|(_, m)| (m.deliver_ms, m.id))
            .map(|(i, _)| i)?;
        let envelope = self.in_flight.swap_remove(index);
        let newest = self
            .last_delivered
            .entry((envelope.from, envelope.to))
            .or_insert(0);
        let reordered = envelope.id < *newest;
        *newest = (*newest).max(envelope.id);
        Some((envelope, reordered))
    }

    /// Messages on the wire.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}
