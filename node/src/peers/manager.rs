//! [`PeerManager`]: keeps a verified QUIC connection to every known peer of the store.
//!
//! Peers come from the configuration (static), from mDNS announcements, or by dialing us.
//! A dial loop dials every peer the table says is due (new, or whose backoff elapsed); an
//! accept loop adopts verified incoming connections. When two devices dial each other at
//! once, both keep the connection dialed by the smaller device id
//! ([`keep_connection`]). Each live connection is pinged every [`PING_INTERVAL`] for its
//! round-trip time; when it closes, the peer goes into exponential backoff with full
//! jitter before the next dial. A connection refused on purpose (a device retired from the
//! store, a certificate revoked: [`retired_gate::refusal_code`]) does not count as a
//! success: its backoff goes straight to the longest window, on both sides, and each side
//! logs the refusal once per peer at INFO/WARN, repeats at DEBUG ([`RefusalLog`]), until a
//! connection to that peer answers a ping again. A [`ConnectionObserver`] (the replication service) is told of
//! every adopted connection and of its end. With a [`RetiredGate`], devices retired from
//! the store are refused ([`super::retired_gate`]).

use super::retired_gate::{self, RetiredGate, CLOSE_RETIRED};
use crate::clock::wall_clock_ms;
use posmesh_mesh::backoff::Backoff;
use posmesh_mesh::peer_table::{PeerSource, PeerTable, PeerTableSnapshot};
use posmesh_mesh::transport::{keep_connection, DialDirection, MeshConnection, MeshEndpoint};
use posmesh_mesh::{MeshError, Role};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;

/// How often the dial loop looks for peers that are due.
pub const DIAL_TICK: Duration = Duration::from_millis(200);
/// How often a live connection is pinged (round-trip time, liveness).
pub const PING_INTERVAL: Duration = Duration::from_secs(2);
/// How long a ping may take before the connection counts as lost.
pub const PING_TIMEOUT: Duration = Duration::from_secs(3);
/// First reconnect delay window, ms (doubles per failure, full jitter).
pub const BACKOFF_INITIAL_MS: u64 = 250;
/// Largest reconnect delay window, ms.
pub const BACKOFF_MAX_MS: u64 = 10_000;
/// QUIC application close code for a duplicate connection (simultaneous dial) or one we
/// gave up on.
const CLOSE_DUPLICATE: u32 = 2;

/// Told of every connection the [`PeerManager`] adopts and of its end, to run its own
/// streams on it (the replication service). Calls are made from the manager's tasks and
/// must not block.
pub trait ConnectionObserver: Send + Sync {
    /// `connection` to `device_id` was adopted (it replaces any earlier one to the same
    /// device); `connection_id` names it in [`ConnectionObserver::closed`].
    fn connected(
        self: Arc<Self>,
        device_id: &str,
        connection_id: u64,
        connection: Arc<MeshConnection>,
    );

    /// Connection `connection_id` to `device_id` ended (closed, lost, or replaced by a
    /// newer one, which was announced first or is announced next).
    fn closed(self: Arc<Self>, device_id: &str, connection_id: u64);
}

/// The node's peers and connections.
pub struct PeerManager {
    endpoint: Arc<MeshEndpoint>,
    local_device: String,
    seed: u64,
    state: Mutex<State>,
    observers: Vec<Arc<dyn ConnectionObserver>>,
    gate: Option<RetiredGate>,
}

#[derive(Default)]
struct State {
    table: PeerTable,
    backoffs: BTreeMap<String, Backoff>,
    live: BTreeMap<String, Live>,
    next_id: u64,
    refusals: RefusalLog,
}

/// The peers a refusal (either way) was already logged for at INFO/WARN; later ones go to
/// DEBUG, so a retired till left running does not flood either log.
#[derive(Default)]
struct RefusalLog {
    logged: BTreeSet<String>,
}

impl RefusalLog {
    /// True the first time a refusal involving `device` is seen (log it at INFO/WARN),
    /// false for repeats (DEBUG).
    fn first(&mut self, device: &str) -> bool {
        self.logged.insert(device.to_owned())
    }

    /// True while refusals with `device` are being repeated (its connections are logged
    /// at DEBUG).
    fn repeating(&self, device: &str) -> bool {
        self.logged.contains(device)
    }

    /// A connection to `device` answered a ping: its next refusal is news again.
    fn healthy(&mut self, device: &str) {
        self.logged.remove(device);
    }
}

/// The delay in ms before the next dial of a peer whose connection failed. A refusal (a
/// peer refusing us, or us refusing it) jumps to the longest window: the successful
/// handshake before it reset the backoff, yet retrying sooner cannot help.
fn next_dial_delay_ms(backoff: &mut Backoff, refused: bool) -> u64 {
    if refused {
        backoff.saturate();
    }
    backoff.next_delay_ms()
}

struct Live {
    id: u64,
    connection: Arc<MeshConnection>,
    direction: DialDirection,
}

impl PeerManager {
    /// Starts the accept and dial loops on `endpoint` with the configured `static_peers`;
    /// both stop when `stop` turns true. `seed` seeds the backoff jitter. Each of
    /// `observers` (ledger replication, later Raft) is told of every connection adopted and
    /// closed, in order.
    pub fn start(
        endpoint: MeshEndpoint,
        static_peers: &[super::StaticPeer],
        seed: u64,
        stop: watch::Receiver<bool>,
        observers: Vec<Arc<dyn ConnectionObserver>>,
    ) -> Arc<Self> {
        Self::start_gated(endpoint, static_peers, seed, stop, observers, None)
    }

    /// [`PeerManager::start`] that refuses the devices `gate` says were retired from the
    /// store and tells it when a peer refused this one ([`super::retired_gate`]).
    pub fn start_gated(
        endpoint: MeshEndpoint,
        static_peers: &[super::StaticPeer],
        seed: u64,
        stop: watch::Receiver<bool>,
        observers: Vec<Arc<dyn ConnectionObserver>>,
        gate: Option<RetiredGate>,
    ) -> Arc<Self> {
        let local_device = endpoint.local_identity().device_id().to_owned();
        let manager = Arc::new(Self {
            endpoint: Arc::new(endpoint),
            local_device,
            seed,
            state: Mutex::new(State::default()),
            observers,
            gate,
        });
        for peer in static_peers {
            manager.learned(&peer.device_id, peer.addr, PeerSource::Static);
        }
        tokio::spawn(manager.clone().accept_loop(stop.clone()));
        tokio::spawn(manager.clone().dial_loop(stop));
        manager
    }

    /// The mesh endpoint's local UDP address.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.endpoint.local_addr().ok()
    }

    /// The endpoint (refusal counters, identity).
    pub fn endpoint(&self) -> &MeshEndpoint {
        &self.endpoint
    }

    /// Records a peer address learned from `source` (mDNS or configuration). Our own
    /// announcement is ignored.
    pub fn learned(&self, device_id: &str, addr: SocketAddr, source: PeerSource) {
        if device_id == self.local_device {
            return;
        }
        if let Err(error) = self
            .lock()
            .table
            .discovered(device_id, addr, source, wall_clock_ms())
        {
            tracing::warn!(%error, device = device_id, "peer not recorded");
        }
    }

    /// The peer table now.
    pub fn snapshot(&self) -> PeerTableSnapshot {
        self.lock().table.snapshot(wall_clock_ms())
    }

    /// Peers with a live connection.
    pub fn connected_count(&self) -> usize {
        self.lock().live.len()
    }

    /// Closes every connection and the endpoint.
    pub fn close(&self) {
        self.endpoint.close();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the table consistent (every transition is
        // one call), so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn accept_loop(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                accepted = self.endpoint.accept() => match accepted {
                    Ok(connection) => self.adopt(connection, DialDirection::Incoming),
                    Err(error) => {
                        tracing::debug!(%error, "mesh accept loop stops");
                        return;
                    }
                },
                _ = stop.wait_for(|stopped| *stopped) => return,
            }
        }
    }

    async fn dial_loop(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(DIAL_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|stopped| *stopped) => return,
            }
            let due: Vec<(String, SocketAddr)> = {
                let mut state = self.lock();
                let now_ms = wall_clock_ms();
                let due: Vec<(String, SocketAddr)> = state
                    .table
                    .due_for_dial(now_ms)
                    .into_iter()
                    .filter_map(|id| state.table.get(id).map(|e| (id.to_owned(), e.addr)))
                    .collect();
                for (device, _) in &due {
                    let _ = state.table.connecting(device, now_ms);
                }
                due
            };
            for (device, addr) in due {
                tokio::spawn(self.clone().dial(device, addr));
            }
        }
    }

    async fn dial(self: Arc<Self>, device: String, addr: SocketAddr) {
        match self.endpoint.connect(addr).await {
            Ok(connection) if connection.peer_identity().device_id() == device => {
                self.adopt(connection, DialDirection::Outgoing);
            }
            Ok(connection) => {
                tracing::warn!(
                    expected = %device, found = %connection.peer_identity(), %addr,
                    "peer at this address is another device; dropping the connection"
                );
                connection.close(CLOSE_DUPLICATE, b"unexpected device");
                self.failed(&device);
            }
            Err(error) => {
                let refused = match &error {
                    MeshError::Connection(reason) => retired_gate::refusal_code(reason).is_some(),
                    _ => false,
                };
                if refused && !self.lock().refusals.first(&device) {
                    tracing::debug!(peer = %device, %addr, %error, "dial refused again");
                } else {
                    tracing::info!(peer = %device, %addr, %error, "dial failed");
                }
                // A handshake refused with a TLS alert (the peer's or ours) is shown with
                // the peer in `posmesh status` until a connection is up.
                if matches!(
                    error,
                    MeshError::RefusedByPeer { .. } | MeshError::RefusedPeer { .. }
                ) {
                    let _ = self.lock().table.refused(&device, error.to_string());
                }
                self.failed_after(&device, refused);
            }
        }
    }

    /// Takes a verified connection into the table, settling duplicates.
    fn adopt(self: &Arc<Self>, connection: MeshConnection, direction: DialDirection) {
        let connection = Arc::new(connection);
        let peer = connection.peer_identity().clone();
        if peer.role() != Role::Device {
            tracing::info!(%peer, "connection from the chain's cloud (not yet used by devices)");
            return;
        }
        let device = peer.device_id().to_owned();
        if self.refuse_if_retired(&device, &connection) {
            self.failed_after(&device, true);
            return;
        }
        let now_ms = wall_clock_ms();
        let rtt_ms = u64::try_from(connection.rtt().as_millis()).ok();
        let mut state = self.lock();
        if let Some(existing) = state.live.get(&device) {
            let existing_alive = existing.connection.close_reason().is_none();
            let keep_new = !existing_alive
                || existing.direction == direction
                || keep_connection(&self.local_device, &device, direction);
            if !keep_new {
                connection.close(CLOSE_DUPLICATE, b"duplicate connection");
                return;
            }
            existing
                .connection
                .close(CLOSE_DUPLICATE, b"duplicate connection");
        }
        let source = match direction {
            DialDirection::Incoming => PeerSource::Incoming,
            DialDirection::Outgoing => PeerSource::Static,
        };
        if state.table.get(&device).is_none() {
            let _ = state
                .table
                .discovered(&device, connection.remote_address(), source, now_ms);
        }
        let _ = state.table.connected(&device, rtt_ms, now_ms);
        if let Some(backoff) = state.backoffs.get_mut(&device) {
            backoff.reset();
        }
        state.next_id += 1;
        let id = state.next_id;
        state.live.insert(
            device.clone(),
            Live {
                id,
                connection: connection.clone(),
                direction,
            },
        );
        let connected = state.live.len();
        let repeating = state.refusals.repeating(&device);
        drop(state);
        metrics::gauge!("posmesh_mesh_peers_connected").set(connected as f64);
        if repeating {
            tracing::debug!(peer = %device, ?direction, addr = %connection.remote_address(), "peer connected (refused before)");
        } else {
            tracing::info!(peer = %device, ?direction, addr = %connection.remote_address(), "peer connected");
        }
        for observer in &self.observers {
            observer.clone().connected(&device, id, connection.clone());
        }
        tokio::spawn(self.clone().watch(device, id, connection));
    }

    /// Pings a live connection until it closes, then schedules a reconnect.
    /// A device retired meanwhile is refused at the next round.
    async fn watch(self: Arc<Self>, device: String, id: u64, connection: Arc<MeshConnection>) {
        let mut refused = false;
        loop {
            if self.refuse_if_retired(&device, &connection) {
                refused = true;
                break;
            }
            tokio::select! {
                reason = connection.closed() => {
                    refused = retired_gate::refusal_code(&reason).is_some();
                    if refused && !self.lock().refusals.first(&device) {
                        tracing::debug!(peer = %device, %reason, "peer connection refused again");
                    } else {
                        tracing::info!(peer = %device, %reason, "peer connection closed");
                    }
                    if let (Some(gate), Some(index)) =
                        (&self.gate, retired_gate::refused_as_retired(&reason))
                    {
                        (gate.on_refused)(&device, index);
                    }
                    if let (Some(gate), Some(claim)) =
                        (&self.gate, retired_gate::refused_as_revoked(&reason))
                    {
                        (gate.on_revoked)(&device, &claim);
                    }
                    break;
                }
                _ = tokio::time::sleep(PING_INTERVAL) => match tokio::time::timeout(PING_TIMEOUT, connection.ping()).await {
                    Ok(Ok(rtt)) => {
                        let rtt_ms = u64::try_from(rtt.as_millis()).unwrap_or(u64::MAX);
                        let mut state = self.lock();
                        let _ = state.table.record_rtt(&device, rtt_ms, wall_clock_ms());
                        state.refusals.healthy(&device);
                    }
                    Ok(Err(error)) => {
                        tracing::info!(peer = %device, %error, "ping failed");
                        connection.close(CLOSE_DUPLICATE, b"ping failed");
                        break;
                    }
                    Err(_) => {
                        tracing::info!(peer = %device, "ping timed out");
                        connection.close(CLOSE_DUPLICATE, b"ping failed");
                        break;
                    }
                },
            }
        }
        for observer in &self.observers {
            observer.clone().closed(&device, id);
        }
        let mut state = self.lock();
        let still_current = state.live.get(&device).is_some_and(|live| live.id == id);
        if still_current {
            state.live.remove(&device);
            let connected = state.live.len();
            drop(state);
            metrics::gauge!("posmesh_mesh_peers_connected").set(connected as f64);
            self.failed_after(&device, refused);
        }
    }

    /// Closes `connection` with [`CLOSE_RETIRED`] when `device` was retired from the
    /// store, or [`retired_gate::CLOSE_REVOKED`] when the certificate it presented was
    /// revoked through Raft; true when it did.
    fn refuse_if_retired(&self, device: &str, connection: &MeshConnection) -> bool {
        let Some((code, reason)) = self
            .gate
            .as_ref()
            .and_then(|gate| retired_gate::refusal(gate, device, connection.peer_serial_hex()))
        else {
            return false;
        };
        if connection.close_reason().is_none() {
            let why = String::from_utf8_lossy(&reason).into_owned();
            if !self.lock().refusals.first(device) {
                tracing::debug!(peer = %device, %why, "refused the peer's connection again");
                metrics::counter!(if code == CLOSE_RETIRED {
                    "posmesh_mesh_retired_refused_total"
                } else {
                    "posmesh_mesh_revoked_refused_total"
                })
                .increment(1);
            } else if code == CLOSE_RETIRED {
                tracing::info!(peer = %device, %why,
                    "refused the connection of a device retired from the store");
                metrics::counter!("posmesh_mesh_retired_refused_total").increment(1);
            } else {
                tracing::warn!(peer = %device, serial = connection.peer_serial_hex().unwrap_or(""),
                    %why, "refused a connection presenting a certificate revoked through the store's Raft");
                metrics::counter!("posmesh_mesh_revoked_refused_total").increment(1);
            }
            connection.close(code, &reason);
        }
        true
    }

    /// A dial failed or a connection was lost: back off before the next dial, to the
    /// longest window when the connection was `refused` (either way).
    fn failed(&self, device: &str) {
        self.failed_after(device, false);
    }

    /// [`PeerManager::failed`], saying whether the connection ended in a refusal.
    fn failed_after(&self, device: &str, refused: bool) {
        let mut state = self.lock();
        if state.live.contains_key(device) {
            return; // the peer dialed us meanwhile
        }
        let seed = self.seed ^ fnv1a(device.as_bytes());
        let backoff = state
            .backoffs
            .entry(device.to_owned())
            .or_insert_with(|| Backoff::new(BACKOFF_INITIAL_MS, BACKOFF_MAX_MS, seed));
        let delay_ms = next_dial_delay_ms(backoff, refused);
        let _ = state.table.failed(device, delay_ms, wall_clock_ms());
    }
}

/// FNV-1a (64-bit) of `bytes`: a stable per-peer salt for the backoff seed.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_connection_backs_off_to_the_longest_window() {
        // A retired till: every handshake succeeds (the adoption resets the backoff), then
        // the peer closes with a refusal code. The next dial waits up to the longest window,
        // not up to the first one (which redialed 3-5 times a second).
        let mut backoff = Backoff::new(BACKOFF_INITIAL_MS, BACKOFF_MAX_MS, 11);
        let mut total_ms = 0;
        for _ in 0..200 {
            backoff.reset();
            next_dial_delay_ms(&mut backoff, true);
            assert_eq!(backoff.window_ms(), BACKOFF_MAX_MS);
            backoff.reset();
            total_ms += next_dial_delay_ms(&mut backoff, true);
        }
        // 200 draws uniform in [0, 10 s]: about 1,000 s in all, far above 200 × 250 ms.
        assert!(total_ms > 200 * BACKOFF_INITIAL_MS * 4, "{total_ms}");
        // An ordinary loss after a success still starts from the first window.
        backoff.reset();
        assert!(next_dial_delay_ms(&mut backoff, false) <= BACKOFF_INITIAL_MS);
    }

    #[test]
    fn refusals_are_logged_once_per_peer_until_a_healthy_connection() {
        let mut log = RefusalLog::default();
        assert!(!log.repeating("till-3"));
        assert!(log.first("till-3"));
        assert!(!log.first("till-3"));
        assert!(log.repeating("till-3"));
        assert!(log.first("till-4"), "per peer");
        log.healthy("till-3");
        assert!(!log.repeating("till-3"));
        assert!(log.first("till-3"), "news again after a healthy connection");
    }
}
