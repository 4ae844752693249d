//! `posmesh store`: a manager's commands on a store's membership — `remove-device` and
//! `revoke-certificate` (through a running device's API, decided through Raft, on the
//! authority of an operator: `--as` and their PIN, [`super::operator_pin`]), and those
//! that cannot go through Raft:
//! `force-membership` after a permanent loss of the quorum, `restore` after the loss of
//! every device ([`crate::restore`]).

use super::operator_pin::{with_operator, OperatorPin, OperatorPinArgs};
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
    /// and taken out of the membership; its offline card allotment is released first (set
    /// to 0). A device removed before is reported as such, with the log index it was
    /// retired at (nothing changes). Revoke its certificate too: `posmesh store
    /// revoke-certificate SERIAL --as ADMIN` (store-wide, through Raft) and `posmesh ca
    /// revoke` (the CA's list).
    RemoveDevice {
        /// The device to remove.
        device: String,
        /// API address of a running device of the store (not the one removed).
        #[arg(long, env = "POSMESH_API", default_value = "127.0.0.1:7070")]
        api: String,
        /// The manager or admin authorising the removal and their PIN.
        #[command(flatten)]
        by: OperatorPinArgs,
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
    /// Revokes a device certificate by serial, store-wide through Raft (an admin's): from
    /// the committed log index on every device closes that certificate's mesh connections
    /// and refuses new ones, without a restart or a CRL file to copy (never retroactive:
    /// what the device recorded before stays). The device's journal is cut where the
    /// leader's ledger holds it: every device and the cloud refuse its entries beyond the
    /// cut, whoever relays them, so the till is enrolled again under a new device id.
    RevokeCertificate {
        /// The certificate's serial in hex, as `posmesh ca issue` prints it (`0c`); upper
        /// case as `openssl x509 -serial` prints it (`0C`) is taken too. Zero is refused.
        serial: String,
        /// API address of a running device of the store.
        #[arg(long, env = "POSMESH_API", default_value = "127.0.0.1:7070")]
        api: String,
        /// The admin authorising the revocation and their PIN.
        #[command(flatten)]
        by: OperatorPinArgs,
    },
}

/// Runs a `posmesh store` command; `Ok(false)` when it refused for want of confirmation.
///
/// # Errors
/// A running node (database in use), a directory that is not a member, a bad `--keep`.
pub async fn run_store(command: StoreAdminCommand) -> anyhow::Result<bool> {
    match command {
        StoreAdminCommand::RevokeCertificate { serial, api, by } => {
            let serial =
                crate::api::revocations::normalise_serial(&serial).map_err(anyhow::Error::msg)?;
            let by = by.resolve()?;
            let url = format!(
                "{}/v1/store/certificates/{serial}/revoke",
                super::status::base_url(&api)
            );
            let request = with_operator(reqwest::Client::new().post(&url), by.as_ref());
            let body = super::operator::answer(&url, request).await?;
            println!("{}", revoked_line(&serial, by.as_ref(), &body));
            Ok(true)
        }
        StoreAdminCommand::RemoveDevice { device, api, by } => {
            crate::config::validate_id("device id", &device)?;
            let url = format!(
                "{}/v1/store/devices/{device}/remove",
                super::status::base_url(&api)
            );
            let by = by.resolve()?;
            let request = with_operator(reqwest::Client::new().post(&url), by.as_ref());
            let body = super::operator::answer(&url, request).await?;
            println!("{}", removed_line(&device, &body));
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

/// What `posmesh store remove-device` prints: that the device was removed, or that it had
/// been removed before (nothing changed) and at which log index; then what is left to
/// do about its certificate: revoking it, unless the answer names it revoked through the
/// store's Raft already (`certificates_revoked`; then only the CA's list may be left).
fn removed_line(device: &str, body: &serde_json::Value) -> String {
    let revoked: Vec<String> = body["certificates_revoked"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| {
            Some(format!(
                "{} (log index {})",
                c["serial"].as_str()?,
                c["effective_index"].as_u64()?
            ))
        })
        .collect();
    let revoke = if revoked.is_empty() {
        "revoke its certificate too: posmesh store revoke-certificate <SERIAL> --as <admin> (store-wide) and posmesh ca revoke (the CA's list)".to_owned()
    } else {
        format!(
            "its certificate {} is revoked store-wide already; add it to the CA's list too (posmesh ca revoke)",
            revoked.join(", ")
        )
    };
    let revoke = revoke.as_str();
    if body["already_removed"].as_bool() == Some(true) {
        let at = body["retired_at_index"]
            .as_u64()
            .map_or_else(|| "?".to_owned(), |index| index.to_string());
        format!("{device} was already removed from the store (retired at log index {at}): nothing changed; if not done yet, {revoke}")
    } else {
        format!("removed {device} from the store for good; {revoke}")
    }
}

/// What `posmesh store revoke-certificate` prints: the serial, from which log index it is
/// refused, and by whom.
fn revoked_line(serial: &str, by: Option<&OperatorPin>, body: &serde_json::Value) -> String {
    let from = body["outcome"]["effective_index"]
        .as_u64()
        .or_else(|| body["log_index"].as_u64())
        .map_or_else(|| "?".to_owned(), |index| index.to_string());
    let by = by.map_or_else(String::new, |by| format!(" (by {})", by.id));
    format!(
        "revoked certificate {serial} store-wide from log index {from}{by}: every device now refuses it on the mesh, and the chain's cloud once a device of the store tells it (a revoked cloud certificate: every uplink stops)"
    )
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

#[cfg(test)]
mod tests {
    use super::super::operator_pin::OperatorPin;

    #[test]
    fn a_revocation_says_from_when_and_by_whom() {
        let body = serde_json::json!({"log_index": 12, "outcome": {"effective_index": 12}});
        let ada = OperatorPin {
            id: "ada".into(),
            pin: "8642".into(),
        };
        assert_eq!(
            super::revoked_line("0c", Some(&ada), &body),
            "revoked certificate 0c store-wide from log index 12 (by ada): every device now refuses it on the mesh, and the chain's cloud once a device of the store tells it (a revoked cloud certificate: every uplink stops)"
        );
        assert!(!super::revoked_line("0c", None, &body).contains("8642"));
    }

    /// A removal prints that it removed the device; one of a device removed before says
    /// so, with the log index it was retired at.
    #[test]
    fn a_removal_of_a_removed_device_says_so() {
        let first = serde_json::json!({"already_removed": false, "retired_at_index": 12});
        assert!(super::removed_line("till-3", &first)
            .starts_with("removed till-3 from the store for good;"));
        let again = serde_json::json!({"already_removed": true, "retired_at_index": 12});
        assert!(
            super::removed_line("till-3", &again)
                .starts_with("till-3 was already removed from the store (retired at log index 12): nothing changed;"),
            "{}",
            super::removed_line("till-3", &again)
        );
        assert!(super::removed_line("till-3", &first).contains("posmesh store revoke-certificate"));
        // A certificate the node knows revoked through Raft is not advised revoked again.
        let revoked = serde_json::json!({"already_removed": false, "retired_at_index": 12,
            "certificates_revoked": [{"serial": "0c", "effective_index": 9}]});
        let said = super::removed_line("till-3", &revoked);
        assert!(!said.contains("revoke-certificate"), "{said}");
        assert!(
            said.contains("0c (log index 9) is revoked store-wide already"),
            "{said}"
        );
    }
}
