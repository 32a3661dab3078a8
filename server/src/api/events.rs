//! GET /api/events?after=CURSOR&limit=N: every event of the key's account, in order, so a
//! receiver that was down can catch up without relying on webhook retries.
use axum::{
    extract::{rejection::QueryRejection, Query, State},
    routing::get,
    Json, Router,
};
use gateway::state::AppState;
use serde::Deserialize;
use serde_json::Value;

use super::{
    auth::ApiCaller,
    error::ApiError,
    schema::{ErrorResponse, EventsResponse},
};

pub const DEFAULT_LIMIT: u64 = 100;
pub const MAX_LIMIT: u64 = 500;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/events", get(list_events))
}

#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    after: Option<String>,
    limit: Option<String>,
}

/// The account's events after a cursor, oldest first.
#[utoipa::path(
    get,
    path = "/api/events",
    tag = "Events",
    params(
        ("after" = Option<i64>, Query, minimum = 0, description = "The `next_cursor` of the previous page; omit (or 0) to start at the first event."),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 500, description = "1 to 500 events per page; default 100."),
    ),
    responses(
        (status = 200, body = EventsResponse),
        (status = 401, description = "invalid_api_key, revoked_api_key, account_disabled", body = ErrorResponse),
        (status = 403, description = "module_not_enabled", body = ErrorResponse),
        (status = 408, description = "request_timeout", body = ErrorResponse),
        (status = 422, description = "validation_error: `after` or `limit` is not valid", body = ErrorResponse),
        (status = 500, description = "internal_error", body = ErrorResponse),
    ),
    security(("bearer" = []))
)]
pub async fn list_events(
    State(state): State<AppState>,
    caller: Result<ApiCaller, ApiError>,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Json<EventsResponse>, ApiError> {
    let caller = caller?;
    let Query(query) = query.map_err(|_| ApiError::validation(&["after", "limit"]))?;
    let mut bad = Vec::new();
    let after = match query.after.as_deref().map(str::trim) {
        None | Some("") => 0,
        Some(text) => text.parse::<i64>().ok().filter(|n| *n >= 0).unwrap_or_else(|| {
            bad.push("after");
            0
        }),
    };
    let limit = match query.limit.as_deref().map(str::trim) {
        None | Some("") => DEFAULT_LIMIT,
        Some(text) => text.parse::<u64>().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).unwrap_or_else(|| {
            bad.push("limit");
            DEFAULT_LIMIT
        }),
    };
    if !bad.is_empty() {
        return Err(ApiError::validation(&bad));
    }
    if !caller.account.api_enabled {
        return Err(ApiError::module_not_enabled());
    }
    // One more than asked tells whether another page waits.
    let mut rows = gateway::events::after(&state.db, caller.account.id, after, limit + 1)
        .await
        .map_err(|e| ApiError::internal("list events", &e))?;
    let has_more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = rows.last().map(|r| r.cursor).unwrap_or(after).to_string();
    let events = rows.into_iter().map(|r| serde_json::from_str(&r.payload).unwrap_or(Value::Null)).collect();
    Ok(Json(EventsResponse { success: true, events, next_cursor, has_more }))
}
