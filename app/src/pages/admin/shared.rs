//! What every operator page shares: the admin check of pages and server functions, and small
//! formatting helpers.
use leptos::prelude::*;

use crate::context::page_context;

/// Whether the signed-in user is an operator (pages render the 404 otherwise).
pub fn is_operator() -> bool {
    page_context().user.is_some_and(|u| u.is_admin)
}

/// The signed-in operator. A customer learns nothing from an operator function, not even that
/// it exists for someone else: the answer is the one an unknown page gets.
#[cfg(feature = "ssr")]
pub fn require_operator() -> Result<crate::context::UserInfo, ServerFnError> {
    match page_context().user {
        Some(user) if user.is_admin => Ok(user),
        _ => Err(ServerFnError::new("Not found.")),
    }
}

/// A time for a table cell; "never" for none.
#[cfg(feature = "ssr")]
pub fn when(at: Option<i64>) -> String {
    at.map(gateway::time::display).unwrap_or_else(|| "never".into())
}

/// The failure text of a read behind an operator page.
#[component]
pub fn LoadError(message: String) -> impl IntoView {
    view! { <div class="banner banner-error" role="alert">{message}</div> }
}
