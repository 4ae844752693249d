//! A device barred from writing takes no writes: every request that would write — sales,
//! voids, refunds, orders, card payments, gift cards, staff, day close, membership — is
//! refused, saying what to do. Reads (`GET`, `HEAD`) still answer, so a manager can see
//! what it holds. Three bars, checked in this order:
//! - **retired**: this device learned it was removed from the store
//!   ([`crate::consensus::retirement`]): 403 `device_retired` (enrol the till again as a
//!   new device);
//! - **identity conflict**: the store holds history of this device's id that its journal
//!   does not (a wiped till restarted under its old id,
//!   [`crate::replication::identity_conflict`]): 409 `device_identity_conflict` (enrol the
//!   till as a new device with a new id);
//! - **certificate revoked**: this device's own certificate was revoked store-wide
//!   ([`crate::consensus::own_revocation`]): 403 `certificate_revoked` (enrol the till as
//!   a new device with a new id); also under a new certificate of the same id, once the
//!   store's state applied here holds the ledger cut of this device's journal
//!   ([`posmesh_consensus::ledger_cut`]): every entry it would make lies beyond the cut,
//!   which every device and the cloud refuse.

use super::error::ApiError;
use crate::consensus::own_revocation::CERTIFICATE_REVOKED_CODE;
use crate::consensus::retirement::RETIRED_CODE;
use crate::replication::identity_conflict::IDENTITY_CONFLICT_CODE;
use crate::runtime::NodeContext;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// The refusal of a write on a retired device: 403 `device_retired`, nothing changed.
pub fn retired_refusal(message: String) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, RETIRED_CODE, message, None)
}

/// The bar on this device's writes, if any (see the module docs): the refusal every write
/// answers while it holds. `/v1/status` reports it as `sales_refused`
/// ([`crate::mgmt::SalesRefusal`]), so `posmesh status` tells the same story as the API.
pub fn write_bar(node: &NodeContext) -> Option<ApiError> {
    if let Some(retirement) = node.raft.as_ref().and_then(|raft| raft.retirement()) {
        return Some(retired_refusal(retirement.to_string()));
    }
    let conflict = node
        .replication
        .as_ref()
        .and_then(|replication| replication.identity_conflict());
    if let Some(conflict) = conflict {
        return Some(ApiError::new(
            StatusCode::CONFLICT,
            IDENTITY_CONFLICT_CODE,
            conflict.to_string(),
            None,
        ));
    }
    let raft = node.raft.as_ref()?;
    if let Some(revocation) = raft.own_revocation() {
        return Some(ApiError::new(
            StatusCode::FORBIDDEN,
            CERTIFICATE_REVOKED_CODE,
            revocation.to_string(),
            None,
        ));
    }
    let (device_id, cut) = raft.own_ledger_cut()?;
    Some(ApiError::new(
        StatusCode::FORBIDDEN,
        CERTIFICATE_REVOKED_CODE,
        format!(
            "the store cut the journal of {device_id} after seq {} (Raft log index {}: a \
             certificate of it was revoked): every device and the cloud refuse the entries it \
             makes from now on, whatever certificate it presents. Enrol the till as a new \
             device with a new id and an empty data directory (README, section \"Store \
             consensus\": certificate revocation)",
            cut.up_to_seq, cut.cut_at_index
        ),
        None,
    ))
}

/// Middleware: refuses every request but `GET`/`HEAD` while this device is barred from
/// writing (see the module docs); nothing is changed.
pub async fn refuse_writes_when_barred(
    State(node): State<Arc<NodeContext>>,
    request: Request,
    next: Next,
) -> Response {
    let reads = request.method() == Method::GET || request.method() == Method::HEAD;
    if !reads {
        if let Some(refusal) = write_bar(&node) {
            return refusal.into_response();
        }
    }
    next.run(request).await
}

/// The write bar's answers in the OpenAPI document, added to every operation it guards
/// (every method but `GET`/`HEAD`, as [`refuse_writes_when_barred`]) from this one place:
/// 403 `device_retired` / `certificate_revoked` (appended to an operation's own 403,
/// e.g. `role_forbidden`) and 409 `device_identity_conflict`.
pub struct WriteBarDoc;

/// The 403 answers of the write bar, as documented.
pub const BARRED_403: &str = "`device_retired`: this device was removed from the store (enrol the till again as a new device); `certificate_revoked`: this device's certificate was revoked store-wide (issue it a new one). Nothing changed";
/// The 409 answer of the write bar, as documented.
pub const BARRED_409: &str = "`device_identity_conflict`: the store holds history of this device's id that its journal does not (enrol the till as a new device with a new id). Nothing changed";

impl utoipa::Modify for WriteBarDoc {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{Content, Ref, RefOr, Response};
        for item in openapi.paths.paths.values_mut() {
            let writes = [
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for operation in writes.into_iter().flatten() {
                for (status, said) in [("403", BARRED_403), ("409", BARRED_409)] {
                    let responses = &mut operation.responses.responses;
                    match responses.get_mut(status) {
                        Some(RefOr::T(response)) => {
                            if !response.description.is_empty() {
                                response.description.push_str("; ");
                            }
                            response.description.push_str(said);
                        }
                        Some(RefOr::Ref(_)) => {}
                        None => {
                            let mut response = Response::new(said);
                            response.content.insert(
                                "application/json".to_owned(),
                                Content::new(Some(Ref::from_schema_name("ErrorBody"))),
                            );
                            responses.insert(status.to_owned(), RefOr::T(response));
                        }
                    }
                }
            }
        }
    }
}
