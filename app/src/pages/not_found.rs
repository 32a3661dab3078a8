//! The 404 page. Another account's objects land here too: "not found", never "forbidden".
use leptos::prelude::*;

use crate::{
    context::page_context,
    layout::{PlainLayout, PortalLayout},
};

/// Sets the 404 status on the server and says so.
#[component]
pub fn NotFoundBody() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <div class="empty-state">
            <p><strong>"Page not found."</strong></p>
            <p>"The page or object does not exist, or it belongs to another account."</p>
        </div>
    }
}

#[component]
pub fn NotFound() -> impl IntoView {
    if page_context().user.is_some() {
        view! { <PortalLayout title="Not found" current=""><NotFoundBody/></PortalLayout> }.into_any()
    } else {
        view! { <PlainLayout title="Not found"><NotFoundBody/><p><a href="/">"Home"</a></p></PlainLayout> }.into_any()
    }
}
