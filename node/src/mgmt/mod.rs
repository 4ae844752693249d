//! The management API (loopback by default): what `posmesh status` shows — the journal,
//! the mesh, replication, Raft, the uplink, and whether this device refuses sales.

use crate::runtime::NodeContext;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// `GET /v1/status` answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Store id.
    pub store_id: String,
    /// Store name.
    pub store_name: String,
    /// Device id.
    pub device_id: String,
    /// Device incarnation.
    pub device_incarnation: u64,
    /// posmesh version.
    pub version: String,
    /// Seconds since the node started.
    pub uptime_s: u64,
    /// Operating-system process id.
    pub pid: u32,
    /// The local journal.
    pub journal: JournalStatus,
    /// The store mesh, when the device has an identity.
    pub mesh: Option<MeshStatus>,
    /// What this node holds of every device's journal (and, with a mesh, replication).
    #[serde(default)]
    pub replication: Option<ReplicationStatus>,
    /// Shared orders held here.
    #[serde(default)]
    pub orders: Option<OrdersStatus>,
    /// Manager alerts held here (`GET /v1/alerts` on the sales API lists them).
    #[serde(default)]
    pub alerts_total: u64,
    /// The store's Raft group as this device sees it (with a mesh).
    #[serde(default)]
    pub raft: Option<crate::consensus::RaftStatus>,
    /// The upload to the chain's cloud (with `--cloud`).
    #[serde(default)]
    pub uplink: Option<crate::uplink::UplinkStatus>,
    /// Set while this device refuses every sale and every other write (retired, identity
    /// conflict, certificate revoked or its journal cut by the store): the refusal its
    /// sales API answers ([`crate::api::write_bar`]). `posmesh status` then exits
    /// [`crate::cli::status::EXIT_REFUSES_SALES`]. Absent from older nodes' answers.
    #[serde(default)]
    pub sales_refused: Option<SalesRefusal>,
}

/// Why this device refuses every sale: what its sales API answers each write.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SalesRefusal {
    /// The API's error code: `device_retired`, `device_identity_conflict` or
    /// `certificate_revoked`.
    pub code: String,
    /// What happened and what to do, for a person.
    pub message: String,
}

/// The shared orders as held here.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OrdersStatus {
    /// Orders held (open and closed).
    pub count: usize,
    /// SHA-256 over every order's id and Automerge heads, hex: equal on two nodes iff they
    /// hold the same orders with the same edits.
    pub digest: String,
}

/// The ledger as held here: every device's journal, and the replication service.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReplicationStatus {
    /// Version vector: device → highest seq held (entries `1 ..= seq`).
    pub version_vector: std::collections::BTreeMap<String, u64>,
    /// Device → chain hash of its last held entry, hex.
    pub head_hashes: std::collections::BTreeMap<String, String>,
    /// SHA-256 over the sorted (device, seq, head hash) list, hex: equal on two nodes iff
    /// they hold the same entries ([`crate::replication::LedgerDigest`]).
    pub digest: String,
    /// Entries held, all devices together.
    pub entries_total: u64,
    /// Peers with a sync link (empty without a mesh).
    pub peers: Vec<String>,
    /// Devices whose chain-head key is known from a verified attestation (own included).
    pub known_keys: Vec<String>,
    /// Batches, attestations and frames refused since start.
    pub refused_total: u64,
    /// Replicated batches stored since start.
    pub stores_confirmed: u64,
    /// Entries peers advertised that this node does not hold yet (0 when caught up).
    #[serde(default)]
    pub entries_behind: u64,
    /// Why this device must not sell under its id, once a peer showed that the store holds
    /// history of its id that its journal does not (a wiped till restarted under its old
    /// id; `device_identity_conflict`).
    #[serde(default)]
    pub identity_conflict: Option<String>,
}

/// The mesh as this node sees it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MeshStatus {
    /// Our identity (certificate DNS name).
    pub identity: String,
    /// UDP address of our endpoint.
    pub listen: Option<String>,
    /// Known peers, ordered by device id.
    pub peers: Vec<PeerStatus>,
    /// Refused handshakes since start, by reason.
    pub refusals: std::collections::BTreeMap<String, u64>,
}

/// One peer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PeerStatus {
    /// Device id.
    pub device_id: String,
    /// Mesh address.
    pub addr: String,
    /// `discovered`, `connecting`, `connected` or `backoff`.
    pub state: String,
    /// Last round-trip time, ms.
    pub rtt_ms: Option<u64>,
    /// Milliseconds since the peer was last heard of.
    pub last_seen_ago_ms: u64,
    /// `mdns`, `static` or `incoming`.
    pub source: String,
    /// Why the last dial's TLS handshake was refused (ours or the peer's alert, in words);
    /// absent once a connection is up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// The local journal's head and writer counters.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JournalStatus {
    /// Last sequence number.
    pub last_seq: u64,
    /// Last receipt number.
    pub last_receipt_no: u64,
    /// Chain hash of the last entry, hex.
    pub head_hash: String,
    /// Synced group commits since start.
    pub group_commits: u64,
    /// Entries appended since start.
    pub entries_appended: u64,
}

/// The management routes. An unknown path or method is answered as the sales API does:
/// a JSON 404 `no_such_endpoint` or 405 `method_not_allowed`.
pub fn router(node: Arc<NodeContext>) -> Router {
    Router::new()
        .route("/v1/status", get(status))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(node)
}

/// Unknown path: a JSON 404, as the sales API answers ([`crate::api::health::not_found`]).
async fn not_found() -> crate::api::error::ApiError {
    crate::api::error::ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "no_such_endpoint",
        "no such endpoint; the management API serves GET /v1/status",
        None,
    )
}

/// Known path, wrong method: a JSON 405.
async fn method_not_allowed() -> crate::api::error::ApiError {
    crate::api::error::ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "the management API serves GET /v1/status only",
        None,
    )
}

async fn status(
    State(node): State<Arc<NodeContext>>,
) -> Result<Json<NodeStatus>, crate::api::error::ApiError> {
    let head = node
        .store
        .head()
        .map_err(crate::api::error::ApiError::internal)?;
    let stats = node.writer.stats();
    Ok(Json(NodeStatus {
        store_id: node.identity.store_id.clone(),
        store_name: node.store_name.clone(),
        device_id: node.identity.device_id.clone(),
        device_incarnation: node.identity.device_incarnation,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        uptime_s: node.started.elapsed().as_secs(),
        pid: std::process::id(),
        journal: JournalStatus {
            last_seq: head.last_seq,
            last_receipt_no: head.last_receipt_no,
            head_hash: hex::encode(&head.head_hash),
            group_commits: stats.group_commits.load(Ordering::Relaxed),
            entries_appended: stats.entries_appended.load(Ordering::Relaxed),
        },
        mesh: node.peers.as_ref().map(|peers| mesh_status(peers)),
        replication: Some(replication_status(&node)?),
        orders: Some({
            let (digest, count) = node.orders.digest();
            OrdersStatus {
                count,
                digest: hex::encode(digest),
            }
        }),
        alerts_total: node
            .store
            .alerts()
            .map_err(crate::api::error::ApiError::internal)?
            .len() as u64,
        raft: node.raft.as_ref().map(|raft| raft.status()),
        uplink: node.uplink.as_ref().map(|uplink| uplink.status()),
        sales_refused: crate::api::write_bar::write_bar(&node).map(|refusal| SalesRefusal {
            code: refusal.code.to_owned(),
            message: refusal.message,
        }),
    }))
}

fn replication_status(
    node: &NodeContext,
) -> Result<ReplicationStatus, crate::api::error::ApiError> {
    let ledger = crate::replication::LedgerDigest::of_store(&node.store)
        .map_err(crate::api::error::ApiError::internal)?;
    let snapshot = node.replication.as_ref().map(|r| r.snapshot());
    Ok(ReplicationStatus {
        version_vector: ledger
            .devices
            .iter()
            .map(|d| (d.device_id.clone(), d.seq))
            .collect(),
        head_hashes: ledger
            .devices
            .iter()
            .map(|d| (d.device_id.clone(), hex::encode(d.head_hash)))
            .collect(),
        digest: hex::encode(ledger.digest),
        entries_total: ledger.entries_total(),
        peers: snapshot
            .as_ref()
            .map(|s| s.peers.clone())
            .unwrap_or_default(),
        known_keys: snapshot
            .as_ref()
            .map(|s| s.known_keys.clone())
            .unwrap_or_default(),
        refused_total: snapshot.as_ref().map_or(0, |s| s.refused_total),
        stores_confirmed: snapshot.as_ref().map_or(0, |s| s.stats.stores_confirmed),
        entries_behind: snapshot.as_ref().map_or(0, |s| s.entries_behind),
        identity_conflict: snapshot.and_then(|s| s.identity_conflict),
    })
}

fn mesh_status(peers: &crate::peers::PeerManager) -> MeshStatus {
    use posmesh_mesh::peer_table::{PeerSource, PeerState};
    let snapshot = peers.snapshot();
    MeshStatus {
        identity: peers.endpoint().local_identity().to_string(),
        listen: peers.local_addr().map(|a| a.to_string()),
        peers: snapshot
            .peers
            .iter()
            .map(|peer| PeerStatus {
                device_id: peer.device_id.clone(),
                addr: peer.entry.addr.to_string(),
                state: match peer.entry.state {
                    PeerState::Discovered => "discovered",
                    PeerState::Connecting => "connecting",
                    PeerState::Connected => "connected",
                    PeerState::Backoff { .. } => "backoff",
                }
                .to_owned(),
                rtt_ms: peer.entry.rtt_ms,
                last_seen_ago_ms: snapshot.taken_at_ms.saturating_sub(peer.entry.last_seen_ms),
                refused: peer.entry.refused.clone(),
                source: match peer.entry.source {
                    PeerSource::Mdns => "mdns",
                    PeerSource::Static => "static",
                    PeerSource::Incoming => "incoming",
                }
                .to_owned(),
            })
            .collect(),
        refusals: peers
            .endpoint()
            .counters()
            .snapshot()
            .into_iter()
            .filter(|(_, count)| *count > 0)
            .map(|(reason, count)| (reason.to_owned(), count))
            .collect(),
    }
}
