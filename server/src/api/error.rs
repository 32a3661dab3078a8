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
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<i64>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: &'static str) -> Self {
        ApiError { status, code, message, details: Map::new(), retry_after: None }
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "This endpoint requires application/json.",
        )
    }
    pub fn invalid_api_key() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_api_key", "A valid API key is required.")
    }
    pub fn revoked_api_key() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "revoked_api_key", "This API key has been revoked.")
    }
    /// Added beside the spec's codes: an operator disabled the key's account.
    pub fn account_disabled() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "account_disabled", gateway::accounts::DISABLED)
    }
    pub fn invalid_json() -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_json", "Request body must be valid JSON.")
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
        Self::new(StatusCode::FORBIDDEN, "module_not_enabled", "API access is not enabled for this account.")
    }
    pub fn invalid_instance() -> Self {
        Self::new(StatusCode::NOT_FOUND, "invalid_instance", "The requested instance was not found for this API key.")
    }
    pub fn instance_not_connected() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "instance_not_connected",
            "The sandbox instance is not connected. Link it first.",
        )
    }
    /// The request (its body included) was not answered within `WAG_REQUEST_TIMEOUT_SECS`.
    pub fn request_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "The request took too long. Send the whole request promptly and try again.",
        )
    }

    pub fn payload_too_large() -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "The request body is too large.")
    }

    pub fn idempotency_key_reused() -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "This Idempotency-Key was already used with a different request body. Use a new key for a new message.",
        )
    }
    pub fn idempotency_key_in_progress() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "idempotency_key_in_progress",
            "A request with this Idempotency-Key is still being processed. Retry in a moment.",
        )
    }
    pub fn invalid_idempotency_key() -> Self {
        let mut e = Self::validation(&["Idempotency-Key"]);
        e.details.insert("hints".into(), json!({"Idempotency-Key": "1 to 255 visible ASCII characters."}));
        e
    }

    /// `validation_error` with a hint for each field.
    pub fn validation_with_hints(problems: &[(&'static str, String)]) -> Self {
        let fields: Vec<&str> = problems.iter().map(|(f, _)| *f).collect();
        let mut e = Self::validation(&fields);
        let hints: Map<String, Value> =
            problems.iter().map(|(f, h)| (f.to_string(), Value::String(h.clone()))).collect();
        e.details.insert("hints".into(), Value::Object(hints));
        e
    }

    /// The spec's answer for a refused send, with `details.action` and `details.risk_score`.
    pub fn from_refusal(refusal: &gateway::send::Refusal) -> Self {
        use gateway::send::Refusal as R;
        let mut e = match refusal {
            R::ModuleNotEnabled => Self::module_not_enabled(),
            R::ActivePlanRequired => Self::new(StatusCode::FORBIDDEN, "active_plan_required", "An active plan is required before sending messages."),
            R::InvalidInstance => Self::invalid_instance(),
            R::PurposeRequired => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "message_purpose_required",
                "message_purpose is required. Allowed values are transactional, operational, support, internal_team, and authentication.",
            ),
            R::PurposeNotAllowed => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "message_purpose_not_allowed",
                "WA Gateway does not support marketing, cold outreach, political, or bulk campaign messaging.",
            ),
            R::InstancePaused => Self::new(StatusCode::LOCKED, "instance_paused_for_review", "This instance has been paused for responsible messaging review"),
            R::InstancePausedByOwner => Self::new(StatusCode::LOCKED, "instance_paused", "This instance is paused by its owner."),
            R::RecipientSuppressed => Self::new(
                StatusCode::FORBIDDEN,
                "recipient_suppressed",
                "This recipient has opted out or has been blocked from non-essential messages.",
            ),
            R::PolicyViolation(_) => Self::new(
                StatusCode::FORBIDDEN,
                "policy_violation",
                "This message appears to violate WA Gateway responsible messaging rules. Bulk marketing, spam, and cold outreach are not allowed.",
            ),
            R::DailyLimit { .. } => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "daily_message_limit_exceeded",
                "Your daily transactional message limit has been reached. Please try again tomorrow or request a higher reviewed limit.",
            ),
            R::MonthlyLimit { .. } => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "monthly_message_limit_exceeded",
                "Your monthly fair-use message limit has been reached. Please contact support for a reviewed higher limit.",
            ),
            R::Throttled { .. } => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "sending_throttled",
                "Sending speed has been temporarily limited to protect gateway reliability and prevent bulk messaging.",
            ),
            R::GatewaySendFailed { .. } => Self::new(
                StatusCode::BAD_GATEWAY,
                "gateway_send_failed",
                "The message passed responsible messaging checks, but delivery could not be completed. Please try again or contact support.",
            ),
            R::MediaUnusable { hint } => Self::validation_with_hints(&[("media", hint.clone())]),
        };
        let is_block = !matches!(
            refusal,
            R::ModuleNotEnabled
                | R::ActivePlanRequired
                | R::InvalidInstance
                | R::InstancePausedByOwner
                | R::GatewaySendFailed { .. }
                | R::MediaUnusable { .. }
        );
        if is_block {
            e.details.insert("action".into(), json!("block"));
            e.details.insert("risk_score".into(), json!(refusal.risk_score()));
        }
        match refusal {
            R::DailyLimit { limit, used } | R::MonthlyLimit { limit, used } => {
                e.details.insert("limit".into(), json!(limit));
                e.details.insert("used".into(), json!(used));
            }
            R::PolicyViolation(a) => {
                e.details.insert("reasons".into(), json!(a.reasons));
            }
            R::Throttled { retry_after_secs } => {
                e.details.insert("retry_after".into(), json!(retry_after_secs));
                e.retry_after = Some(*retry_after_secs);
            }
            R::GatewaySendFailed { log_id } => {
                e.details.insert("log_id".into(), json!(log_id));
            }
            _ => {}
        }
        e
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

impl ApiError {
    fn body(&self) -> super::schema::ErrorResponse {
        super::schema::ErrorResponse {
            success: false,
            error: self.code.to_string(),
            message: self.message.to_string(),
            details: self.details.clone(),
        }
    }

    /// The JSON body alone, as `into_response` sends it (stored for idempotent replays).
    pub fn body_json(&self) -> String {
        serde_json::to_string(&self.body()).unwrap_or_default()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert("retry-after", HeaderValue::from(secs.max(1)));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert("www-authenticate", HeaderValue::from_static("Bearer"));
        }
        response
    }
}
