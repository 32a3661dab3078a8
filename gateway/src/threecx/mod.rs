//! The 3CX middleware: a contact centre's 3CX phone system talks to one instance through an
//! integration. 3CX posts events to `/integrations/3cx/webhook/{id}` (agent replies, call
//! events); inbound WhatsApp messages of the instance are forwarded to 3CX's destination URL.
//! Replies and follow-ups reach only people who wrote first, inside the conversation window.
pub mod allowlist;
pub mod cooldown;
pub mod forwarding;
pub mod handler;
pub mod integrations;
pub mod rate_limit;
pub mod replay;
pub mod request_log;
pub mod signature;
pub mod templates;

/// Bodies above this are refused before they are read to the end.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Authenticated requests per integration per minute.
pub const REQUESTS_PER_MINUTE: i64 = 60;
