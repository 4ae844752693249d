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
    /// Revoke certificates by serial. Revocations accumulate in `revoked.txt` in the CA
    /// directory; the complete CRL is written to `crl.pem` there. Copy it into every node's
    /// identity directory and restart the node (the CRL is read at start). A store's
    /// devices and the cloud honour a revocation at once, without a restart, when an admin
    /// commits it through the store's Raft: `posmesh store revoke-certificate`.
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
            let issued_max = issued_serial_max(&ca_dir)?;
            let mut all = revoked_serials(&ca_dir)?;
            for serial in &serials {
                let value = u64::from_str_radix(serial, 16).map_err(|_| {
                    anyhow::anyhow!(
                        "serial {serial:?} is not hexadecimal (as printed by `posmesh ca issue`)"
                    )
                })?;
                if value == 0 || value > issued_max {
                    anyhow::bail!(
                        "serial {serial} was never issued by this CA (highest issued: {issued_max:02x})"
                    );
                }
                all.insert(value);
            }
            let hex: Vec<String> = all.iter().map(|v| format!("{v:02x}")).collect();
            let refs: Vec<&str> = hex.iter().map(String::as_str).collect();
            ca.revoke(&refs, now, now + Duration::days(next_update_days))?;
            std::fs::write(ca_dir.join(REVOKED_FILE), hex.join("\n") + "\n")?;
            println!(
                "revoked serial(s) {}; the CRL now lists {} certificate(s): {} — copy it as {CRL_FILE} into every node's identity directory and the cloud's, and restart them (the CRL is read at start)",
                serials.join(", "),
                all.len(),
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
    // Before the CA spends a serial: a refused output leaves the CA as it was.
    posmesh_mesh::pki::IssuedIdentity::check_absent(out)?;
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

/// File in the CA directory listing every revoked serial (hex, one a line).
pub const REVOKED_FILE: &str = "revoked.txt";

fn revoked_serials(ca_dir: &std::path::Path) -> anyhow::Result<std::collections::BTreeSet<u64>> {
    let path = ca_dir.join(REVOKED_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Default::default()),
        Err(e) => return Err(e.into()),
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            u64::from_str_radix(l.trim(), 16)
                .map_err(|_| anyhow::anyhow!("{} has a bad line {l:?}", path.display()))
        })
        .collect()
}

/// The highest serial the CA has used (its counter file holds the last one; CRL numbers
/// share the counter).
fn issued_serial_max(ca_dir: &std::path::Path) -> anyhow::Result<u64> {
    let path = ca_dir.join(posmesh_mesh::pki::SERIAL_FILE);
    let last: u64 = std::fs::read_to_string(&path)?
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("{} is not a serial counter", path.display()))?;
    Ok(last)
}

fn now_utc() -> anyhow::Result<OffsetDateTime> {
    let seconds = i64::try_from(wall_clock_ms() / 1000)?;
    Ok(OffsetDateTime::from_unix_timestamp(seconds)?)
}
