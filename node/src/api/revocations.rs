//! `POST /v1/store/certificates/{serial}/revoke`: an admin revokes a device certificate
//! by serial through the store's Raft ([`posmesh_consensus::StoreCommand::RevokeCertificate`]).
//! Once committed, every device closes that certificate's mesh connections and refuses new
//! ones ([`crate::peers::retired_gate`]) — no restart, no CRL file to copy. Never
//! retroactive: entries the device signed before stay in the ledger.

use super::error::{ApiError, ErrorBody};
use super::gift_cards::{idempotent_if_keyed, no_consensus, no_quorum, refused, replayed};
use crate::runtime::NodeContext;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use posmesh_consensus::{Outcome, StoreCommand, StoreResponse};
use std::sync::Arc;

/// Longest serial, hex digits (RFC 5280 §4.1.2.2: at most 20 octets).
pub const SERIAL_HEX_MAX: usize = posmesh_consensus::serial::SERIAL_HEX_MAX;

/// Checks that `serial` is written as the chain CA prints serials (`posmesh ca issue`,
/// [`posmesh_mesh::pki::IssuedIdentity::serial_hex`]) and as the mesh reads them from a
/// certificate: lowercase hex of the minimal big-endian bytes
/// ([`posmesh_consensus::serial::check_canonical`]; `00` passes: a store's log may hold it).
///
/// # Errors
/// The rule it breaks.
pub fn check_serial(serial: &str) -> Result<(), String> {
    posmesh_consensus::serial::check_canonical(serial)
}

/// The serial an admin typed, as the store records it
/// ([`posmesh_consensus::serial::normalise`]): hex case folded (`0C` as `openssl x509
/// -serial` prints it is `0c`); a zero serial refused.
///
/// # Errors
/// The rule it breaks, naming the serial.
pub fn normalise_serial(typed: &str) -> Result<String, String> {
    posmesh_consensus::serial::normalise(typed).map_err(|why| format!("serial {typed:?}: {why}"))
}

/// Revokes the certificate of serial `serial` store-wide, on the authority of an admin
/// in `X-Operator-Id` / `X-Operator-Pin` (`posmesh store revoke-certificate SERIAL --as
/// ada`; without the headers only while the store has no operator). 201 with the
/// effective log index; 409 `already_revoked` (with the first revocation's index,
/// answered from this device's state without a Raft entry when it holds it); 422
/// `invalid_serial` (not hex, not whole bytes, a leading zero byte, longer than 20 octets,
/// or zero; upper case is folded to the lower case the store records: [`normalise_serial`]).
/// With an `Idempotency-Key`, a retry under the same key answers the
/// first revocation (200, `Idempotent-Replayed: true`, its index) instead of 409.
#[utoipa::path(post, tag = "Store", path = "/v1/store/certificates/{serial}/revoke",
    params(("serial" = String, Path, description = "hex, as `posmesh ca issue` prints it (`0c`); upper case as `openssl x509 -serial` prints it (`0C`) is recorded in lower case; not zero"),
        ("X-Operator-Id" = Option<String>, Header, description = "the authorising admin"),
        ("X-Operator-Pin" = Option<String>, Header, description = "their PIN"),
        ("Idempotency-Key" = Option<String>, Header, description = "optional, unique per attempt store-wide: a retry with the same key answers the first revocation; without it the device keys the write itself")),
    responses((status = 201, description = "revoked from the returned log index on"),
              (status = 200, description = "replay of an earlier request with this key (`Idempotent-Replayed: true`)"),
              (status = 400, body = ErrorBody, description = "`invalid_header`"),
              (status = 401, body = ErrorBody, description = "`operator_required` (no X-Operator-Id / X-Operator-Pin once the store has operators), `pin_mismatch`"),
              (status = 403, body = ErrorBody, description = "`role_forbidden`: only an admin revokes a certificate"),
              (status = 409, body = ErrorBody, description = "`already_revoked`; `idempotency_key_reused`: the key was used for another request"),
              (status = 422, body = ErrorBody, description = "`invalid_serial`"),
              (status = 429, body = ErrorBody, description = "`pin_locked`: the authorising operator is locked out on this device"),
              (status = 503, body = ErrorBody)))]
pub async fn revoke_certificate(
    State(node): State<Arc<NodeContext>>,
    Path(serial): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let by = super::operator_auth::operator_for(&node, &headers, "revoke a certificate").await?;
    let key = super::body::optional_idempotency_key(&headers)?;
    let serial = normalise_serial(&serial).map_err(|why| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_serial",
            why,
            Some("serial"),
        )
    })?;
    let hash = super::body::request_hash("revoke_certificate", &serial, &serde_json::Value::Null);
    let command = idempotent_if_keyed(
        key,
        &hash,
        StoreCommand::RevokeCertificate {
            serial,
            // The leader fills it ([`crate::consensus::ledger_cut`]).
            cut: None,
        },
    );
    let command = super::operator_auth::authorised(&node, by, command)?;
    let raft = node.raft.as_ref().ok_or_else(no_consensus)?;
    let (index, response) = raft.write(command).await.map_err(no_quorum)?;
    match response {
        StoreResponse::Applied(outcome @ Outcome::CertificateRevoked { .. }) => Ok((
            StatusCode::CREATED,
            Json(serde_json::json!({"log_index": index, "outcome": outcome})),
        )
            .into_response()),
        StoreResponse::Replayed {
            applied_at_index,
            outcome: outcome @ Outcome::CertificateRevoked { .. },
        } => Ok(replayed(Json(
            serde_json::json!({"log_index": applied_at_index, "outcome": outcome}),
        ))),
        StoreResponse::Refused(refusal) => Err(refused(&refusal)),
        other => Err(ApiError::internal(format!(
            "the store's state machine answered a revocation with {other:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_taken_as_the_ca_prints_them() {
        for good in ["00", "0c", "2a", "0100", &"ab".repeat(20)] {
            assert_eq!(check_serial(good), Ok(()), "{good}");
        }
        for bad in ["", "c", "0C", "0x0c", "000c", "zz", &"ab".repeat(21)] {
            assert!(check_serial(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn typed_serials_are_normalised_or_refused_precisely() {
        assert_eq!(normalise_serial("0C").as_deref(), Ok("0c"));
        assert_eq!(normalise_serial("0c").as_deref(), Ok("0c"));
        let zero = normalise_serial("00").expect_err("zero");
        assert!(zero.starts_with("serial \"00\": zero"), "{zero}");
        let empty = normalise_serial("").expect_err("empty");
        assert!(empty.contains("empty"), "{empty}");
    }
}
