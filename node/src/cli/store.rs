//! `posmesh store`: a manager's commands on a store's membership — `remove-device` (through
//! a running device's API, decided through Raft), and those that cannot go through Raft:
//! `force-membership` after a permanent loss of the quorum, `restore` after the loss of
//! every device ([`crate::restore`]).

use anyhow::Context;
use clap::Subcommand;
use posmesh_consensus::forced_membership::{self, ForcePlan};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// `posmesh store …`.
#[derive(Subcommand, Clone, Debug)]
pub enum StoreAdminCommand {
    /// After a permanent quorum loss (e.g. 2 of 3 tills destroyed), on a STOPPED survivor:
    /// make the kept devices the store's only voters. Prints what may be lost and changes
    /// nothing without --confirm-data-loss. Then start the survivor; it leads alone, and
    /// new devices join it as usual.
    ForceMembership {
        /// The survivor's data directory (its node must be stopped).
        #[arg(long, env = "POSMESH_DATA_DIR")]
        data_dir: PathBuf,
        /// Devices to keep as voters (repeat or comma-separate); must include this survivor.
        #[arg(long = "keep", required = true, value_delimiter = ',')]
        keep: Vec<String>,
        /// Confirms that store decisions the lost devices committed after this survivor's
        /// last log entry are given up.
        #[arg(long)]
        confirm_data_loss: bool,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Removes a device from the store for good (a destroyed or replaced till; a replacement
    /// gets a new id), asked of any other running device of the store: retired through Raft
    /// and taken out of the membership. Revoke its certificate too (`posmesh ca revoke`).
    RemoveDevice {
        /// The device to remove.
        device: String,
        /// API address of a running device of the store (not the one removed).
        #[arg(long, env = "POSMESH_API", default_value = "127.0.0.1:7070")]
        api: String,
        /// The manager or admin authorising the removal; their PIN is read from
        /// POSMESH_OPERATOR_PIN or else from the first line of stdin. Omit only while the
        /// store has no operator.
        #[arg(long, env = "POSMESH_OPERATOR_ID")]
        operator: Option<String>,
        /// The operator's PIN (prefer stdin).
        #[arg(
            long,
            env = "POSMESH_OPERATOR_PIN",
            hide_env_values = true,
            hide = true
        )]
        operator_pin: Option<String>,
    },
    /// A store that lost EVERY device: rebuild it on a new enrolled device (a certificate
    /// with a new device id, `posmesh ca issue`) from the cloud's copy — the store's Raft
    /// snapshot and every journal entry uploaded — verified, into an empty data directory.
    /// Then start `posmesh device` on it: it leads the store alone; new devices join it.
    Restore {
        /// The new device's data directory (must not exist or be empty).
        #[arg(long, env = "POSMESH_DATA_DIR")]
        data_dir: PathBuf,
        /// The new device's identity directory (store and device id come from it).
        #[arg(long, env = "POSMESH_IDENTITY_DIR")]
        identity_dir: PathBuf,
        /// The cloud's admin API address.
        #[arg(long, env = "POSMESH_CLOUD_HTTP", default_value = "127.0.0.1:7090")]
        http: String,
        /// Where the cloud's admin API token is.
        #[command(flatten)]
        token: crate::cloud::admin_token::AdminTokenArgs,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `posmesh store` command; `Ok(false)` when it refused for want of confirmation.
///
/// # Errors
/// A running node (database in use), a directory that is not a member, a bad `--keep`.
pub async fn run_store(command: StoreAdminCommand) -> anyhow::Result<bool> {
    match command {
        StoreAdminCommand::RemoveDevice {
            device,
            api,
            operator,
            operator_pin,
        } => {
            crate::config::validate_id("device id", &device)?;
            let url = format!(
                "{}/v1/store/devices/{device}/remove",
                super::status::base_url(&api)
            );
            let mut request = reqwest::Client::new().post(&url);
            if let Some(id) = operator {
                let pin = match operator_pin {
                    Some(pin) => pin,
                    None => super::operator::read_pin_line(
                        &format!("PIN of {id}"),
                        "POSMESH_OPERATOR_PIN",
                    )?,
                };
                request = request
                    .header("X-Operator-Id", id)
                    .header("X-Operator-Pin", pin);
            }
            super::operator::answer(&url, request).await?;
            println!(
                "removed {device} from the store for good; revoke its certificate too: posmesh ca revoke"
            );
            Ok(true)
        }
        StoreAdminCommand::ForceMembership {
            data_dir,
            keep,
            confirm_data_loss,
            json,
        } => {
            let survivor = crate::storage::JournalStore::open_read_only(&data_dir)
                .with_context(|| {
                    format!("cannot read the device identity in {}", data_dir.display())
                })?
                .identity()?
                .map(|identity| identity.device_id)
                .context("the data directory has no device identity")?;
            let keep: BTreeSet<String> = keep.into_iter().collect();
            for device in &keep {
                crate::config::validate_id("device id", device)?;
            }
            let raft_dir = data_dir.join("raft");
            let node_id = crate::consensus::node_id;
            let plan = if confirm_data_loss {
                forced_membership::force(&raft_dir, &survivor, &keep, node_id).await?
            } else {
                forced_membership::plan(&raft_dir, &survivor, &keep, node_id).await?
            };
            print_plan(&plan, confirm_data_loss, json)?;
            Ok(confirm_data_loss)
        }
        StoreAdminCommand::Restore {
            data_dir,
            identity_dir,
            http,
            token,
            json,
        } => {
            let plan = crate::restore::RestorePlan {
                data_dir,
                identity_dir,
                cloud_http: http,
            };
            let summary = crate::restore::restore(&plan, token.token()?, |line| {
                eprintln!("{line}");
            })
            .await?;
            if json {
                println!("{}", serde_json::to_string(&summary)?);
            } else {
                crate::restore::print_summary(&summary);
            }
            Ok(true)
        }
    }
}

fn print_plan(plan: &ForcePlan, done: bool, json: bool) -> anyhow::Result<()> {
    if json {
        println!(
            "{}",
            serde_json::to_string(&serde_json::json!({"forced": done, "plan": plan}))?
        );
        return Ok(());
    }
    println!("{}", plan.warning());
    if done {
        println!(
            "forced: membership entry #{} of term {} written; start this device now",
            plan.forced_index, plan.forced_term
        );
    } else {
        eprintln!("nothing changed: read the above, then run again with --confirm-data-loss");
    }
    Ok(())
}
