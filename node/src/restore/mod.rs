//! `posmesh store restore`: a store that lost every device, rebuilt on a new enrolled
//! device from what the chain's cloud holds (DESIGN: "snapshots also uploaded to the cloud
//! so a lost store can be restored").
//!
//! 1. From the device certificate (`--identity-dir`): the store and the NEW device id (a
//!    replaced device never reuses an old id; an id the cloud holds entries of is refused).
//! 2. From the cloud's admin API ([`cloud_fetch`]): the store's newest Raft snapshot (the
//!    applied `StoreState` and its log index), every device's signed chain head and key
//!    attestation, and all their journal entries.
//! 3. Verified as the cloud and the peers verify them: each key attestation against the
//!    chain CA (certificate chain, role, store, signature over the key; not the CRL — a lost
//!    device is usually revoked by now and its entries were accepted before), each device's
//!    hash chain from genesis and the Ed25519 signature of its head
//!    ([`posmesh_sync::cloud::plan_ingest`]); the snapshot must parse as the store state.
//! 4. Written into a temporary directory beside `--data-dir`: the journal (the old
//!    devices' entries as replicas, with their heads and keys, through the replication path
//!    [`crate::storage::JournalStore::store_replica_batch`]), a new Raft group founded on the
//!    new device ([`crate::consensus::group_file`]) whose state is the snapshot and whose
//!    membership is forced to the new device ([`posmesh_consensus::restore`]). Renamed to
//!    `--data-dir` only at the end: on any error nothing is left.
//!
//! Then `posmesh device` starts on it as the store's one-member Raft group; other new
//! devices join it as usual.

pub mod cloud_fetch;

use crate::cloud::admin_token::AdminToken;
use crate::consensus::group_file;
use crate::storage::JournalStore;
use anyhow::Context;
use base64::Engine;
use cloud_fetch::CloudFetch;
use posmesh_mesh::tls::{AcceptPolicy, ChainTrust};
use posmesh_mesh::Role;
use posmesh_proto::journal::v1::ChainHeadSignature;
use posmesh_proto::mesh::v1::KeyAttestation;
use posmesh_proto::sync::v1::{EntryBatch, EntryBytes};
use posmesh_sync::chain_head::PUBLIC_KEY_LEN;
use posmesh_sync::cloud::{plan_ingest, IngestPlan};
use posmesh_sync::replication::SigningKeys;
use prost::Message;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// What to restore, and where.
#[derive(Clone, Debug)]
pub struct RestorePlan {
    /// The new device's data directory (must not exist, or be empty).
    pub data_dir: PathBuf,
    /// The new device's identity directory (`posmesh ca issue`).
    pub identity_dir: PathBuf,
    /// The cloud's admin API, `host:port`.
    pub cloud_http: String,
}

/// One old device's journal, restored.
#[derive(Clone, Debug, Serialize)]
pub struct RestoredDevice {
    /// The device.
    pub device_id: String,
    /// Its entries restored, `1 ..= entries`.
    pub entries: u64,
}

/// What a restore did.
#[derive(Clone, Debug, Serialize)]
pub struct RestoreSummary {
    /// The store.
    pub store_id: String,
    /// The new device, the restored store's only Raft member.
    pub device_id: String,
    /// The Raft log index the restored state was applied up to.
    pub raft_log_index: u64,
    /// The old devices' journals.
    pub devices: Vec<RestoredDevice>,
    /// Gift cards in the restored state.
    pub gift_cards: usize,
    /// Catalog version in force (0: none).
    pub catalog_version: u64,
    /// Operators.
    pub operators: usize,
    /// Closed business days, in order.
    pub closed_days: Vec<String>,
    /// The new Raft group (`group … founded on <device> at …`).
    pub group: String,
    /// What a restore cannot bring back, in sentences.
    pub may_be_missing: Vec<String>,
}

struct OneKey {
    device_id: String,
    key: [u8; PUBLIC_KEY_LEN],
}

impl SigningKeys for OneKey {
    fn public_key(&self, device_id: &str) -> Option<[u8; PUBLIC_KEY_LEN]> {
        (device_id == self.device_id).then_some(self.key)
    }
}

/// A device's verified journal, ready to write.
struct VerifiedJournal {
    device_id: String,
    entries: Vec<(u64, Vec<u8>)>,
    head: ChainHeadSignature,
    attestation: KeyAttestation,
}

fn is_empty_dir(dir: &Path) -> anyhow::Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", dir.display())),
    }
}

/// Restores the store onto the new device; `progress` gets a line per step.
///
/// # Errors
/// A data directory that is not empty, an identity that is not a device's or whose id the
/// store already used, an unreachable cloud, an unknown store, a refused token, an entry,
/// head, key or snapshot that does not verify: nothing is written then.
pub async fn restore(
    plan: &RestorePlan,
    token: AdminToken,
    mut progress: impl FnMut(&str),
) -> anyhow::Result<RestoreSummary> {
    if !is_empty_dir(&plan.data_dir)? {
        anyhow::bail!(
            "{} is not empty: restore only into a new, empty data directory (nothing written)",
            plan.data_dir.display()
        );
    }
    let credentials = posmesh_mesh::pki::load_identity(&plan.identity_dir).with_context(|| {
        format!(
            "cannot load the device identity from {}",
            plan.identity_dir.display()
        )
    })?;
    let local = credentials.identity.clone();
    let (Role::Device, Some(store_id)) = (local.role(), local.store_id()) else {
        anyhow::bail!(
            "the certificate in {} is for {local}, not a device of a store",
            plan.identity_dir.display()
        );
    };
    let store_id = store_id.to_owned();
    let device_id = local.device_id().to_owned();
    let fetch = CloudFetch::new(&plan.cloud_http, token, &store_id)?;

    progress(&format!(
        "restoring store {store_id} onto new device {device_id} from the cloud at {}",
        plan.cloud_http
    ));
    let (raft_log_index, state_json) = fetch.snapshot().await?;
    let state = posmesh_consensus::restore::parse_state(&state_json)?;
    progress(&format!(
        "Raft snapshot: state applied up to log index {raft_log_index}"
    ));
    let journal = fetch.journal().await?;
    if journal.devices.iter().any(|d| d.device_id == device_id) {
        anyhow::bail!(
            "the cloud holds journal entries of {device_id}: a restored store needs a NEW \
             device id (issue a new certificate with `posmesh ca issue --device <new id>`)"
        );
    }
    if state.is_retired(&device_id) {
        anyhow::bail!("{device_id} was retired from store {store_id}: use a new device id");
    }

    // Verify everything before writing anything.
    let trust = ChainTrust::new(&credentials.ca_cert, None)
        .context("cannot load the chain CA from the identity directory")?;
    let policy = AcceptPolicy::for_identity(&local);
    let mut verified = Vec::new();
    for device in &journal.devices {
        let b64 = base64::engine::general_purpose::STANDARD;
        let head = ChainHeadSignature::decode(b64.decode(&device.head_b64)?.as_slice())
            .with_context(|| format!("the cloud's head of {} does not decode", device.device_id))?;
        let attestation = KeyAttestation::decode(b64.decode(&device.attestation_b64)?.as_slice())
            .with_context(|| {
            format!("the cloud's key of {} does not decode", device.device_id)
        })?;
        let attested = crate::replication::device_keys::verify_device_attestation(
            &trust,
            &policy,
            &attestation,
        )
        .map_err(|why| anyhow::anyhow!("the key of {} does not verify: {why}", device.device_id))?;
        if attested.identity.store_id() != Some(store_id.as_str())
            || attested.identity.device_id() != device.device_id
        {
            anyhow::bail!(
                "the cloud's key of {} is attested for {}",
                device.device_id,
                attested.identity
            );
        }
        let up_to = head.seq;
        let device_name = device.device_id.clone();
        let entries = fetch
            .entries(&device.device_id, up_to, |seq| {
                tracing::debug!(device = %device_name, seq, up_to, "entries fetched");
            })
            .await?;
        let batch = EntryBatch {
            device_id: device.device_id.clone(),
            entries: entries
                .into_iter()
                .map(|(seq, bytes)| EntryBytes { seq, bytes })
                .collect(),
            head: Some(head),
        };
        let keys = OneKey {
            device_id: device.device_id.clone(),
            key: attested.signing_public_key,
        };
        // The cloud holds no entry beyond a device's ledger cut: nothing to cut here.
        let upload = match plan_ingest(batch, 0, [0; 32], None, &keys) {
            Ok(IngestPlan::Append(upload)) => upload,
            Ok(other) => anyhow::bail!("{}: nothing to restore ({other:?})", device.device_id),
            Err(refusal) => anyhow::bail!(
                "the journal of {} at the cloud does not verify ({}): {refusal}",
                device.device_id,
                refusal.code()
            ),
        };
        progress(&format!(
            "journal of {}: {} entries verified (hash chain and signed head)",
            device.device_id,
            upload.entries.len()
        ));
        verified.push(VerifiedJournal {
            device_id: upload.device_id,
            entries: upload.entries,
            head: upload.head,
            attestation,
        });
    }

    let summary = RestoreSummary {
        store_id: store_id.clone(),
        device_id: device_id.clone(),
        raft_log_index,
        devices: verified
            .iter()
            .map(|j| RestoredDevice {
                device_id: j.device_id.clone(),
                entries: j.entries.len() as u64,
            })
            .collect(),
        gift_cards: state.gift_cards.len(),
        catalog_version: state.catalog.map_or(0, |c| c.version),
        operators: state.staff.operators.len(),
        closed_days: state.day_closes.keys().cloned().collect(),
        group: String::new(),
        may_be_missing: vec![
            "sales and store decisions made after each device's last upload to the cloud \
             (the cloud's entries and snapshot are all a restore has)"
                .to_owned(),
            "open orders and tabs (Automerge documents are not uploaded)".to_owned(),
            "card data of offline card payments not yet forwarded (kept only on the \
             devices; those payments are listed in the journal)"
                .to_owned(),
            "device-local alerts".to_owned(),
        ],
    };
    let tmp = temp_dir_for(&plan.data_dir)?;
    let written = write_restored(&tmp, &summary, verified, state).await;
    let group = match written {
        Ok(group) => group,
        Err(error) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(error);
        }
    };
    if let Err(error) = move_into_place(&tmp, &plan.data_dir) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(error);
    }
    progress(&format!("written to {}", plan.data_dir.display()));
    Ok(RestoreSummary { group, ..summary })
}

fn temp_dir_for(data_dir: &Path) -> anyhow::Result<PathBuf> {
    let name = data_dir
        .file_name()
        .context("--data-dir has no final component")?
        .to_string_lossy()
        .into_owned();
    let parent = match data_dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let tmp = parent.join(format!(".{name}.restoring-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)
            .with_context(|| format!("cannot remove the stale {}", tmp.display()))?;
    }
    std::fs::create_dir(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    Ok(tmp)
}

/// Writes the journal, the Raft group's identity and its state into `tmp`; returns the
/// group's description.
async fn write_restored(
    tmp: &Path,
    summary: &RestoreSummary,
    journals: Vec<VerifiedJournal>,
    state: posmesh_consensus::StoreState,
) -> anyhow::Result<String> {
    {
        let journal = JournalStore::open(tmp)
            .with_context(|| format!("cannot create a journal in {}", tmp.display()))?;
        let now_ms = crate::clock::wall_clock_ms();
        journal.ensure_identity(
            &summary.store_id,
            &summary.device_id,
            crate::runtime::new_incarnation(now_ms),
            rand::random(),
            i64::try_from(now_ms).unwrap_or(i64::MAX),
        )?;
        for restored in journals {
            journal.put_key_attestation(&restored.device_id, &restored.attestation)?;
            journal
                .store_replica_batch(
                    &summary.device_id,
                    &restored.device_id,
                    &restored.entries,
                    &restored.head,
                )
                .with_context(|| format!("cannot store the journal of {}", restored.device_id))?;
        }
    }
    let group = group_file::found(&summary.device_id);
    group_file::store(tmp, &group)?;
    posmesh_consensus::restore::restore_state(
        &tmp.join("raft"),
        state,
        summary.raft_log_index,
        &summary.device_id,
        crate::consensus::node_id,
    )
    .await?;
    Ok(group.describe())
}

/// Renames `tmp` to `data_dir` (removing `data_dir` first if it is an empty directory) and
/// syncs the parent directory.
fn move_into_place(tmp: &Path, data_dir: &Path) -> anyhow::Result<()> {
    if data_dir.exists() {
        std::fs::remove_dir(data_dir).with_context(|| {
            format!(
                "{} is not empty any more: nothing written",
                data_dir.display()
            )
        })?;
    }
    std::fs::rename(tmp, data_dir)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), data_dir.display()))?;
    if let Some(parent) = data_dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("cannot sync {}", parent.display()))?;
    }
    Ok(())
}

/// Prints the summary for a person.
pub fn print_summary(summary: &RestoreSummary) {
    println!(
        "store {} restored onto {} (Raft state of log index {}; {})",
        summary.store_id, summary.device_id, summary.raft_log_index, summary.group
    );
    for device in &summary.devices {
        println!(
            "  journal of {}: {} entries",
            device.device_id, device.entries
        );
    }
    println!(
        "  {} gift cards, catalog version {}, {} operators, closed days: {}",
        summary.gift_cards,
        summary.catalog_version,
        summary.operators,
        if summary.closed_days.is_empty() {
            "none".to_owned()
        } else {
            summary.closed_days.join(", ")
        }
    );
    println!("may be missing:");
    for line in &summary.may_be_missing {
        println!("  - {line}");
    }
    println!(
        "start `posmesh device` on this --data-dir with this identity: it leads the store \
         alone and new devices join it; never start the lost devices again with their old data"
    );
}
