//! Founding a store on its first device (`posmesh init`): the Raft group is initialised
//! with this device as its only voter, the newest rules version is adopted in its first
//! entry ([`posmesh_consensus::rules`]: a new store never applies an entry under older
//! rules), the provisioning commands are committed, and all of it is on disk before the
//! command returns — the device then starts as the store's
//! founding member, and the store's other devices join it as learners once connected.

use super::network::{MeshRaftNetwork, RaftLinks};
use super::node_id::node_id;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::{BasicNode, ServerState};
use posmesh_consensus::{raft_config, RaftTimings, StoreCommand, StoreRaft, StoreResponse};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long founding waits for the founding device to elect itself (one election timeout,
/// at most 3 s with the store timings, plus slack).
pub const FOUNDING_DEADLINE: Duration = Duration::from_secs(15);

/// What `posmesh init` did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Founded {
    /// The founding device.
    pub device_id: String,
    /// Its Raft node id.
    pub node_id: u64,
    /// Term of its first leadership.
    pub term: u64,
    /// The rules version the store follows from its first entry on
    /// ([`posmesh_consensus::rules`]).
    pub rules_version: u32,
    /// Log index of the entry that adopted it.
    pub rules_adopted_at: u64,
    /// Per provisioning command: its log index and what the state machine answered.
    pub provisioned: Vec<(u64, String)>,
    /// The Raft group founded (recorded in the data directory).
    pub group: posmesh_consensus::group::GroupIdentity,
}

/// Why a store cannot be founded here.
#[derive(Debug, thiserror::Error)]
pub enum FoundingError {
    /// The data directory already holds a Raft group.
    #[error("this data directory's Raft group is already initialised (the device is a member of a store): nothing done")]
    AlreadyInitialised,
    /// A provisioning command was refused by the state machine (the store is founded; the
    /// commands before it applied).
    #[error("provisioning command #{position} ({command}) was refused: {why}")]
    Refused {
        /// 1-based position in the provisioning commands.
        position: usize,
        /// The command.
        command: String,
        /// The refusal.
        why: String,
    },
    /// The founding device did not become leader in time (should not happen: it is the only
    /// voter).
    #[error("the founding device did not become the store's leader within {0:?}")]
    NoLeader(Duration),
    /// The state machine refused the newest rules version (should not happen: a new
    /// store follows version 1, which never goes back below it).
    #[error("the new store refused rules version {version}: {why}")]
    RulesRefused {
        /// The version.
        version: u32,
        /// The refusal.
        why: String,
    },
    /// Storage or openraft errors.
    #[error(transparent)]
    Raft(#[from] anyhow::Error),
}

/// Initialises the Raft group in `<data_dir>/raft` with `device_id` as its only voter,
/// commits `commands` in order, and shuts Raft down (everything synced).
///
/// # Errors
/// [`FoundingError`]; an already initialised directory is refused before anything changes.
pub async fn found_store(
    data_dir: &Path,
    store_id: &str,
    device_id: &str,
    commands: Vec<StoreCommand>,
) -> Result<Founded, FoundingError> {
    let (log, state_machine) =
        posmesh_consensus::open(&data_dir.join("raft")).map_err(anyhow::Error::from)?;
    let config = Arc::new(
        raft_config(store_id, RaftTimings::STORE)
            .map_err(anyhow::Error::from)?
            .validate()
            .map_err(anyhow::Error::from)?,
    );
    let id = node_id(device_id);
    // No peers yet: a network without connections (every RPC fails; none is needed).
    let network = MeshRaftNetwork {
        links: Arc::new(RaftLinks::default()),
    };
    let raft = StoreRaft::new(id, config, network, log, state_machine)
        .await
        .map_err(anyhow::Error::from)?;
    let result = found_on(&raft, data_dir, id, device_id, commands).await;
    if let Err(error) = raft.shutdown().await {
        tracing::warn!(%error, "raft shutdown after founding");
    }
    result
}

async fn found_on(
    raft: &StoreRaft,
    data_dir: &Path,
    id: u64,
    device_id: &str,
    commands: Vec<StoreCommand>,
) -> Result<Founded, FoundingError> {
    if raft.is_initialized().await.map_err(anyhow::Error::from)? {
        return Err(FoundingError::AlreadyInitialised);
    }
    // The group's identity is on disk before the group exists.
    let group = super::group_file::found(device_id);
    super::group_file::store(data_dir, &group)?;
    raft.initialize(BTreeMap::from([(id, BasicNode::new(device_id))]))
        .await
        .map_err(anyhow::Error::from)?;
    let term = wait_leadership(raft).await?;
    let rules_index = adopt_latest_rules(raft).await?;
    let mut provisioned = Vec::new();
    for (position, command) in commands.into_iter().enumerate() {
        let text = command.to_string();
        let (index, response) = posmesh_consensus::write(raft, command, FOUNDING_DEADLINE)
            .await
            .map_err(anyhow::Error::from)?;
        if let StoreResponse::Refused(refusal) = response {
            return Err(FoundingError::Refused {
                position: position + 1,
                command: text,
                why: refusal.to_string(),
            });
        }
        provisioned.push((index, text));
    }
    Ok(Founded {
        device_id: device_id.to_owned(),
        node_id: id,
        term,
        rules_version: posmesh_consensus::rules::RULES_VERSION_LATEST,
        rules_adopted_at: rules_index,
        provisioned,
        group,
    })
}

/// Waits (at most [`FOUNDING_DEADLINE`]) until the founding device leads its new group:
/// the term of its leadership.
async fn wait_leadership(raft: &StoreRaft) -> Result<u64, FoundingError> {
    let started = Instant::now();
    loop {
        let metrics = raft.metrics().borrow_watched().clone();
        if metrics.state == ServerState::Leader {
            return Ok(metrics.current_term);
        }
        if started.elapsed() > FOUNDING_DEADLINE {
            return Err(FoundingError::NoLeader(FOUNDING_DEADLINE));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// On a store's founding device, right after the group is initialised: waits until it
/// leads, then commits [`StoreCommand::AdoptRules`] with the newest rules version this
/// binary knows ([`posmesh_consensus::rules`]): the log's first entry after the founding
/// membership. Its log index.
///
/// # Errors
/// No leadership in [`FOUNDING_DEADLINE`], Raft errors, or the state machine's refusal
/// ([`FoundingError::RulesRefused`]).
pub async fn adopt_latest_rules(raft: &StoreRaft) -> Result<u64, FoundingError> {
    wait_leadership(raft).await?;
    let version = posmesh_consensus::rules::RULES_VERSION_LATEST;
    let (index, response) = posmesh_consensus::write(
        raft,
        StoreCommand::AdoptRules { version },
        FOUNDING_DEADLINE,
    )
    .await
    .map_err(anyhow::Error::from)?;
    if let StoreResponse::Refused(refusal) = response {
        return Err(FoundingError::RulesRefused {
            version,
            why: refusal.to_string(),
        });
    }
    Ok(index)
}
