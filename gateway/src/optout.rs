//! Opt-out detection for inbound WhatsApp messages: when a person writes STOP (or an equivalent, in English or
//! Arabic) to a business's number, the gateway suppresses that sender for the account.
//!
//! A message is an opt-out only when, after [`normalize`], it consists of nothing but opt-out keywords
//! (`KEYWORDS`) and wrapper words (`WRAPPERS`), with at least one keyword and at most `MAX_WORDS` words. So
//! "STOP please", "stop sending me messages" and "الغاء الاشتراك لو سمحت" are opt-outs, while "Please stop by the
//! office tomorrow", "I want to cancel my order #123" and "الغاء الحجز" are not: every word that is neither a keyword
//! nor a wrapper (a noun like "order" or "الحجز", a negation like "don't" or "لا", a question word) rules it out.
//!
//! Decisions worth knowing:
//! - CANCEL (and إلغاء) alone is an opt-out, as in carrier practice (CTIA: STOP, STOPALL, UNSUBSCRIBE, CANCEL, END,
//!   QUIT), and so is CANCEL with wrappers only ("cancel please", "cancel all"). "cancel order", "cancel it",
//!   "الغاء الطلب" are not: the extra word names something other than the messages.
//! - Politeness wrappers may stand anywhere; wrappers naming what is stopped (messages, sending, me, الرسائل) only
//!   after a keyword, so "الإرسال توقف" (the sending stopped) is not an opt-out. Keywords may repeat
//!   ("stop stop stop", "stop unsubscribe").
//! - Punctuation is ignored, so "STOP?" counts like "STOP"; suppressing on an ambiguous bare keyword is the safe side.
//! - "الاشتراك"/"اشتراكي" (the subscription) are wrappers because إلغاء الاشتراك is the usual Arabic for
//!   "unsubscribe"; English "subscription" is not, since "cancel my subscription" is usually about a paid service.
//! - Wrappers are words that add no object of their own. "it", "this", "the" and a bare "من" are deliberately absent:
//!   "cancel it" is about an order, "the end" is not a request, "من توقف؟" asks who stopped.

/// Opt-out keywords and keyword phrases, already in normalised form (a unit test checks this). Arabic entries stand
/// for all their spellings: ايقاف = إيقاف/ايقاف, اوقف = أوقف/اوقف, توقف = توقّف/توقف, الغاء = إلغاء/الغاء,
/// "الغ الاشتراك" = ألغِ الاشتراك. ستوب and its variants are "stop" written in Arabic script.
const KEYWORDS: &[&str] = &[
    "stop",
    "stopall",
    "unsubscribe",
    "un subscribe",
    "cancel",
    "end",
    "quit",
    "optout", // OPT OUT, OPT-OUT, OPTOUT (normalize joins "opt out")
    "opt me out",
    "ايقاف",
    "اوقف",
    "اوقفوا",
    "توقف",
    "توقفوا",
    "الغاء",
    "الغاء الاشتراك",
    "الغ الاشتراك",
    "الغي الاشتراك",
    "الغوا الاشتراك",
    "ستوب",
    "استوب",
    "سطوب",
    "ستوپ",
];

/// Where a wrapper may stand relative to the keywords.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Politeness and emphasis: "please stop", "stop please".
    Anywhere,
    /// Who and what is being stopped, only once a keyword has been seen: "stop messages" is an opt-out, "messages
    /// stop" and "الارسال توقف" (the sending stopped) are not.
    AfterKeyword,
}
use Place::{AfterKeyword, Anywhere};

/// The accepted wrappers: words and phrases that may surround a keyword without changing its meaning (politeness,
/// emphasis, "me", and what is being stopped: the messages, the sending). Normalised form, like `KEYWORDS`.
const WRAPPERS: &[(&str, Place)] = &[
    // English: politeness and emphasis
    ("please", Anywhere),
    ("pls", Anywhere),
    ("plz", Anywhere),
    ("thanks", Anywhere),
    ("thx", Anywhere),
    ("thank you", Anywhere),
    ("now", Anywhere),
    ("right now", Anywhere),
    // English: who and what
    ("me", AfterKeyword),
    ("all", AfterKeyword),
    ("from", AfterKeyword),
    ("messages", AfterKeyword),
    ("message", AfterKeyword),
    ("msgs", AfterKeyword),
    ("texts", AfterKeyword),
    ("text", AfterKeyword),
    ("sms", AfterKeyword),
    ("these messages", AfterKeyword),
    ("the messages", AfterKeyword),
    ("messaging", AfterKeyword),
    ("sending", AfterKeyword),
    ("texting", AfterKeyword),
    ("contacting", AfterKeyword),
    // Arabic: politeness and emphasis (من فضلك، لو سمحت، أرجوك، رجاءً، شكراً، الآن، فوراً، حالاً)
    ("من فضلك", Anywhere),
    ("لو سمحت", Anywhere),
    ("لو سمحتم", Anywhere),
    ("ارجوك", Anywhere),
    ("ارجوكم", Anywhere),
    ("رجاء", Anywhere),
    ("رجاءا", Anywhere),
    ("شكرا", Anywhere),
    ("الان", Anywhere),
    ("فورا", Anywhere),
    ("حالا", Anywhere),
    // Arabic: who and what (الرسائل، رسالة، إرسال، لي، عن، كل، الاشتراك، اشتراكي)
    ("الرسائل", AfterKeyword),
    ("رسائل", AfterKeyword),
    ("الرسايل", AfterKeyword),
    ("رسايل", AfterKeyword),
    ("الرساله", AfterKeyword),
    ("رساله", AfterKeyword),
    ("ارسال", AfterKeyword),
    ("الارسال", AfterKeyword),
    ("لي", AfterKeyword),
    ("عن", AfterKeyword),
    ("كل", AfterKeyword),
    ("الاشتراك", AfterKeyword),
    ("اشتراكي", AfterKeyword),
];

/// Longest message, in normalised words, that can still be an opt-out ("please stop sending me messages thanks").
const MAX_WORDS: usize = 6;

/// True when the whole message is an opt-out request.
pub fn is_opt_out(text: &str) -> bool {
    let norm = normalize(text);
    let words: Vec<&str> = norm.split(' ').filter(|w| !w.is_empty()).collect();
    if words.is_empty() || words.len() > MAX_WORDS {
        return false;
    }
    let (mut i, mut keyword) = (0, false);
    while i < words.len() {
        let kw = longest_match(KEYWORDS.iter().copied(), &words[i..]);
        let allowed = WRAPPERS.iter().filter(|(_, place)| keyword || *place == Anywhere).map(|(w, _)| *w);
        let wrap = longest_match(allowed, &words[i..]);
        if kw == 0 && wrap == 0 {
            return false;
        }
        keyword |= kw >= wrap;
        i += kw.max(wrap);
    }
    keyword
}

/// How many of `words`' leading words the longest matching phrase covers (0 when none matches).
fn longest_match<'a>(phrases: impl Iterator<Item = &'a str>, words: &[&str]) -> usize {
    phrases
        .filter(|p| {
            let n = p.split(' ').count();
            n <= words.len() && p.split(' ').zip(words).all(|(a, b)| a == *b)
        })
        .map(|p| p.split(' ').count())
        .max()
        .unwrap_or(0)
}

/// The normalised form the decision is made on (exposed for tests and logs): full-width Latin folded to ASCII, lower
/// case, Arabic tashkeel, tatweel, combining marks and zero-width characters removed, أ إ آ ٱ → ا, ى ی → ي, ة → ه,
/// ک → ك, Arabic-Indic digits → 0-9, apostrophes dropped ("don't" → "dont"), every other non-alphanumeric character
/// (punctuation, symbols, emoji) a word break, runs of three or more identical letters cut to one ("stooop" → "stop"),
/// words joined by single spaces, and "opt out" joined to "optout".
pub fn normalize(text: &str) -> String {
    let mut spaced = String::with_capacity(text.len());
    let mut pending_space = false;
    for c in text.chars().map(fold_width).flat_map(char::to_lowercase) {
        let c = match c {
            '\u{064B}'..='\u{065F}' | '\u{0670}' | '\u{0640}' | '\u{0610}'..='\u{061A}' | '\u{06D6}'..='\u{06ED}' => {
                continue
            }
            '\u{0300}'..='\u{036F}' | '\u{200B}'..='\u{200F}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}' => continue,
            '\'' | '\u{2019}' | '\u{2018}' | '\u{02BC}' | '`' => continue,
            'أ' | 'إ' | 'آ' | 'ٱ' => 'ا',
            'ى' | 'ی' => 'ي',
            'ة' => 'ه',
            'ک' => 'ك',
            '\u{0660}'..='\u{0669}' => char::from(b'0' + (c as u32 - 0x0660) as u8),
            '\u{06F0}'..='\u{06F9}' => char::from(b'0' + (c as u32 - 0x06F0) as u8),
            c if c.is_alphanumeric() => c,
            _ => {
                pending_space = true;
                continue;
            }
        };
        if pending_space && !spaced.is_empty() {
            spaced.push(' ');
        }
        pending_space = false;
        spaced.push(c);
    }
    let mut words: Vec<String> = Vec::new();
    for word in spaced.split(' ').filter(|w| !w.is_empty()).map(squeeze_runs) {
        if word == "out" && words.last().is_some_and(|w| w == "opt") {
            words.pop();
            words.push("optout".into());
        } else {
            words.push(word);
        }
    }
    words.join(" ")
}

/// Full-width ASCII (U+FF01–U+FF5E) to ASCII and the ideographic space to a space; NFKC for that block only.
fn fold_width(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        c => c,
    }
}

/// Cuts runs of three or more identical letters to one ("stoooop" → "stop", "توقففف" → "توقف"); digits and
/// doubled letters ("all", "messages") are left alone.
fn squeeze_runs(word: &str) -> String {
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::with_capacity(word.len());
    let mut i = 0;
    while i < chars.len() {
        let run = chars[i..].iter().take_while(|&&c| c == chars[i]).count();
        let keep = if run >= 3 && chars[i].is_alphabetic() { 1 } else { run };
        out.extend(std::iter::repeat_n(chars[i], keep));
        i += run;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optout_normalize_arabic_diacritics_tatweel_and_letter_variants() {
        assert_eq!(normalize("تَوَقَّفْ"), "توقف");
        assert_eq!(normalize("توقّف"), "توقف");
        assert_eq!(normalize("توقــــف"), "توقف");
        assert_eq!(normalize("إلغاء الإشتراك"), "الغاء الاشتراك");
        assert_eq!(normalize("ٱلغاء آلاشتراك"), "الغاء الاشتراك");
        assert_eq!(normalize("أوقف الرسالة"), "اوقف الرساله");
        assert_eq!(normalize("على مستوى"), "علي مستوي");
        assert_eq!(normalize("فوراً"), "فورا");
        assert_eq!(normalize("طلب رقم ٥٥ و۱۲"), "طلب رقم 55 و12");
        assert_eq!(normalize("ی ک"), "ي ك");
    }

    #[test]
    fn optout_normalize_latin_case_width_punctuation_and_emoji() {
        assert_eq!(normalize("  STOP  "), "stop");
        assert_eq!(normalize("ＳＴＯＰ　ｐｌｅａｓｅ！"), "stop please");
        assert_eq!(normalize("stop!!!"), "stop");
        assert_eq!(normalize("Stop."), "stop");
        assert_eq!(normalize("STOP 🛑"), "stop");
        assert_eq!(normalize("🛑stop🛑now🙏"), "stop now");
        assert_eq!(normalize("❤️‍🔥 stop"), "stop");
        assert_eq!(normalize("s\u{200B}top"), "stop");
        assert_eq!(normalize("Don't  stop\n\tthe car"), "dont stop the car");
        assert_eq!(normalize("STOOOOP"), "stop");
        assert_eq!(normalize("all messages 1000"), "all messages 1000");
        assert_eq!(normalize("cafe\u{0301}"), "cafe");
        assert_eq!(normalize("!!!"), "");
    }

    #[test]
    fn optout_normalize_joins_opt_out() {
        assert_eq!(normalize("OPT OUT"), "optout");
        assert_eq!(normalize("opt-out"), "optout");
        assert_eq!(normalize("Opt_Out please"), "optout please");
        assert_eq!(normalize("how do I opt out?"), "how do i optout");
        assert_eq!(normalize("out opt"), "out opt");
    }

    #[test]
    fn optout_lists_are_normalised_disjoint_and_keywords_alone_opt_out() {
        for phrase in KEYWORDS.iter().chain(WRAPPERS.iter().map(|(w, _)| w)) {
            assert_eq!(&normalize(phrase), phrase, "list entry not in normalised form");
        }
        for kw in KEYWORDS {
            assert!(!WRAPPERS.iter().any(|(w, _)| w == kw), "{kw} is both keyword and wrapper");
            assert!(is_opt_out(kw), "{kw}");
        }
        for (wrap, _) in WRAPPERS {
            assert!(!is_opt_out(wrap), "a wrapper alone is not an opt-out: {wrap}");
        }
    }

    #[test]
    fn optout_wrappers_accepted_around_keywords() {
        for text in [
            "STOP please",
            "please stop",
            "now stop please",
            "ارجوك توقف",
            "stop sending",
            "stop messages",
            "stop messaging me",
            "unsubscribe me",
            "stop all",
            "cancel all",
            "stop, thank you",
            "أوقف الرسائل",
            "توقف من فضلك",
            "الغاء الاشتراك لو سمحت",
            "ايقاف ارسال الرسائل فوراً",
        ] {
            assert!(is_opt_out(text), "{text}");
        }
    }

    #[test]
    fn optout_other_words_rule_it_out() {
        for text in [
            "stop it",
            "cancel order",
            "the end",
            "don't stop",
            "stop the car",
            "opt",
            "لا توقف",
            "من توقف",
            "الغاء الحجز",
            "ألغ",
            "messages stop",
            "me stop",
            "الإرسال توقف",
            "الرسائل توقف",
            "please",
            "",
            "🛑",
        ] {
            assert!(!is_opt_out(text), "{text}");
        }
    }

    #[test]
    fn optout_word_count_limit() {
        assert!(is_opt_out("please stop sending me messages thanks")); // 6 words
        assert!(!is_opt_out("please stop sending me messages now thanks")); // 7 words
        assert!(is_opt_out("الغاء الاشتراك من فضلك شكرا الان")); // 6 words
        assert!(!is_opt_out("الغاء الاشتراك من فضلك شكرا الان حالا")); // 7 words
        assert!(is_opt_out("stop stop stop"));
        assert!(!is_opt_out("stop stop stop stop stop stop stop"));
    }
}
