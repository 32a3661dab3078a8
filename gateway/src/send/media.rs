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
    pub source: Source,
}

impl Source {
    /// The file's size; 0 while it is still at its URL.
    pub fn size(&self) -> usize {
        match self {
            Source::Bytes(data) => data.len(),
            Source::Url(_) => 0,
        }
    }
}

/// Where the file is: in the request already, or at an `https://` URL that the send path
/// fetches only once every check that needs no file has passed (see `send::fetch`).
#[derive(Clone, Debug)]
pub enum Source {
    Bytes(Vec<u8>),
    Url(String),
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

/// A safe file name: no path, no control or bidi characters, at most 255 characters. A
/// right-to-left override would show `invoice_fdp.exe` as `invoice_exe.pdf`.
pub fn file_name_ok(name: &str) -> bool {
    !name.trim().is_empty()
        && name.chars().count() <= 255
        && !name.contains(['/', '\\'])
        && !name.chars().any(|c| c.is_control() || is_bidi_control(c))
        && !name.chars().all(|c| c == '.' || crate::send::text::is_invisible(c))
}

/// Unicode's explicit directional formatting characters and marks.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Whether `head` (the file's first bytes, or all of it) starts the way a `mime` file does.
/// Only the kinds WhatsApp accepts (`mime_fits`) are known; 16 bytes decide every one of them
/// except plain text, which is judged on what is there.
pub fn content_fits(mime: &str, head: &[u8]) -> bool {
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
    // ISO base media (MP4, 3GP, M4A): a box size, then `ftyp`.
    let iso_media = at(4, b"ftyp");
    match mime {
        "image/jpeg" => at(0, &[0xFF, 0xD8, 0xFF]),
        "image/png" => at(0, b"\x89PNG\r\n\x1a\n"),
        "image/webp" => at(0, b"RIFF") && at(8, b"WEBP"),
        "audio/aac" => at(0, b"ADIF") || adts_frame(head),
        "audio/mpeg" => at(0, b"ID3") || mpeg_audio_frame(head),
        "audio/amr" => at(0, b"#!AMR"),
        "audio/ogg" | "audio/opus" => at(0, b"OggS"),
        "audio/mp4" | "video/mp4" | "video/3gpp" => iso_media,
        "application/pdf" => head.windows(5).take(1024).any(|w| w == b"%PDF-"),
        // Office 97–2003: a compound file.
        "application/msword" | "application/vnd.ms-excel" | "application/vnd.ms-powerpoint" => {
            at(0, &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1])
        }
        // Office Open XML files are zip archives.
        "application/zip"
        | "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        | "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        | "application/vnd.openxmlformats-officedocument.presentationml.presentation" => {
            at(0, b"PK\x03\x04") || at(0, b"PK\x05\x06")
        }
        "text/plain" | "text/csv" => plain_text(head),
        _ => false,
    }
}

/// An AAC ADTS header: twelve sync bits, then layer 00.
fn adts_frame(head: &[u8]) -> bool {
    head.len() >= 2 && head[0] == 0xFF && head[1] & 0xF6 == 0xF0
}

/// An MPEG audio frame header: eleven sync bits, a known version and layer.
fn mpeg_audio_frame(head: &[u8]) -> bool {
    head.len() >= 2 && head[0] == 0xFF && head[1] & 0xE0 == 0xE0 && head[1] & 0x18 != 0x08 && head[1] & 0x06 != 0
}

/// UTF-8 text without NUL bytes. A head cut from a longer file may end inside a character.
fn plain_text(head: &[u8]) -> bool {
    if head.contains(&0) {
        return false;
    }
    match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && head.len() - e.valid_up_to() < 4,
    }
}

/// How many leading bytes `content_fits` needs to judge a file (a dry run fetches no more).
pub const HEAD_BYTES: usize = 1024;

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
    // Line breaks (base64 wrapped at 76 columns) carry nothing: the size is judged without them.
    let cleaned: String = payload.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    // Refuse before decoding what could not fit anyway (base64 is 4/3 of the bytes).
    if (cleaned.len() as u64) / 4 * 3 > max + 3 {
        return Err(DataError::TooLarge { max_bytes: max });
    }
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
