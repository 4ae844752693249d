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
