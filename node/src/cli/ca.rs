//! `posmesh ca`: the chain's certificate authority — create it, issue device and cloud
//! certificates, revoke them (a CRL the nodes load at start).

use crate::clock::wall_clock_ms;
use clap::Subcommand;
use posmesh_mesh::pki::{ChainCa, CRL_FILE};
use posmesh_mesh::PeerIdentity;
use std::path::PathBuf;
use time::{Duration, OffsetDateTime};

/// Default validity of a node certificate, days (CA/Browser-style 825 days).
pub const NODE_VALIDITY_DAYS: i64 = 825;
/// Default time until a CRL's nextUpdate, days.
pub const CRL_VALIDITY_DAYS: i64 = 30;

/// `posmesh ca …` commands.
#[derive(Subcommand, Debug)]
pub enum CaCommand {
    /// Create the chain's root CA in an empty directory (`ca.pem`, `ca.key` mode 0600).
    Init {
        /// Directory of the CA (keep it offline: it can mint every store's devices).
        #[arg(long)]
        ca_dir: PathBuf,
        /// Chain id (lower-case letters, digits, '-'; e.g. `acme-bakeries`).
        #[arg(long)]
        chain: String,
    },
    /// Issue a device certificate naming its store, into a new identity directory
    /// (`node.pem`, `node.key` mode 0600, `ca.pem`) for `posmesh device --identity-dir`.
    Issue {
        /// Directory of the CA.
        #[arg(long)]
        ca_dir: PathBuf,
        /// Store id of the device.
        #[arg(long)]
        store: String,
        /// Device id.
        #[arg(long)]
        device: String,
        /// Identity directory to create.
        #[arg(long)]
        out: PathBuf,
        /// Validity from now, days.
        #[arg(long, default_value_t = NODE_VALIDITY_DAYS)]
        valid_days: i64,
    },
    /// Issue a certificate for the chain's cloud (accepted by every store of the chain).
    IssueCloud {
        /// Directory of the CA.
        #[arg(long)]
        ca_dir: PathBuf,
        /// Name of the cloud instance.
        #[arg(long)]
        name: String,
        /// Identity directory to create.
        #[arg(long)]
        out: PathBuf,
        /// Validity from now, days.
        #[arg(long, default_value_t = NODE_VALIDITY_DAYS)]
        valid_days: i64,
    },
    /// Write a CRL revoking these serials (every serial still revoked: a CRL is complete)
    /// to `crl.pem` in the CA directory; copy it into the nodes' identity directories.
    Revoke {
        /// Directory of the CA.
        #[arg(long)]
        ca_dir: PathBuf,
        /// Serial numbers (hex, as printed by `issue`).
        #[arg(long = "serial", required = true)]
        serials: Vec<String>,
        /// Days until the CRL's nextUpdate.
        #[arg(long, default_value_t = CRL_VALIDITY_DAYS)]
        next_update_days: i64,
    },
}

/// Runs a `posmesh ca` command.
pub fn run_ca(command: CaCommand) -> anyhow::Result<()> {
    match command {
        CaCommand::Init { ca_dir, chain } => {
            let ca = ChainCa::init(&chain, &ca_dir)?;
            println!("chain CA {} created in {}", ca.chain_id(), ca_dir.display());
        }
        CaCommand::Issue {
            ca_dir,
            store,
            device,
            out,
            valid_days,
        } => {
            let ca = ChainCa::load(&ca_dir)?;
            let identity = PeerIdentity::new_device(ca.chain_id(), &store, &device)?;
            issue(&ca, &identity, &out, valid_days)?;
        }
        CaCommand::IssueCloud {
            ca_dir,
            name,
            out,
            valid_days,
        } => {
            let ca = ChainCa::load(&ca_dir)?;
            let identity = PeerIdentity::new_cloud(ca.chain_id(), &name)?;
            issue(&ca, &identity, &out, valid_days)?;
        }
        CaCommand::Revoke {
            ca_dir,
            serials,
            next_update_days,
        } => {
            let ca = ChainCa::load(&ca_dir)?;
            let now = now_utc()?;
            let serials: Vec<&str> = serials.iter().map(String::as_str).collect();
            ca.revoke(&serials, now, now + Duration::days(next_update_days))?;
            println!(
                "revoked {} serial(s); CRL written to {} — copy it as {CRL_FILE} into every node's identity directory",
                serials.len(),
                ca_dir.join(CRL_FILE).display()
            );
        }
    }
    Ok(())
}

fn issue(
    ca: &ChainCa,
    identity: &PeerIdentity,
    out: &std::path::Path,
    days: i64,
) -> anyhow::Result<()> {
    if days <= 0 {
        anyhow::bail!("--valid-days must be positive");
    }
    let now = now_utc()?;
    let issued = ca.issue(
        identity,
        now - Duration::minutes(5),
        now + Duration::days(days),
    )?;
    issued.write_identity(out)?;
    println!(
        "issued {} (serial {}, SHA-256 {}) into {}",
        identity,
        issued.serial_hex,
        issued.fingerprint_sha256_hex,
        out.display()
    );
    Ok(())
}

fn now_utc() -> anyhow::Result<OffsetDateTime> {
    let seconds = i64::try_from(wall_clock_ms() / 1000)?;
    Ok(OffsetDateTime::from_unix_timestamp(seconds)?)
}
