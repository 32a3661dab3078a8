//! Names people give to their objects (keys, instances): trimmed, 1 to 60 characters, no
//! control characters.
use crate::error::{Error, Result};

pub const MAX_NAME_CHARS: usize = 60;

/// Free text from a form (a use case, a reason, a note): trimmed, without control characters
/// other than line breaks.
pub fn form_text(text: &str) -> String {
    text.trim().chars().filter(|c| !c.is_control() || *c == '\n').collect()
}

/// `missing` is said when the name is blank; `what` starts the too-long message.
pub fn display_name(text: &str, missing: &str, what: &str) -> Result<String> {
    let name = text.trim();
    if name.is_empty() {
        return Err(Error::invalid(missing));
    }
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "{what} are at most {MAX_NAME_CHARS} characters, without control characters."
        )));
    }
    Ok(name.to_string())
}
