//! The stylesheet, script and icon, compiled in. URLs carry a content hash (`?v=`), so a
//! matching request may be cached for a year; others get a short cache.
use axum::{
    extract::Query,
    http::header,
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use gateway::state::AppState;
use serde::Deserialize;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/style/main.css", get(style))
        .route("/public/app.js", get(script))
        .route("/favicon.svg", get(favicon))
}

#[derive(Deserialize)]
struct Version {
    v: Option<String>,
}

fn asset(body: &'static str, content_type: &'static str, immutable: bool) -> Response {
    let cache = if immutable { "public, max-age=31536000, immutable" } else { "public, max-age=300" };
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, cache)], body).into_response()
}

async fn style(Query(q): Query<Version>) -> Response {
    asset(app::assets::STYLE_CSS, "text/css; charset=utf-8", q.v.as_deref() == Some(app::assets::style_version()))
}

async fn script(Query(q): Query<Version>) -> Response {
    asset(app::assets::APP_JS, "text/javascript; charset=utf-8", q.v.as_deref() == Some(app::assets::script_version()))
}

async fn favicon() -> Response {
    asset(app::assets::FAVICON_SVG, "image/svg+xml", false)
}
