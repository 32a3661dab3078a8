//! /api/sandbox/*: controls for sandbox instances, for trying every path without a phone.
//! Only sandbox instances of the key's own account; absent when the sandbox is disabled.
use axum::{
    body::Bytes,
    extract::{rejection::BytesRejection, State},
    http::{HeaderMap, StatusCode},
    routing::post,
    Json, Router,
};
use gateway::{connectors::sandbox, instances, state::AppState};

use super::{
    auth::ApiCaller,
    error::ApiError,
    json::{parse_body, require_json_content_type},
    schema::{ErrorResponse, SandboxLinkBody, SandboxLinkResponse},
};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/sandbox/link", post(link))
}

/// Link a sandbox instance: what scanning the QR code with a phone would do. Only sandbox
/// instances of the key's account; absent when the operator disables the sandbox.
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
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<SandboxLinkResponse>, ApiError> {
    require_json_content_type(&headers)?;
    let caller = caller?;
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::payload_too_large(),
        _ => ApiError::invalid_json(),
    })?;
    let parsed: SandboxLinkBody = parse_body(&body)?;
    let instance_id = match &parsed.instance_id {
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => s.trim(),
        _ => return Err(ApiError::validation(&["instance_id"])),
    };
    if !caller.account.api_enabled {
        return Err(ApiError::module_not_enabled());
    }
    let instance = instances::find(&state.db, caller.account.id, instance_id)
        .await
        .map_err(|e| ApiError::from_domain("find sandbox instance", e))?;
    if instance.connector != sandbox::NAME {
        return Err(ApiError::invalid_instance());
    }
    state.registry.simulate_scan(&instance).await.map_err(|e| ApiError::internal("sandbox link", &e))?;
    let linked = instances::find(&state.db, caller.account.id, instance_id)
        .await
        .map_err(|e| ApiError::from_domain("reload sandbox instance", e))?;
    tracing::info!(account_id = caller.account.id, key_id = %caller.key_id, instance_id = %linked.id, "sandbox instance linked");
    Ok(Json(SandboxLinkResponse {
        success: true,
        status: linked.status.as_str().into(),
        instance_id: linked.id,
        phone: linked.linked_phone,
    }))
}
