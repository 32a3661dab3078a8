//! POST /integrations/3cx/webhook/{integration_id}: authentication (secret, IP allowlist,
//! optional HMAC) with one generic answer for every failure, the 256 KB limit, the per-minute
//! limit, then the event itself (`gateway::threecx::handler`). Every request of a known
//! integration is written to its sanitized request log.
use std::{net::SocketAddr, time::Instant};

use axum::{
    body::{Body, Bytes},
    extract::{ConnectInfo, Path, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
    Json, Router,
};
use gateway::{
    send::Sender,
    state::AppState,
    threecx::{
        self,
        handler::{self, Answer, Handled, Rejection},
        integrations::{self, Integration},
        rate_limit, request_log, signature,
    },
    time,
};
use serde_json::{json, Map, Value};

use super::{
    error::ApiError,
    schema::{ErrorResponse, ThreecxErrorResponse, ThreecxEvent, ThreecxWebhookResponse},
};

pub const SECRET_HEADER: &str = "x-whatsapp-gateway-3cx-secret";
pub const TIMESTAMP_HEADER: &str = "x-whatsapp-gateway-timestamp";
pub const SIGNATURE_HEADER: &str = "x-whatsapp-gateway-signature";

pub fn router() -> Router<AppState> {
    Router::new().route("/integrations/3cx/webhook/{integration_id}", post(webhook))
}

/// An answer of this endpoint: the spec's `{success:false, error, message}`, with `details`
/// only when there are some.
struct Refused {
    status: StatusCode,
    code: &'static str,
    message: &'static str,
    details: Map<String, Value>,
    retry_after: Option<i64>,
}

impl Refused {
    fn new(status: StatusCode, code: &'static str, message: &'static str) -> Self {
        Refused { status, code, message, details: Map::new(), retry_after: None }
    }

    /// The same bytes for every cause, so a caller learns nothing about which check failed.
    fn invalid() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_3cx_webhook", "Invalid 3CX webhook request.")
    }

    fn from_api(e: ApiError) -> Self {
        Refused { status: e.status, code: e.code, message: e.message, details: e.details, retry_after: e.retry_after }
    }

    fn from_rejection(rejection: &Rejection) -> Self {
        use StatusCode as S;
        match rejection {
            Rejection::ModuleNotEnabled => {
                Self::new(S::FORBIDDEN, "module_not_enabled", "3CX Middleware is not enabled for this account.")
            }
            Rejection::UnsupportedEventType => {
                let mut r = Self::new(S::UNPROCESSABLE_ENTITY, "unsupported_event_type", "Unsupported 3CX event type.");
                r.details.insert("supported".into(), json!(handler::EventType::NAMES));
                r
            }
            Rejection::OutboundDisabled => Self::new(
                S::FORBIDDEN,
                "outbound_disabled",
                "Outbound messaging is disabled in the 3CX integration settings.",
            ),
            Rejection::CallEventsDisabled => {
                Self::new(S::FORBIDDEN, "call_events_disabled", "Call events are disabled in the 3CX integration settings.")
            }
            Rejection::MissingPhone => Self::new(
                S::UNPROCESSABLE_ENTITY,
                "missing_phone",
                "The event has no usable customer phone number. Include to, from, customer_phone, caller, or phone.",
            ),
            Rejection::MissingMessageText => Self::new(
                S::UNPROCESSABLE_ENTITY,
                "missing_message_text",
                "The event has no message text. Include message_text or message.",
            ),
            Rejection::MessageTooLong => {
                let mut r = Self::from_api(ApiError::validation_with_hints(&[(
                    "message_text",
                    format!("At most {} characters.", handler::MAX_TEXT_CHARS),
                )]));
                r.message = "The message text is too long.";
                r
            }
            Rejection::PurposeNotAllowed => {
                Self::from_api(ApiError::from_refusal(&gateway::send::Refusal::PurposeNotAllowed))
            }
            Rejection::ConversationWindowClosed => Self::new(
                S::FORBIDDEN,
                "conversation_window_closed",
                "The recipient has not messaged first, or their last WhatsApp message is outside the active conversation window.",
            ),
            Rejection::Send(refusal) => Self::from_api(ApiError::from_refusal(refusal)),
        }
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert("success".into(), Value::Bool(false));
        body.insert("error".into(), Value::String(self.code.into()));
        body.insert("message".into(), Value::String(self.message.into()));
        if !self.details.is_empty() {
            body.insert("details".into(), Value::Object(self.details));
        }
        let mut response = (self.status, Json(Value::Object(body))).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
    }
}

/// What the request log keeps of one request.
struct Logged {
    event_type: Option<String>,
    outcome: String,
    status: StatusCode,
    phone_masked: Option<String>,
    detail: Option<&'static str>,
}

/// Receive one 3CX event: agent replies into an active WhatsApp conversation, call events with
/// their template follow-ups, and `test`. Authenticated by the integration's secret (and its
/// optional IP allowlist and HMAC signature); every authentication failure answers the same
/// 401 `invalid_3cx_webhook`.
#[utoipa::path(
    post,
    path = "/integrations/3cx/webhook/{integration_id}",
    tag = "3CX",
    params(
        ("integration_id" = String, Path, min_length = 1, description = "The integration's id, from the webhook URL shown in the portal."),
        ("X-WhatsApp-Gateway-Timestamp" = Option<String>, Header, description = "Unix seconds; required when the integration requires HMAC signatures."),
        ("X-WhatsApp-Gateway-Signature" = Option<String>, Header, description = "`sha256=<hex>` (or bare `<hex>`): HMAC SHA-256 of `timestamp + \".\" + raw body` with the integration's HMAC secret; required when the integration requires it."),
    ),
    request_body(content = ThreecxEvent, content_type = "application/json", description = "The event, at most 256 KB."),
    responses(
        (status = 200, description = "Handled: test, recorded, sent or skipped", body = ThreecxWebhookResponse),
        (status = 400, description = "invalid_json: the body is not a JSON object", body = ThreecxErrorResponse),
        (status = 401, description = "invalid_3cx_webhook: unknown or disabled integration, missing or wrong secret, address not allowed, stale timestamp or bad signature (one answer for all)", body = ThreecxErrorResponse),
        (status = 403, description = "module_not_enabled, outbound_disabled, call_events_disabled, conversation_window_closed, active_plan_required, recipient_suppressed, policy_violation", body = ThreecxErrorResponse),
        (status = 404, description = "invalid_instance: the integration's instance is gone", body = ThreecxErrorResponse),
        (status = 408, description = "request_timeout", body = ErrorResponse),
        (status = 413, description = "payload_too_large: the body is over 256 KB", body = ThreecxErrorResponse),
        (status = 422, description = "unsupported_event_type (with `details.supported`), missing_phone, missing_message_text, validation_error (text too long), message_purpose_not_allowed, message_purpose_required", body = ThreecxErrorResponse),
        (status = 423, description = "instance_paused_for_review (paused for responsible messaging review), instance_paused (paused by its owner on the Settings tab)", body = ThreecxErrorResponse),
        (status = 429, description = "webhook_rate_limited (over 60 requests a minute for the integration), sending_throttled, daily_message_limit_exceeded, monthly_message_limit_exceeded; with Retry-After where there is a wait", body = ThreecxErrorResponse,
            headers(("Retry-After" = i64, description = "Seconds to wait."))),
        (status = 500, description = "internal_error", body = ErrorResponse),
        (status = 502, description = "gateway_send_failed", body = ThreecxErrorResponse),
    ),
    security(("threecx_secret" = []))
)]
pub async fn webhook(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(integration_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let now = time::now();
    let integration = match integrations::find_for_webhook(&state.db, &integration_id).await {
        Ok(Some(i)) => i,
        Ok(None) => {
            state.metrics.threecx_answered("invalid_3cx_webhook");
            return Refused::invalid().into_response();
        }
        Err(e) => {
            state.metrics.threecx_answered("internal_error");
            return ApiError::internal("find 3CX integration", &e).into_response();
        }
    };
    let (response, logged, authenticated) = match process(&state, &integration, peer, &headers, body, now).await {
        Ok(done) => done,
        Err(e) => {
            let response = ApiError::internal("handle 3CX webhook", &e).into_response();
            let logged = Logged {
                event_type: None,
                outcome: "internal_error".into(),
                status: response.status(),
                phone_masked: None,
                detail: None,
            };
            (response, logged, true)
        }
    };
    state.metrics.threecx_answered(&logged.outcome);
    let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    // Logged after answering, so a refusal takes as long as an unknown id does; refusals are
    // logged only up to a cap (first in this process, then across processes), so guessing
    // cannot flood the customer's log or the database.
    if authenticated || refusal_cap::allows(&integration.id, now) {
        let db = state.db.clone();
        tokio::spawn(async move {
            if !authenticated && !rate_limit::may_log_refusal(&db, &integration.id, now).await.unwrap_or(false) {
                return;
            }
            let entry = request_log::Entry {
                integration_id: &integration.id,
                account_id: integration.account_id,
                received_at: now,
                event_type: logged.event_type.as_deref(),
                outcome: &logged.outcome,
                status_code: logged.status.as_u16(),
                phone_masked: logged.phone_masked,
                latency_ms,
                detail: logged.detail,
            };
            if let Err(e) = request_log::record(&db, entry).await {
                tracing::error!(integration_id = %integration.id, error = %e, "recording a 3CX request failed");
            }
        });
    }
    response
}

/// A per-process first cap on logging refused requests, so a flood of them costs no database
/// writes beyond a few a minute.
mod refusal_cap {
    use std::{
        collections::HashMap,
        sync::{Mutex, OnceLock},
    };

    static SEEN: OnceLock<Mutex<HashMap<String, (i64, i64)>>> = OnceLock::new();

    pub fn allows(integration_id: &str, now: i64) -> bool {
        let minute = now - now.rem_euclid(60);
        let Ok(mut seen) = SEEN.get_or_init(Default::default).lock() else { return false };
        if seen.len() > 10_000 {
            seen.retain(|_, (m, _)| *m == minute);
        }
        let slot = seen.entry(integration_id.to_string()).or_insert((minute, 0));
        if slot.0 != minute {
            *slot = (minute, 0);
        }
        slot.1 += 1;
        slot.1 <= gateway::threecx::rate_limit::REFUSALS_LOGGED_PER_MINUTE
    }
}

/// The checks in their order. Answers the response, what to log, and whether the caller
/// authenticated.
async fn process(
    state: &AppState,
    integration: &Integration,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: Body,
    now: i64,
) -> gateway::Result<(Response, Logged, bool)> {
    let refuse = |detail: &'static str| {
        let logged = Logged {
            event_type: None,
            outcome: "invalid_3cx_webhook".into(),
            status: StatusCode::UNAUTHORIZED,
            phone_masked: None,
            detail: Some(detail),
        };
        (Refused::invalid().into_response(), logged, false)
    };
    let plain = |refused: Refused, detail: Option<&'static str>| {
        let logged = Logged {
            event_type: None,
            outcome: refused.code.to_string(),
            status: refused.status,
            phone_masked: None,
            detail,
        };
        (refused.into_response(), logged, true)
    };

    // 1. the integration, its secret, the caller's address
    if !integration.enabled {
        return Ok(refuse("integration disabled"));
    }
    let presented = headers.get(SECRET_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
    if presented.is_empty() || !integration.secret_matches(presented) {
        return Ok(refuse("missing or wrong X-WhatsApp-Gateway-3CX-Secret"));
    }
    let client = crate::client_ip::client_ip(peer, headers, &state.config.trusted_proxies);
    if !integration.ip_allowlist.allows(client) {
        return Ok(refuse("client IP not in the allowlist"));
    }

    // 2. the size, refused before the body is read to the end
    // Oversized bodies are logged under the refusal cap: they come before the rate check, which
    // needs the signature, which needs the body.
    let oversized = || {
        let refused = too_large();
        let logged = Logged {
            event_type: None,
            outcome: refused.code.to_string(),
            status: refused.status,
            phone_masked: None,
            detail: None,
        };
        (refused.into_response(), logged, false)
    };
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > threecx::MAX_BODY_BYTES as u64) {
        return Ok(oversized());
    }
    let body: Bytes = match axum::body::to_bytes(body, threecx::MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(e) if is_length_limit(&e) => return Ok(oversized()),
        Err(_) => return Ok(plain(Refused::from_api(ApiError::invalid_json()), Some("the body could not be read"))),
    };

    // 3. the signature
    if integration.hmac_required {
        let Some(secret) = integration.hmac_secret(&state.config.master_key)? else {
            return Ok(refuse("HMAC required but no HMAC secret is set"));
        };
        let timestamp = headers.get(TIMESTAMP_HEADER).and_then(|v| v.to_str().ok());
        let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
        if let Err(problem) = signature::verify(&secret, timestamp, signature, &body, now) {
            return Ok(refuse(problem.describe()));
        }
        // verify() refuses a request without a timestamp.
        let timestamp = timestamp.unwrap_or_default();
        if !threecx::replay::first_sight(&state.db, &integration.id, timestamp, &body, now).await? {
            return Ok(refuse("HMAC: the same signed request was received before (replay)"));
        }
    }

    // 4. the rate
    if let Err(retry_after) = rate_limit::admit(&state.db, &integration.id, now).await? {
        let mut refused = Refused::new(
            StatusCode::TOO_MANY_REQUESTS,
            "webhook_rate_limited",
            "More than 60 requests per minute for this 3CX integration. Slow down the event sender.",
        );
        refused.details.insert("retry_after".into(), json!(retry_after));
        refused.retry_after = Some(retry_after);
        return Ok(plain(refused, None));
    }

    // 5–6. the body and the event
    let payload = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(map)) => map,
        _ => return Ok(plain(Refused::from_api(ApiError::invalid_json()), None)),
    };
    let Some(account) = gateway::accounts::find_by_id(&state.db, integration.account_id).await? else {
        return Ok(refuse("account no longer exists"));
    };
    let sender = Sender { state };
    let ctx = handler::Context { sender: &sender, now };
    let handled = handler::handle(&ctx, integration, &account, &payload).await?;
    Ok(answer(handled))
}

fn is_length_limit(e: &axum::Error) -> bool {
    std::error::Error::source(e).is_some_and(|inner| inner.is::<http_body_util::LengthLimitError>())
}

fn too_large() -> Refused {
    Refused::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "The webhook body exceeds 256 KB.")
}

fn answer(handled: Handled) -> (Response, Logged, bool) {
    let phone_masked = handled.phone.as_ref().map(|p| p.masked());
    let (response, outcome, status) = match handled.result {
        Ok(answer) => {
            let (body, outcome) = match answer {
                Answer::Test => (json!({"success": true}), "ok".to_string()),
                Answer::Recorded => (json!({"success": true, "status": "recorded"}), "recorded".to_string()),
                Answer::Sent { message_id, log_id } => (
                    json!({"success": true, "status": "sent", "message_id": message_id, "log_id": log_id}),
                    "sent".to_string(),
                ),
                Answer::Skipped(reason) => (
                    json!({"success": true, "status": "skipped", "reason": reason.as_str()}),
                    format!("skipped:{}", reason.as_str()),
                ),
            };
            ((StatusCode::OK, Json(body)).into_response(), outcome, StatusCode::OK)
        }
        Err(rejection) => {
            let refused = Refused::from_rejection(&rejection);
            let status = refused.status;
            (refused.into_response(), rejection.code().to_string(), status)
        }
    };
    (response, Logged { event_type: handled.event_type, outcome, status, phone_masked, detail: None }, true)
}
