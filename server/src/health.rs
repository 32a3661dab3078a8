//! GET /healthz (the process answers) and GET /readyz (the database answers).
use axum::{extract::State, http::StatusCode, routing::get, Json, Router};
use gateway::state::AppState;
use serde_json::{json, Value};

pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz))
}

/// The process answers.
#[utoipa::path(get, path = "/healthz", tag = "Health", responses(
    (status = 200, description = "`{\"status\": \"ok\"}`", body = crate::api::schema::HealthResponse),
    (status = 408, description = "request_timeout (as for any request)", body = crate::api::schema::ErrorResponse),
    (status = 500, description = "internal_error (as for any request)", body = crate::api::schema::ErrorResponse),
))]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The database answers.
#[utoipa::path(get, path = "/readyz", tag = "Health", responses(
    (status = 200, description = "`{\"status\": \"ready\"}`", body = crate::api::schema::HealthResponse),
    (status = 408, description = "request_timeout (as for any request)", body = crate::api::schema::ErrorResponse),
    (status = 500, description = "internal_error (as for any request)", body = crate::api::schema::ErrorResponse),
    (status = 503, description = "`{\"status\": \"unavailable\"}`", body = crate::api::schema::HealthResponse),
))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match gateway::db::ping(&state.db).await {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "ready"}))),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check: database does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "unavailable"})))
        }
    }
}
