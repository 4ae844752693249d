//! Reading requests: JSON bodies and the Idempotency-Key header, with a precise error for
//! every way they can be wrong. Parsing is pure: bytes and headers in, value or error out.

use super::error::ApiError;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Largest request body, bytes. A sale of 500 lines fits with room to spare.
pub const REQUEST_BODY_BYTES_MAX: usize = 256 * 1024;
/// Longest Idempotency-Key, characters.
pub const IDEMPOTENCY_KEY_LEN_MAX: usize = 128;
/// Name of the idempotency header (draft-ietf-httpapi-idempotency-key-header).
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";

/// Parses a JSON request body into `T`, refusing a wrong content type, an oversized or
/// unreadable body, bytes that are not UTF-8, malformed JSON, and JSON of the wrong shape
/// (missing, unknown or mistyped fields — the error names the JSON path).
pub fn parse_json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("request body is larger than {REQUEST_BODY_BYTES_MAX} bytes"),
                None,
            )
        } else {
            ApiError::bad_request("unreadable_body", rejection.body_text(), None)
        }
    })?;
    check_content_type(headers)?;
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "empty_body",
            "request body is empty; send a JSON object",
            None,
        ));
    }
    let text = std::str::from_utf8(&body).map_err(|e| {
        ApiError::bad_request(
            "invalid_utf8",
            format!(
                "request body is not UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ),
            None,
        )
    })?;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(json_error)?;
    deserializer.end().map_err(|e| {
        ApiError::bad_request(
            "malformed_json",
            format!("trailing characters after the JSON value: {e}"),
            None,
        )
    })?;
    Ok(value)
}

fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if media_type.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("Content-Type must be application/json, got {content_type:?}"),
            Some("Content-Type"),
        ))
    }
}

fn json_error(error: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = error.path().to_string();
    let inner = error.into_inner();
    let field = offending_field(&path, &inner.to_string());
    let field = field.as_deref();
    match inner.classify() {
        serde_json::error::Category::Data => {
            ApiError::bad_request("invalid_field", inner.to_string(), field)
        }
        serde_json::error::Category::Eof => ApiError::bad_request(
            "malformed_json",
            format!("JSON ends too early: {inner}"),
            field,
        ),
        _ => ApiError::bad_request("malformed_json", inner.to_string(), field),
    }
}

/// The JSON path of the offending input: serde reports a missing or unknown field at its
/// parent, naming it only in the message (`missing field `lines``), so join the two.
fn offending_field(path: &str, message: &str) -> Option<String> {
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next());
    let parent = (path != "." && path != "?").then_some(path);
    match (parent, named) {
        (Some(parent), Some(name)) if !parent.ends_with(name) => Some(format!("{parent}.{name}")),
        (Some(parent), _) => Some(parent.to_owned()),
        (None, Some(name)) => Some(name.to_owned()),
        (None, None) => None,
    }
}

/// The Idempotency-Key of a write request: required, 1–128 visible ASCII characters.
pub fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let field = Some(IDEMPOTENCY_KEY_HEADER);
    let value = headers.get(IDEMPOTENCY_KEY_HEADER).ok_or_else(|| {
        ApiError::bad_request(
            "missing_idempotency_key",
            "write requests need an Idempotency-Key header (e.g. a UUID per attempt of the \
             sale, close, card or shift), so a retry can never apply the same request twice",
            field,
        )
    })?;
    let key = value
        .to_str()
        .ok()
        .filter(|k| {
            !k.is_empty()
                && k.len() <= IDEMPOTENCY_KEY_LEN_MAX
                && k.bytes().all(|b| b.is_ascii_graphic())
        })
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_idempotency_key",
                format!(
                    "Idempotency-Key must be 1–{IDEMPOTENCY_KEY_LEN_MAX} visible ASCII characters"
                ),
                field,
            )
        })?;
    Ok(key.to_owned())
}

/// The Idempotency-Key of a guarded write that takes one optionally: `None` without the
/// header (the device then assigns a key of its own, [`crate::consensus::assigned_key`]);
/// a header present is checked as [`idempotency_key`] checks it.
///
/// # Errors
/// 400 `invalid_idempotency_key` for a header that is not 1–128 visible ASCII characters.
pub fn optional_idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    if headers.contains_key(IDEMPOTENCY_KEY_HEADER) {
        idempotency_key(headers).map(Some)
    } else {
        Ok(None)
    }
}

/// SHA-256 over the operation name, its target and the canonical JSON of the parsed request:
/// two requests with the same key are "the same" when this hash is equal (whitespace and
/// field order of the original body do not matter).
pub fn request_hash<T: Serialize>(operation: &str, target: &str, request: &T) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(operation.as_bytes());
    hasher.update([0]);
    hasher.update(target.as_bytes());
    hasher.update([0]);
    // Serialising a value that was just deserialised from JSON cannot fail.
    hasher.update(serde_json::to_vec(request).unwrap_or_default());
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_unknown_fields_are_named_with_their_path() {
        assert_eq!(
            offending_field(".", "missing field `lines` at line 1 column 2").as_deref(),
            Some("lines")
        );
        assert_eq!(
            offending_field("lines[0]", "unknown field `colour`, expected one of `sku`").as_deref(),
            Some("lines[0].colour")
        );
        assert_eq!(
            offending_field("lines[0].quantity", "invalid type: string").as_deref(),
            Some("lines[0].quantity")
        );
        assert_eq!(offending_field(".", "invalid type: sequence"), None);
    }
}
