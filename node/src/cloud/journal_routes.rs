//! The admin API's read of a store's journals, for `posmesh store restore`:
//! - `GET /v1/stores/{store}/journal`: every device the cloud holds entries of, with its
//!   `held_seq`, its signed chain head at `held_seq` and its key attestation (protobuf,
//!   base64) — what the restoring device verifies the entries against;
//! - `GET /v1/stores/{store}/journal/{device}/entries?after=N&limit=M`: up to `M` (at most
//!   [`ENTRIES_PAGE_MAX`]) stored entries after seq `N`, as stored (protobuf, base64).
//!
//! Bearer-token protected like every admin route ([`super::admin_token`]).

use super::service::CloudService;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use prost::Message;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Most entries one page answers.
pub const ENTRIES_PAGE_MAX: usize = 2_000;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// One device's journal at the cloud.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeviceJournal {
    /// The device.
    pub device_id: String,
    /// The cloud holds its entries `1 ..= held_seq`.
    pub held_seq: u64,
    /// Its signed chain head (`ChainHeadSignature`, protobuf, base64) at the seq it names.
    pub head_b64: String,
    /// Its key attestation (`mesh.v1.KeyAttestation`, protobuf, base64).
    pub attestation_b64: String,
}

/// `GET /v1/stores/{store}/journal` answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoreJournal {
    /// The store.
    pub store_id: String,
    /// Its devices, by id.
    pub devices: Vec<DeviceJournal>,
}

/// One stored entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EntryPage {
    /// `(seq, stored bytes in base64)`, ascending.
    pub entries: Vec<(u64, String)>,
}

/// `?after=&limit=`.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    /// Entries after this seq (default 0).
    #[serde(default)]
    pub after: u64,
    /// At most this many (default and cap [`ENTRIES_PAGE_MAX`]).
    pub limit: Option<usize>,
}

fn error(status: StatusCode, code: &str, message: String) -> Response {
    (
        status,
        Json(serde_json::json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

/// `GET /v1/stores/{store}/journal`.
pub async fn store_journal(
    State(service): State<Arc<CloudService>>,
    UrlPath(store_id): UrlPath<String>,
) -> Response {
    let store = service.store().clone();
    let id = store_id.clone();
    let read = tokio::task::spawn_blocking(move || {
        let vector = store.version_vector(&id)?;
        let mut devices = Vec::new();
        for (device_id, held_seq) in vector.iter() {
            if held_seq == 0 {
                continue;
            }
            let head = store.head(&id, device_id)?;
            let attestation = store.key_attestation(&id, device_id)?;
            devices.push((device_id.to_owned(), held_seq, head, attestation));
        }
        Ok::<_, super::CloudStoreError>(devices)
    })
    .await;
    let devices = match read {
        Ok(Ok(devices)) => devices,
        Ok(Err(e)) => return error(StatusCode::INTERNAL_SERVER_ERROR, "storage", e.to_string()),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    };
    if devices.is_empty() {
        return error(
            StatusCode::NOT_FOUND,
            "unknown_store",
            format!("the cloud holds no journal entry of store {store_id}"),
        );
    }
    let mut out = Vec::new();
    for (device_id, held_seq, head, attestation) in devices {
        let (Some(head), Some(attestation)) = (head, attestation) else {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "incomplete_journal",
                format!("the cloud holds entries of {device_id} without its head or key"),
            );
        };
        out.push(DeviceJournal {
            device_id,
            held_seq,
            head_b64: B64.encode(head.encode_to_vec()),
            attestation_b64: B64.encode(attestation.encode_to_vec()),
        });
    }
    Json(StoreJournal {
        store_id,
        devices: out,
    })
    .into_response()
}

/// `GET /v1/stores/{store}/journal/{device}/entries`.
pub async fn device_entries(
    State(service): State<Arc<CloudService>>,
    UrlPath((store_id, device_id)): UrlPath<(String, String)>,
    Query(query): Query<PageQuery>,
) -> Response {
    let limit = query
        .limit
        .unwrap_or(ENTRIES_PAGE_MAX)
        .clamp(1, ENTRIES_PAGE_MAX);
    match service
        .store()
        .entries_after(&store_id, &device_id, query.after, limit)
    {
        Ok(entries) => Json(EntryPage {
            entries: entries
                .into_iter()
                .map(|(seq, bytes)| (seq, B64.encode(bytes)))
                .collect(),
        })
        .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "storage", e.to_string()),
    }
}
