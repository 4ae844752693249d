//! The provisioning file of `posmesh init --provisioning FILE`: a small TOML file with what
//! a new store starts with. Every value is checked — and the commands it makes are applied
//! to a scratch copy of the state machine — before anything is written, so a bad file
//! changes nothing.
//!
//! ```toml
//! store_id = "edinburgh-01"      # the store (must match the devices' certificates)
//! founding_device = "till-1"     # the device `posmesh init` runs on: the first voter
//! currency = "GBP"               # ISO 4217: of the exposure budget and shift floats
//!
//! [exposure]                     # offline card exposure (optional)
//! budget_minor = 50000           # store-wide budget, minor units of `currency`
//! allotments = { till-1 = 20000, till-2 = 20000 }
//!
//! [tax]                          # tax rates (optional)
//! version = 1
//! effective_at = "2026-01-01T00:00:00Z"      # RFC 3339
//! rates_bps = { standard = 2000, "cold_food:eat_in" = 2000 }  # basis points: 2000 = 20 %
//!                                # keys: the catalog's tax classes, `:eat_in`/`:take_away`
//!                                # for one way only (see README "Tax rates price sales")
//!
//! [[operators]]                  # operators (optional, repeatable)
//! id = "alice"
//! name = "Alice Smith"
//! role = "manager"               # cashier | supervisor | manager | admin
//! pin = "2468"                   # 4–12 digits; hashed (Argon2id) before it enters the log
//! ```
//!
//! The store's other devices need no entry: with a certificate of the same store from the
//! chain CA they join the founding device over the mesh (mDNS or `--peer`) as learners and
//! are promoted to voters automatically. Delete the file after use: it holds clear PINs.

use crate::config::validate_id;
use posmesh_consensus::staff::Role;
use posmesh_consensus::{StoreCommand, StoreResponse, StoreState};
use posmesh_domain::money::Currency;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    store_id: String,
    founding_device: String,
    currency: String,
    #[serde(default)]
    exposure: Option<ExposureSection>,
    #[serde(default)]
    tax: Option<TaxSection>,
    #[serde(default)]
    operators: Vec<OperatorSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExposureSection {
    budget_minor: i64,
    #[serde(default)]
    allotments: BTreeMap<String, i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaxSection {
    version: u64,
    effective_at: String,
    rates_bps: BTreeMap<String, u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OperatorSection {
    id: String,
    name: String,
    role: Role,
    pin: String,
}

/// A checked provisioning file: who founds which store, and the Raft commands to commit.
#[derive(Debug)]
pub struct Provisioning {
    /// The store.
    pub store_id: String,
    /// The founding device.
    pub founding_device: String,
    /// The store's currency.
    pub currency: Currency,
    /// The commands, in order (PINs already hashed).
    pub commands: Vec<StoreCommand>,
}

/// Why a provisioning file cannot be used. Nothing is written when this is returned.
#[derive(Debug, thiserror::Error)]
pub enum ProvisioningError {
    /// The file cannot be read.
    #[error("cannot read provisioning file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not valid TOML, or a missing, unknown or mistyped key (with its line and column).
    #[error("provisioning file {path}: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// The parser's message.
        message: String,
    },
    /// A value that breaks a rule.
    #[error("provisioning file {path}: {field}: {why}")]
    Invalid {
        /// The file.
        path: String,
        /// The key, e.g. `operators[1].pin`.
        field: String,
        /// The rule.
        why: String,
    },
}

/// Reads and checks the provisioning file at `path`.
///
/// # Errors
/// [`ProvisioningError`] naming the file, key and rule.
pub fn load(path: &Path) -> Result<Provisioning, ProvisioningError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ProvisioningError::Read {
        path: shown.clone(),
        source,
    })?;
    parse(&text, &shown)
}

/// [`load`] on the file's text (`path` is for messages).
///
/// # Errors
/// As [`load`].
pub fn parse(text: &str, path: &str) -> Result<Provisioning, ProvisioningError> {
    let file: File = toml::from_str(text).map_err(|e| ProvisioningError::Syntax {
        path: path.to_owned(),
        message: e.to_string().trim_end().to_owned(),
    })?;
    let invalid = |field: &str, why: String| ProvisioningError::Invalid {
        path: path.to_owned(),
        field: field.to_owned(),
        why,
    };
    validate_id("store id", &file.store_id).map_err(|e| invalid("store_id", e.to_string()))?;
    validate_id("device id", &file.founding_device)
        .map_err(|e| invalid("founding_device", e.to_string()))?;
    let currency =
        Currency::from_code(&file.currency).map_err(|e| invalid("currency", e.to_string()))?;
    let mut commands = Vec::new();
    if let Some(exposure) = &file.exposure {
        commands.push(StoreCommand::SetExposureBudget {
            amount_minor: exposure.budget_minor,
            currency,
        });
        for (device, amount) in &exposure.allotments {
            validate_id("device id", device)
                .map_err(|e| invalid(&format!("exposure.allotments.{device}"), e.to_string()))?;
            commands.push(StoreCommand::SetExposureAllotment {
                device_id: device.clone(),
                amount_minor: *amount,
            });
        }
    }
    if let Some(tax) = &file.tax {
        let effective = chrono::DateTime::parse_from_rfc3339(&tax.effective_at).map_err(|e| {
            invalid(
                "tax.effective_at",
                format!("{e}: expected RFC 3339, e.g. 2026-01-01T00:00:00Z"),
            )
        })?;
        commands.push(StoreCommand::SetTaxRates {
            version: tax.version,
            effective_at_ms: effective.timestamp_millis(),
            rates_bps: tax.rates_bps.clone(),
        });
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, operator) in file.operators.iter().enumerate() {
        crate::config::validate_id("operator id", &operator.id)
            .map_err(|e| invalid(&format!("operators[{i}].id"), e.to_string()))?;
        if !seen.insert(operator.id.as_str()) {
            return Err(invalid(
                &format!("operators[{i}].id"),
                format!("operator {:?} is listed twice", operator.id),
            ));
        }
        let pin_hash = crate::pin::hash_pin(&operator.pin)
            .map_err(|e| invalid(&format!("operators[{i}].pin"), e.to_string()))?;
        commands.push(StoreCommand::SetOperator {
            operator_id: operator.id.clone(),
            name: operator.name.clone(),
            role: operator.role,
            pin_hash,
        });
    }
    // Every command must apply: try them on a scratch state (apply is pure) under the
    // rules the store founds with (`posmesh init` adopts the newest first).
    let mut scratch = StoreState::with_rules(posmesh_consensus::rules::RULES_VERSION_LATEST);
    for (index, command) in commands.iter().enumerate() {
        if let StoreResponse::Refused(refusal) = scratch.apply(index as u64 + 1, command) {
            return Err(invalid(&command.to_string(), refusal.to_string()));
        }
    }
    Ok(Provisioning {
        store_id: file.store_id,
        founding_device: file.founding_device,
        currency,
        commands,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
store_id = "edinburgh-01"
founding_device = "till-1"
currency = "GBP"
[exposure]
budget_minor = 50000
allotments = { till-1 = 20000, till-2 = 20000 }
[tax]
version = 1
effective_at = "2026-01-01T00:00:00Z"
rates_bps = { standard = 2000, reduced = 500, zero = 0 }
[[operators]]
id = "alice"
name = "Alice Smith"
role = "manager"
pin = "2468"
"#;

    #[test]
    fn a_good_file_makes_the_commands_with_hashed_pins() {
        let p = parse(GOOD, "p.toml").expect("valid");
        assert_eq!(p.store_id, "edinburgh-01");
        assert_eq!(p.founding_device, "till-1");
        assert_eq!(p.commands.len(), 5, "{:?}", p.commands);
        let Some(StoreCommand::SetOperator { pin_hash, role, .. }) = p.commands.last() else {
            panic!("operator last: {:?}", p.commands);
        };
        assert_eq!(*role, Role::Manager);
        assert!(crate::pin::verify_pin("2468", pin_hash));
        assert!(!format!("{:?}", p.commands).contains("\"2468\""));
        let Some(StoreCommand::SetTaxRates {
            effective_at_ms, ..
        }) = p.commands.get(3)
        else {
            panic!("tax fourth: {:?}", p.commands);
        };
        assert_eq!(*effective_at_ms, 1_767_225_600_000);
    }

    #[test]
    fn bad_files_name_the_key() {
        let cases = [
            (GOOD.replace("GBP", "XXX"), "currency"),
            (GOOD.replace("till-1\"", "Till 1\""), "founding_device"),
            (GOOD.replace("\"2468\"", "\"24\""), "operators[0].pin"),
            (
                GOOD.replace("id = \"alice\"", "id = \"Alice S\""),
                "operators[0].id",
            ),
            (GOOD.replace("\"manager\"", "\"boss\""), "unknown variant"),
            (GOOD.replace("= 2000,", "= 20000,"), "rate 20000 bp"),
            (
                GOOD.replace("till-2 = 20000", "till-2 = 40000"),
                "above the budget",
            ),
            (
                GOOD.replace("2026-01-01T00:00:00Z", "tomorrow"),
                "tax.effective_at",
            ),
            (format!("{GOOD}\nsurprise = 1\n"), "unknown field"),
            (GOOD.replace("store_id = \"edinburgh-01\"", ""), "store_id"),
        ];
        for (text, expected) in cases {
            let error = parse(&text, "p.toml").expect_err(expected).to_string();
            assert!(error.contains(expected), "{expected:?} not in {error:?}");
        }
    }
}
