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
        (status = 400, description = "invalid_json", body = ErrorResponse),
        (status = 401, description = "invalid_api_key, revoked_api_key", body = ErrorResponse),
        (status = 403, description = "module_not_enabled", body = ErrorResponse),
        (status = 404, description = "invalid_instance (also for instances that are not sandbox instances)", body = ErrorResponse),
        (status = 415, description = "unsupported_media_type", body = ErrorResponse),
        (status = 422, description = "validation_error", body = ErrorResponse),
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
#[utoipa::path(post, path = "/api/sandbox/disconnect", tag = "Sandbox", request_body = SandboxLinkBody,
    responses((status = 200, body = SandboxStatusResponse), (status = 409, description = "instance_not_connected: not linked", body = ErrorResponse)),
    security(("bearer" = [])))]
pub async fn disconnect(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Result<ApiCaller, ApiError>,
    body: Body,
) -> Result<Json<SandboxStatusResponse>, ApiError> {
    switch(&state, &headers, caller, body, false).await
}

/// Bring a disconnected sandbox instance back (`instance.connected`).
#[utoipa::path(post, path = "/api/sandbox/reconnect", tag = "Sandbox", request_body = SandboxLinkBody,
    responses((status = 200, body = SandboxStatusResponse), (status = 409, description = "instance_not_connected: not linked", body = ErrorResponse)),
    security(("bearer" = [])))]
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
#[utoipa::path(post, path = "/api/sandbox/inbound", tag = "Sandbox", request_body = SandboxInboundBody,
    responses(
        (status = 200, body = SandboxInboundResponse),
        (status = 404, description = "invalid_instance", body = ErrorResponse),
        (status = 409, description = "instance_not_connected", body = ErrorResponse),
        (status = 422, description = "validation_error", body = ErrorResponse),
    ),
    security(("bearer" = [])))]
pub async fn inbound(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Result<ApiCaller, ApiError>,
    body: Body,
) -> Result<Json<SandboxInboundResponse>, ApiError> {
    let (caller, parsed): (_, SandboxInboundBody) = read_body(&headers, caller, body).await?;
    let mut bad = Vec::new();
    let (id, from) = instance_and_sender(&parsed.instance_id, &parsed.from, &mut bad);
    let media_kind = text(&parsed.media_type).map(media::parse_kind);
    if matches!(media_kind, Some(None)) {
        bad.push("media_type");
    }
    // Kept as written (spaces included): opt-out events report the text exactly.
    let message = text(&parsed.message).and(parsed.message.as_ref()).and_then(Value::as_str).map(str::to_string);
    if message.is_none() && media_kind.is_none() {
        bad.push("message");
    }
    let (Some(from), true) = (from, bad.is_empty()) else {
        return Err(ApiError::validation(&bad));
    };
    let instance = sandbox_instance(&state, &caller, id).await?;
    let provider_message_id = gateway::ids::new_id("sbxin");
    let media = media_kind.flatten().map(|kind| InboundMedia {
        kind,
        mime_type: text(&parsed.mime_type).unwrap_or("application/octet-stream").to_string(),
        file_name: text(&parsed.file_name).map(str::to_string),
        size_bytes: parsed.media_size.as_ref().and_then(Value::as_u64),
    });
    let message = InboundMessage {
        provider_message_id: provider_message_id.clone(),
        from: sender(&from),
        group_id: text(&parsed.group_id).map(str::to_string),
        text: message,
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
#[utoipa::path(post, path = "/api/sandbox/call", tag = "Sandbox", request_body = SandboxCallBody,
    responses(
        (status = 200, body = SandboxStatusResponse),
        (status = 409, description = "instance_not_connected", body = ErrorResponse),
        (status = 422, description = "validation_error", body = ErrorResponse),
    ),
    security(("bearer" = [])))]
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
