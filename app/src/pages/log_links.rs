//! Links between the pages of a log: the next page keeps every filter, written so that a `+`
//! in a number survives the trip.
use leptos::prelude::*;

/// `path?before=…&key=value…` with the non-empty filters, percent-encoded.
pub fn older_href(path: &str, before: &str, filters: &[(&str, &Option<String>)]) -> String {
    let mut parts = vec![format!("before={}", encode(before))];
    for (key, value) in filters {
        if let Some(v) = value.as_ref().filter(|v| !v.is_empty()) {
            parts.push(format!("{key}={}", encode(v)));
        }
    }
    format!("{path}?{}", parts.join("&"))
}

/// Cuts `rows`, read one longer than a page, to `per_page`; when there was more, the link to the
/// next older page: `href` of the last id shown.
pub fn cut_page<T>(
    rows: &mut Vec<T>,
    per_page: usize,
    id: impl Fn(&T) -> i64,
    href: impl Fn(i64) -> String,
) -> Option<String> {
    if rows.len() <= per_page {
        return None;
    }
    rows.truncate(per_page);
    rows.last().map(|last| href(id(last)))
}

pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What a page says when filters no index serves stopped at the end of the scan window of
/// `window` rows.
pub fn window_note(window: u64, what: &str) -> String {
    let digits = window.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!(
        "These filters are checked against {grouped} {what} at a time: older {what} may match too. Follow the link below to keep searching."
    )
}

/// "Older …" and "Newest …" links under a log that pages by id.
#[component]
pub(crate) fn LogPager(older: Option<String>, newest: Option<String>, what: &'static str) -> impl IntoView {
    (older.is_some() || newest.is_some()).then(|| {
        view! {
            <p class="page-actions">
                {newest.map(|href| view! { <a class="btn btn-secondary" href=href>{format!("← Newest {what}")}</a> })}
                {older.map(|href| view! { <a class="btn btn-secondary" href=href>{format!("Older {what} →")}</a> })}
            </p>
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plus_survives_and_empty_filters_are_left_out() {
        let phone = Some("+966 50".to_string());
        let none = None;
        let empty = Some(String::new());
        assert_eq!(
            older_href("/messages", "42", &[("phone", &phone), ("status", &none), ("instance", &empty)]),
            "/messages?before=42&phone=%2B966%2050"
        );
        assert!(window_note(5000, "messages").contains(" 5,000 messages at a time"));
        assert!(window_note(500, "messages").contains(" 500 messages"));
    }
}
