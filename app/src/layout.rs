//! The page frames: the portal's sidebar layout, the plain layout for public pages, the
//! banner left by the last form, and the hidden CSRF field every form carries.
use leptos::prelude::*;
use leptos_meta::Title;

use crate::context::{page_context, FlashKind, CSRF_FIELD};

/// The hidden field that proves a form came from our own page.
#[component]
pub fn CsrfField() -> impl IntoView {
    view! { <input type="hidden" name=CSRF_FIELD value=page_context().csrf_token/> }
}

/// The one-shot banner of the last form post, if any.
#[component]
pub fn FlashBanner() -> impl IntoView {
    page_context().flash.map(|flash| {
        let (class, role) = match flash.kind {
            FlashKind::Success => ("banner banner-success", "status"),
            FlashKind::Error => ("banner banner-error", "alert"),
        };
        view! {
            <div class=class role=role>
                <p>{flash.message}</p>
                {flash.secret.map(|secret| {
                    let id = flash.secret_kind.field_id();
                    view! {
                        <div class="secret">
                            <label class="visually-hidden" for=id>{flash.secret_kind.label()}</label>
                            <input class="secret-value" id=id readonly value=secret/>
                            <button type="button" class="btn btn-secondary copy-button" data-copy-target=format!("#{id}") hidden>"Copy"</button>
                        </div>
                    }
                })}
            </div>
        }
    })
}

/// The operator's pages (admin role only).
const OPERATOR_NAV: &[NavItem] = &[
    NavItem { href: "/admin", label: "Operator overview" },
    NavItem { href: "/admin/accounts", label: "Accounts" },
    NavItem { href: "/admin/reviews", label: "Review queue" },
    NavItem { href: "/admin/limit-requests", label: "Limit requests" },
    NavItem { href: "/admin/instances", label: "All instances" },
    NavItem { href: "/admin/audit", label: "Audit log" },
];

struct NavItem {
    href: &'static str,
    label: &'static str,
}

struct NavGroup {
    title: &'static str,
    items: &'static [NavItem],
}

/// The sidebar follows the spec's "Customer Integration Areas"; an area appears once it exists.
const NAV: &[NavGroup] = &[
    NavGroup { title: "Overview", items: &[NavItem { href: "/dashboard", label: "Dashboard" }] },
    NavGroup { title: "Customer Access", items: &[NavItem { href: "/api-keys", label: "API Keys" }] },
    NavGroup { title: "Connection", items: &[NavItem { href: "/instances", label: "Instances" }] },
    NavGroup {
        title: "Visibility",
        items: &[
            NavItem { href: "/inbound-logs", label: "Inbound Logs" },
            NavItem { href: "/messages", label: "Messages" },
        ],
    },
    NavGroup { title: "Integrations", items: &[NavItem { href: "/integrations/3cx", label: "3CX Integration" }] },
    NavGroup {
        title: "Safety",
        items: &[
            NavItem { href: "/responsible-messaging", label: "Responsible messaging" },
            NavItem { href: "/suppressed-recipients", label: "Suppressed recipients" },
        ],
    },
    NavGroup {
        title: "Help",
        items: &[
            NavItem { href: "/docs", label: "Documentation" },
            NavItem { href: "/acceptable-use", label: "Acceptable use" },
        ],
    },
    NavGroup { title: "Settings", items: &[NavItem { href: "/account", label: "Account" }] },
];

#[component]
pub fn PortalLayout(
    #[prop(into)] title: String,
    /// The sidebar entry to mark as current.
    current: &'static str,
    #[prop(optional, into)] lead: Option<String>,
    children: Children,
) -> impl IntoView {
    let ctx = page_context();
    let email = ctx.user.as_ref().map(|u| u.email.clone()).unwrap_or_default();
    let is_admin = ctx.user.as_ref().is_some_and(|u| u.is_admin);
    view! {
        <Title text=title.clone()/>
        <SkipLink/>
        <div class="layout">
            <aside class="sidebar">
                // The aside runs the page's full height (its edge and background never stop part-way);
                // the panel inside it stays in view while the page scrolls.
                <div class="sidebar-inner">
                    <a class="brand" href="/dashboard"><span class="brand-mark" aria-hidden="true"></span>"WA Gateway"</a>
                    // On a phone the navigation folds behind this button. A checkbox and its label
                    // open it without JavaScript; on wider screens both are hidden and it is open.
                    <input type="checkbox" id="nav-toggle" class="nav-toggle" aria-controls="portal-nav"/>
                    <label for="nav-toggle" class="btn btn-secondary nav-toggle-label">"Menu"</label>
                    <nav class="nav" id="portal-nav" aria-label="Portal">
                        {NAV.iter().map(|group| view! {
                            <div class="nav-group">
                                <div class="nav-group-title">{group.title}</div>
                                {group.items.iter().map(|item| {
                                    let is_current = item.href == current;
                                    view! {
                                        <a class="nav-link" href=item.href aria-current=is_current.then_some("page")>{item.label}</a>
                                    }
                                }).collect_view()}
                            </div>
                        }).collect_view()}
                        // Operators only: customers never see the link (and get a 404 at the page).
                        {is_admin.then(|| view! {
                            <div class="nav-group">
                                <div class="nav-group-title">"Operator"</div>
                                {OPERATOR_NAV.iter().map(|item| view! {
                                    <a class="nav-link" href=item.href aria-current=(item.href == current).then_some("page")>{item.label}</a>
                                }).collect_view()}
                            </div>
                        })}
                    </nav>
                    <div class="sidebar-footer">
                        <span class="user-email">{email}</span>
                        <LogoutForm/>
                    </div>
                </div>
            </aside>
            <main class="content" id="main" tabindex="-1">
                <header class="page-header">
                    <h1>{title}</h1>
                    {lead.map(|text| view! { <p class="lead">{text}</p> })}
                </header>
                <FlashBanner/>
                {children()}
            </main>
        </div>
    }
}

#[component]
pub fn PlainLayout(#[prop(into)] title: String, children: Children) -> impl IntoView {
    view! {
        <Title text=title/>
        <SkipLink/>
        <div class="layout layout-plain">
            <main class="content" id="main" tabindex="-1">
                <FlashBanner/>
                {children()}
            </main>
        </div>
    }
}

/// The first stop of the keyboard: past the navigation, straight to the page.
#[component]
fn SkipLink() -> impl IntoView {
    view! { <a class="skip-link" href="#main">"Skip to content"</a> }
}

#[component]
fn LogoutForm() -> impl IntoView {
    view! {
        <form class="inline" method="post" action={fn_path::<crate::pages::auth::Logout>()}>
            <CsrfField/>
            <button type="submit" class="link-button">"Log out"</button>
        </form>
    }
}

/// An id a customer copies into their own systems: selectable text, and (with the script) a
/// Copy button beside it.
#[component]
pub fn CopyableId(#[prop(into)] text: String) -> impl IntoView {
    let field = format!("copy-{text}");
    let target = format!("#{field}");
    let label = text.clone();
    view! {
        <span class="copyable">
            <span class="mono" id=field>{text}</span>
            <button type="button" class="copy-button copy-small" data-copy-target=target hidden aria-label=format!("Copy {label}")>"Copy"</button>
        </span>
    }
}

/// A table cell's "when" text, or a dash.
pub fn when(text: Option<String>) -> String {
    text.unwrap_or_else(|| "—".into())
}

/// The URL a plain form posts to for server function `F`.
pub fn fn_path<F: leptos::server_fn::ServerFn>() -> &'static str {
    F::PATH
}
