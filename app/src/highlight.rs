//! Syntax colouring for the docs' code blocks, done once on the server: the page needs no
//! script for it, and the CSP stays strict. Deliberately small: JSON (keys, strings, numbers,
//! literals), shell and HTTP (comments, strings, flags, methods). Other languages are escaped
//! only. The output is HTML-escaped text with `<span class="tok-…">` around tokens.

/// `code` as escaped HTML, coloured when `lang` is one this module knows.
pub fn highlight(lang: &str, code: &str) -> String {
    match lang {
        "json" => json(code),
        "bash" | "sh" | "shell" | "http" => shell(code),
        _ => escape(code),
    }
}

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn span(out: &mut String, class: &str, text: &str) {
    out.push_str("<span class=\"tok-");
    out.push_str(class);
    out.push_str("\">");
    out.push_str(&escape(text));
    out.push_str("</span>");
}

/// The end (exclusive) of the string starting at `start` (a quote), escapes included.
fn string_end(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    chars.len()
}

fn json(code: &str) -> String {
    let chars: Vec<char> = code.chars().collect();
    let mut out = String::with_capacity(code.len() * 2);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' {
            let end = string_end(&chars, i).min(chars.len());
            let text: String = chars[i..end].iter().collect();
            // A string followed by a colon is a key.
            let next = chars[end..].iter().find(|c| !c.is_whitespace());
            span(&mut out, if next == Some(&':') { "key" } else { "string" }, &text);
            i = end;
        } else if c == '-' || c.is_ascii_digit() {
            let end = (i + 1..chars.len())
                .find(|&j| !(chars[j].is_ascii_digit() || matches!(chars[j], '.' | 'e' | 'E' | '+' | '-')))
                .unwrap_or(chars.len());
            let text: String = chars[i..end].iter().collect();
            span(&mut out, "number", &text);
            i = end;
        } else if c.is_ascii_alphabetic() {
            let end = (i..chars.len()).find(|&j| !chars[j].is_ascii_alphanumeric()).unwrap_or(chars.len());
            let word: String = chars[i..end].iter().collect();
            if matches!(word.as_str(), "true" | "false" | "null") {
                span(&mut out, "literal", &word);
            } else {
                out.push_str(&escape(&word));
            }
            i = end;
        } else {
            out.push_str(&escape(&c.to_string()));
            i += 1;
        }
    }
    out
}

const HTTP_METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

fn shell(code: &str) -> String {
    let chars: Vec<char> = code.chars().collect();
    let mut out = String::with_capacity(code.len() * 2);
    let mut i = 0;
    let mut line_start = true;
    while i < chars.len() {
        let c = chars[i];
        let word_start = i == 0 || chars[i - 1].is_whitespace();
        if c == '#' && word_start {
            let end = (i..chars.len()).find(|&j| chars[j] == '\n').unwrap_or(chars.len());
            span(&mut out, "comment", &chars[i..end].iter().collect::<String>());
            i = end;
        } else if c == '"' || c == '\'' {
            let end = string_end(&chars, i).min(chars.len());
            span(&mut out, "string", &chars[i..end].iter().collect::<String>());
            i = end;
            line_start = false;
        } else if c == '-' && word_start {
            let end = (i..chars.len()).find(|&j| chars[j].is_whitespace() || chars[j] == '=').unwrap_or(chars.len());
            span(&mut out, "flag", &chars[i..end].iter().collect::<String>());
            i = end;
            line_start = false;
        } else if c.is_ascii_uppercase() && line_start {
            let end = (i..chars.len()).find(|&j| !chars[j].is_ascii_uppercase()).unwrap_or(chars.len());
            let word: String = chars[i..end].iter().collect();
            if HTTP_METHODS.contains(&word.as_str()) {
                span(&mut out, "keyword", &word);
            } else {
                out.push_str(&escape(&word));
            }
            i = end;
            line_start = false;
        } else {
            if c == '\n' {
                line_start = true;
            } else if !c.is_whitespace() {
                line_start = false;
            }
            out.push_str(&escape(&c.to_string()));
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keys_strings_numbers_and_literals() {
        let html = highlight("json", r#"{"success": true, "log_id": 123, "status": "sent", "x": null}"#);
        assert!(html.contains(r#"<span class="tok-key">&quot;success&quot;</span>"#), "{html}");
        assert!(html.contains(r#"<span class="tok-literal">true</span>"#));
        assert!(html.contains(r#"<span class="tok-number">123</span>"#));
        assert!(html.contains(r#"<span class="tok-string">&quot;sent&quot;</span>"#));
        assert!(html.contains(r#"<span class="tok-literal">null</span>"#));
    }

    #[test]
    fn shell_and_http_tokens_and_escaping() {
        let html = highlight("bash", "# send\ncurl -i -X POST \"https://h/api?a=1&b=<2>\" \\\n  -d '{\"a\":1}'");
        assert!(html.contains(r#"<span class="tok-comment"># send</span>"#), "{html}");
        assert!(html.contains(r#"<span class="tok-flag">-X</span>"#));
        assert!(html.contains("&amp;b=&lt;2&gt;"), "escaped inside strings");
        assert!(!html.contains("<2>"));
        let http = highlight("http", "POST /api/send-message\nAuthorization: Bearer KEY");
        assert!(http.starts_with(r#"<span class="tok-keyword">POST</span>"#), "{http}");
    }

    #[test]
    fn unknown_languages_are_escaped_only() {
        assert_eq!(highlight("php", "<?php echo 1;"), "&lt;?php echo 1;");
    }
}
