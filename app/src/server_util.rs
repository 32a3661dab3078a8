//! Helpers every server function uses: the shared state, the signed-in user, the banner for the
//! next page, and turning domain errors into safe text.
use gateway::{state::AppState, Error};
use leptos::prelude::*;
use tower_sessions::Session;

use crate::context::{page_context, session_keys, Flash, UserInfo};

pub fn app_state() -> Result<AppState, ServerFnError> {
    use_context::<AppState>().ok_or_else(|| {
        tracing::error!("AppState missing from the Leptos context");
        ServerFnError::new(gateway::error::INTERNAL_MESSAGE)
    })
}

pub async fn session() -> Result<Session, ServerFnError> {
    leptos_axum::extract::<Session>().await.map_err(|e| {
        tracing::error!(error = %e, "session layer missing");
        ServerFnError::new(gateway::error::INTERNAL_MESSAGE)
    })
}

/// The signed-in user; server functions that need one answer "sign in" otherwise.
pub fn require_user() -> Result<UserInfo, ServerFnError> {
    page_context().user.ok_or_else(|| ServerFnError::new("Please log in."))
}

/// Leaves `flash` for the next page. A one-time secret in it (a new API key, a signing secret)
/// waits in the sessions table encrypted with the master key, never as plain text.
pub async fn set_flash(mut flash: Flash) {
    let Ok(session) = session().await else { return };
    if let Some(secret) = flash.secret.take() {
        let sealed = app_state().ok().and_then(|state| {
            gateway::secrets::encrypt(&state.config.master_key, &secret)
                .inspect_err(|e| tracing::error!(error = %e, "sealing a one-time secret failed"))
                .ok()
        });
        match sealed {
            Some(sealed) => flash.secret = Some(sealed),
            // Shown nowhere rather than stored in the clear; the banner says so.
            None => {
                flash = Flash::error("The new secret could not be shown. Please create another one.");
            }
        }
    }
    if let Err(e) = session.insert(session_keys::FLASH, flash).await {
        tracing::error!(error = %e, "storing a banner in the session failed");
    }
}

/// The banner taken from the session, its one-time secret decrypted (see [`set_flash`]).
pub fn open_flash(master_key: &gateway::config::MasterKey, mut flash: Flash) -> Flash {
    if let Some(sealed) = flash.secret.take() {
        match gateway::secrets::decrypt(master_key, &sealed) {
            Ok(secret) => flash.secret = Some(secret),
            Err(e) => {
                tracing::error!(error = %e, "a one-time secret in a session could not be decrypted");
                flash = Flash::error("The new secret could not be shown. Please create another one.");
            }
        }
    }
    flash
}

/// The text a person may see for a domain error. Internal errors are logged here, with the
/// action that failed, and shown only as the generic message.
pub fn user_message(action: &str, e: &Error) -> String {
    if e.is_internal() {
        tracing::error!(action, error = %e, "portal action failed");
    }
    e.user_message()
}

/// Ends a form post: leaves a banner and sends the browser to `to`.
pub async fn finish(flash: Flash, to: &str) -> Result<(), ServerFnError> {
    set_flash(flash).await;
    leptos_axum::redirect(&local_location(to));
    Ok(())
}

/// `to` as a `Location` that stays on this site and is a valid header: targets are built from
/// form values (an instance id), and leptos_axum panics on a header value with a line break.
/// Anything but visible ASCII is percent-encoded; a target that is not a local path (`//host`,
/// `https://…`) becomes `/`.
pub fn local_location(to: &str) -> String {
    if !to.starts_with('/') || to.starts_with("//") || to.starts_with("/\\") {
        return "/".into();
    }
    let mut out = String::with_capacity(to.len());
    for c in to.chars() {
        if c.is_ascii_graphic() {
            out.push(c);
        } else {
            let mut bytes = [0u8; 4];
            for b in c.encode_utf8(&mut bytes).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::local_location;

    #[test]
    fn redirect_targets_are_local_header_safe_paths() {
        let to = local_location("/instances/inst_1\r\nSet-Cookie: x=1/manage?tab=settings");
        assert_eq!(to, "/instances/inst_1%0D%0ASet-Cookie:%20x=1/manage?tab=settings");
        assert!(axum::http::HeaderValue::from_str(&to).is_ok());
        assert_eq!(local_location("/instances/é"), "/instances/%C3%A9");
        for away in ["//evil.example/x", "https://evil.example", "evil", "", "/\\evil.example"] {
            assert_eq!(local_location(away), "/", "{away}");
        }
        assert_eq!(local_location("/instances?tab=keys"), "/instances?tab=keys");
    }
}

/// For reads behind pages: internal errors are logged and become the generic text.
pub fn read_error(action: &str, e: Error) -> ServerFnError {
    ServerFnError::new(user_message(action, &e))
}

/// The portal's Content-Security-Policy: script and style from this server only, no inline
/// style, and inline script only with the response's nonce (Leptos's own resource bookkeeping
/// carries it; an injected script would not). Forms post only here; no other site may frame a
/// page. Responses without a rendered page (redirects, server functions) get it without a nonce.
pub fn content_security_policy(nonce: Option<&str>) -> String {
    let scripts = match nonce {
        Some(nonce) => format!("'self' 'nonce-{nonce}'"),
        None => "'self'".to_string(),
    };
    format!(
        "default-src 'self'; script-src {scripts}; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
         font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// Puts the policy with this response's nonce on the page being rendered.
pub fn set_content_security_policy() {
    let (Some(nonce), Some(response)) = (leptos::nonce::use_nonce(), use_context::<leptos_axum::ResponseOptions>())
    else {
        return;
    };
    match http::HeaderValue::from_str(&content_security_policy(Some(&nonce))) {
        Ok(value) => response.insert_header(http::header::CONTENT_SECURITY_POLICY, value),
        Err(e) => tracing::error!(error = %e, "the Content-Security-Policy was not a valid header"),
    }
}

/// The value of cookie `name` in a request's headers.
pub fn cookie_value(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(cookie, _)| *cookie == name)
        .map(|(_, value)| value.trim().to_string())
}
