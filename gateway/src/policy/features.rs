//! Hashed features of the content-policy model. `gateway/policy-model/features.py` is the same algorithm in
//! Python (training); `gateway/policy-model/fixture.tsv` pins both to the same tokens and indices and the tests
//! below read it, so the two cannot drift apart. Change both together and retrain.
//!
//! A message becomes indices into 2^[`BITS`] buckets (FNV-1a of a feature string, folded to 64 → 32 bits, masked):
//! `u|w` each token, `b|w|v` neighbouring tokens, `c|g` character 3–5-grams of each word padded `^word$` (Arabic
//! glues prefixes and suffixes to its words), `e|x` each emoji, and `s|…` style (exclamation marks, runs of `!?`,
//! words in capitals, emoji counts). Numbers, codes, links and email addresses become the placeholders `<num>`,
//! `<code>`, `<url>` and `<email>`, so an OTP, an invoice number or a tracking link is never a feature.
use std::ops::Range;

use super::fold;

pub const BITS: u32 = 18;
const MASK: u64 = (1 << BITS) - 1;
/// Each distinct index weighs 1/√max(count, NORM_FLOOR): a short message ("Hello", one line of a chat) has too few
/// features to move far from the prior. 128 was best in train.py's grouped cross-validation (64 to 256 tried); a
/// message averages about 170 features.
pub const NORM_FLOOR: usize = 128;

const TLDS: [&str; 38] = [
    "com", "net", "org", "io", "co", "sa", "ae", "eg", "jo", "lb", "kw", "qa", "bh", "om", "me", "ly", "gl", "at",
    "app", "shop", "store", "info", "biz", "xyz", "top", "online", "site", "link", "gd", "cc", "ru", "fr", "de", "uk",
    "us", "in", "tv", "ai",
];
const LEADING: &str = "([{\"'«“‘<";
const TRAILING: &str = ".,;:!?)]}\"'»”’>…،؛؟";

/// One token: its folded text (or placeholder) and the byte range of the original message it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub text: String,
    pub span: Range<usize>,
}

impl Token {
    pub fn is_placeholder(&self) -> bool {
        self.text.starts_with('<') || self.text == "%"
    }
}

/// FNV-1a over several byte strings as if concatenated.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xCBF2_9CE4_8422_2325)
    }

    fn feed(mut self, bytes: &[u8]) -> Fnv {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01B3);
        }
        self
    }

    fn index(self) -> u32 {
        ((self.0 ^ (self.0 >> 32)) & MASK) as u32
    }
}

fn is_word_char(c: char) -> bool {
    let o = c as u32;
    c.is_ascii_digit()
        || c.is_ascii_lowercase()
        || ((0xDF..=0x24F).contains(&o) && o != 0xF7)
        || (0x3B1..=0x3C9).contains(&o)
        || (0x430..=0x45F).contains(&o)
        || (0x620..=0x64A).contains(&o)
        || (0x66E..=0x66F).contains(&o)
        || (0x671..=0x6D3).contains(&o)
        || o == 0x6D5
        || (0x6EE..=0x6EF).contains(&o)
        || (0x6FA..=0x6FC).contains(&o)
        || o == 0x6FF
        || (0x750..=0x77F).contains(&o)
}

pub fn is_pictograph(c: char) -> bool {
    matches!(c as u32, 0x1F300..=0x1FAFF | 0x2600..=0x27BF | 0x2B00..=0x2BFF)
}

fn is_domain(host: &str) -> bool {
    let labels: Vec<&str> = host.split('.').collect();
    labels.len() >= 2
        && labels.last().is_some_and(|tld| TLDS.contains(tld))
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
}

fn link_kind(piece: &str) -> Option<&'static str> {
    let low = piece.to_lowercase();
    if low.contains("://") || low.starts_with("www.") {
        return Some("<url>");
    }
    if let Some((local, host)) = low.rsplit_once('@') {
        return (!local.is_empty() && is_domain(host)).then_some("<email>");
    }
    let host = low.split('/').next().unwrap_or("");
    is_domain(host).then_some("<url>")
}

/// Byte ranges of the whitespace-free runs of `text`.
fn chunks(text: &str) -> impl Iterator<Item = Range<usize>> + '_ {
    text.split(char::is_whitespace).filter(|c| !c.is_empty()).map(move |c| {
        let start = c.as_ptr() as usize - text.as_ptr() as usize;
        start..start + c.len()
    })
}

fn classify(word: String, original: &str) -> String {
    if word.chars().all(|c| c.is_ascii_digit() || c == ',' || c == '.') {
        return "<num>".into();
    }
    let digits: Vec<char> = word.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return word;
    }
    let letters = word.chars().count() - digits.len();
    let capitals = original.chars().filter(char::is_ascii_uppercase).count();
    let tail_digits = word.chars().rev().take_while(char::is_ascii_digit).count();
    // Arabizi writes letters with digits (3 for ع, 7 for ح); promo codes end in digits, references shout.
    let arabizi = letters >= 2
        && digits.len() <= 3
        && digits.iter().all(|d| "2356789".contains(*d))
        && tail_digits < 2
        && capitals < 2;
    if arabizi {
        word
    } else {
        "<code>".into()
    }
}

pub fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    for chunk in chunks(text) {
        let piece = &text[chunk.clone()];
        let trimmed = piece.trim_start_matches(|c| LEADING.contains(c)).trim_end_matches(|c| TRAILING.contains(c));
        if !trimmed.is_empty() {
            if let Some(kind) = link_kind(trimmed) {
                let start = chunk.start + (trimmed.as_ptr() as usize - piece.as_ptr() as usize);
                out.push(Token { text: kind.into(), span: start..start + trimmed.len() });
                continue;
            }
        }
        // Folded characters with the byte range of the original character each came from.
        let mut folded: Vec<(char, Range<usize>)> = Vec::with_capacity(piece.len());
        for (at, c) in piece.char_indices() {
            let range = chunk.start + at..chunk.start + at + c.len_utf8();
            folded.extend(c.to_lowercase().filter_map(fold).map(|f| (f, range.clone())));
        }
        let mut word = String::new();
        let mut span = 0..0;
        let flush = |word: &mut String, span: &Range<usize>, out: &mut Vec<Token>| {
            if !word.is_empty() {
                // Marks the folding dropped (a final damma, a tatweel) still belong to the word as written.
                let dropped = text[span.end..chunk.end]
                    .chars()
                    .take_while(|c| c.to_lowercase().all(|l| fold(l).is_none()))
                    .map(char::len_utf8)
                    .sum::<usize>();
                let span = span.start..span.end + dropped;
                let text = classify(std::mem::take(word), &text[span.clone()]);
                out.push(Token { text, span });
            }
        };
        for (j, (f, range)) in folded.iter().enumerate() {
            let next_digit = folded.get(j + 1).is_some_and(|(n, _)| n.is_ascii_digit());
            let in_number = matches!(f, ',' | '.') && word.ends_with(|c: char| c.is_ascii_digit()) && next_digit;
            if is_word_char(*f) || in_number {
                if word.is_empty() {
                    span.start = range.start;
                }
                word.push(*f);
                span.end = range.end;
            } else if matches!(f, '\'' | '’') && !word.is_empty() {
                continue;
            } else {
                flush(&mut word, &span, &mut out);
                if *f == '%' {
                    out.push(Token { text: "%".into(), span: range.clone() });
                }
            }
        }
        flush(&mut word, &span, &mut out);
    }
    out
}

/// Which tokens a feature came from, for explaining a score.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    One(usize),
    Pair(usize, usize),
    Message,
}

/// Calls `visit` with the bucket index of every feature of `text` (repeats included) and where it came from.
pub fn visit(text: &str, tokens: &[Token], mut visit: impl FnMut(u32, Source)) {
    for (k, t) in tokens.iter().enumerate() {
        visit(Fnv::new().feed(b"u|").feed(t.text.as_bytes()).index(), Source::One(k));
    }
    for (k, pair) in tokens.windows(2).enumerate() {
        let h = Fnv::new().feed(b"b|").feed(pair[0].text.as_bytes()).feed(b"|").feed(pair[1].text.as_bytes());
        visit(h.index(), Source::Pair(k, k + 1));
    }
    let mut padded = String::new();
    let mut bounds: Vec<usize> = Vec::new();
    for (k, t) in tokens.iter().enumerate() {
        if t.is_placeholder() {
            continue;
        }
        padded.clear();
        padded.push('^');
        padded.push_str(&t.text);
        padded.push('$');
        bounds.clear();
        bounds.extend(padded.char_indices().map(|(i, _)| i));
        bounds.push(padded.len());
        let chars = bounds.len() - 1;
        for n in 3..=5 {
            for i in 0..(chars + 1).saturating_sub(n) {
                let gram = &padded.as_bytes()[bounds[i]..bounds[i + n]];
                visit(Fnv::new().feed(b"c|").feed(gram).index(), Source::One(k));
            }
        }
    }
    style(text, |feature: &[u8]| visit(Fnv::new().feed(feature).index(), Source::Message));
}

fn style(text: &str, mut emit: impl FnMut(&[u8])) {
    if text.contains(['!', '！']) {
        emit(b"s|bang");
    }
    let (mut run, mut best) = (0, 0);
    for c in text.chars() {
        run = if matches!(c, '!' | '?' | '؟' | '！') { run + 1 } else { 0 };
        best = best.max(run);
    }
    if best >= 2 {
        emit(b"s|bangrun");
    }
    let shouted = |chunk: Range<usize>| {
        let piece = &text[chunk];
        let letters: String = piece.chars().filter(char::is_ascii_alphabetic).collect();
        letters.len() >= 3
            && letters.chars().all(|c| c.is_ascii_uppercase())
            && letters == piece.trim_matches(|c| ".,;:!?()\"'".contains(c))
    };
    if chunks(text).filter(|c| shouted(c.clone())).count() >= 2 {
        emit(b"s|capswords");
    }
    let emoji = text.chars().filter(|&c| is_pictograph(c)).count();
    if emoji >= 1 {
        emit(b"s|emoji");
    }
    if emoji >= 3 {
        emit(b"s|emoji3");
    }
    let mut buf = [0u8; 6];
    for c in text.chars().filter(|&c| is_pictograph(c)) {
        buf[..2].copy_from_slice(b"e|");
        let len = c.encode_utf8(&mut buf[2..]).len();
        emit(&buf[..2 + len]);
    }
}

/// The model's input: sorted distinct bucket indices (each weighs 1/√max(count, [`NORM_FLOOR`])).
pub fn indices(text: &str, tokens: &[Token]) -> Vec<u32> {
    let mut out = Vec::with_capacity(256);
    visit(text, tokens, |i, _| out.push(i));
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The fixture's texts are escaped: `\\`, `\t`, `\n`.
    fn unescape(s: &str) -> String {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('t') => out.push('\t'),
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        }
        out
    }

    pub(crate) fn fixture() -> Vec<(String, String, Vec<u32>, f64)> {
        include_str!("../../policy-model/fixture.tsv")
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|line| {
                let cols: Vec<&str> = line.split('\t').collect();
                assert_eq!(cols.len(), 4, "fixture line {line:?}");
                let idx = cols[2].split(',').filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect();
                (unescape(cols[0]), cols[1].to_string(), idx, cols[3].parse().unwrap())
            })
            .collect()
    }

    #[test]
    fn python_and_rust_extract_the_same_features() {
        let rows = fixture();
        assert!(rows.len() >= 60, "{} fixture rows", rows.len());
        for (text, expected_tokens, expected, _) in rows {
            let toks = tokens(&text);
            let names: Vec<&str> = toks.iter().map(|t| t.text.as_str()).collect();
            assert_eq!(names.join(" "), expected_tokens, "tokens of {text:?}");
            assert_eq!(indices(&text, &toks), expected, "indices of {text:?}");
        }
    }

    #[test]
    fn numbers_codes_and_links_are_placeholders() {
        let names = |t: &str| tokens(t).into_iter().map(|t| t.text).collect::<Vec<_>>().join(" ");
        assert_eq!(names("Code 482913, order ORD-88213"), "code <num> order ord <num>");
        assert_eq!(names("Use SAVE20 or K7P2Q at https://x.com/a."), "use <code> or <code> at <url>");
        assert_eq!(names("ta5fedat 3ala kol 7aga"), "ta5fedat 3ala kol 7aga");
        assert_eq!(names("mail sales@shop.sa, 50٪"), "mail <email> <num> %");
        assert_eq!(names("والتَّخْفِيضَات"), "والتخفيضات");
    }

    #[test]
    fn spans_point_into_the_original_text() {
        let text = "«Eid» sale: الخصوماتُ الكبرى!";
        for t in tokens(text) {
            assert!(!text[t.span.clone()].is_empty());
        }
        let toks = tokens(text);
        assert_eq!(&text[toks[0].span.clone()], "Eid");
        assert_eq!(&text[toks[2].span.clone()], "الخصوماتُ");
    }
}
