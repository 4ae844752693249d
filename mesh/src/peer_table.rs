//! [`PeerTable`]: the peers a node knows, how it learned of them and where each connection
//! stands. Pure: every transition takes `now_ms` (milliseconds on the caller's clock).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::error::{MeshError, Result};

/// Most peers one table holds (a store has at most a few dozen devices, plus the cloud).
pub const PEERS_MAX: usize = 1_024;

/// How a peer's address was learned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerSource {
    /// From an mDNS / DNS-SD announcement (RFC 6762 / RFC 6763); a hint only.
    Mdns,
    /// From the node's configuration. A static address is never replaced by an mDNS one.
    Static,
    /// The peer dialed us (verified by mTLS); its address is the one it dialed from, which
    /// is its mesh endpoint (one UDP endpoint per node).
    Incoming,
}

/// Where the connection to a peer stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum PeerState {
    /// Known, never dialed yet (or forgotten after a failure without backoff).
    Discovered,
    /// A dial is in flight.
    Connecting,
    /// A verified connection is up.
    Connected,
    /// The last attempt failed; no dial before `until_ms`.
    Backoff {
        /// Earliest time of the next dial, in ms.
        until_ms: u64,
    },
}

/// One peer.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PeerEntry {
    /// The peer's UDP address.
    pub addr: SocketAddr,
    /// Connection state.
    pub state: PeerState,
    /// Last measured round-trip time in ms, if any.
    pub rtt_ms: Option<u64>,
    /// Last time the peer was announced, dialed successfully or heard from, in ms.
    pub last_seen_ms: u64,
    /// Where the address came from.
    pub source: PeerSource,
    /// Why the last dial was refused in its TLS handshake (the alert, in words: ours or
    /// the peer's, e.g. "refused by peer: our certificate is revoked … (TLS alert 44
    /// certificate_revoked)"); cleared once a connection is up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// The peers of a node, keyed by device id (ordered, so snapshots are stable).
#[derive(Clone, Debug, Default)]
pub struct PeerTable {
    peers: BTreeMap<String, PeerEntry>,
}

/// A point-in-time copy of the table for the management API.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PeerTableSnapshot {
    /// When the snapshot was taken, in ms.
    pub taken_at_ms: u64,
    /// Every peer with its entry, ordered by device id.
    pub peers: Vec<PeerSnapshot>,
}

/// One row of a [`PeerTableSnapshot`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PeerSnapshot {
    /// The peer's device id.
    pub device_id: String,
    /// Its entry.
    #[serde(flatten)]
    pub entry: PeerEntry,
}

impl PeerTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of peers.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// True when no peer is known.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// The entry of `device_id`.
    pub fn get(&self, device_id: &str) -> Option<&PeerEntry> {
        self.peers.get(device_id)
    }

    /// Records an announcement or configured address. A new peer starts `Discovered`; a
    /// known one keeps its state and refreshes `last_seen_ms`; its address changes unless
    /// it is `Static` and the news comes from mDNS or an incoming connection.
    ///
    /// # Errors
    /// [`MeshError::PeerTableFull`] for a new peer beyond [`PEERS_MAX`] (table unchanged).
    pub fn discovered(
        &mut self,
        device_id: &str,
        addr: SocketAddr,
        source: PeerSource,
        now_ms: u64,
    ) -> Result<()> {
        if let Some(entry) = self.peers.get_mut(device_id) {
            // A configured address is never replaced by a learned one.
            let learned_over_static =
                entry.source == PeerSource::Static && source != PeerSource::Static;
            if !learned_over_static {
                entry.addr = addr;
                entry.source = source;
            }
            entry.last_seen_ms = entry.last_seen_ms.max(now_ms);
            return Ok(());
        }
        if self.peers.len() >= PEERS_MAX {
            return Err(MeshError::PeerTableFull(PEERS_MAX));
        }
        self.peers.insert(
            device_id.to_owned(),
            PeerEntry {
                addr,
                state: PeerState::Discovered,
                rtt_ms: None,
                last_seen_ms: now_ms,
                source,
                refused: None,
            },
        );
        Ok(())
    }

    fn entry(&mut self, device_id: &str) -> Result<&mut PeerEntry> {
        self.peers
            .get_mut(device_id)
            .ok_or_else(|| MeshError::UnknownPeer(device_id.to_owned()))
    }

    /// A dial started.
    ///
    /// # Errors
    /// [`MeshError::UnknownPeer`].
    pub fn connecting(&mut self, device_id: &str, _now_ms: u64) -> Result<()> {
        self.entry(device_id)?.state = PeerState::Connecting;
        Ok(())
    }

    /// A verified connection is up (dialed or accepted).
    ///
    /// # Errors
    /// [`MeshError::UnknownPeer`].
    pub fn connected(&mut self, device_id: &str, rtt_ms: Option<u64>, now_ms: u64) -> Result<()> {
        let entry = self.entry(device_id)?;
        entry.state = PeerState::Connected;
        entry.refused = None;
        entry.rtt_ms = rtt_ms.or(entry.rtt_ms);
        entry.last_seen_ms = entry.last_seen_ms.max(now_ms);
        Ok(())
    }

    /// A fresh round-trip measurement.
    ///
    /// # Errors
    /// [`MeshError::UnknownPeer`].
    pub fn record_rtt(&mut self, device_id: &str, rtt_ms: u64, now_ms: u64) -> Result<()> {
        let entry = self.entry(device_id)?;
        entry.rtt_ms = Some(rtt_ms);
        entry.last_seen_ms = entry.last_seen_ms.max(now_ms);
        Ok(())
    }

    /// A dial failed or a connection was lost: no new dial before `now_ms + delay_ms`
    /// (the delay comes from the peer's [`crate::backoff::Backoff`]).
    ///
    /// # Errors
    /// [`MeshError::UnknownPeer`].
    pub fn failed(&mut self, device_id: &str, delay_ms: u64, now_ms: u64) -> Result<()> {
        self.entry(device_id)?.state = PeerState::Backoff {
            until_ms: now_ms.saturating_add(delay_ms),
        };
        Ok(())
    }

    /// A dial was refused in its TLS handshake: `why`, in words, until a connection is up.
    ///
    /// # Errors
    /// [`MeshError::UnknownPeer`].
    pub fn refused(&mut self, device_id: &str, why: String) -> Result<()> {
        self.entry(device_id)?.refused = Some(why);
        Ok(())
    }

    /// Forgets a peer (retired device). Returns its last entry.
    pub fn remove(&mut self, device_id: &str) -> Option<PeerEntry> {
        self.peers.remove(device_id)
    }

    /// Peers to dial at `now_ms`: `Discovered` ones and those whose backoff has elapsed,
    /// ordered by device id.
    pub fn due_for_dial(&self, now_ms: u64) -> Vec<&str> {
        self.peers
            .iter()
            .filter(|(_, e)| match e.state {
                PeerState::Discovered => true,
                PeerState::Backoff { until_ms } => until_ms <= now_ms,
                PeerState::Connecting | PeerState::Connected => false,
            })
            .map(|(id, _)| id.as_str())
            .collect()
    }

    /// A copy of the table for the management API.
    pub fn snapshot(&self, now_ms: u64) -> PeerTableSnapshot {
        PeerTableSnapshot {
            taken_at_ms: now_ms,
            peers: self
                .peers
                .iter()
                .map(|(id, entry)| PeerSnapshot {
                    device_id: id.clone(),
                    entry: entry.clone(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn lifecycle() -> Result<()> {
        let mut t = PeerTable::new();
        t.discovered("till-2", addr(1), PeerSource::Mdns, 10)?;
        assert_eq!(t.due_for_dial(10), vec!["till-2"]);
        t.connecting("till-2", 11)?;
        assert!(t.due_for_dial(11).is_empty());
        t.failed("till-2", 500, 20)?;
        assert_eq!(
            t.get("till-2").map(|e| e.state),
            Some(PeerState::Backoff { until_ms: 520 })
        );
        assert!(t.due_for_dial(519).is_empty());
        assert_eq!(t.due_for_dial(520), vec!["till-2"]);
        t.connecting("till-2", 520)?;
        t.connected("till-2", Some(3), 530)?;
        t.record_rtt("till-2", 4, 540)?;
        let e = t.get("till-2").cloned();
        assert_eq!(e.as_ref().map(|e| e.state), Some(PeerState::Connected));
        assert_eq!(e.as_ref().and_then(|e| e.rtt_ms), Some(4));
        assert_eq!(e.map(|e| e.last_seen_ms), Some(540));
        assert!(t.remove("till-2").is_some());
        assert!(t.is_empty());
        Ok(())
    }

    #[test]
    fn static_address_wins_over_mdns() -> Result<()> {
        let mut t = PeerTable::new();
        t.discovered("a", addr(1), PeerSource::Static, 0)?;
        t.discovered("a", addr(2), PeerSource::Mdns, 5)?;
        assert_eq!(t.get("a").map(|e| e.addr), Some(addr(1)));
        assert_eq!(t.get("a").map(|e| e.last_seen_ms), Some(5));
        t.discovered("a", addr(3), PeerSource::Static, 6)?;
        assert_eq!(t.get("a").map(|e| e.addr), Some(addr(3)));
        t.discovered("b", addr(4), PeerSource::Mdns, 0)?;
        t.discovered("b", addr(5), PeerSource::Mdns, 1)?;
        assert_eq!(t.get("b").map(|e| e.addr), Some(addr(5)));
        Ok(())
    }

    #[test]
    fn unknown_peer_and_full_table_change_nothing() -> Result<()> {
        let mut t = PeerTable::new();
        assert!(matches!(
            t.connecting("x", 0),
            Err(MeshError::UnknownPeer(_))
        ));
        for i in 0..PEERS_MAX {
            t.discovered(&format!("d{i}"), addr(1), PeerSource::Mdns, 0)?;
        }
        assert!(matches!(
            t.discovered("overflow", addr(1), PeerSource::Mdns, 0),
            Err(MeshError::PeerTableFull(_))
        ));
        assert_eq!(t.len(), PEERS_MAX);
        assert!(t.get("overflow").is_none());
        Ok(())
    }

    #[test]
    fn snapshot_is_ordered() -> Result<()> {
        let mut t = PeerTable::new();
        t.discovered("b", addr(2), PeerSource::Mdns, 0)?;
        t.discovered("a", addr(1), PeerSource::Static, 0)?;
        let snap = t.snapshot(99);
        assert_eq!(snap.taken_at_ms, 99);
        let ids: Vec<&str> = snap.peers.iter().map(|p| p.device_id.as_str()).collect();
        assert_eq!(ids, vec!["a", "b"]);
        Ok(())
    }
}
