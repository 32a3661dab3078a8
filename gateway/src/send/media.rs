//! Media on the send API: the type, a mime type that fits it, an optional file name, and the
//! bytes as base64. Caps default to WhatsApp's own limits and are configurable.
use base64::Engine;

use crate::connectors::MediaKind;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MediaLimits {
    pub image_bytes: u64,
    pub audio_bytes: u64,
    pub video_bytes: u64,
    pub document_bytes: u64,
}

impl Default for MediaLimits {
    fn default() -> Self {
        const MB: u64 = 1024 * 1024;
        MediaLimits { image_bytes: 5 * MB, audio_bytes: 16 * MB, video_bytes: 16 * MB, document_bytes: 100 * MB }
    }
}

impl MediaLimits {
    pub fn for_kind(&self, kind: MediaKind) -> u64 {
        match kind {
            MediaKind::Image => self.image_bytes,
            MediaKind::Audio => self.audio_bytes,
            MediaKind::Video => self.video_bytes,
            MediaKind::Document => self.document_bytes,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Media {
    pub kind: MediaKind,
    pub mime_type: String,
    pub file_name: Option<String>,
    pub data: Vec<u8>,
}

pub fn parse_kind(text: &str) -> Option<MediaKind> {
    match text {
        "image" => Some(MediaKind::Image),
        "document" => Some(MediaKind::Document),
        "audio" => Some(MediaKind::Audio),
        "video" => Some(MediaKind::Video),
        _ => None,
    }
}

/// The mime types WhatsApp accepts per media type.
pub fn mime_types(kind: MediaKind) -> &'static [&'static str] {
    match kind {
        MediaKind::Image => &["image/jpeg", "image/png", "image/webp"],
        MediaKind::Audio => &["audio/aac", "audio/mp4", "audio/mpeg", "audio/amr", "audio/ogg", "audio/opus"],
        MediaKind::Video => &["video/mp4", "video/3gpp"],
        MediaKind::Document => &[
            "application/pdf",
            "text/plain",
            "text/csv",
            "application/msword",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/vnd.ms-excel",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "application/vnd.ms-powerpoint",
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            "application/zip",
        ],
    }
}

pub fn mime_fits(kind: MediaKind, mime: &str) -> bool {
    mime_types(kind).contains(&mime)
}

/// A safe file name: no path, no control characters, at most 255 characters.
pub fn file_name_ok(name: &str) -> bool {
    !name.trim().is_empty()
        && name.chars().count() <= 255
        && !name.contains(['/', '\\'])
        && !name.chars().any(char::is_control)
        && name != "."
        && name != ".."
}

#[derive(Debug, PartialEq, Eq)]
pub enum DataError {
    NotBase64,
    Empty,
    TooLarge {
        max_bytes: u64,
    },
    /// An `https://` URL: the caller fetches it (see `send::fetch`).
    IsUrl,
}

/// Decodes `media`: plain base64 or a `data:<mime>;base64,` URL.
pub fn decode(text: &str, kind: MediaKind, limits: &MediaLimits) -> Result<Vec<u8>, DataError> {
    let text = text.trim();
    if text.starts_with("https://") || text.starts_with("http://") {
        return Err(DataError::IsUrl);
    }
    let payload = match text.strip_prefix("data:") {
        Some(rest) => rest.split_once(";base64,").map(|(_, b64)| b64).ok_or(DataError::NotBase64)?,
        None => text,
    };
    let max = limits.for_kind(kind);
    // Refuse before decoding what could not fit anyway (base64 is 4/3 of the bytes).
    if (payload.len() as u64) / 4 * 3 > max + 3 {
        return Err(DataError::TooLarge { max_bytes: max });
    }
    let cleaned: String = payload.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(cleaned.as_bytes())
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(cleaned.as_bytes()))
        .map_err(|_| DataError::NotBase64)?;
    if bytes.is_empty() {
        return Err(DataError::Empty);
    }
    if bytes.len() as u64 > max {
        return Err(DataError::TooLarge { max_bytes: max });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mime_types_must_fit_the_media_type() {
        assert!(mime_fits(MediaKind::Document, "application/pdf"));
        assert!(!mime_fits(MediaKind::Image, "application/pdf"));
        assert!(!mime_fits(MediaKind::Video, "video/x-msvideo"));
    }

    #[test]
    fn data_is_base64_and_capped() {
        let limits = MediaLimits { image_bytes: 4, ..MediaLimits::default() };
        assert_eq!(decode("AQID", MediaKind::Image, &limits).unwrap(), vec![1, 2, 3]);
        assert_eq!(decode("data:image/png;base64,AQID", MediaKind::Image, &limits).unwrap(), vec![1, 2, 3]);
        assert_eq!(decode("not base64!", MediaKind::Image, &limits), Err(DataError::NotBase64));
        assert_eq!(decode("AQIDBAUG", MediaKind::Image, &limits), Err(DataError::TooLarge { max_bytes: 4 }));
        assert_eq!(decode("https://x.example/a.png", MediaKind::Image, &limits), Err(DataError::IsUrl));
        assert!(!file_name_ok("../etc/passwd"));
        assert!(file_name_ok("INV-2041.pdf"));
    }
}
