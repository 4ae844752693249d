//! The per-node replication state machine (sans-IO).

use super::batch_check::{check_shape, verify_suffix, VerifiedBatch};
use super::batch_cut::next_batch;
use super::inbound::Inbound;
use super::peer_state::PeerState;
use super::{
    LedgerRead, PeerId, RefusalReason, ReplicationEvent, ReplicatorConfig, ReplicatorStats,
    SigningKeys, VersionVector,
};
use crate::chain::GENESIS_PREV_HASH;
use crate::SyncError;
use posmesh_proto::sync::v1::{sync_message::Kind, BatchAck, EntryBatch, EntryBytes, SyncMessage};
use std::collections::{BTreeMap, VecDeque};

/// Replicates the sales ledger of a store between this node and its connected peers:
/// version-vector anti-entropy (Demers et al. 1987) plus a live push of new entries, over
/// per-device hash-chained journals that together form a G-Set (Shapiro et al. 2011).
///
/// It is a deterministic state machine in the style of quinn-proto: it never reads a clock,
/// does no I/O and owns no storage. The driver feeds it inputs (`handle_*`, with the time
/// `now_ms` in milliseconds from any fixed origin), drains its outputs (`poll_transmit`,
/// `poll_event`) after every input, and calls [`handle_timeout`](Self::handle_timeout) when
/// [`poll_timeout`](Self::poll_timeout) is reached. Reads go through [`LedgerRead`]; writes
/// are [`ReplicationEvent::Store`] actions the driver performs and confirms.
///
/// # Protocol
/// - On connect and every `anti_entropy_interval_ms`, each side sends its version vector.
/// - A sender pushes to each peer what the peer's vector lacks, one flow-controlled pipe
///   per (peer, device) of at most `batches_in_flight_max` unacknowledged batches. A batch
///   holds at most `batch_entries_max` entries / `batch_bytes_max` bytes and always ends at
///   a signed head. Unacknowledged pipes go back to the peer's acked position after
///   `ack_timeout_ms`.
/// - Neither side goes beyond a device's ledger cut ([`LedgerRead::cut`]: its certificate
///   was revoked or it was retired): a sender stops at the cut, a receiver refuses a batch
///   that reaches beyond it ([`RefusalReason::BeyondCut`]).
/// - A receiver checks every batch ([`RefusalReason`]), trims what it holds, ignores
///   batches that start beyond it (the gap comes again), emits one [`ReplicationEvent::Store`]
///   per device at a time, and acks (cumulatively) only after `handle_stored`.
///
/// Duplicated, reordered and lost messages are harmless: nothing held is stored twice,
/// nothing is stored across a gap, and re-sends plus anti-entropy fill every gap once peers
/// can talk (convergence, guarantee 3).
#[derive(Debug)]
pub struct Replicator {
    local_device: String,
    config: ReplicatorConfig,
    peers: BTreeMap<PeerId, PeerState>,
    inbound: BTreeMap<String, Inbound>,
    /// A push to every peer is due (new local entries, or entries just stored), ms.
    push_due_ms: Option<u64>,
    transmits: VecDeque<(PeerId, SyncMessage)>,
    events: VecDeque<ReplicationEvent>,
    stats: ReplicatorStats,
    /// The planted `SkipLinkCheck` bug is on (only settable with feature `canaries`).
    skip_link_check: bool,
}

impl Replicator {
    /// A replicator for the node of `local_device` (the device whose journal this node
    /// writes), with no peer connected.
    ///
    /// # Errors
    /// [`SyncError::InvalidConfig`] when a limit of `config` is zero or `local_device` is empty.
    pub fn new(local_device: &str, config: ReplicatorConfig) -> Result<Self, SyncError> {
        config.validate()?;
        if local_device.is_empty() {
            return Err(SyncError::InvalidConfig {
                reason: "local device id is empty".into(),
            });
        }
        Ok(Self {
            local_device: local_device.to_owned(),
            config,
            peers: BTreeMap::new(),
            inbound: BTreeMap::new(),
            push_due_ms: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: ReplicatorStats::default(),
            skip_link_check: false,
        })
    }

    /// Plants a deliberate bug, for the simulator's canary tests only (feature `canaries`):
    /// the simulation's checkers must catch it. Never call this in a node.
    #[cfg(feature = "canaries")]
    pub fn plant_canary(&mut self, canary: super::Canary) {
        match canary {
            super::Canary::SkipLinkCheck => self.skip_link_check = true,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ReplicatorConfig {
        &self.config
    }

    /// Counters of the paths taken so far.
    pub fn stats(&self) -> &ReplicatorStats {
        &self.stats
    }

    /// The connected peers, in order.
    pub fn peers(&self) -> impl Iterator<Item = &PeerId> {
        self.peers.keys()
    }

    /// A sync stream to `peer` is open at `now_ms` (ms). Our version vector goes out on the
    /// next [`handle_timeout`](Self::handle_timeout), due at once. Reconnecting a peer that
    /// is still connected starts its state afresh.
    pub fn handle_connected(&mut self, peer: PeerId, now_ms: u64) {
        self.peers.insert(peer, PeerState::new(now_ms));
    }

    /// The stream to `peer` is gone: its send state is dropped. Stores it sent that are
    /// pending stay pending (the data is verified); their ack is simply not sent.
    pub fn handle_disconnected(&mut self, peer: &PeerId) {
        self.peers.remove(peer);
    }

    /// New local entries are durable at `now_ms` (ms): they are pushed to every connected
    /// peer on the next [`handle_timeout`](Self::handle_timeout), due at once.
    pub fn handle_local_append(&mut self, now_ms: u64) {
        self.schedule_push(now_ms);
    }

    /// A message from `peer` at `now_ms` (ms). Reads the ledger, and `keys` to verify
    /// batches. Messages from peers that are not connected and messages of unknown kinds
    /// (a newer peer) are ignored and counted. Never fails: a bad batch becomes a
    /// [`ReplicationEvent::Refused`].
    pub fn handle_message(
        &mut self,
        peer: &PeerId,
        message: SyncMessage,
        now_ms: u64,
        ledger: &impl LedgerRead,
        keys: &impl SigningKeys,
    ) {
        if !self.peers.contains_key(peer) {
            self.stats.messages_from_unknown_peer += 1;
            return;
        }
        match message.kind {
            None => self.stats.messages_unknown_kind += 1,
            Some(Kind::VersionVector(wire)) => match VersionVector::from_proto(&wire) {
                Ok(vector) => {
                    self.on_peer_vector(peer, &vector);
                    self.fill_peer(peer, now_ms, &ledger.version_vector(), ledger);
                }
                Err(error) => self.refuse(
                    peer,
                    "",
                    RefusalReason::Malformed {
                        detail: error.to_string(),
                    },
                ),
            },
            Some(Kind::EntryBatch(batch)) => self.on_batch(peer, batch, ledger, keys),
            Some(Kind::BatchAck(ack)) => {
                if let Some(state) = self.peers.get_mut(peer) {
                    state.on_progress(&ack.device_id, ack.up_to_seq);
                }
                self.fill_peer(peer, now_ms, &ledger.version_vector(), ledger);
            }
        }
        self.assert_invariants();
    }

    /// The driver durably stored the outstanding [`ReplicationEvent::Store`] of `device_id`,
    /// whose last entry is `up_to_seq`, at `now_ms` (ms), and the ledger now shows it. The
    /// store is acked to its sender(s); the next parked batch of the device (if any) becomes
    /// the next `Store`; and a push to the other peers is scheduled (relaying).
    ///
    /// # Panics
    /// When no `Store` of `device_id` ending at `up_to_seq` is outstanding (a driver bug).
    pub fn handle_stored(&mut self, device_id: &str, up_to_seq: u64, now_ms: u64) {
        let inbound = self
            .inbound
            .get_mut(device_id)
            .unwrap_or_else(|| panic!("handle_stored: no store of {device_id:?} outstanding"));
        assert_eq!(
            inbound.pending_up_to, up_to_seq,
            "handle_stored names another seq than the outstanding store of {device_id:?}"
        );
        self.stats.stores_confirmed += 1;
        let ack_peers = std::mem::take(&mut inbound.ack_peers);
        let next = inbound.advance();
        if next.is_none() {
            self.inbound.remove(device_id);
        }
        for peer in ack_peers {
            self.send_ack(&peer, device_id, up_to_seq);
        }
        if let Some(next) = next {
            self.emit_store(next.from_peer, device_id, next.batch);
        }
        self.schedule_push(now_ms);
        self.assert_invariants();
    }

    /// The driver could not store the outstanding `Store` of `device_id` (e.g. a full disk).
    /// The store and the batches parked behind it are dropped; the range comes again from
    /// peers through re-sends and anti-entropy.
    pub fn handle_store_failed(&mut self, device_id: &str) {
        if self.inbound.remove(device_id).is_some() {
            self.stats.stores_failed += 1;
        }
    }

    /// Time passed: at `now_ms` (ms) sends the vectors that are due, goes back on pipes
    /// whose oldest batch is unacknowledged for `ack_timeout_ms`, and pushes what peers lack.
    /// Calling it early or twice is harmless.
    pub fn handle_timeout(&mut self, now_ms: u64, ledger: &impl LedgerRead) {
        let local = ledger.version_vector();
        let peers: Vec<PeerId> = self.peers.keys().cloned().collect();
        for peer in &peers {
            let Some(state) = self.peers.get_mut(peer) else {
                continue;
            };
            self.stats.go_backs += state.go_back_expired(now_ms, self.config.ack_timeout_ms);
            if state.vector_due_ms <= now_ms {
                state.vector_due_ms = now_ms.saturating_add(self.config.anti_entropy_interval_ms);
                self.stats.vectors_sent += 1;
                let message = SyncMessage {
                    kind: Some(Kind::VersionVector(local.to_proto())),
                };
                self.transmits.push_back((peer.clone(), message));
            }
        }
        if self.push_due_ms.is_some_and(|due| due <= now_ms) {
            self.push_due_ms = None;
        }
        for peer in &peers {
            self.fill_peer(peer, now_ms, &local, ledger);
        }
        self.assert_invariants();
    }

    /// The next message to send, to whom. Drain after every `handle_*` call.
    pub fn poll_transmit(&mut self) -> Option<(PeerId, SyncMessage)> {
        self.transmits.pop_front()
    }

    /// The next action for the driver. Drain after every `handle_*` call.
    pub fn poll_event(&mut self) -> Option<ReplicationEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due, ms; `None` when nothing is
    /// scheduled (no peer connected and no push due).
    pub fn poll_timeout(&self) -> Option<u64> {
        self.peers
            .values()
            .map(|state| state.next_due_ms(self.config.ack_timeout_ms))
            .chain(self.push_due_ms)
            .min()
    }

    fn schedule_push(&mut self, now_ms: u64) {
        self.push_due_ms = Some(self.push_due_ms.map_or(now_ms, |due| due.min(now_ms)));
    }

    fn on_peer_vector(&mut self, peer: &PeerId, vector: &VersionVector) {
        let Some(state) = self.peers.get_mut(peer) else {
            return;
        };
        state.heard_vector = true;
        for (device_id, seq) in vector.iter() {
            state.on_progress(device_id, seq);
        }
    }

    /// Sends `peer` what `local` holds that it lacks, as far as its windows allow.
    fn fill_peer(
        &mut self,
        peer: &PeerId,
        now_ms: u64,
        local: &VersionVector,
        ledger: &impl LedgerRead,
    ) {
        let Some(state) = self.peers.get_mut(peer) else {
            return;
        };
        if !state.heard_vector {
            return;
        }
        for (device_id, _, up_to_seq) in local.missing_from(&state.acked) {
            // Nothing beyond a device's ledger cut is sent (the peer would refuse it).
            let up_to_seq = ledger
                .cut(&device_id)
                .map_or(up_to_seq, |cut| up_to_seq.min(cut));
            let pipe = state.pipe(&device_id);
            while pipe.in_flight.len() < self.config.batches_in_flight_max
                && pipe.sent_up_to < up_to_seq
            {
                let Some(batch) = next_batch(&self.config, ledger, &device_id, pipe.sent_up_to)
                else {
                    self.stats.batches_stalled_without_head += 1;
                    break;
                };
                let last_seq = batch.entries.last().map_or(0, |e| e.seq);
                pipe.record_sent(last_seq, now_ms);
                self.stats.batches_sent += 1;
                let message = SyncMessage {
                    kind: Some(Kind::EntryBatch(batch)),
                };
                self.transmits.push_back((peer.clone(), message));
            }
        }
    }

    fn on_batch(
        &mut self,
        peer: &PeerId,
        batch: EntryBatch,
        ledger: &impl LedgerRead,
        keys: &impl SigningKeys,
    ) {
        self.stats.batches_received += 1;
        let device_id = batch.device_id.clone();
        let range = match check_shape(&batch) {
            Ok(range) => range,
            Err(reason) => return self.refuse(peer, &device_id, reason),
        };
        let held = ledger.version_vector().get(&device_id);
        if range.last <= held {
            // All held (a duplicate or a late re-send): tell the sender where we are.
            self.stats.batches_duplicate += 1;
            return self.send_ack(peer, &device_id, held);
        }
        if device_id == self.local_device {
            return self.refuse(peer, &device_id, RefusalReason::LocalDevice);
        }
        if let Some(cut) = ledger.cut(&device_id) {
            if range.last > cut {
                // Whole batches only: its signed head lies beyond the cut.
                self.stats.batches_beyond_cut += 1;
                let reason = RefusalReason::BeyondCut {
                    up_to_seq: cut,
                    last_seq: range.last,
                };
                return self.refuse(peer, &device_id, reason);
            }
        }
        let (accepted, accepted_hash) = match self.inbound.get_mut(&device_id) {
            Some(inbound) => {
                assert!(
                    held <= inbound.tail_seq,
                    "the ledger grew past a pending store"
                );
                if range.last <= inbound.tail_seq {
                    // Covered by the pending store or the park: ack this sender too.
                    self.stats.batches_duplicate += 1;
                    inbound.ack_peers.insert(peer.clone());
                    return;
                }
                (inbound.tail_seq, inbound.tail_hash)
            }
            None if held == 0 => (0, GENESIS_PREV_HASH),
            None => {
                let hash = ledger.chain_hash(&device_id, held).unwrap_or_else(|| {
                    panic!("ledger holds {device_id:?} up to {held} but has no chain hash for it")
                });
                (held, hash)
            }
        };
        if range.first > accepted + 1 {
            self.stats.batches_gap_ignored += 1;
            return;
        }
        let skip = usize::try_from(accepted + 1 - range.first).unwrap_or(usize::MAX);
        if skip > 0 {
            self.stats.batches_trimmed += 1;
        }
        let Some(head) = batch.head else {
            unreachable!("check_shape requires a head");
        };
        let entries: Vec<EntryBytes> = batch.entries.into_iter().skip(skip).collect();
        let check_links = !self.skip_link_check;
        let verified = match verify_suffix(
            &device_id,
            entries,
            head,
            accepted,
            accepted_hash,
            keys,
            check_links,
        ) {
            Ok(verified) => verified,
            Err(reason) => return self.refuse(peer, &device_id, reason),
        };
        assert_eq!(verified.first_seq(), accepted + 1);
        match self.inbound.get_mut(&device_id) {
            Some(inbound) if inbound.parked.len() < self.config.batches_in_flight_max => {
                self.stats.batches_parked += 1;
                inbound.park(peer.clone(), verified);
            }
            Some(_) => self.stats.batches_park_full += 1,
            None => {
                assert_eq!(
                    verified.first_seq(),
                    held + 1,
                    "a store starts after what is held"
                );
                self.inbound
                    .insert(device_id.clone(), Inbound::pending(peer.clone(), &verified));
                self.emit_store(peer.clone(), &device_id, verified);
            }
        }
    }

    fn emit_store(&mut self, from_peer: PeerId, device_id: &str, batch: VerifiedBatch) {
        assert!(!batch.entries.is_empty());
        self.stats.stores_emitted += 1;
        self.events.push_back(ReplicationEvent::Store {
            from_peer,
            device_id: device_id.to_owned(),
            entries: batch.entries,
            head: batch.head,
        });
    }

    fn send_ack(&mut self, peer: &PeerId, device_id: &str, up_to_seq: u64) {
        if !self.peers.contains_key(peer) {
            return;
        }
        self.stats.acks_sent += 1;
        let message = SyncMessage {
            kind: Some(Kind::BatchAck(BatchAck {
                device_id: device_id.to_owned(),
                up_to_seq,
            })),
        };
        self.transmits.push_back((peer.clone(), message));
    }

    fn refuse(&mut self, peer: &PeerId, device_id: &str, reason: RefusalReason) {
        self.stats.batches_refused += 1;
        self.events.push_back(ReplicationEvent::Refused {
            peer: peer.clone(),
            device_id: device_id.to_owned(),
            reason,
        });
    }

    fn assert_invariants(&self) {
        for state in self.peers.values() {
            state.assert_invariants(self.config.batches_in_flight_max);
        }
        for inbound in self.inbound.values() {
            inbound.assert_invariants();
            assert!(inbound.parked.len() <= self.config.batches_in_flight_max);
        }
    }
}
