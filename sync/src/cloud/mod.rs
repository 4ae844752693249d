//! The cloud uplink's sans-IO parts: what a device sends to the chain's cloud and how the
//! cloud decides what to store, so the node's uplink, the cloud server and the simulator
//! share one implementation.
//!
//! Upload is idempotent by `(store, device, seq)`: the cloud holds, per store and device, a
//! gap-free prefix `1 ..= held_seq` of the device's journal and the chain hash of its last
//! entry. A batch is cut at a signed head ([`upload_batch`]) from any device's ledger — a
//! device uploads every device's entries it holds, not only its own — and the cloud trims
//! what it holds, verifies the rest against the held chain hash and the device's Ed25519 key
//! ([`plan_ingest`]), and stores the remainder in one atomic write. Duplicated, re-sent and
//! concurrent uploads of the same range therefore store each entry once (guarantee 4,
//! exactly once in the cloud): the cloud's version vector is the cursor every uploader
//! resumes from.
//!
//! # Layout
//! - [`ingest`]: [`plan_ingest`], the cloud's decision for one uploaded batch.
//! - [`upload`]: [`upload_batch`], the next bounded batch a device sends.

pub mod ingest;
pub mod upload;

pub use ingest::{plan_ingest, IngestPlan, IngestRefusal, VerifiedUpload};
pub use upload::{upload_batch, UploadLimits};
