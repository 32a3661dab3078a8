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
    leptos_axum::redirect(to);
    Ok(())
}

/// For reads behind pages: internal errors are logged and become the generic text.
pub fn read_error(action: &str, e: Error) -> ServerFnError {
    ServerFnError::new(user_message(action, &e))
}
