//! Text a person would see. A message of zero-width spaces, joiners, direction marks or filler
//! letters shows as an empty bubble: it is as empty as one of spaces.

/// Characters that draw nothing: white space, format characters (zero-width, joiners, direction
/// marks and isolates, the byte-order mark, tags), variation selectors and the filler letters
/// that render blank (Hangul fillers, the braille blank).
pub fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{1D159}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E007F}'
                | '\u{E0100}'..='\u{E01EF}'
        )
}

/// Whether `text` shows nothing at all.
pub fn is_blank(text: &str) -> bool {
    text.chars().all(is_invisible)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_only_text_is_blank() {
        for blank in
            ["", "   ", "\u{200B}\u{200B}", "\u{200D}\u{FEFF}\u{2060}", "\u{3164}", "\u{202E} \u{2800}", "\n\t"]
        {
            assert!(is_blank(blank), "{blank:?}");
        }
        for shown in ["Hi", "\u{200B}Hi", "٢٣", "👍", "\u{200D}👍", "."] {
            assert!(!is_blank(shown), "{shown:?}");
        }
    }
}
