//! Prefixed, sortable identifiers (`inst_…`, `key_…`): a ULID in lower case after the prefix,
//! so ids sort by creation time and say what they name.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", ulid::Ulid::new().to_string().to_ascii_lowercase())
}

/// True when `text` looks like an id with this prefix; used to answer "not found" early for junk.
pub fn is_id(prefix: &str, text: &str) -> bool {
    match text.strip_prefix(prefix).and_then(|rest| rest.strip_prefix('_')) {
        Some(rest) => !rest.is_empty() && rest.len() <= 32 && rest.bytes().all(|b| b.is_ascii_alphanumeric()),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_and_sortable() {
        let a = new_id("inst");
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_id("inst");
        assert!(a.starts_with("inst_") && a.len() == 31);
        assert!(a < b);
        assert!(is_id("inst", &a));
        assert!(!is_id("key", &a));
        assert!(!is_id("inst", "inst_"));
        assert!(!is_id("inst", "inst_../../etc"));
    }
}
