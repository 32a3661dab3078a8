//! Reading a JSON body in the spec's order: the content type first (415), then the key (401),
//! both from the headers alone, then the body, read only then and only up to its limit (413),
//! then the JSON itself (400). Handlers take the body unread (`axum::body::Body`) for this: an
//! extractor such as `Bytes` would read all of it before the handler could check anything.
use axum::{
    body::{Body, Bytes},
    http::{
        header::{CONTENT_LENGTH, CONTENT_TYPE},
        HeaderMap,
    },
};
use serde_json::Value;

use super::error::ApiError;

pub fn require_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let is_json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if is_json {
        Ok(())
    } else {
        Err(ApiError::unsupported_media_type())
    }
}

/// Reads the body, at most `limit` bytes: a larger declared length is refused before anything is
/// read, a longer body as soon as it passes the limit (`payload_too_large`); a body that cannot
/// be read is `invalid_json`. Call it after the header checks.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(ApiError::payload_too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        if std::error::Error::source(&e).is_some_and(|inner| inner.is::<http_body_util::LengthLimitError>()) {
            ApiError::payload_too_large()
        } else {
            ApiError::invalid_json()
        }
    })
}

/// The body as a JSON object; anything else is `invalid_json`.
pub fn parse_object(body: &Bytes) -> Result<serde_json::Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ApiError::invalid_json()),
    }
}

/// The body as `T`: a JSON object is required (anything else is `invalid_json`); `T`'s fields
/// are raw values, so their checks are left to the request's own validation.
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    let object = parse_object(body)?;
    serde_json::from_value(Value::Object(object)).map_err(|_| ApiError::invalid_json())
}
