//! The documentation pages: Markdown compiled into the binary, rendered with this server's own
//! public base URL in place of `{{BASE_URL}}`. A page is listed here once its feature exists.
use pulldown_cmark::{html, Event, Options, Parser, Tag, TagEnd};

pub struct Page {
    pub path: &'static str,
    pub title: &'static str,
    pub source: &'static str,
}

/// In the order of the spec's "Portal Paths", then the acceptable use policy.
pub const PAGES: &[Page] = &[
    Page { path: "/docs", title: "Overview", source: include_str!("../docs/overview.md") },
    Page { path: "/docs/quickstart", title: "Quickstart", source: include_str!("../docs/quickstart.md") },
    Page { path: "/docs/connect", title: "Connect", source: include_str!("../docs/connect.md") },
    Page { path: "/docs/send", title: "Send", source: include_str!("../docs/send.md") },
    Page { path: "/docs/receive", title: "Receive", source: include_str!("../docs/receive.md") },
    Page {
        path: "/docs/responsible-messaging",
        title: "Responsible messaging",
        source: include_str!("../docs/responsible-messaging.md"),
    },
    Page { path: "/docs/3cx", title: "3CX middleware", source: include_str!("../docs/3cx.md") },
    Page {
        path: "/docs/3cx/webhooks",
        title: "3CX webhook reference",
        source: include_str!("../docs/3cx-webhooks.md"),
    },
    Page {
        path: "/docs/3cx/call-events",
        title: "3CX call event templates",
        source: include_str!("../docs/3cx-call-events.md"),
    },
    Page {
        path: "/docs/3cx/troubleshooting",
        title: "3CX troubleshooting",
        source: include_str!("../docs/3cx-troubleshooting.md"),
    },
    Page { path: "/docs/endpoints", title: "Endpoints", source: include_str!("../docs/endpoints.md") },
    Page {
        path: "/docs/troubleshooting",
        title: "Troubleshooting",
        source: include_str!("../docs/troubleshooting.md"),
    },
    Page { path: "/acceptable-use", title: "Acceptable use", source: include_str!("../docs/acceptable-use.md") },
];

pub fn find(path: &str) -> Option<&'static Page> {
    let path = path.trim_end_matches('/');
    let path = if path.is_empty() { "/" } else { path };
    PAGES.iter().find(|p| p.path == path)
}

/// Renders a page to HTML. Raw HTML in the Markdown is escaped (the sources are ours, but the
/// rule keeps it that way); code blocks are wrapped so the script can add a copy button.
pub fn render(page: &Page, base_url: &str) -> String {
    render_markdown(page.source, base_url)
}

/// The API reference page, written by the server from its OpenAPI document.
pub const API_REFERENCE_PATH: &str = "/docs/api";
pub const API_REFERENCE_TITLE: &str = "API reference";

/// The navigation: the Markdown pages, with the API reference after Endpoints.
pub fn navigation() -> Vec<(&'static str, &'static str)> {
    let mut nav: Vec<_> = PAGES.iter().map(|p| (p.path, p.title)).collect();
    let at = nav.iter().position(|(path, _)| *path == "/docs/endpoints").map(|i| i + 1).unwrap_or(nav.len());
    nav.insert(at, (API_REFERENCE_PATH, API_REFERENCE_TITLE));
    nav
}

pub fn render_markdown(source: &str, base_url: &str) -> String {
    let source = source.replace("{{BASE_URL}}", base_url);
    let parser =
        Parser::new_ext(&source, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH).flat_map(
            |event| match event {
                Event::Html(text) | Event::InlineHtml(text) => vec![Event::Text(text)],
                Event::Start(Tag::CodeBlock(kind)) => {
                    vec![Event::Html("<div class=\"code-block\">".into()), Event::Start(Tag::CodeBlock(kind))]
                }
                Event::End(TagEnd::CodeBlock) => {
                    vec![Event::End(TagEnd::CodeBlock), Event::Html("</div>".into())]
                }
                other => vec![other],
            },
        );
    let mut out = String::with_capacity(source.len() * 2);
    html::push_html(&mut out, parser);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_renders_with_the_base_url_and_no_placeholder() {
        for page in PAGES {
            let html = render(page, "https://gw.example.com");
            assert!(!html.contains("{{BASE_URL}}"), "{}", page.path);
            assert!(!html.contains("wag.onl"), "{}", page.path);
            assert!(html.contains("<h1"), "{} has a title", page.path);
        }
        let quick = render(find("/docs/quickstart").unwrap(), "https://gw.example.com");
        assert!(quick.contains("https://gw.example.com"));
        assert!(quick.contains("class=\"code-block\""));
    }

    #[test]
    fn raw_html_is_escaped() {
        let page = Page { path: "/x", title: "x", source: "# T\n\n<script>alert(1)</script>\n" };
        assert!(!render(&page, "http://h").contains("<script>"));
    }
}
