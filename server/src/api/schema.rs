//! The JSON API's request and response types. Handlers read and write these, and the OpenAPI
//! document (/docs/openapi.json) is generated from them, so the two cannot drift apart.
//!
//! Request fields are read as raw JSON values so that a wrong type is answered with a
//! `validation_error` naming the field, not a parse failure of the whole body; the schema
//! annotations give their documented types.
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// POST /api/send-message. Unknown fields are ignored.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({
    "instance_id": "inst_01jd3k8m2v7c4q9w5e6r8t0y1u",
    "phone": "+966501234567",
    "message": "Your order #2041 has been shipped.",
    "message_purpose": "transactional"
}))]
pub struct SendMessageBody {
    /// The instance to send from; it must belong to the key's account.
    #[schema(value_type = String, min_length = 1, pattern = r"\S")]
    pub instance_id: Option<Value>,
    /// The recipient in E.164 format, with the country code: `+9665XXXXXXXX` (spaces, dashes,
    /// dots and brackets allowed). It must be a valid number for its country.
    #[schema(value_type = String, pattern = r"^\+[0-9 ().-]{2,31}$", example = "+966501234567")]
    pub phone: Option<Value>,
    /// The text: required without media, not blank, at most 4096 characters. With media, the
    /// optional caption, at most 1024 characters.
    #[schema(value_type = Option<String>, max_length = 4096)]
    pub message: Option<Value>,
    /// Why the message is sent. Anything else, including marketing, promotion, cold_outreach,
    /// bulk_campaign and political, is refused (`message_purpose_not_allowed`).
    #[schema(value_type = MessagePurpose)]
    pub message_purpose: Option<Value>,
    /// Required with media.
    #[schema(value_type = Option<MediaType>)]
    pub media_type: Option<Value>,
    /// Must fit the media type: `image/jpeg`, `image/png` or `image/webp` for an image;
    /// `application/pdf`, `text/plain`, `text/csv`, Word, Excel, PowerPoint or
    /// `application/zip` for a document; `audio/aac`, `audio/mp4`, `audio/mpeg`, `audio/amr`,
    /// `audio/ogg` or `audio/opus`; `video/mp4` or `video/3gpp`.
    #[schema(value_type = Option<String>)]
    pub mime_type: Option<Value>,
    /// A plain file name (at most 255 characters, no slashes), required for documents: `INV-2041.pdf`.
    #[schema(value_type = Option<String>, min_length = 1, max_length = 255)]
    pub file_name: Option<Value>,
    /// The file as base64, or a `data:<mime>;base64,` URL. An `https://` URL is also accepted:
    /// the file is fetched from it (at most 30 seconds; an unreachable URL is a
    /// `validation_error`). The document's schema lists the base64 forms only.
    #[schema(value_type = Option<String>, format = Byte)]
    pub media: Option<Value>,
    /// Run every check and answer what would happen (a `DryRunResponse`), without sending or
    /// counting.
    #[schema(value_type = Option<bool>)]
    pub dry_run: Option<Value>,
}

/// The allowed values of `message_purpose`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessagePurpose {
    Transactional,
    Operational,
    Support,
    InternalTeam,
    Authentication,
}

/// The kinds of media.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MediaType {
    Image,
    Document,
    Audio,
    Video,
}

/// The 200 answer of POST /api/send-message: the message was sent, or (with `dry_run`) what
/// would happen.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum SendAnswer {
    Sent(SendMessageResponse),
    DryRun(DryRunResponse),
}

/// The answer to a message that was sent.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SendMessageResponse {
    /// Always `true`.
    pub success: bool,
    /// `sent`
    #[schema(pattern = "^sent$")]
    pub status: String,
    /// WA Gateway's id of the message (`msg_…`).
    pub message_id: String,
    /// The message's entry in the message log.
    pub log_id: i64,
}

/// The answer to `"dry_run": true`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DryRunResponse {
    pub success: bool,
    /// `dry_run`
    #[schema(pattern = "^dry_run$")]
    pub status: String,
    /// `allow`, `flag` (allowed, but logged as a concern) or `block`.
    #[schema(value_type = PolicyDecision)]
    pub decision: gateway::policy::Decision,
    /// 0–100.
    #[schema(maximum = 100)]
    pub risk_score: u8,
    #[schema(value_type = Vec<PolicyReason>)]
    pub reasons: Vec<gateway::policy::Reason>,
    /// The error code a real send would answer, if it would be refused.
    pub error: Option<String>,
    /// That error's message text.
    pub message: Option<String>,
}

/// The content policy's decision.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PolicyDecision {
    Allow,
    Flag,
    Block,
}

/// One reason of the content policy's score.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PolicyReason {
    /// E.g. `promotional_offer`, `shortened_link`, `repeated_content`.
    pub code: String,
    pub detail: String,
    pub points: u8,
}

/// Every error: `{"success": false, "error", "message", "details"}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "success": false,
    "error": "daily_message_limit_exceeded",
    "message": "Your daily transactional message limit has been reached. Please try again tomorrow or request a higher reviewed limit.",
    "details": {"action": "block", "risk_score": 90, "limit": 100, "used": 100}
}))]
pub struct ErrorResponse {
    /// Always `false`.
    pub success: bool,
    /// A stable code, e.g. `validation_error`, `policy_violation`.
    pub error: String,
    /// The text for people.
    pub message: String,
    /// By error: `fields` and `hints` (validation_error); `action` and `risk_score` (refusals);
    /// `limit` and `used` (limits); `reasons` (policy_violation); `retry_after`
    /// (sending_throttled); `log_id` (gateway_send_failed).
    #[schema(value_type = Object)]
    pub details: Map<String, Value>,
}

/// POST /api/sandbox/link.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct SandboxLinkBody {
    /// A sandbox instance of the key's account.
    #[schema(value_type = String, min_length = 1, pattern = r"\S")]
    pub instance_id: Option<Value>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SandboxLinkResponse {
    pub success: bool,
    pub instance_id: String,
    /// `connected`
    pub status: String,
    /// The made-up number the sandbox linked (+1 555 …).
    pub phone: Option<String>,
}

/// POST /api/sandbox/inbound: a person writes to a connected sandbox instance.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct SandboxInboundBody {
    #[schema(value_type = String, min_length = 1, pattern = r"\S")]
    pub instance_id: Option<Value>,
    /// The sender in E.164 format; it must be a valid number for its country.
    #[schema(value_type = String, pattern = r"^\+[0-9 ().-]{2,31}$", example = "+15550101234")]
    pub from: Option<Value>,
    /// The text (or the caption of media): required, not blank, without `media_type`.
    #[schema(value_type = Option<String>)]
    pub message: Option<Value>,
    /// For a media message.
    #[schema(value_type = Option<MediaType>)]
    pub media_type: Option<Value>,
    #[schema(value_type = Option<String>)]
    pub mime_type: Option<Value>,
    #[schema(value_type = Option<String>)]
    pub file_name: Option<Value>,
    /// The file's size in bytes (the sandbox carries metadata only).
    #[schema(value_type = Option<u64>)]
    pub media_size: Option<Value>,
    /// Makes it a group message (`group.message_received`).
    #[schema(value_type = Option<String>)]
    pub group_id: Option<Value>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SandboxInboundResponse {
    pub success: bool,
    /// The simulated WhatsApp message id.
    pub message_id: String,
}

/// POST /api/sandbox/call: a person calls a connected sandbox instance.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct SandboxCallBody {
    #[schema(value_type = String, min_length = 1, pattern = r"\S")]
    pub instance_id: Option<Value>,
    /// The caller in E.164 format; it must be a valid number for its country.
    #[schema(value_type = String, pattern = r"^\+[0-9 ().-]{2,31}$", example = "+15550101234")]
    pub from: Option<Value>,
    #[schema(value_type = SandboxCallStatus)]
    pub status: Option<Value>,
}

/// Whether the simulated call was answered.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SandboxCallStatus {
    Received,
    Missed,
}

/// The answer of the sandbox's instance controls.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SandboxStatusResponse {
    pub success: bool,
    pub instance_id: String,
    /// The instance's status afterwards: `connected`, `disconnected` or `unlinked`.
    pub status: String,
}

/// GET /api/events: the account's events in order.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventsResponse {
    pub success: bool,
    /// Flat event objects: `event`, `event_id`, `instance_id`, `instance_name`, the event's own
    /// fields, `timestamp`.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<Value>,
    /// Pass as `after` to read on; unchanged when there was nothing new.
    pub next_cursor: String,
    /// More events are waiting after this page.
    pub has_more: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HealthResponse {
    /// `ok`, `ready` or `unavailable`.
    pub status: String,
}

/// POST /integrations/3cx/webhook/{integration_id}: one 3CX event. The customer's phone is
/// read from the first of `to`, `from`, `customer_phone`, `caller` and `phone` that holds a
/// usable number; the text from `message_text` or `message`. Unknown fields are ignored.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({
    "event_type": "outbound_message",
    "to": "+966500000000",
    "message_text": "Your support request has been updated.",
    "message_purpose": "support",
    "conversation_id": "3cx-chat-123",
    "agent_extension": "101"
}))]
#[allow(dead_code)]
pub struct ThreecxEvent {
    #[schema(value_type = ThreecxEventType)]
    pub event_type: Option<Value>,
    pub to: Option<String>,
    pub from: Option<String>,
    pub customer_phone: Option<String>,
    pub caller: Option<String>,
    pub phone: Option<String>,
    /// The reply of `outbound_message` and `inbound_reply`, at most 4096 characters.
    pub message_text: Option<String>,
    pub message: Option<String>,
    /// Required for `outbound_message` and `inbound_reply`; call events default to `support`.
    #[schema(value_type = Option<MessagePurpose>)]
    pub message_purpose: Option<Value>,
    pub conversation_id: Option<String>,
    pub agent_extension: Option<String>,
    pub extension: Option<String>,
    /// `{{queue}}` of call-event templates (also read from `queue_name`).
    pub queue: Option<String>,
    /// `{{call_time}}` of call-event templates.
    pub call_time: Option<String>,
}

/// The 3CX event types.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ThreecxEventType {
    Test,
    OutboundMessage,
    InboundReply,
    MissedCall,
    CallStarted,
    CallEnded,
    Voicemail,
    QueueEvent,
    QueueCallback,
    AfterHours,
}

/// The answer to a handled 3CX event: `{"success": true}` (test), `status` `recorded`
/// (call_started, queue_event), `sent` (with `message_id` and `log_id`) or `skipped` (with
/// `reason`: `template_disabled`, `cooldown_active` or `conversation_window_closed`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ThreecxWebhookResponse {
    pub success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A refused 3CX request: `{"success": false, "error", "message"}`, with `details` only when
/// there are some. Every authentication failure answers the same `invalid_3cx_webhook`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ThreecxErrorResponse {
    /// Always `false`.
    pub success: bool,
    pub error: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<Map<String, Value>>,
}
