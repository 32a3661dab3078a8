//! Finding links in message text and judging their hosts, without a URL or regex crate.
//!
//! Messages are human text, so this is deliberately forgiving: `http(s)://` URLs are found
//! anywhere (even glued to Arabic text), and bare `host.tld/path` words count too because
//! spam often drops the scheme ("bit.ly/xyz"). Email addresses are not links.

use serde::Deserialize;

/// The `[shortened_link]` rule: links through a listed URL shortener.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ShortenedLink {
    pub points: u8,
    hosts: Vec<String>,
}

impl ShortenedLink {
    pub fn hits(&self, links: &[Link]) -> Vec<String> {
        links.iter().filter(|l| is_shortener(&l.host, &self.hosts)).map(|l| l.host.clone()).collect()
    }
}

/// The `[suspicious_link]` rule: hosts that disguise where a link goes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SuspiciousLink {
    pub points: u8,
    max_host_labels: usize,
}

impl SuspiciousLink {
    pub fn hits(&self, links: &[Link]) -> Vec<String> {
        links
            .iter()
            .filter_map(|l| suspicion(l, self.max_host_labels).map(|why| format!("{} ({why})", l.host)))
            .collect()
    }
}

/// One link as found: the host (lower case, no port, no user info) and whether the
/// authority carried `user@` in front of the host, the classic disguise
/// `http://bank.com@evil.example/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Link {
    pub host: String,
    pub userinfo: bool,
}

const SCHEMES: [&str; 2] = ["https://", "http://"];

pub(super) fn find_links(text: &str) -> Vec<Link> {
    let lower = text.to_lowercase();
    let mut links = Vec::new();
    let separators = |c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '،' | '؛' | '(' | ')');
    for word in lower.split(separators).filter(|w| !w.is_empty()) {
        let scheme_at = SCHEMES.iter().filter_map(|s| word.find(s).map(|at| at + s.len())).min();
        let link = match scheme_at {
            Some(start) => from_authority(authority(&word[start..]), true),
            // An address like support@shop.com is contact information, not a link.
            None if word.contains('@') => None,
            None => {
                let bare = word.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
                let auth = authority(bare);
                // Without a scheme only a dotted quad with a path or port is an IP link:
                // "10.0.0.5" in an ops note is a server name, "09:14" is a time.
                let ip_link = |host: &str| (bare[auth.len()..].starts_with('/') || auth.contains(':')) && is_quad(host);
                from_authority(auth, false).filter(|l| looks_like_domain(&l.host) || ip_link(&l.host))
            }
        };
        links.extend(link);
    }
    links
}

/// The part between the scheme and the path, minus trailing sentence punctuation.
fn authority(rest: &str) -> &str {
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    rest[..end].trim_end_matches(['.', ',', ';', ':', '!', '?', '\'', '؟', ']', '}'])
}

fn from_authority(auth: &str, with_scheme: bool) -> Option<Link> {
    let (userinfo, host_port) = match auth.rfind('@') {
        Some(at) if with_scheme => (true, &auth[at + 1..]),
        _ => (false, auth),
    };
    let host = if host_port.starts_with('[') {
        host_port.split_inclusive(']').next().unwrap_or(host_port)
    } else {
        host_port.split(':').next().unwrap_or(host_port)
    };
    let host = host.trim_end_matches('.');
    (!host.is_empty()).then(|| Link { host: host.to_string(), userinfo })
}

/// Labels of letters, digits and hyphens ending in an alphabetic TLD. Also accepts file names
/// like "invoice.pdf"; harmless, since a host only matters when it is listed or suspicious.
fn looks_like_domain(host: &str) -> bool {
    let labels: Vec<&str> = host.split('.').collect();
    let tld = labels.last().copied().unwrap_or("");
    labels.len() >= 2
        && labels.iter().all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        && (2..=24).contains(&tld.len())
        && tld.chars().all(|c| c.is_ascii_alphabetic())
}

/// Dotted quads, bracketed IPv6, and the single-number and hex forms browsers also accept.
fn is_ip(host: &str) -> bool {
    let number = !host.is_empty() && host.chars().all(|c| c.is_ascii_digit());
    let hex = host.strip_prefix("0x").is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()));
    is_quad(host) || number || hex || host.starts_with('[')
}

fn is_quad(host: &str) -> bool {
    host.split('.').count() == 4
        && host.split('.').all(|p| !p.is_empty() && p.len() <= 3 && p.chars().all(|c| c.is_ascii_digit()))
}

/// Why a link's host looks disguised, if it does.
fn suspicion(link: &Link, max_labels: usize) -> Option<&'static str> {
    let labels = link.host.split('.').count();
    if link.userinfo {
        Some("\"@\" in the link hides the real host")
    } else if is_ip(&link.host) {
        Some("raw IP address host")
    } else if link.host.split('.').any(|l| l.starts_with("xn--")) {
        Some("punycode host")
    } else if !link.host.is_ascii() {
        Some("non-ASCII host")
    } else if labels > max_labels {
        Some("very long subdomain chain")
    } else {
        None
    }
}

/// `hosts` are listed without "www."; their subdomains count as the same shortener.
fn is_shortener(host: &str, hosts: &[String]) -> bool {
    let host = host.strip_prefix("www.").unwrap_or(host);
    hosts.iter().any(|h| host == h || host.strip_suffix(h.as_str()).is_some_and(|sub| sub.ends_with('.')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(text: &str) -> Vec<String> {
        find_links(text).into_iter().map(|l| l.host).collect()
    }

    #[test]
    fn finds_scheme_and_bare_links() {
        assert_eq!(hosts("Track: https://Shop.Example.com/orders/1?x=2."), ["shop.example.com"]);
        assert_eq!(hosts("Shop now: bit.ly/xyz!"), ["bit.ly"]);
        assert_eq!(hosts("الرابط:https://rb.gy/abc، شكرا"), ["rb.gy"]);
        assert_eq!(hosts("See www.t.co."), ["www.t.co"]);
        assert_eq!(hosts("http://10.0.0.7:8080/claim"), ["10.0.0.7"]);
    }

    #[test]
    fn ignores_emails_numbers_and_abbreviations() {
        assert!(hosts("Write to support@shop.com, total 1,250.00 SAR at 3:42 p.m. e.g. soon").is_empty());
        // A bare IP without path or port is more likely a server name in an ops note.
        assert!(hosts("Server 10.0.0.5 restarts tonight at 09:14, call 920000000.").is_empty());
        assert_eq!(hosts("Go to 10.0.0.7/claim"), ["10.0.0.7"]);
    }

    #[test]
    fn judges_hosts() {
        let link = |t: &str| find_links(t).remove(0);
        assert_eq!(suspicion(&link("http://paypal.com@evil.io/x"), 5), Some("\"@\" in the link hides the real host"));
        assert_eq!(link("http://paypal.com@evil.io/x").host, "evil.io");
        assert_eq!(suspicion(&link("http://192.168.4.20/claim"), 5), Some("raw IP address host"));
        assert_eq!(suspicion(&link("https://[::1]:80/"), 5), Some("raw IP address host"));
        assert_eq!(suspicion(&link("https://xn--80ak6aa92e.com/"), 5), Some("punycode host"));
        assert_eq!(suspicion(&link("https://a.b.c.d.example.com/"), 5), Some("very long subdomain chain"));
        assert_eq!(suspicion(&link("https://portal.acme-trading.com/"), 5), None);
        let list = vec!["bit.ly".to_string(), "t.co".to_string()];
        assert!(is_shortener("www.bit.ly", &list) && is_shortener("go.bit.ly", &list));
        assert!(!is_shortener("rabbit.ly", &list) && !is_shortener("t.com", &list));
    }
}
