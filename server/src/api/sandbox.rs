//! /api/sandbox/*: controls for sandbox instances, for trying every path without a phone.
//! Only sandbox instances of the key's own account; absent when the sandbox is disabled.
use axum::{body::Bytes, extract::State, http::HeaderMap, routing::post, Json, Router};
use gateway::{connectors::sandbox, instances, state::AppState};
use serde_json::{json, Value};

use super::{
    auth::ApiCaller,
    error::ApiError,
    json::{parse_object, require_json_content_type, required_str},
};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/sandbox/link", post(link))
}

/// POST /api/sandbox/link `{"instance_id": "inst_…"}`: what scanning the QR code would do.
async fn link(
    State(state): State<AppState>,
    headers: HeaderMap,
    caller: Result<ApiCaller, ApiError>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    require_json_content_type(&headers)?;
    let caller = caller?;
    let object = parse_object(&body)?;
    let instance_id = required_str(&object, "instance_id").ok_or_else(|| ApiError::validation(&["instance_id"]))?;
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
    Ok(Json(json!({
        "success": true,
        "instance_id": linked.id,
        "status": linked.status.as_str(),
        "phone": linked.linked_phone,
    })))
}
