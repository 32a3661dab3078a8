//! The stylesheet and the small script, compiled in and served with a content hash in the
//! URL so browsers may cache them for a year.
use std::sync::OnceLock;

pub const STYLE_CSS: &str = include_str!("../../style/main.css");
pub const APP_JS: &str = include_str!("../../public/app.js");
pub const FAVICON_SVG: &str = include_str!("../../public/favicon.svg");

fn short_hash(text: &str) -> String {
    // FNV-1a: a content fingerprint, not a security boundary.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

pub fn style_version() -> &'static str {
    static V: OnceLock<String> = OnceLock::new();
    V.get_or_init(|| short_hash(STYLE_CSS))
}

pub fn script_version() -> &'static str {
    static V: OnceLock<String> = OnceLock::new();
    V.get_or_init(|| short_hash(APP_JS))
}

pub fn style_href() -> String {
    format!("/style/main.css?v={}", style_version())
}

pub fn script_href() -> String {
    format!("/public/app.js?v={}", script_version())
}
