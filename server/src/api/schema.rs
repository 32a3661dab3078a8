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
    #[schema(value_type = String)]
    pub instance_id: Option<Value>,
    /// The recipient in E.164 format, with the country code: `+9665XXXXXXXX`.
    #[schema(value_type = String)]
    pub phone: Option<Value>,
    /// The text (at most 4096 characters), or the caption when media is sent (optional, at most 1024).
    #[schema(value_type = Option<String>)]
    pub message: Option<Value>,
    /// Why the message is sent. Anything else, including marketing, promotion, cold_outreach,
    /// bulk_campaign and political, is refused.
    #[schema(value_type = String, examples("transactional", "operational", "support", "internal_team", "authentication"))]
    pub message_purpose: Option<Value>,
    /// `image`, `document`, `audio` or `video`; required with media.
    #[schema(value_type = Option<String>)]
    pub media_type: Option<Value>,
    /// Must fit the media type, e.g. `application/pdf` for a document, `image/jpeg` for an image.
    #[schema(value_type = Option<String>)]
    pub mime_type: Option<Value>,
    /// A plain file name, required for documents: `INV-2041.pdf`.
    #[schema(value_type = Option<String>)]
    pub file_name: Option<Value>,
    /// The file as base64, or a `data:<mime>;base64,` URL.
    #[schema(value_type = Option<String>, format = Byte)]
    pub media: Option<Value>,
    /// Run every check and answer what would happen, without sending or counting.
    #[schema(value_type = Option<bool>)]
    pub dry_run: Option<Value>,
}

/// The answer to a message that was sent.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SendMessageResponse {
    /// Always `true`.
    pub success: bool,
    /// `sent`
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
    pub status: String,
    /// `allow`, `flag` (allowed, but logged as a concern) or `block`.
    #[schema(value_type = String)]
    pub decision: gateway::policy::Decision,
    /// 0–100.
    pub risk_score: u8,
    #[schema(value_type = Vec<PolicyReason>)]
    pub reasons: Vec<gateway::policy::Reason>,
    /// The error code a real send would answer, if it would be refused.
    pub error: Option<String>,
    /// That error's message text.
    pub message: Option<String>,
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
    #[schema(value_type = String)]
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
    #[schema(value_type = String)]
    pub instance_id: Option<Value>,
    /// The sender in E.164 format.
    #[schema(value_type = String)]
    pub from: Option<Value>,
    /// The text (or the caption of media).
    #[schema(value_type = Option<String>)]
    pub message: Option<Value>,
    /// `image`, `document`, `audio` or `video`, for a media message.
    #[schema(value_type = Option<String>)]
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
    #[schema(value_type = String)]
    pub instance_id: Option<Value>,
    #[schema(value_type = String)]
    pub from: Option<Value>,
    /// `received` or `missed`.
    #[schema(value_type = String)]
    pub status: Option<Value>,
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
