//! The portal: Leptos components rendered on the server, with the server functions they call
//! kept next to them. Every page works without JavaScript: forms are plain posts that redirect
//! back with a banner.
#![recursion_limit = "256"]

#[cfg(feature = "ssr")]
pub mod assets;
pub mod context;
#[cfg(feature = "ssr")]
pub mod docs_content;
#[cfg(feature = "ssr")]
pub mod highlight;
pub mod layout;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod server_util;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    path, SsrMode,
};

use crate::pages::{
    account::AccountPage,
    admin::{
        accounts::{AdminAccountPage, AdminAccountsPage},
        audit::AdminAuditPage,
        fleet::AdminInstancesPage,
        limits::AdminLimitRequestsPage,
        reviews::AdminReviewsPage,
        AdminPage,
    },
    api_keys::ApiKeysPage,
    auth::{LoginPage, SignupPage},
    dashboard::DashboardPage,
    docs::DocsPage,
    inbound_logs::InboundLogsPage,
    instances::InstancesPage,
    landing::LandingPage,
    manage::ManagePage,
    messages::MessagesPage,
    not_found::NotFound,
    reset_password::ResetPasswordPage,
    responsible::ResponsiblePage,
    suppressions::SuppressionsPage,
    threecx::ThreecxPage,
};

/// The HTML document around every page.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    let _ = options;
    #[cfg(feature = "ssr")]
    server_util::set_content_security_policy();
    #[cfg(feature = "ssr")]
    let (style_href, script_href) = (assets::style_href(), assets::script_href());
    #[cfg(not(feature = "ssr"))]
    let (style_href, script_href) = (String::from("/style/main.css"), String::from("/public/app.js"));
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="stylesheet" href=style_href/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <script src=script_href defer></script>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Title formatter=|text: String| if text.is_empty() { "WA Gateway".to_string() } else { format!("{text} · WA Gateway") }/>
        <Router>
            <Routes fallback=|| view! { <NotFound/> }>
                <Route path=path!("/") view=LandingPage ssr=SsrMode::Async/>
                <Route path=path!("/login") view=LoginPage ssr=SsrMode::Async/>
                <Route path=path!("/signup") view=SignupPage ssr=SsrMode::Async/>
                <Route path=path!("/reset-password") view=ResetPasswordPage ssr=SsrMode::Async/>
                <Route path=path!("/dashboard") view=DashboardPage ssr=SsrMode::Async/>
                <Route path=path!("/api-keys") view=ApiKeysPage ssr=SsrMode::Async/>
                <Route path=path!("/instances") view=InstancesPage ssr=SsrMode::Async/>
                <Route path=path!("/instances/:id/manage") view=ManagePage ssr=SsrMode::Async/>
                <Route path=path!("/account") view=AccountPage ssr=SsrMode::Async/>
                <Route path=path!("/admin") view=AdminPage ssr=SsrMode::Async/>
                <Route path=path!("/admin/accounts") view=AdminAccountsPage ssr=SsrMode::Async/>
                <Route path=path!("/admin/accounts/:id") view=AdminAccountPage ssr=SsrMode::Async/>
                <Route path=path!("/admin/reviews") view=AdminReviewsPage ssr=SsrMode::Async/>
                <Route path=path!("/admin/limit-requests") view=AdminLimitRequestsPage ssr=SsrMode::Async/>
                <Route path=path!("/admin/instances") view=AdminInstancesPage ssr=SsrMode::Async/>
                <Route path=path!("/admin/audit") view=AdminAuditPage ssr=SsrMode::Async/>
                <Route path=path!("/suppressed-recipients") view=SuppressionsPage ssr=SsrMode::Async/>
                <Route path=path!("/inbound-logs") view=InboundLogsPage ssr=SsrMode::Async/>
                <Route path=path!("/messages") view=MessagesPage ssr=SsrMode::Async/>
                <Route path=path!("/responsible-messaging") view=ResponsiblePage ssr=SsrMode::Async/>
                <Route path=path!("/integrations/3cx") view=ThreecxPage ssr=SsrMode::Async/>
                <Route path=path!("/docs") view=DocsPage ssr=SsrMode::Async/>
                <Route path=path!("/docs/*slug") view=DocsPage ssr=SsrMode::Async/>
                <Route path=path!("/acceptable-use") view=DocsPage ssr=SsrMode::Async/>
            </Routes>
        </Router>
    }
}
