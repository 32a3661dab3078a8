//! POST /api/send-message: steps 1–3 of the send path (content type, key, well-formed body),
//! idempotency and dry runs here; steps 4–12 in `gateway::send`.
use axum::{
    body::Body,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
    Json, Router,
};
use gateway::{
    send::{idempotency, Outcome, Refusal, Sender},
    state::AppState,
};

use super::{
    auth::ApiCaller,
    error::ApiError,
    json::{parse_body, read_body, require_json_content_type},
    schema::{DryRunResponse, ErrorResponse, SendAnswer, SendMessageBody, SendMessageResponse},
    send_request::parse_send_request,
};

/// Bodies up to 25 MB are read (base64 media); larger ones are refused with `payload_too_large`.
pub const MAX_BODY_BYTES: usize = 25 * 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/send-message", post(send_message))
}

/// Send a text or media message through one of your instances, after the responsible-messaging
/// checks.
#[utoipa::path(
    post,
    path = "/api/send-message",
    tag = "Messages",
    request_body = SendMessageBody,
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = r"^[!-~]+$",
        description = "1 to 255 visible ASCII characters. Makes a retry answer the first answer (a sent message or gateway_send_failed) without sending or counting again (kept 24 hours); the replay has the header `Idempotent-Replayed: true`.")),
    responses(
        (status = 200, description = "Sent (SendMessageResponse) or, with dry_run, what would happen (DryRunResponse). Headers X-RateLimit-Limit and X-RateLimit-Remaining give the daily quota after a send.", body = SendAnswer,
            headers(
                ("X-RateLimit-Limit" = i64, description = "The daily limit (after a send)."),
                ("X-RateLimit-Remaining" = i64, description = "What is left of it today (after a send)."),
                ("Idempotent-Replayed" = String, description = "`true` on an Idempotency-Key replay."),
            )),
        (status = 400, description = "invalid_json: the body is not a JSON object", body = ErrorResponse),
        (status = 401, description = "invalid_api_key, revoked_api_key, account_disabled", body = ErrorResponse),
        (status = 403, description = "module_not_enabled, active_plan_required, recipient_suppressed, policy_violation", body = ErrorResponse),
        (status = 404, description = "invalid_instance", body = ErrorResponse),
        (status = 408, description = "request_timeout: the request was not answered within the server's request timeout", body = ErrorResponse),
        (status = 409, description = "idempotency_key_in_progress", body = ErrorResponse),
        (status = 413, description = "payload_too_large: the body is over 25 MB", body = ErrorResponse),
        (status = 415, description = "unsupported_media_type: Content-Type is not application/json", body = ErrorResponse),
        (status = 422, description = "validation_error (with `details.fields` and `details.hints`, also for an Idempotency-Key that is not 1 to 255 visible ASCII characters), message_purpose_required, message_purpose_not_allowed, idempotency_key_reused", body = ErrorResponse),
        (status = 423, description = "instance_paused_for_review (paused for responsible messaging review), instance_paused (paused by its owner on the Settings tab)", body = ErrorResponse),
        (status = 429, description = "daily_message_limit_exceeded, monthly_message_limit_exceeded, sending_throttled (with Retry-After)", body = ErrorResponse,
            headers(("Retry-After" = i64, description = "Seconds to wait (sending_throttled)."))),
        (status = 500, description = "internal_error", body = ErrorResponse),
        (status = 502, description = "gateway_send_failed: the quota unit is given back, unless the message may have reached WhatsApp (provider_timeout, interrupted)", body = ErrorResponse),
    ),
    security(("bearer" = []))
)]
pub async fn send_message(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Result<ApiCaller, ApiError>,
    body: Body,
) -> Response {
    let started = std::time::Instant::now();
    let (response, outcome) = match handle(&state, &headers, caller, body).await {
        Ok(answered) => answered,
        Err(error) => {
            let code = error.code;
            (error.into_response(), code)
        }
    };
    state.metrics.send_answered(outcome, started.elapsed().as_secs_f64());
    response
}

async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    caller: Result<ApiCaller, ApiError>,
    body: Body,
) -> Result<(Response, &'static str), ApiError> {
    require_json_content_type(headers)?;
    let caller = caller?;
    let body = read_body(headers, body, MAX_BODY_BYTES).await?;
    let parsed: SendMessageBody = parse_body(&body)?;
    let request = parse_send_request(&parsed, &state.config.send.media)?;
    let wants_dry_run = request.dry_run;

    let keyed = idempotency_key(headers)?.map(|key| idempotency::KeyedRequest::new(key, &body));

    let sender = Sender { state };
    match sender.send(&caller.account, request, keyed).await {
        Ok(Ok(Outcome::Sent(sent))) => {
            let body = SendMessageResponse {
                success: true,
                status: "sent".into(),
                message_id: sent.message_id,
                log_id: sent.log_id,
            };
            let mut response = (StatusCode::OK, Json(body)).into_response();
            let headers = response.headers_mut();
            headers.insert("x-ratelimit-limit", HeaderValue::from(sent.daily_limit));
            headers.insert("x-ratelimit-remaining", HeaderValue::from(sent.remaining_today));
            Ok((response, "sent"))
        }
        Ok(Ok(Outcome::DryRun(dry))) => Ok((
            dry_run_response(dry.decision, dry.assessment.score, &dry.assessment.reasons, dry.refusal.as_ref()),
            "dry_run",
        )),
        Ok(Ok(Outcome::Earlier(claim))) => match claim {
            idempotency::Claim::Replay { status, body } => Ok((replay(status, body), "replayed")),
            idempotency::Claim::Mismatch => Err(ApiError::idempotency_key_reused()),
            idempotency::Claim::InProgress => Err(ApiError::idempotency_key_in_progress()),
        },
        // A dry run answers what would happen to the message; problems of the caller itself
        // (module, plan, instance) answer as errors, as they would without dry_run.
        Ok(Err(refusal)) if wants_dry_run && !is_caller_problem(&refusal) => Ok((
            dry_run_response(
                gateway::policy::Decision::Block,
                refusal.risk_score(),
                &refusal.reasons(),
                Some(&refusal),
            ),
            "dry_run",
        )),
        Ok(Err(refusal)) => Err(ApiError::from_refusal(&refusal)),
        Err(e) => Err(ApiError::internal("send message", &e)),
    }
}

/// The bodies the engine stores for an Idempotency-Key, exactly as this handler answers them.
pub struct StoredBodies;

impl gateway::send::StoredAnswers for StoredBodies {
    fn sent(&self, message_id: &str, log_id: i64) -> String {
        let body =
            SendMessageResponse { success: true, status: "sent".into(), message_id: message_id.to_string(), log_id };
        serde_json::to_string(&body).unwrap_or_default()
    }

    fn send_failed(&self, log_id: i64) -> String {
        ApiError::from_refusal(&Refusal::GatewaySendFailed { log_id }).body_json()
    }
}

fn is_caller_problem(refusal: &Refusal) -> bool {
    matches!(
        refusal,
        Refusal::ModuleNotEnabled
            | Refusal::ActivePlanRequired
            | Refusal::InvalidInstance
            | Refusal::MediaUnusable { .. }
    )
}

fn dry_run_response(
    decision: gateway::policy::Decision,
    risk_score: u8,
    reasons: &[gateway::policy::Reason],
    refusal: Option<&Refusal>,
) -> Response {
    let refused = refusal.map(ApiError::from_refusal);
    Json(DryRunResponse {
        success: true,
        status: "dry_run".into(),
        decision,
        risk_score,
        reasons: reasons.to_vec(),
        error: refused.as_ref().map(|e| e.code.to_string()),
        message: refused.as_ref().map(|e| e.message.to_string()),
    })
    .into_response()
}

fn replay(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut response = (status, body).into_response();
    response.headers_mut().insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

/// `Idempotency-Key`: 1–255 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    let text = value.to_str().map_err(|_| ApiError::invalid_idempotency_key())?.trim();
    if text.is_empty() || text.len() > idempotency::MAX_KEY_LEN || !text.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ApiError::invalid_idempotency_key());
    }
    Ok(Some(text.to_string()))
}
