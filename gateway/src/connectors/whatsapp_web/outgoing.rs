//! Outbound messages as WhatsApp wants them, and what a failed send means for the customer.
use whatsapp_rust::{
    download::MediaType, request::IqError, upload::UploadResponse, wacore::proto_helpers::MessageBuilderExt,
    waproto::buffa::MessageField, waproto::whatsapp as wa, ClientError, SendError,
};

use crate::connectors::{ConnectorError, MediaKind};

/// The CDN reference and keys of an uploaded file: what a media message carries instead of the
/// bytes. A copy of whatsapp-rust's `UploadResponse`, which cannot be built outside the crate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uploaded {
    pub url: String,
    pub direct_path: String,
    pub media_key: [u8; 32],
    pub file_enc_sha256: [u8; 32],
    pub file_sha256: [u8; 32],
    pub file_length: u64,
    pub media_key_timestamp: i64,
    pub streaming_sidecar: Option<Vec<u8>>,
}

impl From<UploadResponse> for Uploaded {
    fn from(r: UploadResponse) -> Self {
        Uploaded {
            url: r.url,
            direct_path: r.direct_path,
            media_key: r.media_key,
            file_enc_sha256: r.file_enc_sha256,
            file_sha256: r.file_sha256,
            file_length: r.file_length,
            media_key_timestamp: r.media_key_timestamp,
            streaming_sidecar: r.streaming_sidecar,
        }
    }
}

pub fn media_type(kind: MediaKind) -> MediaType {
    match kind {
        MediaKind::Image => MediaType::Image,
        MediaKind::Video => MediaType::Video,
        MediaKind::Audio => MediaType::Audio,
        MediaKind::Document => MediaType::Document,
    }
}

pub fn text_message(text: &str) -> wa::Message {
    wa::Message::text(text)
}

/// The message for an uploaded file. Audio has no caption on WhatsApp: a caption given with
/// audio is sent as a text message of its own (see [`caption_after`]).
pub fn media_message(
    kind: MediaKind,
    upload: Uploaded,
    mime_type: &str,
    file_name: Option<&str>,
    caption: Option<&str>,
) -> wa::Message {
    let caption = caption.map(str::to_string);
    let mimetype = Some(mime_type.to_string());
    let mut message = wa::Message::default();
    match kind {
        MediaKind::Image => {
            message.image_message = MessageField::some(wa::message::ImageMessage {
                url: Some(upload.url),
                direct_path: Some(upload.direct_path),
                media_key: Some(upload.media_key.to_vec()),
                file_sha256: Some(upload.file_sha256.to_vec()),
                file_enc_sha256: Some(upload.file_enc_sha256.to_vec()),
                file_length: Some(upload.file_length),
                media_key_timestamp: Some(upload.media_key_timestamp),
                mimetype,
                caption,
                ..Default::default()
            })
        }
        MediaKind::Video => {
            message.video_message = MessageField::some(wa::message::VideoMessage {
                url: Some(upload.url),
                direct_path: Some(upload.direct_path),
                media_key: Some(upload.media_key.to_vec()),
                file_sha256: Some(upload.file_sha256.to_vec()),
                file_enc_sha256: Some(upload.file_enc_sha256.to_vec()),
                file_length: Some(upload.file_length),
                media_key_timestamp: Some(upload.media_key_timestamp),
                streaming_sidecar: upload.streaming_sidecar,
                mimetype,
                caption,
                ..Default::default()
            })
        }
        MediaKind::Audio => {
            message.audio_message = MessageField::some(wa::message::AudioMessage {
                url: Some(upload.url),
                direct_path: Some(upload.direct_path),
                media_key: Some(upload.media_key.to_vec()),
                file_sha256: Some(upload.file_sha256.to_vec()),
                file_enc_sha256: Some(upload.file_enc_sha256.to_vec()),
                file_length: Some(upload.file_length),
                media_key_timestamp: Some(upload.media_key_timestamp),
                streaming_sidecar: upload.streaming_sidecar,
                mimetype,
                ..Default::default()
            })
        }
        MediaKind::Document => {
            let file_name = file_name.unwrap_or("document").to_string();
            message.document_message = MessageField::some(wa::message::DocumentMessage {
                url: Some(upload.url),
                direct_path: Some(upload.direct_path),
                media_key: Some(upload.media_key.to_vec()),
                file_sha256: Some(upload.file_sha256.to_vec()),
                file_enc_sha256: Some(upload.file_enc_sha256.to_vec()),
                file_length: Some(upload.file_length),
                media_key_timestamp: Some(upload.media_key_timestamp),
                mimetype,
                title: Some(file_name.clone()),
                file_name: Some(file_name),
                caption,
                ..Default::default()
            })
        }
    }
    message
}

/// The caption that has to follow as its own text message (audio cannot carry one).
pub fn caption_after(kind: MediaKind, caption: Option<&str>) -> Option<&str> {
    match kind {
        MediaKind::Audio => caption.filter(|c| !c.trim().is_empty()),
        _ => None,
    }
}

/// What a failed send means. The provider's words stay in the error for the log; the send
/// pipeline turns every kind into a fixed reason before a customer sees it.
pub fn send_error(e: SendError) -> ConnectorError {
    match e {
        SendError::NotLoggedIn | SendError::Client(ClientError::NotLoggedIn | ClientError::NotConnected) => {
            ConnectorError::NotConnected
        }
        SendError::Iq(iq) | SendError::Client(ClientError::Iq(iq)) => iq_error(iq),
        SendError::InvalidRequest(text) => ConnectorError::Rejected(redact(&text)),
        other => ConnectorError::Unavailable(redact(&other.to_string())),
    }
}

/// The provider's error text with every number long enough to be a phone (or the user part of
/// an address) masked, since these texts end up in logs.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| {
        if digits.len() >= 7 {
            out.push_str(&digits[..2]);
            out.push_str("•••");
            out.push_str(&digits[digits.len() - 2..]);
        } else {
            out.push_str(digits);
        }
        digits.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            flush(&mut digits, &mut out);
            out.push(c);
        }
    }
    flush(&mut digits, &mut out);
    out
}

pub fn iq_error(e: IqError) -> ConnectorError {
    match e {
        IqError::NotConnected | IqError::Disconnected(_) | IqError::InternalChannelClosed => {
            ConnectorError::NotConnected
        }
        IqError::ServerError { code: 429, .. } => ConnectorError::RateLimited,
        other => ConnectorError::Unavailable(redact(&other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uploaded() -> Uploaded {
        Uploaded {
            url: "https://mmg.example/enc".into(),
            direct_path: "/v/t62/abc".into(),
            media_key: [1; 32],
            file_enc_sha256: [2; 32],
            file_sha256: [3; 32],
            file_length: 1234,
            media_key_timestamp: 1_700_000_000,
            streaming_sidecar: Some(vec![9, 9]),
        }
    }

    #[test]
    fn text_is_a_plain_conversation_message() {
        use whatsapp_rust::wacore::proto_helpers::MessageExt;
        let message = text_message("Your invoice INV-2041 is ready.");
        assert_eq!(message.text_content(), Some("Your invoice INV-2041 is ready."));
        assert!(message.image_message.is_unset() && message.document_message.is_unset());
    }

    #[test]
    fn each_media_kind_fills_its_own_field_with_the_upload() {
        let image = media_message(MediaKind::Image, uploaded(), "image/png", None, Some("Receipt"));
        let m = image.image_message.as_option().expect("an image message");
        assert_eq!(m.mimetype.as_deref(), Some("image/png"));
        assert_eq!(m.caption.as_deref(), Some("Receipt"));
        assert_eq!(m.direct_path.as_deref(), Some("/v/t62/abc"));
        assert_eq!(m.media_key.as_deref(), Some(&[1u8; 32][..]));
        assert_eq!(m.file_sha256.as_deref(), Some(&[3u8; 32][..]));
        assert_eq!(m.file_enc_sha256.as_deref(), Some(&[2u8; 32][..]));
        assert_eq!(m.file_length, Some(1234));
        assert!(image.document_message.is_unset() && image.video_message.is_unset());

        let video = media_message(MediaKind::Video, uploaded(), "video/mp4", None, Some("Clip"));
        let m = video.video_message.as_option().expect("a video message");
        assert_eq!((m.caption.as_deref(), m.streaming_sidecar.as_deref()), (Some("Clip"), Some(&[9u8, 9][..])));

        let audio = media_message(MediaKind::Audio, uploaded(), "audio/ogg; codecs=opus", None, Some("Listen"));
        let m = audio.audio_message.as_option().expect("an audio message");
        assert_eq!(m.mimetype.as_deref(), Some("audio/ogg; codecs=opus"));
        assert_eq!(m.url.as_deref(), Some("https://mmg.example/enc"));
        assert_eq!(caption_after(MediaKind::Audio, Some("Listen")), Some("Listen"), "audio's caption follows as text");
        assert_eq!(caption_after(MediaKind::Image, Some("Receipt")), None);

        let doc = media_message(MediaKind::Document, uploaded(), "application/pdf", Some("INV-2041.pdf"), None);
        let m = doc.document_message.as_option().expect("a document message");
        assert_eq!(m.file_name.as_deref(), Some("INV-2041.pdf"));
        assert_eq!(m.mimetype.as_deref(), Some("application/pdf"));
        assert_eq!(m.caption, None);
        let unnamed = media_message(MediaKind::Document, uploaded(), "application/pdf", None, None);
        assert_eq!(unnamed.document_message.as_option().unwrap().file_name.as_deref(), Some("document"));
    }

    #[test]
    fn provider_errors_map_to_our_outcomes() {
        assert_eq!(send_error(SendError::NotLoggedIn), ConnectorError::NotConnected);
        assert_eq!(send_error(SendError::Client(ClientError::NotConnected)), ConnectorError::NotConnected);
        let limited =
            IqError::ServerError { code: 429, text: "rate-overlimit".into(), error_type: None, backoff: Some(30) };
        assert_eq!(send_error(SendError::Iq(limited)), ConnectorError::RateLimited);
        let other = IqError::ServerError { code: 500, text: "internal".into(), error_type: None, backoff: None };
        assert!(matches!(send_error(SendError::Iq(other)), ConnectorError::Unavailable(_)));
        assert!(matches!(send_error(SendError::InvalidRequest("bad jid".into())), ConnectorError::Rejected(_)));
        assert_eq!(iq_error(IqError::Timeout), ConnectorError::Unavailable("IQ request timed out".into()));
    }

    #[test]
    fn numbers_in_provider_errors_are_masked_for_the_log() {
        assert_eq!(
            redact("no devices for 966512345678@s.whatsapp.net (code 406)"),
            "no devices for 96•••78@s.whatsapp.net (code 406)"
        );
        let invalid = SendError::InvalidRequest("bad recipient 966512345678@lid".into());
        assert_eq!(send_error(invalid), ConnectorError::Rejected("bad recipient 96•••78@lid".into()));
    }
}
