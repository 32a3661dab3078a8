//! Content-policy scoring: how much an outbound message looks like marketing, spam or political campaigning, with
//! reasons a customer can read.
//!
//! Two judges look at each message. The rules are data (`rules.toml`, compiled in and parsed once) so wording can be
//! tuned without touching the matchers; they explain themselves by the phrase that matched. The model (`model.rs`)
//! recognises marketing that uses none of those phrases and explains itself by the words that weighed most. The
//! send pipeline calls [`assess_with`], then [`decide`] with the account's thresholds.
pub mod features;
mod links;
pub mod model;

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const BLOCK_THRESHOLD_DEFAULT: u8 = 70;
pub const FLAG_THRESHOLD_DEFAULT: u8 = 40;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    pub code: String,
    pub detail: String,
    pub points: u8,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assessment {
    /// 0..=100; the sum of the reasons' points, capped.
    pub score: u8,
    pub reasons: Vec<Reason>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Allow,
    Flag,
    Block,
}

/// How the model's judgement is used (`WAG_CONTENT_MODEL`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ModelMode {
    /// The model can block on its own, like the rules.
    #[default]
    Enforce,
    /// The model can flag but never block: its points stop one short of the block threshold.
    FlagOnly,
    /// Rules only.
    Off,
}

impl ModelMode {
    pub fn parse(text: &str) -> Option<ModelMode> {
        match text.trim().to_ascii_lowercase().as_str() {
            "enforce" => Some(ModelMode::Enforce),
            "flag_only" => Some(ModelMode::FlagOnly),
            "off" => Some(ModelMode::Off),
            _ => None,
        }
    }
}

/// What [`assess_with`] needs to place the model's points: its mode and the thresholds in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelUse {
    pub mode: ModelMode,
    pub flag_threshold: u8,
    pub block_threshold: u8,
}

impl Default for ModelUse {
    fn default() -> Self {
        ModelUse {
            mode: ModelMode::Enforce,
            flag_threshold: FLAG_THRESHOLD_DEFAULT,
            block_threshold: BLOCK_THRESHOLD_DEFAULT,
        }
    }
}

/// [`assess_with`] with the model enforcing at the default thresholds.
pub fn assess(text: &str, purpose: &str) -> Assessment {
    assess_with(text, purpose, ModelUse::default())
}

/// Scores `text` sent with `purpose` (transactional, operational, support, internal_team or authentication). Other
/// purposes get no purpose-specific checks: refusing them is the pipeline's `message_purpose_not_allowed`.
///
/// The score is the larger of the rules' (the sum of their reasons' points, capped at 100) and the model's (its
/// probability as 0–100 points), so either alone can reach the block threshold and neither adds up with the other:
/// an invoice with a "discount" line and a middling model score stays as it would be with either alone. The model's
/// reason is listed only from the flag threshold up, since below it the model has nothing to report.
pub fn assess_with(text: &str, purpose: &str, model_use: ModelUse) -> Assessment {
    let mut assessment = assess_rules(text, purpose);
    if model_use.mode == ModelMode::Off {
        return assessment;
    }
    let Some(model) = model::model() else { return assessment };
    let scored = model.score(text);
    let mut points = model::points(scored.probability);
    if model_use.mode == ModelMode::FlagOnly {
        points = points.min(model_use.block_threshold.saturating_sub(1));
    }
    if points >= model_use.flag_threshold && points > 0 {
        let words: Vec<String> = model.explain(text, &scored, 5).iter().map(|w| format!("\"{w}\"")).collect();
        let percent = (scored.probability * 100.0).round();
        assessment.reasons.push(Reason {
            code: model::REASON_CODE.into(),
            detail: format!("reads like marketing ({percent}% by the model); weighed most: {}", words.join(", ")),
            points,
        });
        assessment.score = assessment.score.max(points);
    }
    assessment
}

/// What the rules alone make of a list of reasons (repeated content included): the sum of every reason's points
/// but the model's, capped. Tells a block the model alone caused from one the rules would have made anyway.
pub fn rules_score(reasons: &[Reason]) -> u8 {
    let total: u32 = reasons.iter().filter(|r| r.code != model::REASON_CODE).map(|r| u32::from(r.points)).sum();
    total.min(100) as u8
}

fn assess_rules(text: &str, purpose: &str) -> Assessment {
    let rules = rules();
    let texts = words(&normalize(text));
    let words: Vec<Word> = texts.iter().map(|t| Word { text: t, forms: forms(t) }).collect();
    let mut reasons = Vec::new();
    let mut marketing = false;
    for rule in &rules.phrases {
        if let Some((points, hits)) = rule.score(&words) {
            marketing |= rule.marketing;
            reasons.push(rules.reason(&rule.code, points, &hits, "matched"));
        }
    }
    let found = links::find_links(text);
    let mismatch = rules.purpose_mismatch.problems(purpose.trim(), &words, marketing);
    let shout = rules.excessive_caps_or_punctuation.problems(text);
    let emoji: Vec<String> = rules.emoji_spam.problem(text).into_iter().collect();
    for (code, points, hits, verb) in [
        ("shortened_link", rules.shortened_link.points, rules.shortened_link.hits(&found), "link via"),
        ("suspicious_link", rules.suspicious_link.points, rules.suspicious_link.hits(&found), "link"),
        ("purpose_mismatch", rules.purpose_mismatch.points, mismatch, "purpose"),
        ("excessive_caps_or_punctuation", rules.excessive_caps_or_punctuation.points, shout, "found"),
        ("emoji_spam", rules.emoji_spam.points, emoji, "found"),
    ] {
        if !hits.is_empty() {
            reasons.push(rules.reason(code, points, &hits, verb));
        }
    }
    let total: u32 = reasons.iter().map(|r| u32::from(r.points)).sum();
    Assessment { score: total.min(100) as u8, reasons }
}

/// Scores at or above `block_threshold` block; from `flag_threshold` up they are sent but flagged for review.
pub fn decide(score: u8, flag_threshold: u8, block_threshold: u8) -> Decision {
    if score >= block_threshold {
        Decision::Block
    } else if score >= flag_threshold {
        Decision::Flag
    } else {
        Decision::Allow
    }
}

/// Hex SHA-256 of the message's words (see [`normalize`]) joined by single spaces. Case, diacritics, punctuation,
/// emoji and spacing do not change it, so trivially varied copies of one blast match; digits are kept, so two OTPs
/// differing only in the code do not.
pub fn content_fingerprint(text: &str) -> String {
    hex::encode(Sha256::digest(words(&normalize(text)).join(" ").as_bytes()))
}

/// What the matchers see: lower case, Arabic diacritics (tashkeel), tatweel and invisible format characters removed,
/// أ إ آ ٱ unified to ا, ى to ي, ة to ه, Arabic-Indic digits and ٪ ٫ ٬ to ASCII, whitespace runs collapsed to one
/// space. Punctuation stays (links and "50% off" need it); splitting into words happens later.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase).filter_map(fold) {
        let c = if c.is_whitespace() { ' ' } else { c };
        if !(c == ' ' && (out.is_empty() || out.ends_with(' '))) {
            out.push(c);
        }
    }
    out.truncate(out.trim_end().len());
    out
}

/// [`normalize`] of one lower-case character (whitespace aside); `None` drops it. The model's features fold the same
/// way.
pub(crate) fn fold(c: char) -> Option<char> {
    Some(match c {
        '\u{064B}'..='\u{065F}' | '\u{0670}' | '\u{0640}' => return None,
        // Zero-width characters are how "b\u{200B}uy now" dodges a filter.
        '\u{200B}'..='\u{200F}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}' => return None,
        'أ' | 'إ' | 'آ' | 'ٱ' => 'ا',
        'ى' => 'ي',
        'ة' => 'ه',
        '٪' => '%',
        '٫' => '.',
        '٬' => ',',
        '\u{0660}'..='\u{0669}' => char::from(b'0' + (c as u32 - 0x0660) as u8),
        '\u{06F0}'..='\u{06F9}' => char::from(b'0' + (c as u32 - 0x06F0) as u8),
        c => c,
    })
}

/// Letters and digits make words; `%` is a word of its own; apostrophes join ("don't" is "dont", so rules need not
/// list both spellings); separators inside numbers join ("1,500" is one number); anything else separates.
fn words(norm: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut chars = norm.chars().peekable();
    while let Some(c) = chars.next() {
        let in_number = matches!(c, ',' | '.')
            && word.ends_with(|d: char| d.is_ascii_digit())
            && chars.peek().is_some_and(char::is_ascii_digit);
        let apostrophe = matches!(c, '\'' | '’') && !word.is_empty();
        if c.is_alphanumeric() || in_number {
            word.push(c);
        } else if !apostrophe {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            if c == '%' {
                out.push("%".into());
            }
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// Arabic attaches conjunctions, prepositions and the article to the word: والخصومات, بالعروض, للمرشح. A word is
/// matched as written and with each such prefix stack removed; remainders under two letters are dropped so that
/// stripping cannot invent matches.
fn forms(word: &str) -> Vec<&str> {
    const LAYERS: [&[&str]; 3] = [&["و", "ف"], &["لل", "ب", "ل", "ك"], &["ال"]];
    let mut forms = vec![word];
    if !word.starts_with(|c: char| ('\u{0600}'..='\u{06FF}').contains(&c)) {
        return forms;
    }
    for layer in LAYERS {
        for i in 0..forms.len() {
            for prefix in layer {
                if let Some(rest) = forms[i].strip_prefix(prefix).filter(|r| r.chars().count() >= 2) {
                    forms.push(rest);
                }
            }
        }
    }
    forms
}

/// A message word with its Arabic prefix-stripped forms, worked out once per message.
struct Word<'a> {
    text: &'a str,
    forms: Vec<&'a str>,
}

enum Pat {
    Word(String),
    Prefix(String),
    Number,
    Any,
    /// Promo-code shape: three or more letters then one to three digits (SAVE20, VIP25).
    PromoCode,
}

impl Pat {
    fn matches(&self, word: &Word) -> bool {
        match self {
            Pat::Word(w) => word.forms.contains(&w.as_str()),
            Pat::Prefix(p) => word.forms.iter().any(|f| f.starts_with(p.as_str())),
            Pat::Number => {
                word.text.starts_with(|c: char| c.is_ascii_digit()) && !word.text.contains(char::is_alphabetic)
            }
            Pat::Any => true,
            Pat::PromoCode => {
                let digits = word.text.chars().rev().take_while(char::is_ascii_digit).count();
                let letters = &word.text[..word.text.len() - digits];
                (1..=3).contains(&digits) && letters.len() >= 3 && letters.chars().all(|c| c.is_ascii_lowercase())
            }
        }
    }
}

/// A compiled phrase; rules.toml documents the syntax.
#[derive(Deserialize)]
#[serde(try_from = "String")]
struct Phrase(Vec<Pat>);

impl TryFrom<String> for Phrase {
    type Error = String;

    fn try_from(source: String) -> Result<Phrase, String> {
        let mut pats = Vec::new();
        for piece in normalize(&source).split(' ') {
            let special = match piece {
                "#" => Some(Pat::Number),
                "?" => Some(Pat::Any),
                "$" => Some(Pat::PromoCode),
                _ => None,
            };
            if let Some(pat) = special {
                pats.push(pat);
                continue;
            }
            let (stem, prefix) = piece.strip_suffix('*').map_or((piece, false), |s| (s, true));
            let mut ws = words(stem);
            let last = ws.pop().ok_or_else(|| format!("phrase {source:?} has an empty word"))?;
            pats.extend(ws.into_iter().map(Pat::Word));
            pats.push(if prefix { Pat::Prefix(last) } else { Pat::Word(last) });
        }
        Ok(Phrase(pats))
    }
}

impl Phrase {
    /// Word ranges where the phrase occurs.
    fn spans<'p>(&'p self, words: &'p [Word]) -> impl Iterator<Item = (usize, usize)> + 'p {
        let n = self.0.len();
        (0..(words.len() + 1).saturating_sub(n))
            .filter(move |&i| self.0.iter().zip(&words[i..i + n]).all(|(p, w)| p.matches(w)))
            .map(move |i| (i, i + n))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PhraseRule {
    code: String,
    points: u8,
    marketing: bool,
    en: Vec<Phrase>,
    ar: Vec<Phrase>,
    #[serde(default)]
    weak_points: u8,
    #[serde(default)]
    weak_en: Vec<Phrase>,
    #[serde(default)]
    weak_ar: Vec<Phrase>,
    #[serde(default)]
    except: Vec<Phrase>,
}

impl PhraseRule {
    /// Base points and the message's own words for each distinct phrase that fired. Hits inside an `except` phrase
    /// or overlapping an earlier hit are skipped; strong phrases go first. A lone weak hit is worth `weak_points`.
    fn score(&self, words: &[Word]) -> Option<(u8, Vec<String>)> {
        let mut taken: Vec<(usize, usize)> = self.except.iter().flat_map(|p| p.spans(words)).collect();
        let shields = taken.len();
        let tiers = [self.en.iter().chain(&self.ar), self.weak_en.iter().chain(&self.weak_ar)];
        let (mut hits, mut strong) = (Vec::new(), 0);
        for (tier, phrases) in tiers.into_iter().enumerate() {
            for phrase in phrases {
                let free = |&(s, e): &(usize, usize)| {
                    !taken[..shields].iter().any(|&(a, b)| a <= s && e <= b)
                        && !taken[shields..].iter().any(|&(a, b)| s < b && a < e)
                };
                let spans: Vec<(usize, usize)> = phrase.spans(words).filter(free).collect();
                if let Some(&(s, e)) = spans.first() {
                    hits.push(words[s..e].iter().map(|w| w.text).collect::<Vec<_>>().join(" "));
                    strong += usize::from(tier == 0);
                }
                taken.extend(spans);
            }
        }
        let points = if strong == 0 && hits.len() == 1 { self.weak_points } else { self.points };
        (!hits.is_empty()).then_some((points, hits))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PurposeMismatch {
    points: u8,
    code_min_len: usize,
    code_max_len: usize,
    en: Vec<Phrase>,
    ar: Vec<Phrase>,
}

impl PurposeMismatch {
    fn problems(&self, purpose: &str, words: &[Word], marketing: bool) -> Vec<String> {
        let mut out = Vec::new();
        if purpose == "authentication" && !self.has_code(words) {
            out.push("authentication message without a code".to_string());
        }
        if purpose == "authentication" && marketing {
            out.push("authentication message with marketing content".to_string());
        }
        // Staff talk about sales and promotions all the time; addressing customers is what does not fit.
        if purpose == "internal_team" && self.en.iter().chain(&self.ar).any(|p| p.spans(words).next().is_some()) {
            out.push("internal_team message addressed to customers".to_string());
        }
        out
    }

    /// A word of code_min_len..=code_max_len letters and digits with a digit in it, or a code written in digit
    /// groups ("482 913", "90-41-77").
    fn has_code(&self, words: &[Word]) -> bool {
        let code = |w: &str| {
            (self.code_min_len..=self.code_max_len).contains(&w.chars().count())
                && w.chars().all(|c| c.is_ascii_alphanumeric())
                && w.chars().any(|c| c.is_ascii_digit())
        };
        let group = |w: &Word| w.text.len() >= 2 && w.text.chars().all(|c| c.is_ascii_digit());
        let grouped = |n: usize| {
            words.windows(n).any(|g| g.iter().all(group) && code(&g.iter().map(|w| w.text).collect::<String>()))
        };
        words.iter().any(|w| code(w.text)) || grouped(2) || grouped(3)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Shouting {
    points: u8,
    min_cased_letters: usize,
    caps_percent: usize,
    punctuation_run: usize,
    exclamation_total: usize,
}

impl Shouting {
    fn problems(&self, text: &str) -> Vec<String> {
        let cased = text.chars().filter(|c| c.is_lowercase() || c.is_uppercase()).count();
        let upper = text.chars().filter(|c| c.is_uppercase()).count();
        let mut out = Vec::new();
        if cased >= self.min_cased_letters && upper * 100 >= cased * self.caps_percent {
            out.push(format!("{upper} of {cased} letters in capitals"));
        }
        let run = text.split(|c: char| !matches!(c, '!' | '?' | '؟' | '！')).map(|r| r.chars().count()).max();
        let bangs = text.chars().filter(|&c| c == '!' || c == '！').count();
        let run = run.unwrap_or(0);
        if run >= self.punctuation_run || bangs >= self.exclamation_total {
            out.push(format!("{bangs} exclamation marks, longest run {run}"));
        }
        out
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmojiSpam {
    points: u8,
    emojis: String,
    min_count: usize,
    min_run: usize,
}

impl EmojiSpam {
    fn problem(&self, text: &str) -> Option<String> {
        let promo = text.chars().filter(|&c| c != '\u{FE0F}' && self.emojis.contains(c)).count();
        let pictograph = |c: char| matches!(c as u32, 0x1F300..=0x1FAFF | 0x2600..=0x27BF | 0x2B00..=0x2BFF | 0x203C);
        let (mut run, mut longest) = (0, 0);
        // Variation selectors, joiners and skin tones belong to the emoji before them.
        for c in text.chars().filter(|&c| !matches!(c as u32, 0xFE0F | 0x200D | 0x1F3FB..=0x1F3FF)) {
            run = if pictograph(c) { run + 1 } else { 0 };
            longest = longest.max(run);
        }
        (promo >= self.min_count || longest >= self.min_run)
            .then(|| format!("{promo} promotional emoji, longest emoji run {longest}"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Scoring {
    extra_hit_points: u8,
    max_extra_points: u8,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rules {
    scoring: Scoring,
    phrases: Vec<PhraseRule>,
    shortened_link: links::ShortenedLink,
    suspicious_link: links::SuspiciousLink,
    purpose_mismatch: PurposeMismatch,
    excessive_caps_or_punctuation: Shouting,
    emoji_spam: EmojiSpam,
}

/// Codes the phrase rules may use; the other codes are fixed by their table names.
const PHRASE_CODES: [&str; 6] =
    ["marketing_language", "promotional_offer", "call_to_buy", "promo_code", "giveaway", "political_campaigning"];

impl Rules {
    fn parse(source: &str) -> Result<Rules, String> {
        let mut rules: Rules = toml::from_str(source).map_err(|e| e.to_string())?;
        for (i, rule) in rules.phrases.iter().enumerate() {
            if !PHRASE_CODES.contains(&rule.code.as_str()) || rules.phrases[..i].iter().any(|r| r.code == rule.code) {
                return Err(format!("unknown or repeated rule code {:?}", rule.code));
            }
        }
        // Longer phrases claim their words first, so "flash sale" is reported rather than "sale".
        for rule in &mut rules.phrases {
            for list in [&mut rule.en, &mut rule.ar, &mut rule.weak_en, &mut rule.weak_ar] {
                list.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
            }
        }
        Ok(rules)
    }

    /// A rule counts once; each further distinct hit adds a small, capped bonus.
    fn reason(&self, code: &str, points: u8, hits: &[String], verb: &str) -> Reason {
        let extra = u8::try_from(hits.len() - 1).unwrap_or(u8::MAX);
        let bonus = extra.saturating_mul(self.scoring.extra_hit_points).min(self.scoring.max_extra_points);
        let shown: Vec<String> = hits.iter().take(5).map(|h| format!("\"{h}\"")).collect();
        let more = if hits.len() > 5 { format!(" and {} more", hits.len() - 5) } else { String::new() };
        Reason {
            code: code.into(),
            detail: format!("{verb} {}{more}", shown.join(", ")),
            points: points.saturating_add(bonus),
        }
    }
}

fn rules() -> &'static Rules {
    static RULES: OnceLock<Rules> = OnceLock::new();
    // The file is compiled in and a unit test parses it, so failing here is a build defect.
    RULES.get_or_init(|| Rules::parse(include_str!("rules.toml")).expect("policy/rules.toml is invalid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// These tests pin the rules; the model's share is tested below and in tests/policy_corpus.rs.
    fn assess(text: &str, purpose: &str) -> Assessment {
        assess_with(text, purpose, ModelUse { mode: ModelMode::Off, ..ModelUse::default() })
    }

    #[test]
    fn model_and_rules_combine_by_the_larger_score() {
        let pitch =
            "Hi! We help clinics like yours fill empty appointment slots. Could I show you how in a quick call?";
        let modelled = super::assess(pitch, "transactional");
        let model_reason = modelled.reasons.iter().find(|r| r.code == model::REASON_CODE);
        let Some(reason) = model_reason else { panic!("no model reason: {modelled:?}") };
        assert_eq!(modelled.score, reason.points.max(rules_score(&modelled.reasons)));
        assert!(reason.detail.contains('"'), "{}", reason.detail);
        let flag_only = ModelUse { mode: ModelMode::FlagOnly, ..ModelUse::default() };
        assert!(assess_with(pitch, "transactional", flag_only).score < BLOCK_THRESHOLD_DEFAULT);
        assert!(assess(pitch, "transactional").reasons.iter().all(|r| r.code != model::REASON_CODE));
        let otp = "Your verification code is 482913. It expires in 10 minutes.";
        assert!(super::assess(otp, "authentication").reasons.is_empty());
        assert_eq!(ModelMode::parse(" Flag_Only "), Some(ModelMode::FlagOnly));
        assert_eq!(ModelMode::parse("maybe"), None);
    }

    /// The examples /docs/responsible-messaging gives, with the model on.
    #[test]
    fn documented_examples() {
        let decision = |text: &str| {
            let a = super::assess(text, "transactional");
            (decide(a.score, FLAG_THRESHOLD_DEFAULT, BLOCK_THRESHOLD_DEFAULT), a.score)
        };
        assert_eq!(decision("Sale today").0, Decision::Flag);
        assert_eq!(decision("Flash sale today only! Shop now").0, Decision::Block);
        assert_eq!(decision("Please vote for the employee of the month").0, Decision::Allow);
        assert_eq!(decision("Your order #2041 has been shipped."), (Decision::Allow, 0));
    }

    fn codes(text: &str, purpose: &str) -> Vec<String> {
        assess(text, purpose).reasons.into_iter().map(|r| r.code).collect()
    }

    fn fires(text: &str, code: &str) -> bool {
        codes(text, "transactional").iter().any(|c| c == code)
    }

    #[test]
    fn rules_file_parses() {
        assert_eq!(Rules::parse(include_str!("rules.toml")).unwrap().phrases.len(), PHRASE_CODES.len());
        assert!(Rules::parse("scoring = 1").is_err());
    }

    #[test]
    fn each_phrase_code_fires_in_both_languages() {
        for (code, en, ar) in [
            ("marketing_language", "Hurry, while stocks last", "سارعوا قبل نفاد الكمية"),
            ("promotional_offer", "Up to 50% off", "خصم 50٪ على كل شيء"),
            ("call_to_buy", "Shop now", "تسوّق الآن"),
            ("promo_code", "Use code SAVE20", "استخدم كود الخصم X1"),
            ("giveaway", "Enter our giveaway", "شارك في المسابقة"),
            ("political_campaigning", "Vote for Sami on election day", "انتخبوا سامي"),
        ] {
            assert!(fires(en, code) && fires(ar, code), "{code}");
        }
    }

    #[test]
    fn arabic_normalisation() {
        assert_eq!(normalize("  أَهْلاً   بِكُمْ ـــ إلى آخِر مُسابَقةٍ ٪٥٠ عَلى "), "اهلا بكم الي اخر مسابقه %50 علي");
        assert!(fires("والتَّخْفِيضَات مستمرة بالعروض", "promotional_offer"), "prefixes and diacritics");
        // Bare خصم means "deducted" on receipts; بخصوص ("regarding") is not a discount.
        assert!(assess("تم خصم 120 ريال من بطاقتك بخصوص طلبك", "transactional").reasons.is_empty());
    }

    #[test]
    fn english_matching_is_word_aware() {
        assert!(fires("Summer sale starts today", "promotional_offer"));
        assert!(!fires("Wholesale invoice WS-3302 is attached", "promotional_offer"));
        assert!(!fires("Our point of sale terminal is offline", "promotional_offer"));
        assert!(assess("Sales team meeting moved to 3 PM", "internal_team").reasons.is_empty());
        assert!(fires("Don’t miss it", "marketing_language") && !fires("dominate", "marketing_language"));
        assert_eq!(assess("Use code 482913 for verification", "authentication").score, 0, "an OTP is no promo code");
    }

    #[test]
    fn weak_phrases_alone_do_not_flag() {
        assert_eq!(assess("Please vote for the employee of the month", "internal_team").score, 35);
        assert_eq!(assess("You have been selected for a second interview", "transactional").score, 30);
        assert_eq!(assess("Vote for Sami on election day", "support").score, 85);
    }

    #[test]
    fn link_reasons() {
        assert!(fires("Track it: bit.ly/abc", "shortened_link") && fires("https://tinyurl.com/x", "shortened_link"));
        for bad in [
            "http://192.168.4.20/x",
            "https://xn--80ak6aa92e.com/",
            "http://a.com@evil.io/",
            "https://a.b.c.d.e.f.com/",
        ] {
            assert!(fires(bad, "suspicious_link"), "{bad}");
        }
        assert!(assess("Pay at https://portal.acme-trading.com/invoices/1 by 09:14", "transactional")
            .reasons
            .is_empty());
    }

    #[test]
    fn purpose_mismatch() {
        let otp = "Your verification code is 482913. It expires in 10 minutes. Do not share it.";
        assert_eq!(assess(otp, "authentication").score, 0);
        assert_eq!(assess("رمز الدخول: ٧٣١٩٠٤", "authentication").score, 0);
        assert_eq!(assess("Your code: 482 913", "authentication").score, 0);
        let mismatch = |text: &str, purpose: &str| codes(text, purpose).contains(&"purpose_mismatch".to_string());
        assert!(mismatch("Please verify your account", "authentication"));
        assert!(mismatch("Code 4829. Enjoy 20% off!", "authentication"));
        assert!(mismatch("Dear customer, the office is closed", "internal_team"));
        assert!(!mismatch("Dear customer, your order shipped", "transactional"));
        assert!(!mismatch("The summer sale starts Thursday, update the price tags", "internal_team"));
    }

    #[test]
    fn caps_punctuation_and_emoji() {
        let shout = assess("BUY NOW!!!", "transactional");
        let caps = shout.reasons.iter().find(|r| r.code == "excessive_caps_or_punctuation").unwrap();
        assert_eq!(caps.points, 20, "caps and punctuation are two hits");
        assert!(!fires("Your OTP is 4829. Thanks!", "excessive_caps_or_punctuation"));
        assert!(fires("Deals 🔥💥🎁 today", "emoji_spam") && !fires("Delivered ✅ 📦", "emoji_spam"));
    }

    #[test]
    fn score_is_capped_and_decided() {
        let a = assess("🔥🔥🔥 MEGA SALE!!! 70% OFF, BUY NOW with promo code WIN at bit.ly/x. Win a car!", "support");
        assert_eq!(a.score, 100);
        assert!(a.reasons.iter().map(|r| u32::from(r.points)).sum::<u32>() > 100);
        assert_eq!(
            [decide(39, 40, 70), decide(69, 40, 70), decide(70, 40, 70)],
            [Decision::Allow, Decision::Flag, Decision::Block]
        );
        assert_eq!(serde_json::to_string(&Decision::Block).unwrap(), "\"block\"");
    }

    #[test]
    fn hits_count_once_per_rule_with_a_capped_bonus() {
        assert_eq!(assess("Sale today", "transactional").score, 45);
        assert_eq!(assess("Flash sale, flash sale!", "transactional").score, 45, "overlapping and repeated hits");
        assert_eq!(assess("Sale: 50% off, clearance, half price, discounts", "transactional").score, 65);
    }

    #[test]
    fn fingerprint() {
        let f = content_fingerprint;
        assert_eq!(f("BIG sale!!  50% off 🔥"), f("big Sale 50 % OFF"));
        assert_eq!(f("عرضٌ خاصّ لفترةٍ محدودة"), f("عرض خاص لفترة محدوده!"));
        assert_ne!(f("Your code is 1234"), f("Your code is 9876"));
        assert_eq!(f("x").len(), 64);
    }
}
