//! Reading a JSON body in the spec's order: the content type first (415), then the key (401,
//! done by the extractor before the body is read), then the JSON itself (400).
use axum::{
    body::Bytes,
    http::{header::CONTENT_TYPE, HeaderMap},
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

/// The body as a JSON object; anything else is `invalid_json`.
pub fn parse_object(body: &Bytes) -> Result<serde_json::Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ApiError::invalid_json()),
    }
}

/// A required, non-empty string field.
pub fn required_str<'a>(object: &'a serde_json::Map<String, Value>, field: &str) -> Option<&'a str> {
    object.get(field).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}
