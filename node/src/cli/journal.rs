//! `posmesh journal verify`: walks every device's chain in a data directory and names the
//! first broken link; checks the signed chain heads (Ed25519, one per written batch) of every
//! device whose key it holds, the local head record and gap-free receipt numbers.

use crate::storage::JournalStore;
use posmesh_proto::journal::v1::ChainHeadSignature;
use posmesh_proto::storage::v1::LocalIdentity;
use posmesh_sync::chain::{entry_hash, ChainBreak, ChainVerifier};
use posmesh_sync::chain_head::ChainHead;
use std::collections::BTreeMap;
use std::path::Path;

/// The outcome for one device's chain.
#[derive(Debug)]
pub struct DeviceChainReport {
    /// Device id.
    pub device_id: String,
    /// Entries verified.
    pub entries: u64,
    /// Chain hash of the last verified entry, hex.
    pub head_hash: String,
    /// Signed chain heads verified (the local device's key is in its identity, other
    /// devices' in the key attestations stored with their replicated entries).
    pub signatures: u64,
    /// The first problem, if any.
    pub problem: Option<String>,
}

/// Verifies every chain in the data directory `dir` (opened read-only; works beside a
/// running node). Returns one report per device.
pub fn verify_data_dir(dir: &Path) -> anyhow::Result<Vec<DeviceChainReport>> {
    if !dir.join("CURRENT").is_file() {
        anyhow::bail!(
            "{} is not a posmesh data directory (no RocksDB CURRENT file)",
            dir.display()
        );
    }
    let store = JournalStore::open_read_only(dir)?;
    let identity = store
        .identity()?
        .ok_or_else(|| anyhow::anyhow!("{} is not initialised", dir.display()))?;
    let head = store.head()?;
    let mut reports = Vec::new();
    // Other devices' chain-head keys, from the attestations the node verified when it
    // learnt them (their certificates were checked against the chain CA then).
    let attested: BTreeMap<String, LocalIdentity> = store
        .key_attestations()?
        .into_iter()
        .map(|(device, attestation)| {
            let key = LocalIdentity {
                device_id: device.clone(),
                device_incarnation: attestation.device_incarnation,
                signing_public_key: attestation.signing_public_key,
                ..Default::default()
            };
            (device, key)
        })
        .collect();
    for device in store.devices()? {
        let signer = if device == identity.device_id {
            Some(&identity)
        } else {
            attested.get(&device)
        };
        let mut report = verify_device(&store, &device, signer)?;
        if report.problem.is_none() && device == identity.device_id {
            report.problem =
                check_local_head(&report, head.last_seq, &hex::encode(&head.head_hash));
        }
        reports.push(report);
    }
    if reports.is_empty() && head.last_seq > 0 {
        reports.push(DeviceChainReport {
            device_id: identity.device_id,
            entries: 0,
            head_hash: String::new(),
            signatures: 0,
            problem: Some(format!(
                "head says seq {} but the journal is empty",
                head.last_seq
            )),
        });
    }
    Ok(reports)
}

fn verify_device(
    store: &JournalStore,
    device: &str,
    signer: Option<&LocalIdentity>,
) -> anyhow::Result<DeviceChainReport> {
    let mut verifier = ChainVerifier::new(device);
    let mut broken: Option<ChainBreak> = None;
    let mut receipt_problem = None;
    let mut signature_problem = None;
    let mut last_receipt = 0u64;
    let mut signatures_ok = 0u64;
    let signed: BTreeMap<u64, ChainHeadSignature> = match signer {
        Some(_) => store
            .chain_head_signatures(device)?
            .into_iter()
            .map(|s| (s.seq, s))
            .collect(),
        None => BTreeMap::new(),
    };
    store.scan_device(device, 0, |seq, bytes| match verifier.push(seq, bytes) {
        Ok(entry) => {
            if let (Some(identity), Some(signature)) = (signer, signed.get(&seq)) {
                match check_signature(identity, &entry.store_id, seq, bytes, signature) {
                    Ok(()) => signatures_ok += 1,
                    Err(problem) => {
                        signature_problem = Some(problem);
                        return false;
                    }
                }
            }
            if entry.receipt_no != 0 {
                if entry.receipt_no != last_receipt + 1 {
                    receipt_problem = Some(format!(
                        "receipt number gap at seq {seq}: expected receipt {}, found {}",
                        last_receipt + 1,
                        entry.receipt_no
                    ));
                    return false;
                }
                last_receipt = entry.receipt_no;
            }
            true
        }
        Err(chain_break) => {
            broken = Some(chain_break);
            false
        }
    })?;
    let (entries, head) = verifier.head();
    let unsigned_head = (signer.is_some() && entries > 0 && !signed.contains_key(&entries))
        .then(|| format!("the head entry (seq {entries}) has no signed chain head"));
    let problem = broken
        .map(|b| format!("first broken link at seq {}: {}", b.seq, b.kind))
        .or(receipt_problem)
        .or(signature_problem)
        .or(unsigned_head);
    Ok(DeviceChainReport {
        device_id: device.to_owned(),
        entries,
        head_hash: hex::encode(head),
        signatures: signatures_ok,
        problem,
    })
}

/// Checks a signed head against the entry it names and the device's public key.
fn check_signature(
    identity: &LocalIdentity,
    store_id: &str,
    seq: u64,
    entry_bytes: &[u8],
    signature: &ChainHeadSignature,
) -> Result<(), String> {
    let chain_hash = entry_hash(entry_bytes);
    if signature.chain_hash.as_slice() != chain_hash.as_slice() {
        return Err(format!(
            "signed chain head at seq {seq} names hash {}, the chain has {}",
            hex::encode(&signature.chain_hash),
            hex::encode(chain_hash)
        ));
    }
    let head = ChainHead {
        store_id: store_id.to_owned(),
        device_id: identity.device_id.clone(),
        device_incarnation: signature.device_incarnation,
        seq,
        chain_hash,
    };
    head.verify(&identity.signing_public_key, &signature.signature)
        .map_err(|e| e.to_string())
}

fn check_local_head(report: &DeviceChainReport, head_seq: u64, head_hash: &str) -> Option<String> {
    if report.entries != head_seq {
        return Some(format!(
            "journal ends at seq {} but the head record says {head_seq}",
            report.entries
        ));
    }
    (report.head_hash != head_hash).then(|| {
        format!(
            "head record hash {head_hash} differs from the chain's {}",
            report.head_hash
        )
    })
}
