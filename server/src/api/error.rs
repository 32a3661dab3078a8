//! The one error type of the JSON API. It answers the spec's shape
//! `{"success": false, "error", "message", "details"}` with the spec's codes, statuses and
//! texts; internal causes are logged here and never sent.
use axum::{
    http::{HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde_json::{json, Map, Value};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: &'static str,
    pub details: Map<String, Value>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: &'static str) -> Self {
        ApiError {
            status,
            code,
            message,
            details: Map::new(),
        }
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "This endpoint requires application/json.",
        )
    }
    pub fn invalid_api_key() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "A valid API key is required.",
        )
    }
    pub fn revoked_api_key() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "revoked_api_key",
            "This API key has been revoked.",
        )
    }
    pub fn invalid_json() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "Request body must be valid JSON.",
        )
    }
    /// `fields` names every offending field.
    pub fn validation(fields: &[&str]) -> Self {
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
            "The request payload is missing required fields.",
        );
        e.details.insert("fields".into(), json!(fields));
        e
    }
    pub fn module_not_enabled() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "module_not_enabled",
            "API access is not enabled for this account.",
        )
    }
    pub fn invalid_instance() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_instance",
            "The requested instance was not found for this API key.",
        )
    }
    pub fn payload_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "The request body is too large.",
        )
    }

    /// Logs the cause with what was being done, and answers the spec's generic text.
    pub fn internal(action: &str, cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(action, error = %cause, "API request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "The request could not be processed. Please try again or contact support.",
        )
    }

    pub fn from_domain(action: &str, e: gateway::Error) -> Self {
        match e {
            gateway::Error::NotFound => Self::invalid_instance(),
            other => Self::internal(action, &other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "success": false,
            "error": self.code,
            "message": self.message,
            "details": Value::Object(self.details),
        });
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert("www-authenticate", HeaderValue::from_static("Bearer"));
        }
        response
    }
}
