//! The JSON API: bearer-key authentication, the spec's error shape, and one module per
//! resource exposing `router()`.
pub mod auth;
pub mod error;
pub mod events;
pub mod json;
pub mod openapi;
pub mod sandbox;
pub mod schema;
pub mod send;
pub mod send_request;
pub mod threecx;

use axum::Router;
use gateway::state::AppState;

pub fn router(state: &AppState) -> Router<AppState> {
    let mut router = Router::new().merge(send::router()).merge(events::router()).merge(threecx::router());
    if state.config.sandbox_enabled {
        router = router.merge(sandbox::router());
    }
    router
}
