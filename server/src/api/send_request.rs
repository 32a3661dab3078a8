//! Step 3 of the send path: the body's fields present and well-formed. Every offending field is
//! named in `details.fields`, with a hint per field in `details.hints`.
use gateway::{
    connectors::MediaKind,
    send::{
        media::{self, DataError, Media, MediaLimits, Source},
        phone::Phone,
        text, SendRequest,
    },
};
use serde_json::Value;

use super::{error::ApiError, schema::SendMessageBody};

pub const MAX_TEXT_CHARS: usize = 4096;
pub const MAX_CAPTION_CHARS: usize = 1024;

#[derive(Default)]
struct Problems(Vec<(&'static str, String)>);

impl Problems {
    fn add(&mut self, field: &'static str, hint: impl Into<String>) {
        if !self.0.iter().any(|(f, _)| *f == field) {
            self.0.push((field, hint.into()));
        }
    }
}

/// A field that must be a string when present.
fn string(value: &Option<Value>) -> Result<Option<&str>, ()> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(()),
    }
}

fn present(value: &Option<Value>) -> bool {
    value.as_ref().is_some_and(|v| !v.is_null())
}

/// Checks every field. Media given as an `https://` URL is left at its URL: the send path fetches
/// it once the checks that need no file have passed.
pub fn parse_send_request(body: &SendMessageBody, limits: &MediaLimits) -> Result<SendRequest, ApiError> {
    let mut problems = Problems::default();

    let instance_id = match string(&body.instance_id) {
        Ok(Some(s)) if !s.trim().is_empty() => s.trim().to_string(),
        _ => {
            problems.add("instance_id", "Required: the id of your instance, such as inst_….");
            String::new()
        }
    };
    let phone = match string(&body.phone) {
        Ok(Some(s)) => Phone::parse(s),
        _ => None,
    };
    if phone.is_none() {
        problems
            .add("phone", "Required: the recipient in E.164 format, such as +9665XXXXXXXX (with the country code).");
    }

    let has_media = [&body.media_type, &body.mime_type, &body.file_name, &body.media].into_iter().any(present);
    let message = match string(&body.message) {
        // Text of zero-width or other invisible characters only would arrive as an empty bubble.
        Ok(Some(s)) if !text::is_blank(s) => Some(s.to_string()),
        Ok(_) => None,
        Err(()) => {
            problems.add("message", "Must be a string.");
            None
        }
    };
    let max_chars = if has_media { MAX_CAPTION_CHARS } else { MAX_TEXT_CHARS };
    match &message {
        None if !has_media => {
            problems.add("message", "Required: the text to send (or send media with an optional caption).")
        }
        Some(m) if m.chars().count() > max_chars => problems.add(
            "message",
            format!("At most {max_chars} characters{}.", if has_media { " for a caption" } else { "" }),
        ),
        _ => {}
    }

    let media = if has_media { parse_media(body, limits, &mut problems) } else { None };

    let dry_run = match &body.dry_run {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            problems.add("dry_run", "Must be true or false.");
            false
        }
    };

    if !problems.0.is_empty() {
        return Err(ApiError::validation_with_hints(&problems.0));
    }
    // A missing phone is always among the problems above; this only names it for the compiler.
    let Some(phone) = phone else { return Err(ApiError::validation(&["phone"])) };
    Ok(SendRequest {
        instance_id,
        phone,
        message,
        purpose: body.message_purpose.clone(),
        media,
        dry_run,
        channel: gateway::send::Channel::Api,
    })
}

fn parse_media(body: &SendMessageBody, limits: &MediaLimits, problems: &mut Problems) -> Option<Media> {
    let kind = match string(&body.media_type) {
        Ok(Some(s)) => media::parse_kind(s),
        _ => None,
    };
    if kind.is_none() {
        problems.add("media_type", "Required with media: image, document, audio or video.");
    }
    let mime_type = match (string(&body.mime_type), kind) {
        (Ok(Some(m)), Some(k)) if media::mime_fits(k, m.trim()) => Some(m.trim().to_string()),
        (Ok(Some(_)), Some(_)) => {
            problems.add(
                "mime_type",
                "This mime type does not fit the media type (for invoices: document with application/pdf).",
            );
            None
        }
        // The media type is already named; its mime type cannot be judged without it.
        (Ok(Some(_)), None) => None,
        _ => {
            problems.add("mime_type", "Required with media, such as application/pdf or image/jpeg.");
            None
        }
    };
    let file_name = match string(&body.file_name) {
        Ok(Some(name)) if media::file_name_ok(name) => Some(name.trim().to_string()),
        Ok(Some(_)) | Err(()) => {
            problems.add(
                "file_name",
                "A plain file name of at most 255 characters, without slashes, control or text-direction characters.",
            );
            None
        }
        Ok(None) => {
            if kind == Some(MediaKind::Document) {
                problems.add("file_name", "Required for documents, such as INV-2041.pdf.");
            }
            None
        }
    };
    let source = match (string(&body.media), kind) {
        (Ok(Some(text)), Some(k)) => match media::decode(text, k, limits) {
            // The bytes must be what mime_type says (a file with another extension or an
            // executable renamed .pdf is refused here, not by the recipient's phone).
            Ok(bytes) => match &mime_type {
                Some(mime) if !media::content_fits(mime, &bytes[..bytes.len().min(media::HEAD_BYTES)]) => {
                    problems.add("media", format!("The file's contents are not {mime}: check mime_type and the file."));
                    None
                }
                _ => Some(Source::Bytes(bytes)),
            },
            Err(DataError::TooLarge { max_bytes }) => {
                problems
                    .add("media", format!("Too large: at most {} MB for this media type.", max_bytes / (1024 * 1024)));
                None
            }
            Err(DataError::IsUrl) => Some(Source::Url(text.trim().to_string())),
            Err(DataError::Empty) => {
                problems.add("media", "The file is empty.");
                None
            }
            Err(DataError::NotBase64) => {
                problems.add("media", "Must be base64 (or a data: URL with base64).");
                None
            }
        },
        (Ok(Some(_)), None) => None,
        _ => {
            problems.add("media", "Required with media: the file as base64, or an https:// URL to fetch it from.");
            None
        }
    };
    Some(Media { kind: kind?, mime_type: mime_type?, file_name, source: source? })
}
