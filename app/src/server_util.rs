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

pub async fn set_flash(flash: Flash) {
    if let Ok(session) = session().await {
        if let Err(e) = session.insert(session_keys::FLASH, flash).await {
            tracing::error!(error = %e, "storing a banner in the session failed");
        }
    }
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
