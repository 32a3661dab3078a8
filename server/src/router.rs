//! The whole HTTP surface: portal pages and server functions (with sessions and CSRF), the JSON
//! API (bearer keys, no cookies), health checks and static assets.
use app::context::SERVER_FN_PREFIX;
use axum::{
    http::{header, HeaderValue, StatusCode},
    middleware,
    response::IntoResponse,
    routing::any,
    Json, Router,
};
use gateway::{session_store::DbSessionStore, state::AppState};
use leptos::prelude::{provide_context, LeptosOptions};
use leptos_axum::LeptosRoutes;
use tower::ServiceBuilder;
use tower_http::{
    request_id::{PropagateRequestIdLayer, SetRequestIdLayer},
    set_header::SetResponseHeaderLayer,
    trace::{DefaultOnResponse, TraceLayer},
};
use tower_sessions::{cookie::SameSite, Expiry, SessionManagerLayer};

use crate::telemetry::{self, MakeId, REQUEST_ID_HEADER};

pub const SESSION_COOKIE: &str = "wag_session";
/// The session cookie's name behind https (see `anonymous_csrf::SECURE_COOKIE`).
pub const SECURE_SESSION_COOKIE: &str = "__Host-wag_session";

/// Behind https, browsers are told to use nothing else for a year.
const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000";

pub fn build(state: AppState) -> Router {
    let request_timeout = state.config.http.request_timeout;
    let counted = state.clone();
    let state_is_https = state.config.public_base_url.starts_with("https://");
    let portal = portal_router(state.clone());
    let mut api = crate::api::router(&state);
    if state.config.cluster.is_some() {
        api = api.merge(crate::cluster_api::router());
    }
    if state.config.metrics.token.is_some() {
        api = api.merge(crate::metrics_api::router());
    }
    let api = api
        .route("/api/{*rest}", any(api_not_found))
        .merge(crate::health::router())
        .merge(crate::api::openapi::router())
        .merge(crate::static_assets::router())
        .with_state(state);

    let https = state_is_https;
    let router = Router::new()
        .merge(api)
        .merge(portal)
        // Inside the routing, so the route template is known.
        .layer(middleware::from_fn_with_state(counted, crate::metrics_api::count));
    let router = if https {
        router.layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(STRICT_TRANSPORT_SECURITY),
        ))
    } else {
        router
    };
    router
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::if_not_present(header::REFERRER_POLICY, HeaderValue::from_static("same-origin")))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID_HEADER, MakeId))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(telemetry::request_span::<axum::body::Body>)
                        .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID_HEADER)),
        )
        // Innermost of the tracing: a request cut off is logged with its 408. It covers the
        // reading of the body, so a body trickled slowly is cut off too; an admitted send goes
        // on in a task of its own (`gateway::send::inflight`).
        .layer(axum::middleware::from_fn(move |request: axum::extract::Request, next: axum::middleware::Next| {
            within(request_timeout, request, next)
        }))
}

/// Answers `request_timeout` (408, the API's JSON error shape) when the request is not answered
/// in time. tower-http's `TimeoutLayer` would answer an empty 408.
async fn within(
    limit: std::time::Duration,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => crate::api::error::ApiError::request_timeout().into_response(),
    }
}

fn portal_router(state: AppState) -> Router {
    debug_assert!(SERVER_FN_PREFIX.starts_with('/'));
    // Without cargo-leptos the options are built here; only the output name matters, as no
    // wasm bundle is served.
    let options = LeptosOptions::builder().output_name("wag").build();
    let routes = route_list();
    let reference = app::context::ApiReference(crate::api::openapi::reference_markdown());
    let context = {
        let state = state.clone();
        move || {
            provide_context(state.clone());
            provide_context(reference.clone());
        }
    };
    let shell = {
        let options = options.clone();
        move || app::shell(options.clone())
    };
    let fallback = leptos_axum::render_app_to_stream_with_context(context.clone(), shell.clone());

    let https = state.config.public_base_url.starts_with("https://");
    let sessions = SessionManagerLayer::new(DbSessionStore::new(state.db.clone()))
        .with_name(if https { SECURE_SESSION_COOKIE } else { SESSION_COOKIE })
        .with_path("/")
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(https)
        .with_expiry(Expiry::OnInactivity(time::Duration::days(state.config.session_days)));

    Router::<LeptosOptions>::new()
        .leptos_routes_with_context(&options, routes, context, shell)
        .fallback(fallback)
        .with_state(options)
        .layer(middleware::from_fn_with_state(state.clone(), crate::portal::page_context))
        // Derived once here, not per request.
        .layer(axum::Extension(crate::anonymous_csrf::CsrfKey::derive(&state.config.master_key)))
        // Portal pages show account data and, once, new secrets: never keep them in caches.
        .layer(SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        // Rendered pages set it with their nonce (app::shell); this covers the rest.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_str(&app::server_util::content_security_policy(None))
                .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'")),
        ))
        .layer(sessions)
}

/// The portal's routes, generated once per process. Generating them renders the app with every
/// resource load suppressed through a process-wide flag (leptos_server's
/// `SuppressResourceLoad`): a page rendered by another server in the same process at that
/// moment would keep a resource pending forever and its request would hang (leptos issue
/// #4773). Generating once, before any server of the process listens, closes that window.
fn route_list() -> Vec<leptos_axum::AxumRouteListing> {
    static ROUTES: std::sync::OnceLock<Vec<leptos_axum::AxumRouteListing>> = std::sync::OnceLock::new();
    ROUTES.get_or_init(|| leptos_axum::generate_route_list(app::App)).clone()
}

async fn api_not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({
            "success": false,
            "error": "not_found",
            "message": "No API endpoint at this path. See /docs/endpoints.",
            "details": {}
        })),
    )
}
