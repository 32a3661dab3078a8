//! /api/sandbox/*: controls for sandbox instances, for trying every path without a phone:
//! link, disconnect, reconnect, and simulated inbound messages and calls. Only sandbox
//! instances of the key's own account; absent when the sandbox is disabled.
use axum::{body::Body, extract::State, http::HeaderMap, routing::post, Json, Router};
use gateway::{
    connectors::{sandbox, EventKind, InboundMedia, InboundMessage, Sender},
    instances::{self, Instance},
    send::{media, phone::Phone},
    state::AppState,
};
use serde_json::Value;

use super::{
    auth::ApiCaller,
    error::ApiError,
    json::{parse_body, require_json_content_type},
    schema::{
        ErrorResponse, SandboxCallBody, SandboxInboundBody, SandboxInboundResponse, SandboxLinkBody,
        SandboxLinkResponse, SandboxStatusResponse,
    },
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/sandbox/link", post(link))
        .route("/api/sandbox/disconnect", post(disconnect))
        .route("/api/sandbox/reconnect", post(reconnect))
        .route("/api/sandbox/inbound", post(inbound))
        .route("/api/sandbox/call", post(call))
}

/// The largest sandbox request body (axum's default limit, which applied before).
const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Steps 1–3 of every sandbox call: JSON content type and key from the headers, then the body.
async fn read_body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    caller: Result<ApiCaller, ApiError>,
    body: Body,
) -> Result<(ApiCaller, T), ApiError> {
    require_json_content_type(headers)?;
    let caller = caller?;
    let body = super::json::read_body(headers, body, MAX_BODY_BYTES).await?;
    Ok((caller, parse_body(&body)?))
}

fn text(value: &Option<Value>) -> Option<&str> {
    match value {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim()),
        _ => None,
    }
}

/// An optional field that must be a string when given: absent and null are `None`, anything
/// else but a string is noted as bad.
fn optional_string<'a>(value: &'a Option<Value>, field: &'static str, bad: &mut Vec<&'static str>) -> Option<&'a str> {
    match value {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => {
            bad.push(field);
            None
        }
    }
}

/// An optional string field, trimmed; blank is absent.
fn optional_text<'a>(value: &'a Option<Value>, field: &'static str, bad: &mut Vec<&'static str>) -> Option<&'a str> {
    optional_string(value, field, bad).map(str::trim).filter(|s| !s.is_empty())
}

/// `instance_id` and `from` of a simulated message or call, noting the bad ones.
fn instance_and_sender<'a>(
    instance_id: &'a Option<Value>,
    from: &Option<Value>,
    bad: &mut Vec<&'static str>,
) -> (&'a str, Option<Phone>) {
    let id = text(instance_id);
    if id.is_none() {
        bad.push("instance_id");
    }
    let phone = text(from).and_then(Phone::parse);
    if phone.is_none() {
        bad.push("from");
    }
    (id.unwrap_or_default(), phone)
}

/// The simulated sender, addressed as WhatsApp addresses a phone.
fn sender(phone: &Phone) -> Sender {
    Sender {
        address: format!("{}@s.whatsapp.net", phone.as_str().trim_start_matches('+')),
        phone: Some(phone.as_str().into()),
    }
}

/// The key account's sandbox instance, or `invalid_instance` for anything else.
async fn sandbox_instance(state: &AppState, caller: &ApiCaller, id: &str) -> Result<Instance, ApiError> {
    if !caller.account.api_enabled {
        return Err(ApiError::module_not_enabled());
    }
    let instance = state
        .cache
        .instance(caller.account.id, id)
        .await
        .map_err(|e| ApiError::from_domain("find sandbox instance", e))?;
    if instance.connector != sandbox::NAME {
        return Err(ApiError::invalid_instance());
    }
    Ok(instance)
}

async fn status_of(state: &AppState, caller: &ApiCaller, id: &str) -> Result<SandboxStatusResponse, ApiError> {
    let instance = instances::find(&state.db, caller.account.id, id)
        .await
        .map_err(|e| ApiError::from_domain("reload instance", e))?;
    Ok(SandboxStatusResponse { success: true, status: instance.status.as_str().into(), instance_id: instance.id })
}

fn delivery_error(action: &str, e: gateway::Error) -> ApiError {
    match e {
        gateway::Error::Refused(_) | gateway::Error::Invalid(_) => ApiError::instance_not_connected(),
        other => ApiError::internal(action, &other),
    }
}

/// Link a sandbox instance: what scanning the QR code with a phone would do.
#[utoipa::path(
    post,
    path = "/api/sandbox/link",
    tag = "Sandbox",
    request_body = SandboxLinkBody,
    responses(
        (status = 200, description = "Linked and connected", body = SandboxLinkResponse),
        (status = 400, description = "invalid_json: the body is not a JSON object", body = ErrorResponse),
        (status = 401, description = "invalid_api_key, revoked_api_key, account_disabled", body = ErrorResponse),
        (status = 403, description = "module_not_enabled", body = ErrorResponse),
        (status = 404, description = "invalid_instance (also for instances that are not sandbox instances); not_found when the server runs without the sandbox", body = ErrorResponse),
        (status = 408, description = "request_timeout", body = ErrorResponse),
        (status = 413, description = "payload_too_large: the body is over 2 MB", body = ErrorResponse),
        (status = 415, description = "unsupported_media_type: Content-Type is not application/json", body = ErrorResponse),
        (status = 422, description = "validation_error (with `details.fields`)", body = ErrorResponse),
        (status = 500, description = "internal_error", body = ErrorResponse),
    ),
    security(("bearer" = []))
)]
pub async fn link(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Result<ApiCaller, ApiError>,
    body: Body,
) -> Result<Json<SandboxLinkResponse>, ApiError> {
    let (caller, parsed): (_, SandboxLinkBody) = read_body(&headers, caller, body).await?;
    let id = text(&parsed.instance_id).ok_or_else(|| ApiError::validation(&["instance_id"]))?;
    let instance = sandbox_instance(&state, &caller, id).await?;
    state.registry.simulate_scan(&instance).await.map_err(|e| ApiError::internal("sandbox link", &e))?;
    let linked = instances::find(&state.db, caller.account.id, id)
        .await
        .map_err(|e| ApiError::from_domain("reload instance", e))?;
    tracing::info!(account_id = caller.account.id, key_id = %caller.key_id, instance_id = %linked.id, "sandbox instance linked");
    Ok(Json(SandboxLinkResponse {
        success: true,
        status: linked.status.as_str().into(),
        instance_id: linked.id,
        phone: linked.linked_phone,
    }))
}

/// Drop a linked sandbox instance's connection (`instance.disconnected`); the link is kept.
#[utoipa::path(
    post,
    path = "/api/sandbox/disconnect",
    tag = "Sandbox",
    request_body = SandboxLinkBody,
    responses(
        (status = 200, description = "Disconnected", body = SandboxStatusResponse),
        (status = 400, description = "invalid_json: the body is not a JSON object", body = ErrorResponse),
        (status = 401, description = "invalid_api_key, revoked_api_key, account_disabled", body = ErrorResponse),
        (status = 403, description = "module_not_enabled", body = ErrorResponse),
        (status = 404, description = "invalid_instance (also for instances that are not sandbox instances); not_found when the server runs without the sandbox", body = ErrorResponse),
        (status = 408, description = "request_timeout", body = ErrorResponse),
        (status = 409, description = "instance_not_connected: the instance is not linked or not connected", body = ErrorResponse),
        (status = 413, description = "payload_too_large: the body is over 2 MB", body = ErrorResponse),
        (status = 415, description = "unsupported_media_type: Content-Type is not application/json", body = ErrorResponse),
        (status = 422, description = "validation_error (with `details.fields`)", body = ErrorResponse),
        (status = 500, description = "internal_error", body = ErrorResponse),
    ),
    security(("bearer" = []))
)]
pub async fn disconnect(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Result<ApiCaller, ApiError>,
    body: Body,
) -> Result<Json<SandboxStatusResponse>, ApiError> {
    switch(&state, &headers, caller, body, false).await
}

/// Bring a disconnected sandbox instance back (`instance.connected`).
#[utoipa::path(
    post,
    path = "/api/sandbox/reconnect",
    tag = "Sandbox",
    request_body = SandboxLinkBody,
    responses(
        (status = 200, description = "Connected again", body = SandboxStatusResponse),
        (status = 400, description = "invalid_json: the body is not a JSON object", body = ErrorResponse),
        (status = 401, description = "invalid_api_key, revoked_api_key, account_disabled", body = ErrorResponse),
        (status = 403, description = "module_not_enabled", body = ErrorResponse),
        (status = 404, description = "invalid_instance (also for instances that are not sandbox instances); not_found when the server runs without the sandbox", body = ErrorResponse),
        (status = 408, description = "request_timeout", body = ErrorResponse),
        (status = 409, description = "instance_not_connected: the instance is not linked or not connected", body = ErrorResponse),
        (status = 413, description = "payload_too_large: the body is over 2 MB", body = ErrorResponse),
        (status = 415, description = "unsupported_media_type: Content-Type is not application/json", body = ErrorResponse),
        (status = 422, description = "validation_error (with `details.fields`)", body = ErrorResponse),
        (status = 500, description = "internal_error", body = ErrorResponse),
    ),
    security(("bearer" = []))
)]
pub async fn reconnect(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Result<ApiCaller, ApiError>,
    body: Body,
) -> Result<Json<SandboxStatusResponse>, ApiError> {
    switch(&state, &headers, caller, body, true).await
}

/// Disconnect (`up = false`) or reconnect a sandbox instance, answering its status afterwards.
async fn switch(
    state: &AppState,
    headers: &HeaderMap,
    caller: Result<ApiCaller, ApiError>,
    body: Body,
    up: bool,
) -> Result<Json<SandboxStatusResponse>, ApiError> {
    let (caller, parsed): (_, SandboxLinkBody) = read_body(headers, caller, body).await?;
    let id = text(&parsed.instance_id).ok_or_else(|| ApiError::validation(&["instance_id"]))?;
    let instance = sandbox_instance(state, &caller, id).await?;
    let done = if up { state.registry.reconnect(&instance).await } else { state.registry.disconnect(&instance).await };
    done.map_err(|e| delivery_error("sandbox connection switch", e))?;
    Ok(Json(status_of(state, &caller, id).await?))
}

/// A person writes to a connected sandbox instance: stored in the inbound log, with opt-out
/// detection and the conversation window, and its events.
#[utoipa::path(
    post,
    path = "/api/sandbox/inbound",
    tag = "Sandbox",
    request_body = SandboxInboundBody,
    responses(
        (status = 200, description = "Received", body = SandboxInboundResponse),
        (status = 400, description = "invalid_json: the body is not a JSON object", body = ErrorResponse),
        (status = 401, description = "invalid_api_key, revoked_api_key, account_disabled", body = ErrorResponse),
        (status = 403, description = "module_not_enabled", body = ErrorResponse),
        (status = 404, description = "invalid_instance (also for instances that are not sandbox instances); not_found when the server runs without the sandbox", body = ErrorResponse),
        (status = 408, description = "request_timeout", body = ErrorResponse),
        (status = 409, description = "instance_not_connected: the instance is not linked or not connected", body = ErrorResponse),
        (status = 413, description = "payload_too_large: the body is over 2 MB", body = ErrorResponse),
        (status = 415, description = "unsupported_media_type: Content-Type is not application/json", body = ErrorResponse),
        (status = 422, description = "validation_error (with `details.fields`)", body = ErrorResponse),
        (status = 500, description = "internal_error", body = ErrorResponse),
    ),
    security(("bearer" = []))
)]
pub async fn inbound(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Result<ApiCaller, ApiError>,
    body: Body,
) -> Result<Json<SandboxInboundResponse>, ApiError> {
    let (caller, parsed): (_, SandboxInboundBody) = read_body(&headers, caller, body).await?;
    let mut bad = Vec::new();
    let (id, from) = instance_and_sender(&parsed.instance_id, &parsed.from, &mut bad);
    let media_kind = match optional_string(&parsed.media_type, "media_type", &mut bad) {
        None => None,
        Some(name) => {
            let kind = media::parse_kind(name);
            if kind.is_none() {
                bad.push("media_type");
            }
            kind
        }
    };
    // Kept as written (spaces included): opt-out events report the text exactly.
    let message = optional_string(&parsed.message, "message", &mut bad).filter(|m| !m.trim().is_empty());
    if message.is_none() && media_kind.is_none() && !bad.contains(&"media_type") && !bad.contains(&"message") {
        bad.push("message");
    }
    let mime_type = optional_text(&parsed.mime_type, "mime_type", &mut bad);
    let file_name = optional_text(&parsed.file_name, "file_name", &mut bad);
    let group_id = optional_text(&parsed.group_id, "group_id", &mut bad);
    let size_bytes = match &parsed.media_size {
        None | Some(Value::Null) => None,
        Some(value) => {
            // A whole number, also when written as one with a fraction of zero (`1024.0`).
            let size = value.as_u64().or_else(|| {
                value.as_f64().filter(|f| f.fract() == 0.0 && (0.0..=u64::MAX as f64).contains(f)).map(|f| f as u64)
            });
            if size.is_none() {
                bad.push("media_size");
            }
            size
        }
    };
    let (Some(from), true) = (from, bad.is_empty()) else {
        return Err(ApiError::validation(&bad));
    };
    let instance = sandbox_instance(&state, &caller, id).await?;
    let provider_message_id = gateway::ids::new_id("sbxin");
    let media = media_kind.map(|kind| InboundMedia {
        kind,
        mime_type: mime_type.unwrap_or("application/octet-stream").to_string(),
        file_name: file_name.map(str::to_string),
        size_bytes,
    });
    let message = InboundMessage {
        provider_message_id: provider_message_id.clone(),
        from: sender(&from),
        group_id: group_id.map(str::to_string),
        text: message.map(str::to_string),
        media,
        sent_at: gateway::time::now(),
    };
    state
        .registry
        .sandbox_deliver(&instance, EventKind::MessageReceived(message))
        .await
        .map_err(|e| delivery_error("sandbox inbound", e))?;
    Ok(Json(SandboxInboundResponse { success: true, message_id: provider_message_id }))
}

/// A person calls a connected sandbox instance: `call.received` or `call.missed`.
#[utoipa::path(
    post,
    path = "/api/sandbox/call",
    tag = "Sandbox",
    request_body = SandboxCallBody,
    responses(
        (status = 200, description = "Received (call.received or call.missed)", body = SandboxStatusResponse),
        (status = 400, description = "invalid_json: the body is not a JSON object", body = ErrorResponse),
        (status = 401, description = "invalid_api_key, revoked_api_key, account_disabled", body = ErrorResponse),
        (status = 403, description = "module_not_enabled", body = ErrorResponse),
        (status = 404, description = "invalid_instance (also for instances that are not sandbox instances); not_found when the server runs without the sandbox", body = ErrorResponse),
        (status = 408, description = "request_timeout", body = ErrorResponse),
        (status = 409, description = "instance_not_connected: the instance is not linked or not connected", body = ErrorResponse),
        (status = 413, description = "payload_too_large: the body is over 2 MB", body = ErrorResponse),
        (status = 415, description = "unsupported_media_type: Content-Type is not application/json", body = ErrorResponse),
        (status = 422, description = "validation_error (with `details.fields`)", body = ErrorResponse),
        (status = 500, description = "internal_error", body = ErrorResponse),
    ),
    security(("bearer" = []))
)]
pub async fn call(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Result<ApiCaller, ApiError>,
    body: Body,
) -> Result<Json<SandboxStatusResponse>, ApiError> {
    let (caller, parsed): (_, SandboxCallBody) = read_body(&headers, caller, body).await?;
    let mut bad = Vec::new();
    let (id, from) = instance_and_sender(&parsed.instance_id, &parsed.from, &mut bad);
    let missed = match text(&parsed.status) {
        Some("received") => false,
        Some("missed") => true,
        _ => {
            bad.push("status");
            false
        }
    };
    let (Some(from), true) = (from, bad.is_empty()) else {
        return Err(ApiError::validation(&bad));
    };
    let instance = sandbox_instance(&state, &caller, id).await?;
    let sender = sender(&from);
    state
        .registry
        .sandbox_deliver(&instance, EventKind::Call { from: sender, missed, at: gateway::time::now() })
        .await
        .map_err(|e| delivery_error("sandbox call", e))?;
    Ok(Json(status_of(&state, &caller, id).await?))
}
