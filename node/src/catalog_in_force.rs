//! [`CatalogInForce`]: which catalog prices the next sale — the one committed through the
//! store's Raft group (published at the chain's cloud) once one is committed and effective,
//! else the catalog file the node started with.

use crate::consensus::RaftService;
use posmesh_domain::Catalog;
use std::sync::{Arc, Mutex};

/// The catalog file's catalog and a cache of the parsed Raft-committed one.
pub struct CatalogInForce {
    file: Arc<Catalog>,
    /// `(version, parsed)` of the last Raft catalog parsed.
    committed: Mutex<Option<(u64, Arc<Catalog>)>>,
    /// The committed tax rates applied to it (see [`crate::tax_in_force`]).
    pub tax: crate::tax_in_force::TaxInForce,
}

impl CatalogInForce {
    /// Starts from the catalog file's catalog.
    pub fn new(file: Arc<Catalog>) -> Self {
        Self {
            file,
            committed: Mutex::new(None),
            tax: crate::tax_in_force::TaxInForce::default(),
        }
    }

    /// The catalog of the startup file.
    pub fn file(&self) -> &Arc<Catalog> {
        &self.file
    }

    /// The catalog for a sale at `now_ms` (Unix ms): the Raft-committed one when it is
    /// effective by then, parses, and keeps the store's currency; otherwise the file's.
    /// A committed catalog that cannot be used is logged and skipped (the file's prices
    /// stay in force) — it was validated before it was proposed, so this means a bug.
    pub fn current(&self, raft: Option<&RaftService>, now_ms: i64) -> Arc<Catalog> {
        let Some(raft) = raft else {
            return self.file.clone();
        };
        // The version first: the TOML (up to 1 MiB) is copied and parsed once per version,
        // not per sale.
        let Some((version, effective_at_ms)) = raft.committed_catalog_version() else {
            return self.file.clone();
        };
        if effective_at_ms > now_ms {
            return self.file.clone();
        }
        let mut committed = self.committed.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((cached, catalog)) = committed.as_ref() {
            if *cached == version {
                return catalog.clone();
            }
        }
        let Some((version, _, toml)) = raft.committed_catalog() else {
            return self.file.clone();
        };
        match crate::catalog_file::parse_catalog(&toml) {
            Ok(catalog) if catalog.currency() == self.file.currency() => {
                let catalog = Arc::new(catalog);
                tracing::info!(version, "pricing from the catalog committed through Raft");
                *committed = Some((version, catalog.clone()));
                catalog
            }
            Ok(catalog) => {
                tracing::error!(version, currency = %catalog.currency().code(),
                    "the committed catalog changes the store's currency; keeping the file's");
                self.file.clone()
            }
            Err(error) => {
                tracing::error!(version, %error, "the committed catalog does not parse; keeping the file's");
                self.file.clone()
            }
        }
    }
}
