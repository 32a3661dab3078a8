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

/// Renders a page (see [`render_page`]).
pub fn render(page: &Page, base_url: &str) -> Rendered {
    render_page(page.source, base_url)
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

/// A rendered page: its title (the Markdown's first `# ` heading, shown by the page frame as the
/// page's one `<h1>`), the body without that heading, and the sections a long page lists at its
/// top.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rendered {
    pub title: Option<String>,
    pub html: String,
    /// (anchor id, heading text) of every `## ` section, in order.
    pub sections: Vec<(String, String)>,
}

/// Pages with at least this many sections get a table of contents.
pub const TOC_MIN_SECTIONS: usize = 4;

pub fn render_markdown(source: &str, base_url: &str) -> String {
    render_page(source, base_url).html
}

/// Renders Markdown: raw HTML is escaped (the sources are ours, but the rule keeps it that way);
/// the first `# ` heading becomes the title and later ones `## `; `## ` sections get anchors;
/// inline code may break after `_ . / -` only; code blocks are coloured here, focusable (a
/// keyboard can scroll a long line) and wrapped so the script can add a copy button.
pub fn render_page(source: &str, base_url: &str) -> Rendered {
    use pulldown_cmark::{CodeBlockKind, CowStr, HeadingLevel};
    let source = source.replace("{{BASE_URL}}", base_url);
    let events: Vec<Event> = Parser::new_ext(&source, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH).collect();
    let mut out: Vec<Event> = Vec::with_capacity(events.len());
    let mut rendered = Rendered::default();
    let mut used_ids: Vec<String> = Vec::new();
    let mut i = 0;
    while i < events.len() {
        match &events[i] {
            Event::Start(Tag::Heading { level, .. }) if matches!(level, HeadingLevel::H1 | HeadingLevel::H2) => {
                let end = (i..events.len())
                    .find(|&j| matches!(events[j], Event::End(TagEnd::Heading(_))))
                    .unwrap_or(events.len());
                let text = heading_text(&events[i + 1..end]);
                if *level == HeadingLevel::H1 && rendered.title.is_none() {
                    rendered.title = Some(text);
                    i = end + 1;
                    continue;
                }
                let id = unique_id(&slug(&text), &mut used_ids);
                rendered.sections.push((id.clone(), text));
                out.push(Event::Start(Tag::Heading {
                    level: HeadingLevel::H2,
                    id: Some(CowStr::from(id)),
                    classes: Vec::new(),
                    attrs: Vec::new(),
                }));
                out.extend(events[i + 1..end].iter().cloned().map(inline));
                out.push(Event::End(TagEnd::Heading(HeadingLevel::H2)));
                i = end + 1;
            }
            Event::Start(Tag::CodeBlock(kind)) => {
                let lang = match kind {
                    CodeBlockKind::Fenced(info) => info.split_whitespace().next().unwrap_or("").to_string(),
                    CodeBlockKind::Indented => String::new(),
                };
                let end = (i..events.len())
                    .find(|&j| matches!(events[j], Event::End(TagEnd::CodeBlock)))
                    .unwrap_or(events.len());
                let code: String = events[i + 1..end]
                    .iter()
                    .filter_map(|e| match e {
                        Event::Text(t) => Some(t.as_ref()),
                        _ => None,
                    })
                    .collect();
                let class = if lang.is_empty() {
                    String::new()
                } else {
                    format!(" class=\"language-{}\"", crate::highlight::escape(&lang))
                };
                out.push(Event::Html(CowStr::from(format!(
                    "<div class=\"code-block\"><pre tabindex=\"0\"><code{class}>{}</code></pre></div>\n",
                    crate::highlight::highlight(&lang, &code)
                ))));
                i = end + 1;
            }
            other => {
                out.push(inline(other.clone()));
                i += 1;
            }
        }
    }
    html::push_html(&mut rendered.html, out.into_iter());
    rendered
}

/// Raw HTML becomes text; inline code gets its break opportunities.
fn inline(event: Event<'_>) -> Event<'_> {
    match event {
        Event::Html(text) | Event::InlineHtml(text) => Event::Text(text),
        Event::Code(code) => Event::InlineHtml(code_with_breaks(&code).into()),
        other => other,
    }
}

/// `<code>` whose only break opportunities are after `_`, `.`, `/` and `-`: a long identifier in
/// a narrow table cell wraps at its joints instead of mid-word.
fn code_with_breaks(code: &str) -> String {
    let mut out = String::from("<code>");
    for c in code.chars() {
        out.push_str(&crate::highlight::escape(&c.to_string()));
        if matches!(c, '_' | '.' | '/' | '-') {
            out.push_str("<wbr>");
        }
    }
    out.push_str("</code>");
    out
}

fn heading_text(events: &[Event<'_>]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Text(t) | Event::Code(t) => Some(t.as_ref()),
            _ => None,
        })
        .collect()
}

fn slug(text: &str) -> String {
    let mut slug = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-').to_string();
    if slug.is_empty() {
        "section".into()
    } else {
        slug
    }
}

fn unique_id(base: &str, used: &mut Vec<String>) -> String {
    let mut id = base.to_string();
    let mut n = 2;
    while used.contains(&id) {
        id = format!("{base}-{n}");
        n += 1;
    }
    used.push(id.clone());
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_renders_with_the_base_url_and_no_placeholder() {
        for page in PAGES {
            let rendered = render(page, "https://gw.example.com");
            let html = &rendered.html;
            assert!(!html.contains("{{BASE_URL}}"), "{}", page.path);
            assert!(!html.contains("wag.onl"), "{}", page.path);
            assert!(rendered.title.is_some(), "{} has a title", page.path);
            assert!(!html.contains("<h1"), "{}: the page frame shows the one h1", page.path);
        }
        let quick = render(find("/docs/quickstart").unwrap(), "https://gw.example.com").html;
        assert!(quick.contains("https://gw.example.com"));
        assert!(quick.contains("class=\"code-block\""));
        assert!(quick.contains("class=\"tok-"), "code is coloured on the server");
    }

    #[test]
    fn raw_html_is_escaped() {
        let page = Page { path: "/x", title: "x", source: "# T\n\n<script>alert(1)</script>\n\n`<b>`\n" };
        let html = render(&page, "http://h").html;
        assert!(!html.contains("<script>") && !html.contains("<b>"), "{html}");
    }

    #[test]
    fn sections_get_anchors_and_inline_code_breaks_at_joints() {
        let source =
            "# Title\n\n## One\n\n## One\n\n## `a_b` c\n\n# Later\n\n| x |\n|---|\n| `daily_message_limit` |\n";
        let rendered = render_page(source, "http://h");
        assert_eq!(rendered.title.as_deref(), Some("Title"));
        let ids: Vec<&str> = rendered.sections.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["one", "one-2", "a-b-c", "later"]);
        assert!(rendered.html.contains("<h2 id=\"one-2\">"), "{}", rendered.html);
        assert!(!rendered.html.contains("<h1"));
        assert!(rendered.html.contains("<code>daily_<wbr>message_<wbr>limit</code>"), "{}", rendered.html);
    }
}
