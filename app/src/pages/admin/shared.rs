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

/// A table of the operator pages: the column headers (an empty one is an unnamed actions column)
/// and the rows as `children`.
#[component]
pub fn Table(headers: &'static [&'static str], children: Children) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="table">
                <thead><tr>
                    {headers.iter().map(|h| match *h {
                        "" => view! { <th scope="col"><span class="visually-hidden">"Actions"</span></th> }.into_any(),
                        h => view! { <th scope="col">{h}</th> }.into_any(),
                    }).collect_view()}
                </tr></thead>
                <tbody>{children()}</tbody>
            </table>
        </div>
    }
}

/// A card with a heading and either its `empty` line or its content.
#[component]
pub fn Section(title: &'static str, empty: &'static str, is_empty: bool, children: Children) -> impl IntoView {
    view! {
        <section class="card">
            <h2>{title}</h2>
            {if is_empty { view! { <p class="muted">{empty}</p> }.into_any() } else { children().into_any() }}
        </section>
    }
}
