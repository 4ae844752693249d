//! Loading the catalog from a TOML file (prices in minor units). A later milestone moves
//! the catalog into the store's Raft state, pushed from the chain's cloud.

use posmesh_domain::{Catalog, CatalogError, CatalogFile};
use std::path::Path;
use thiserror::Error;

/// Why a catalog file was refused.
#[derive(Debug, Error)]
pub enum CatalogFileError {
    /// The file cannot be read.
    #[error("cannot read catalog {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the catalog's shape.
    #[error("catalog {path} is not valid: {source}")]
    Parse {
        /// The file.
        path: String,
        /// Where and what (line, column, field).
        source: Box<toml::de::Error>,
    },
    /// The catalog's currency is not the one of the sales already in the journal.
    #[error(
        "catalog {path} is in {catalog}, but this device's journal holds sales in {journal}: \
         a store keeps one currency (a changeover needs its own procedure)"
    )]
    CurrencyChanged {
        /// The file.
        path: String,
        /// The catalog's currency.
        catalog: String,
        /// The journal's currency.
        journal: String,
    },
    /// The catalog breaks a rule (duplicate SKU, unknown tax class, …).
    #[error("catalog {path}: {source}")]
    Invalid {
        /// The file.
        path: String,
        /// Which rule.
        source: CatalogError,
    },
}

/// Reads and validates a catalog file.
pub fn load_catalog(path: &Path) -> Result<Catalog, CatalogFileError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| CatalogFileError::Read {
        path: shown.clone(),
        source,
    })?;
    parse_catalog(&text).map_err(|e| match e {
        CatalogFileError::Parse { source, .. } => CatalogFileError::Parse {
            path: shown.clone(),
            source,
        },
        CatalogFileError::Invalid { source, .. } => CatalogFileError::Invalid {
            path: shown.clone(),
            source,
        },
        other => other,
    })
}

/// Parses and validates catalog TOML text.
pub fn parse_catalog(text: &str) -> Result<Catalog, CatalogFileError> {
    let file: CatalogFile = toml::from_str(text).map_err(|e| CatalogFileError::Parse {
        path: String::new(),
        source: Box::new(e),
    })?;
    Catalog::from_file(file).map_err(|source| CatalogFileError::Invalid {
        path: String::new(),
        source,
    })
}

/// How far back from the head [`check_catalog_currency`] looks for the latest sale.
const CURRENCY_CHECK_ENTRIES_MAX: u64 = 1_000;

/// Refuses `catalog` when its currency differs from that of the latest sale of `device` in
/// `store` (a node restarted with another store's catalog would otherwise mix currencies
/// in its takings).
pub fn check_catalog_currency(
    catalog: &Catalog,
    catalog_path: &Path,
    store: &crate::storage::JournalStore,
    device: &str,
) -> anyhow::Result<()> {
    use posmesh_proto::journal::v1::journal_entry::Payload;
    let head = store.head()?.last_seq;
    let oldest = head.saturating_sub(CURRENCY_CHECK_ENTRIES_MAX);
    for seq in (oldest + 1..=head).rev() {
        if let Some(entry) = store.entry(device, seq)? {
            if let Some(Payload::Sale(sale)) = entry.payload {
                if sale.currency != catalog.currency().code() {
                    return Err(CatalogFileError::CurrencyChanged {
                        path: catalog_path.display().to_string(),
                        catalog: catalog.currency().code().to_owned(),
                        journal: sale.currency,
                    }
                    .into());
                }
                return Ok(());
            }
        }
    }
    Ok(())
}
