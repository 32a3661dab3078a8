//! What runs before every portal page and server function: who is signed in, the CSRF token
//! (checked on every server-function post), the banner of the last form, and the redirect to
//! the login page for signed-out visitors of private pages. Signed-in users' tokens live in
//! their session; signed-out visitors' tokens are bound to a cookie (`anonymous_csrf`), so
//! looking at the login page never writes a session row.
use std::net::SocketAddr;

use app::context::{session_keys, Flash, PageContext, UserInfo, CSRF_FIELD, SERVER_FN_PREFIX};
use axum::{
    body::Body,
    extract::{ConnectInfo, Request, State},
    http::{header, Method, StatusCode},
    middleware::Next,
    response::{Html, IntoResponse, Redirect, Response},
};
use gateway::{accounts::Role, state::AppState};
use tower_sessions::Session;

/// Form posts to server functions are small; anything bigger is refused before parsing.
const MAX_FORM_BYTES: usize = 64 * 1024;

const PRIVATE_PREFIXES: &[&str] = &[
    "/dashboard",
    "/api-keys",
    "/instances",
    "/account",
    "/suppressed-recipients",
    "/responsible-messaging",
    "/inbound-logs",
    "/messages",
    "/integrations",
];

fn is_private(path: &str) -> bool {
    PRIVATE_PREFIXES.iter().any(|p| path == *p || path.starts_with(&format!("{p}/")))
}

/// Signed-out visitors get a CSRF cookie only on the pages with a form.
fn needs_csrf_token(path: &str) -> bool {
    path == "/login" || path == "/signup" || path == "/reset-password"
}

pub async fn page_context(
    State(state): State<AppState>,
    axum::Extension(csrf_key): axum::Extension<crate::anonymous_csrf::CsrfKey>,
    session: Session,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    match prepare(&state, &csrf_key, &session, peer, request).await {
        Ok(Prepared::Continue(request, None)) => next.run(request).await,
        Ok(Prepared::Continue(request, Some(cookie))) => {
            let mut response = next.run(request).await;
            match header::HeaderValue::from_str(&cookie) {
                Ok(value) => {
                    response.headers_mut().append(header::SET_COOKIE, value);
                }
                Err(e) => tracing::error!(error = %e, "the CSRF cookie is not a valid header value"),
            }
            response
        }
        Ok(Prepared::Respond(response)) => response,
        Err(e) => {
            tracing::error!(error = %e, "preparing the page context failed");
            (StatusCode::INTERNAL_SERVER_ERROR, Html(gateway::error::INTERNAL_MESSAGE)).into_response()
        }
    }
}

enum Prepared {
    /// Go on to the page, setting this cookie on its response when there is one.
    Continue(Request, Option<String>),
    Respond(Response),
}

async fn prepare(
    state: &AppState,
    csrf_key: &crate::anonymous_csrf::CsrfKey,
    session: &Session,
    peer: SocketAddr,
    request: Request,
) -> anyhow::Result<Prepared> {
    let path = request.uri().path().to_string();
    let is_server_fn = path.starts_with(&format!("{SERVER_FN_PREFIX}/"));
    let user = current_user(state, session).await?;

    let mut set_cookie = None;
    let csrf_token: Option<String> = if user.is_some() {
        match session.get::<String>(session_keys::CSRF).await? {
            Some(token) => Some(token),
            None => {
                let token = app::pages::auth::new_csrf_token();
                session.insert(session_keys::CSRF, token.clone()).await?;
                Some(token)
            }
        }
    } else {
        let secure = state.config.public_base_url.starts_with("https://");
        match crate::anonymous_csrf::nonce_of(request.headers(), secure) {
            Some(nonce) => Some(csrf_key.token(&nonce)),
            None if needs_csrf_token(&path) => {
                let nonce = crate::anonymous_csrf::new_nonce();
                set_cookie = Some(crate::anonymous_csrf::set_cookie(&nonce, secure));
                Some(csrf_key.token(&nonce))
            }
            None => None,
        }
    };

    let mut request = request;
    if is_server_fn && request.method() != Method::GET {
        let (checked, ok) = check_csrf(request, csrf_token.as_deref()).await;
        if !ok {
            tracing::warn!(path = %path, "server function post refused: missing or wrong CSRF token");
            return Ok(Prepared::Respond(csrf_refusal()));
        }
        request = checked;
    }

    if is_private(&path) && user.is_none() {
        let next = request.uri().path_and_query().map(|pq| pq.as_str().to_string()).unwrap_or_else(|| path.clone());
        let target = format!("/login?next={}", url_encode(&next));
        return Ok(Prepared::Respond(Redirect::to(&target).into_response()));
    }

    let flash = if request.method() == Method::GET && !is_server_fn {
        let taken = session.remove::<Flash>(session_keys::FLASH).await?;
        taken.map(|flash| app::server_util::open_flash(&state.config.master_key, flash))
    } else {
        None
    };

    let context = PageContext {
        user,
        csrf_token: csrf_token.unwrap_or_default(),
        flash,
        registration_enabled: state.config.registration_enabled,
        public_base_url: state.config.public_base_url.clone(),
        sandbox_enabled: state.config.sandbox_enabled,
        client_ip: crate::client_ip::client_ip(peer, request.headers(), &state.config.trusted_proxies).to_string(),
    };
    request.extensions_mut().insert(context);
    Ok(Prepared::Continue(request, set_cookie))
}

/// The signed-in account, if the session names one whose password has not changed since and
/// that is not disabled.
async fn current_user(state: &AppState, session: &Session) -> anyhow::Result<Option<UserInfo>> {
    let Some(account_id) = session.get::<i64>(session_keys::ACCOUNT_ID).await? else {
        return Ok(None);
    };
    let signed_in_with: Option<i64> = session.get(session_keys::PASSWORD_CHANGED_AT).await?;
    match gateway::accounts::find_by_id(&state.db, account_id).await? {
        Some(account) if signed_in_with == Some(account.password_changed_at) && !account.disabled => {
            Ok(Some(UserInfo { account_id: account.id, email: account.email, is_admin: account.role == Role::Admin }))
        }
        _ => {
            // The account is gone, disabled, or its password changed elsewhere: this session ends.
            session.flush().await?;
            Ok(None)
        }
    }
}

/// Reads the form (or the `X-CSRF-Token` header) and compares the token in constant time.
/// Returns the request rebuilt with its body for the server function.
async fn check_csrf(request: Request, expected: Option<&str>) -> (Request, bool) {
    let (parts, body) = request.into_parts();
    let header_token = parts.headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).map(str::to_string);
    let bytes = match axum::body::to_bytes(body, MAX_FORM_BYTES).await {
        Ok(b) => b,
        Err(_) => return (Request::from_parts(parts, Body::empty()), false),
    };
    let form_token = form_urlencoded::parse(&bytes).find(|(k, _)| k == CSRF_FIELD).map(|(_, v)| v.into_owned());
    let presented = header_token.or(form_token);
    let ok = match (expected, presented) {
        (Some(expected), Some(presented)) => constant_time_eq(expected.as_bytes(), presented.as_bytes()),
        _ => false,
    };
    (Request::from_parts(parts, Body::from(bytes)), ok)
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn csrf_refusal() -> Response {
    let body = "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Form expired · WA Gateway</title>\
        <link rel=\"stylesheet\" href=\"/style/main.css\"></head><body><div class=\"layout layout-plain\"><main class=\"content\">\
        <div class=\"banner banner-error\" role=\"alert\"><p>This form has expired or did not come from WA Gateway. \
        Go back, reload the page and try again.</p></div><p><a href=\"/\">Home</a></p></main></div></body></html>";
    (StatusCode::FORBIDDEN, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

fn url_encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
