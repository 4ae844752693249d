//! Protobuf schemas (prost) for everything posmesh puts on the wire or in the journal.
//!
//! # Layout
//! - `schemas/posmesh/journal/v1/journal.proto` → [`journal::v1`]: the device journal entry
//!   (sale, refund, void, payment event) and the signed chain head.
//! - `schemas/posmesh/storage/v1/storage.proto` → [`storage::v1`]: records a node keeps
//!   beside its journal (identity, journal head, idempotency keys, sale status).
//! - `schemas/posmesh/sync/v1/sync.proto` → [`sync::v1`]: ledger replication between the
//!   devices of a store (version vectors, entry batches ending at a signed head, acks).
//! - `schemas/posmesh/mesh/v1/mesh.proto` → [`mesh::v1`]: node-level framing on the mesh's
//!   streams (the `Sync` stream's frame: a replication message or a key attestation).
//! - `schemas/posmesh/cloud/v1/cloud.proto` → [`cloud::v1`]: store ⇄ cloud calls (upload,
//!   the cloud's version vector, Raft snapshot, published catalogs).
//!
//! Schemas are compiled at build time by protox (pure Rust; no `protoc` needed). Decoding
//! tolerates unknown fields, so older nodes read entries written by newer ones.

/// Journal messages.
pub mod journal {
    /// Version 1 of the journal schema.
    #[allow(missing_docs, clippy::all)]
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/posmesh.journal.v1.rs"));
    }
}

/// Node-local storage records.
pub mod storage {
    /// Version 1 of the storage records.
    #[allow(missing_docs, clippy::all)]
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/posmesh.storage.v1.rs"));
    }
}

/// Ledger replication messages between peers.
pub mod sync {
    /// Version 1 of the sync protocol.
    #[allow(missing_docs, clippy::all)]
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/posmesh.sync.v1.rs"));
    }
}

/// Node-level framing on the store mesh's streams.
pub mod mesh {
    /// Version 1 of the mesh framing.
    #[allow(missing_docs, clippy::all)]
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/posmesh.mesh.v1.rs"));
    }
}

/// Store ⇄ cloud calls.
pub mod cloud {
    /// Version 1 of the cloud protocol.
    #[allow(missing_docs, clippy::all)]
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/posmesh.cloud.v1.rs"));
    }
}
