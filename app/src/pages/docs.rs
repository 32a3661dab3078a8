//! The built-in documentation, rendered from Markdown kept in the repository (app/docs).
use leptos::prelude::*;
use leptos_router::hooks::use_location;
use serde::{Deserialize, Serialize};

use crate::{
    context::page_context,
    layout::{PlainLayout, PortalLayout},
    pages::not_found::NotFoundBody,
};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocPage {
    /// The page's heading (its Markdown's first `# ` heading): the page's one `<h1>`.
    pub title: String,
    pub html: String,
    /// (anchor, heading) of the sections, for the table of contents of a long page.
    pub toc: Vec<(String, String)>,
    /// (path, title) of every page, in navigation order.
    pub nav: Vec<(String, String)>,
}

#[server(prefix = "/_fn", endpoint = "docs/page")]
pub async fn get_doc(path: String) -> Result<Option<DocPage>, ServerFnError> {
    use crate::{context::ApiReference, docs_content, server_util::app_state};
    let state = app_state()?;
    let base = &state.config.public_base_url;
    let nav = docs_content::navigation().into_iter().map(|(p, t)| (p.to_string(), t.to_string())).collect();
    let page = |title: &str, rendered: docs_content::Rendered, nav| {
        let toc =
            if rendered.sections.len() >= docs_content::TOC_MIN_SECTIONS { rendered.sections } else { Vec::new() };
        DocPage { title: rendered.title.unwrap_or_else(|| title.to_string()), html: rendered.html, toc, nav }
    };
    if path.trim_end_matches('/') == docs_content::API_REFERENCE_PATH {
        let reference = use_context::<ApiReference>().unwrap_or_default();
        let rendered = docs_content::render_page(&reference.0, base);
        return Ok(Some(page(docs_content::API_REFERENCE_TITLE, rendered, nav)));
    }
    Ok(docs_content::find(&path).map(|found| page(found.title, docs_content::render(found, base), nav)))
}

#[component]
pub fn DocsPage() -> impl IntoView {
    let path = use_location().pathname.get_untracked();
    let signed_in = page_context().user.is_some();
    let doc = Resource::new(|| (), move |_| get_doc(path.clone()));
    let current = use_location().pathname.get_untracked();
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                let current = current.clone();
                Suspend::new(async move {
                    let body = match doc.await {
                        Ok(Some(page)) => Some(page),
                        _ => None,
                    };
                    let title = body.as_ref().map(|p| p.title.clone()).unwrap_or_else(|| "Not found".into());
                    // The portal frame shows the title as the page's h1; the public frame has no
                    // header, so the page shows it itself.
                    let inner = match body {
                        Some(page) => view! { <DocsBody page current=current.clone() own_heading={!signed_in}/> }.into_any(),
                        None => view! { <NotFoundBody/> }.into_any(),
                    };
                    let nav_current = if current == "/acceptable-use" { "/acceptable-use" } else { "/docs" };
                    if signed_in {
                        view! { <PortalLayout title=title current=nav_current>{inner}</PortalLayout> }.into_any()
                    } else {
                        view! { <PlainLayout title=title><p><a href="/">"← WA Gateway"</a></p>{inner}</PlainLayout> }.into_any()
                    }
                })
            }}
        </Suspense>
    }
}

#[component]
fn DocsBody(page: DocPage, current: String, own_heading: bool) -> impl IntoView {
    let toc = (!page.toc.is_empty()).then(|| {
        view! {
            <nav class="toc" aria-label="On this page">
                <p class="toc-title">"On this page"</p>
                <ul>
                    {page.toc.into_iter().map(|(id, text)| view! { <li><a href=format!("#{id}")>{text}</a></li> }).collect_view()}
                </ul>
            </nav>
        }
    });
    view! {
        <div class="docs">
            <nav class="docs-nav" aria-label="Documentation">
                {page.nav.into_iter().map(|(path, title)| {
                    let is_current = path == current;
                    view! { <a href=path aria-current=is_current.then_some("page")>{title}</a> }
                }).collect_view()}
            </nav>
            <div class="docs-main">
                {own_heading.then(|| view! { <h1 class="docs-title">{page.title.clone()}</h1> })}
                {toc}
                <article class="docs-body" inner_html=page.html></article>
            </div>
        </div>
    }
}
