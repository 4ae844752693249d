//! `posmesh journal verify`: walks every device's chain in a data directory and names the
//! first broken link; also checks the local head record and gap-free receipt numbers.

use crate::storage::JournalStore;
use posmesh_sync::chain::{ChainBreak, ChainVerifier};
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
    /// The first problem, if any.
    pub problem: Option<String>,
}

/// Verifies every chain in the data directory `dir` (opened read-only; works beside a
/// running node). Returns one report per device.
pub fn verify_data_dir(dir: &Path) -> anyhow::Result<Vec<DeviceChainReport>> {
    let store = JournalStore::open_read_only(dir)?;
    let identity = store
        .identity()?
        .ok_or_else(|| anyhow::anyhow!("{} is not initialised", dir.display()))?;
    let head = store.head()?;
    let mut reports = Vec::new();
    for device in store.devices()? {
        let mut report = verify_device(&store, &device)?;
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
            problem: Some(format!(
                "head says seq {} but the journal is empty",
                head.last_seq
            )),
        });
    }
    Ok(reports)
}

fn verify_device(store: &JournalStore, device: &str) -> anyhow::Result<DeviceChainReport> {
    let mut verifier = ChainVerifier::new(device);
    let mut broken: Option<ChainBreak> = None;
    let mut receipt_problem = None;
    let mut last_receipt = 0u64;
    store.scan_device(device, 0, |seq, bytes| match verifier.push(seq, bytes) {
        Ok(entry) => {
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
    let problem = broken
        .map(|b| format!("first broken link at seq {}: {}", b.seq, b.kind))
        .or(receipt_problem);
    Ok(DeviceChainReport {
        device_id: device.to_owned(),
        entries,
        head_hash: hex::encode(head),
        problem,
    })
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
