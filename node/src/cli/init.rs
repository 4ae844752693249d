//! `posmesh init`: founds a store on its first device — binds the data directory to the
//! store and device, initialises the store's Raft group with this device as its only voter
//! and commits the provisioning file's commands, all on disk before it returns. Then start
//! the device with `posmesh device` (same `--data-dir`, ids and an identity directory); the
//! store's other devices join it by themselves.

use crate::consensus::founding::{found_store, Founded};
use crate::provisioning;
use crate::storage::JournalStore;
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;

/// `posmesh init` flags.
#[derive(Args, Clone, Debug)]
pub struct InitArgs {
    /// Data directory of the founding device (created if needed).
    #[arg(long, env = "POSMESH_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Store id (or from the provisioning file's `store_id`).
    #[arg(long, env = "POSMESH_STORE_ID")]
    pub store_id: Option<String>,
    /// This device's id (or from the provisioning file's `founding_device`).
    #[arg(long, env = "POSMESH_DEVICE_ID")]
    pub device_id: Option<String>,
    /// Provisioning file (TOML: store, founding device, currency, exposure budget, tax
    /// rates, operators; see the `provisioning` module docs and README).
    #[arg(long)]
    pub provisioning: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `posmesh init`.
///
/// # Errors
/// A bad flag or provisioning file, a data directory of another store or device, or one
/// whose Raft group is already initialised: nothing is changed then.
pub async fn run_init(args: InitArgs) -> anyhow::Result<Founded> {
    let plan = match &args.provisioning {
        Some(path) => Some(provisioning::load(path)?),
        None => None,
    };
    let pick =
        |flag: &Option<String>, from_file: Option<&String>, name: &str| match (flag, from_file) {
            (Some(flag), Some(file)) if flag != file => {
                anyhow::bail!("--{name} {flag:?} differs from the provisioning file's {file:?}")
            }
            (Some(value), _) | (None, Some(value)) => Ok(value.clone()),
            (None, None) => anyhow::bail!("--{name} is required (or give --provisioning)"),
        };
    let store_id = pick(
        &args.store_id,
        plan.as_ref().map(|p| &p.store_id),
        "store-id",
    )?;
    let device_id = pick(
        &args.device_id,
        plan.as_ref().map(|p| &p.founding_device),
        "device-id",
    )?;
    crate::config::validate_id("store id", &store_id)?;
    crate::config::validate_id("device id", &device_id)?;
    if args.data_dir.join("raft").exists() {
        // Checked before binding the directory, so a second init changes nothing.
        if posmesh_consensus::storage::has_log(&args.data_dir.join("raft")).await? {
            anyhow::bail!(
                "{}: the store's Raft group is already initialised here; nothing done",
                args.data_dir.display()
            );
        }
    }
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    {
        let journal = JournalStore::open(&args.data_dir)
            .with_context(|| format!("cannot open {}", args.data_dir.display()))?;
        let now_ms = crate::clock::wall_clock_ms();
        journal.ensure_identity(
            &store_id,
            &device_id,
            crate::runtime::new_incarnation(now_ms),
            rand::random(),
            i64::try_from(now_ms).unwrap_or(i64::MAX),
        )?;
    }
    let commands = plan.map(|p| p.commands).unwrap_or_default();
    Ok(found_store(&args.data_dir, &store_id, &device_id, commands).await?)
}

/// Prints what `posmesh init` did.
pub fn print_founded(founded: &Founded) {
    println!(
        "store founded on {} (Raft node {}, leader of term {})",
        founded.device_id, founded.node_id, founded.term
    );
    println!("  Raft {}", founded.group.describe());
    println!(
        "  #{} adopt rules version {} (the store's state machine follows them from its first entry)",
        founded.rules_adopted_at, founded.rules_version
    );
    for (index, what) in &founded.provisioned {
        println!("  #{index} {what}");
    }
    println!("start it with `posmesh device` on the same --data-dir; other devices of the store join it by themselves");
    println!("run `posmesh init` on this one device only: a second init founds a second Raft group, which the first refuses");
}
