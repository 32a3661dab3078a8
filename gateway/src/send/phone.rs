//! Recipients as validated E.164 numbers (parsed with libphonenumber's data, not a pattern).
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Phone(String);

impl Phone {
    /// Accepts `+<country code><number>`, spaces, dashes and brackets allowed. The number must
    /// be valid for its country, except the fictional +1 555 range used by the sandbox.
    pub fn parse(text: &str) -> Option<Phone> {
        let text = text.trim();
        if !text.starts_with('+') || text.len() > 32 {
            return None;
        }
        if !text[1..].chars().all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '(' | ')' | '.')) {
            return None;
        }
        let number = phonenumber::parse(None, text).ok()?;
        let e164 = number.format().mode(phonenumber::Mode::E164).to_string();
        if number.is_valid() || is_fictional(&e164) {
            Some(Phone(e164))
        } else {
            None
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// For logs and lists: the country code and the last two digits, e.g. `+966•••••••67`.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }
}

/// The NANP's 555 exchange is reserved for fiction; the sandbox uses it.
fn is_fictional(e164: &str) -> bool {
    e164.len() == 12 && e164.starts_with("+1555")
}

pub fn mask(e164: &str) -> String {
    let digits: Vec<char> = e164.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 6 {
        return "•••".into();
    }
    let keep_start = if digits[0] == '1' || digits[0] == '7' { 1 } else { 3 };
    let start: String = digits[..keep_start].iter().collect();
    let end: String = digits[digits.len() - 2..].iter().collect();
    format!("+{start}{}{end}", "•".repeat(digits.len() - keep_start - 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_numbers_normalise_to_e164() {
        assert_eq!(Phone::parse("+966 50 123 4567").unwrap().as_str(), "+966501234567");
        assert_eq!(Phone::parse("+44 20 7946 0958").unwrap().as_str(), "+442079460958");
        assert_eq!(Phone::parse("+1 (555) 000-0001").unwrap().as_str(), "+15550000001");
    }

    #[test]
    fn invalid_numbers_are_refused() {
        for bad in [
            "",
            "966501234567",
            "+",
            "+12",
            "+96650123456789012",
            "+9665XXXXXXX",
            "+44 20 7946 09",
            "+999 1234 5678",
            "tel:+966501234567",
        ] {
            assert!(Phone::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn masking_keeps_country_and_last_digits() {
        assert_eq!(mask("+966501234567"), "+966•••••••67");
        assert_eq!(mask("+15550000001"), "+1••••••••01");
    }
}
