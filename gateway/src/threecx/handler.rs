//! What an authenticated 3CX event does. Agent replies and call-event follow-ups are sends to
//! people who wrote first: strict mode checks the conversation window, call events have a
//! cooldown, and every message goes through the same guarded `Sender` as the JSON API.
use serde_json::{Map, Value};

use super::{
    cooldown,
    integrations::Integration,
    templates::{self, CallEvent},
};
use crate::{
    accounts::Account,
    error::Result,
    inbound,
    send::{
        phone::Phone,
        purpose::{Purpose, PurposeError},
        Channel, Outcome, Refusal, SendRequest, Sender,
    },
    time,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Test,
    OutboundMessage,
    InboundReply,
    CallStarted,
    QueueEvent,
    Call(CallEvent),
}

impl EventType {
    pub const NAMES: [&'static str; 10] = [
        "test",
        "outbound_message",
        "inbound_reply",
        "missed_call",
        "call_started",
        "call_ended",
        "voicemail",
        "queue_event",
        "queue_callback",
        "after_hours",
    ];

    pub fn parse(text: &str) -> Option<EventType> {
        Some(match text {
            "test" => EventType::Test,
            "outbound_message" => EventType::OutboundMessage,
            "inbound_reply" => EventType::InboundReply,
            "call_started" => EventType::CallStarted,
            "queue_event" => EventType::QueueEvent,
            other => EventType::Call(CallEvent::parse(other)?),
        })
    }
}

/// Where the customer's phone may be in a 3CX payload, in the order they are tried.
pub const PHONE_FIELDS: [&str; 5] = ["to", "from", "customer_phone", "caller", "phone"];
pub const TEXT_FIELDS: [&str; 2] = ["message_text", "message"];
pub const MAX_TEXT_CHARS: usize = 4096;
/// Payload values put into a template (queue names, extensions, times) are cut to this length.
pub const MAX_VALUE_CHARS: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    TemplateDisabled,
    CooldownActive,
    ConversationWindowClosed,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::TemplateDisabled => "template_disabled",
            SkipReason::CooldownActive => "cooldown_active",
            SkipReason::ConversationWindowClosed => "conversation_window_closed",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// `test`: authenticated, nothing changed.
    Test,
    Sent {
        message_id: String,
        log_id: i64,
    },
    Skipped(SkipReason),
    /// `call_started`, `queue_event`: in the request log only.
    Recorded,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    ModuleNotEnabled,
    UnsupportedEventType,
    OutboundDisabled,
    CallEventsDisabled,
    MissingPhone,
    MissingMessageText,
    MessageTooLong,
    PurposeNotAllowed,
    ConversationWindowClosed,
    /// The send pipeline's own refusal.
    Send(Refusal),
}

impl Rejection {
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::ModuleNotEnabled => "module_not_enabled",
            Rejection::UnsupportedEventType => "unsupported_event_type",
            Rejection::OutboundDisabled => "outbound_disabled",
            Rejection::CallEventsDisabled => "call_events_disabled",
            Rejection::MissingPhone => "missing_phone",
            Rejection::MissingMessageText => "missing_message_text",
            Rejection::MessageTooLong => "validation_error",
            Rejection::PurposeNotAllowed => "message_purpose_not_allowed",
            Rejection::ConversationWindowClosed => "conversation_window_closed",
            Rejection::Send(refusal) => refusal.code(),
        }
    }
}

/// One handled event: what the request log records, and the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handled {
    pub event_type: Option<String>,
    pub phone: Option<Phone>,
    pub result: std::result::Result<Answer, Rejection>,
}

/// A field as text: 3CX sends extensions and ids as strings or numbers.
fn text_field(payload: &Map<String, Value>, name: &str) -> Option<String> {
    match payload.get(name)? {
        // Zero-width and other invisible characters alone are as empty as spaces.
        Value::String(s) if !crate::send::text::is_blank(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// International numbers only: `+966…` or `00966…`. A bare `966…` could as well be a national
/// number (`2025550123` is not Egypt), and writing to the wrong person is worse than refusing.
fn parse_phone(text: &str) -> Option<Phone> {
    let compact: String = text.chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.')).collect();
    match compact.strip_prefix("00") {
        Some(rest) => Phone::parse(&format!("+{rest}")),
        None => Phone::parse(&compact),
    }
}

/// The first phone field that holds a usable number. None: there is nobody we could write to.
fn find_phone(payload: &Map<String, Value>) -> Option<Phone> {
    PHONE_FIELDS.iter().filter_map(|f| text_field(payload, f)).find_map(|t| parse_phone(&t))
}

/// `message_purpose`, `absent` when there is none (the spec's troubleshooting table: a missing
/// purpose is `message_purpose_not_allowed` for an agent's reply; a call event's template
/// defaults to `support`). Anything else outside the five allowed values is refused, `unknown`
/// and empty strings included.
fn purpose_of(payload: &Map<String, Value>, absent: Option<Purpose>) -> std::result::Result<Purpose, Rejection> {
    match payload.get("message_purpose") {
        None | Some(Value::Null) => absent.ok_or(Rejection::PurposeNotAllowed),
        Some(value) => Purpose::parse(Some(value)).map_err(|e| match e {
            PurposeError::Missing | PurposeError::NotAllowed => Rejection::PurposeNotAllowed,
        }),
    }
}

pub struct Context<'a> {
    pub sender: &'a Sender<'a>,
    pub now: i64,
}

pub async fn handle(
    ctx: &Context<'_>,
    integration: &Integration,
    account: &Account,
    payload: &Map<String, Value>,
) -> Result<Handled> {
    let event_name = payload.get("event_type").and_then(Value::as_str).map(str::trim);
    let mut handled = Handled {
        event_type: event_name.map(|n| n.chars().take(32).collect()),
        phone: find_phone(payload),
        result: Ok(Answer::Test),
    };
    if !account.threecx_enabled {
        handled.result = Err(Rejection::ModuleNotEnabled);
        return Ok(handled);
    }
    let Some(event) = event_name.and_then(EventType::parse) else {
        handled.result = Err(Rejection::UnsupportedEventType);
        return Ok(handled);
    };
    handled.result = match event {
        EventType::Test => Ok(Answer::Test),
        EventType::CallStarted | EventType::QueueEvent => Ok(Answer::Recorded),
        EventType::OutboundMessage | EventType::InboundReply => {
            agent_reply(ctx, integration, account, payload, handled.phone.as_ref()).await?
        }
        EventType::Call(call) => {
            call_follow_up(ctx, integration, account, payload, call, handled.phone.as_ref()).await?
        }
    };
    Ok(handled)
}

async fn window_open(ctx: &Context<'_>, integration: &Integration, phone: &Phone) -> Result<bool> {
    if !integration.strict_window {
        return Ok(true);
    }
    let last = inbound::last_inbound_at(ctx.sender.db(), &integration.instance_id, phone).await?;
    Ok(matches!(last, Some(at) if at > ctx.now - integration.window_secs()))
}

/// A payload value for the message log or a template, cut to `max` characters.
fn short_field(payload: &Map<String, Value>, names: &[&str], max: usize) -> Option<String> {
    names.iter().find_map(|n| text_field(payload, n)).map(|v| v.chars().take(max).collect())
}

fn channel_of(payload: &Map<String, Value>) -> Channel {
    Channel::ThreeCx {
        conversation_id: short_field(payload, &["conversation_id"], 128),
        agent_extension: short_field(payload, &["agent_extension", "extension"], 32),
    }
}

async fn send(
    ctx: &Context<'_>,
    integration: &Integration,
    account: &Account,
    phone: &Phone,
    text: String,
    purpose: Purpose,
    channel: Channel,
) -> Result<std::result::Result<Answer, Rejection>> {
    let request = SendRequest {
        instance_id: integration.instance_id.clone(),
        phone: phone.clone(),
        message: Some(text),
        purpose: Some(Value::String(purpose.as_str().into())),
        media: None,
        dry_run: false,
        channel,
    };
    Ok(match ctx.sender.send(account, request, None).await? {
        Ok(Outcome::Sent(sent)) => Ok(Answer::Sent { message_id: sent.message_id, log_id: sent.log_id }),
        // Neither happens without dry_run and an Idempotency-Key.
        Ok(Outcome::DryRun(_) | Outcome::Earlier(_)) => Err(Rejection::Send(Refusal::GatewaySendFailed { log_id: 0 })),
        Err(refusal) => Err(Rejection::Send(refusal)),
    })
}

async fn agent_reply(
    ctx: &Context<'_>,
    integration: &Integration,
    account: &Account,
    payload: &Map<String, Value>,
    phone: Option<&Phone>,
) -> Result<std::result::Result<Answer, Rejection>> {
    if !integration.outbound_enabled {
        return Ok(Err(Rejection::OutboundDisabled));
    }
    let Some(phone) = phone else { return Ok(Err(Rejection::MissingPhone)) };
    let Some(text) = TEXT_FIELDS.iter().find_map(|f| text_field(payload, f)) else {
        return Ok(Err(Rejection::MissingMessageText));
    };
    if text.chars().count() > MAX_TEXT_CHARS {
        return Ok(Err(Rejection::MessageTooLong));
    }
    let purpose = match purpose_of(payload, None) {
        Ok(p) => p,
        Err(r) => return Ok(Err(r)),
    };
    if !window_open(ctx, integration, phone).await? {
        return Ok(Err(Rejection::ConversationWindowClosed));
    }
    send(ctx, integration, account, phone, text, purpose, channel_of(payload)).await
}

async fn call_follow_up(
    ctx: &Context<'_>,
    integration: &Integration,
    account: &Account,
    payload: &Map<String, Value>,
    call: CallEvent,
    phone: Option<&Phone>,
) -> Result<std::result::Result<Answer, Rejection>> {
    if !integration.call_event_enabled {
        return Ok(Err(Rejection::CallEventsDisabled));
    }
    let Some(phone) = phone else { return Ok(Err(Rejection::MissingPhone)) };
    let purpose = match purpose_of(payload, Some(Purpose::Support)) {
        Ok(p) => p,
        Err(r) => return Ok(Err(r)),
    };
    let template = integration.templates.get(call);
    if !template.enabled {
        return Ok(Ok(Answer::Skipped(SkipReason::TemplateDisabled)));
    }
    if !window_open(ctx, integration, phone).await? {
        return Ok(Ok(Answer::Skipped(SkipReason::ConversationWindowClosed)));
    }
    let Some(claim) = cooldown::claim(ctx.sender.db(), &integration.id, call, phone, ctx.now).await? else {
        return Ok(Ok(Answer::Skipped(SkipReason::CooldownActive)));
    };
    let values = templates::Values {
        customer_phone: phone.as_str().into(),
        agent_extension: short_field(payload, &["agent_extension", "extension"], MAX_VALUE_CHARS).unwrap_or_default(),
        queue: short_field(payload, &["queue", "queue_name"], MAX_VALUE_CHARS).unwrap_or_default(),
        call_time: short_field(payload, &["call_time"], MAX_VALUE_CHARS).unwrap_or_else(|| time::display(ctx.now)),
        business_name: integration.business_name.clone(),
    };
    // Templates are at most 1000 characters and values are cut, so this stays within the limit.
    let text = templates::render(&template.text, &values);
    let sent = send(ctx, integration, account, phone, text, purpose, channel_of(payload)).await;
    if !matches!(sent, Ok(Ok(Answer::Sent { .. }))) {
        cooldown::give_back(ctx.sender.db(), claim).await?;
    }
    sent
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(json: serde_json::Value) -> Map<String, Value> {
        json.as_object().cloned().unwrap()
    }

    #[test]
    fn every_phone_alias_is_read_in_order() {
        for field in PHONE_FIELDS {
            let p = payload(serde_json::json!({ field: "+966501234567" }));
            assert_eq!(find_phone(&p).unwrap().as_str(), "+966501234567", "{field}");
        }
        let both = payload(serde_json::json!({"to": "+966501234567", "phone": "+442079460958"}));
        assert_eq!(find_phone(&both).unwrap().as_str(), "+966501234567");
        assert!(find_phone(&payload(serde_json::json!({"to": ""}))).is_none());
        assert!(find_phone(&payload(serde_json::json!({"to": "not a phone"}))).is_none());
        let extension_first = payload(serde_json::json!({"to": "101", "caller": "+966501234567"}));
        assert_eq!(find_phone(&extension_first).unwrap().as_str(), "+966501234567");
    }

    #[test]
    fn only_international_forms_are_read() {
        for form in ["+966 50 123 4567", "00966501234567", "+966-50-123-4567"] {
            assert_eq!(parse_phone(form).unwrap().as_str(), "+966501234567", "{form}");
        }
        for national in ["101", "966501234567", "2025550123", "0501234567"] {
            assert!(parse_phone(national).is_none(), "{national}");
        }
    }

    #[test]
    fn a_missing_purpose_is_refused_unless_defaulted_and_the_rest_are_refused() {
        let support = Some(Purpose::Support);
        assert_eq!(purpose_of(&payload(serde_json::json!({})), None), Err(Rejection::PurposeNotAllowed));
        assert_eq!(
            purpose_of(&payload(serde_json::json!({"message_purpose": null})), None),
            Err(Rejection::PurposeNotAllowed)
        );
        assert_eq!(purpose_of(&payload(serde_json::json!({})), support), Ok(Purpose::Support));
        assert_eq!(
            purpose_of(&payload(serde_json::json!({"message_purpose": "operational"})), None),
            Ok(Purpose::Operational)
        );
        for bad in ["unknown", "marketing", "promotion", "cold_outreach", "bulk_campaign", "political", "", "Support"] {
            for absent in [None, support] {
                assert_eq!(
                    purpose_of(&payload(serde_json::json!({"message_purpose": bad})), absent),
                    Err(Rejection::PurposeNotAllowed),
                    "{bad}"
                );
            }
        }
    }

    #[test]
    fn event_types_parse() {
        for name in EventType::NAMES {
            assert!(EventType::parse(name).is_some(), "{name}");
        }
        assert_eq!(EventType::parse("missed_call"), Some(EventType::Call(CallEvent::MissedCall)));
        assert!(EventType::parse("sms_received").is_none());
    }
}
