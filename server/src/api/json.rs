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

/// The body as `T`: a JSON object is required (anything else is `invalid_json`); `T`'s fields
/// are raw values, so their checks are left to the request's own validation.
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    let object = parse_object(body)?;
    serde_json::from_value(Value::Object(object)).map_err(|_| ApiError::invalid_json())
}
