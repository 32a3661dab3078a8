//! `GET /metrics` (Prometheus text format) and the layer that counts HTTP requests by route.
//! Off unless configured: with `WAG_METRICS_TOKEN` it is served on the main listener to a
//! bearer of that token; with `WAG_METRICS_LISTEN` on a listener of its own (which asks for the
//! token too when both are set).
use axum::{
    extract::{MatchedPath, Request, State},
    http::{header, HeaderMap, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use gateway::state::AppState;

const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.config.metrics.token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !crate::portal::constant_time_eq(presented.trim().as_bytes(), token.as_bytes()) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "metrics need the bearer token\n",
            )
                .into_response();
        }
    }
    let owned = state.registry.cluster().map(|link| link.owned.count());
    match state.metrics.render(&state.db, owned).await {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering metrics failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal_error\n").into_response()
        }
    }
}

/// Counts every answered request under its route template (`/instances/{id}`), so no id, key or
/// phone number becomes a label; requests no route matched count as `unmatched`.
pub async fn count(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string());
    let response = next.run(request).await;
    state.metrics.http_answered(route.as_deref().unwrap_or("unmatched"), response.status().as_u16());
    response
}
