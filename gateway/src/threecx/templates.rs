//! Call-event templates: the five call events that may send a follow-up, their default texts,
//! and the `{{variable}}` substitution. Unknown variables are refused when a template is saved,
//! so a typo never reaches a customer as literal braces.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallEvent {
    MissedCall,
    Voicemail,
    CallEnded,
    QueueCallback,
    AfterHours,
}

pub const VARIABLES: [&str; 5] = ["customer_phone", "agent_extension", "queue", "call_time", "business_name"];
pub const MAX_TEXT_CHARS: usize = 1000;

impl CallEvent {
    pub const ALL: [CallEvent; 5] = [
        CallEvent::MissedCall,
        CallEvent::Voicemail,
        CallEvent::CallEnded,
        CallEvent::QueueCallback,
        CallEvent::AfterHours,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CallEvent::MissedCall => "missed_call",
            CallEvent::Voicemail => "voicemail",
            CallEvent::CallEnded => "call_ended",
            CallEvent::QueueCallback => "queue_callback",
            CallEvent::AfterHours => "after_hours",
        }
    }

    pub fn parse(text: &str) -> Option<CallEvent> {
        CallEvent::ALL.into_iter().find(|e| e.as_str() == text)
    }

    pub fn label(self) -> &'static str {
        match self {
            CallEvent::MissedCall => "Missed call",
            CallEvent::Voicemail => "Voicemail",
            CallEvent::CallEnded => "Call ended",
            CallEvent::QueueCallback => "Queue callback",
            CallEvent::AfterHours => "After hours",
        }
    }

    pub fn default_text(self) -> &'static str {
        match self {
            CallEvent::MissedCall => {
                "Hello, this is {{business_name}}. We missed your call at {{call_time}}. Reply here and an agent will help you."
            }
            CallEvent::Voicemail => {
                "Hello, this is {{business_name}}. We received your voicemail and an agent will get back to you."
            }
            CallEvent::CallEnded => {
                "Thank you for calling {{business_name}}. If you need anything else, reply to this message."
            }
            CallEvent::QueueCallback => {
                "Hello, this is {{business_name}}. Your callback request for {{queue}} is registered; an agent will call you back."
            }
            CallEvent::AfterHours => {
                "Thank you for contacting {{business_name}}. We are closed right now and will reply when we open."
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    pub enabled: bool,
    pub text: String,
}

/// The five templates of an integration, stored as one JSON object keyed by event name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Templates(BTreeMap<CallEvent, Template>);

impl Templates {
    /// Every template enabled with its default text.
    pub fn defaults() -> Templates {
        Templates(
            CallEvent::ALL
                .into_iter()
                .map(|e| (e, Template { enabled: true, text: e.default_text().into() }))
                .collect(),
        )
    }

    /// A template missing from what is stored (none should be) falls back to its default,
    /// disabled, so nothing is sent that the customer did not see.
    pub fn get(&self, event: CallEvent) -> Template {
        self.0.get(&event).cloned().unwrap_or_else(|| Template { enabled: false, text: event.default_text().into() })
    }

    pub fn set(&mut self, event: CallEvent, template: Template) {
        self.0.insert(event, template);
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_else(|_| "{}".into())
    }

    pub fn from_json(text: &str) -> Templates {
        Templates(serde_json::from_str(text).unwrap_or_default())
    }
}

/// What a template's variables stand for in one call event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Values {
    pub customer_phone: String,
    pub agent_extension: String,
    pub queue: String,
    pub call_time: String,
    pub business_name: String,
}

impl Values {
    fn get(&self, name: &str) -> Option<&str> {
        Some(match name {
            "customer_phone" => &self.customer_phone,
            "agent_extension" => &self.agent_extension,
            "queue" => &self.queue,
            "call_time" => &self.call_time,
            "business_name" => &self.business_name,
            _ => return None,
        })
    }

    /// What the settings page previews a template with.
    pub fn sample(business_name: &str) -> Values {
        Values {
            customer_phone: "+966500000000".into(),
            agent_extension: "101".into(),
            queue: "Support".into(),
            call_time: "2026-01-15 14:30 UTC".into(),
            business_name: if business_name.trim().is_empty() { "Example Co".into() } else { business_name.into() },
        }
    }
}

/// One piece of a template: literal text or a `{{variable}}`.
enum Piece<'a> {
    Text(&'a str),
    Variable(&'a str),
}

fn pieces(text: &str) -> std::result::Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push(Piece::Text(&rest[..start]));
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| "A {{ has no matching }}.".to_string())?;
        out.push(Piece::Variable(after[..end].trim()));
        rest = &after[end + 2..];
    }
    if rest.contains("}}") {
        return Err("A }} has no matching {{.".into());
    }
    out.push(Piece::Text(rest));
    Ok(out)
}

/// Checks a template text before it is saved.
pub fn validate(text: &str) -> Result<String> {
    let text = text.trim().replace("\r\n", "\n");
    if text.is_empty() {
        return Err(Error::invalid("Write the template's text (or switch the template off)."));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(Error::invalid(format!("A template is at most {MAX_TEXT_CHARS} characters.")));
    }
    let parts = pieces(&text).map_err(Error::invalid)?;
    let unknown: Vec<&str> = parts
        .iter()
        .filter_map(|p| match p {
            Piece::Variable(name) if !VARIABLES.contains(name) => Some(*name),
            _ => None,
        })
        .collect();
    if !unknown.is_empty() {
        let names: Vec<String> = unknown.iter().map(|n| format!("{{{{{n}}}}}")).collect();
        return Err(Error::invalid(format!(
            "Unknown variable {}. Use {}.",
            names.join(", "),
            VARIABLES.iter().map(|v| format!("{{{{{v}}}}}")).collect::<Vec<_>>().join(", ")
        )));
    }
    Ok(text)
}

/// Fills in the variables. Saved templates were validated; anything unknown renders empty.
pub fn render(text: &str, values: &Values) -> String {
    match pieces(text) {
        Ok(parts) => parts
            .into_iter()
            .map(|p| match p {
                Piece::Text(t) => t,
                Piece::Variable(name) => values.get(name).unwrap_or(""),
            })
            .collect(),
        Err(_) => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_template_is_valid_and_renders_without_braces() {
        let values = Values::sample("Acme Support");
        for event in CallEvent::ALL {
            let text = validate(event.default_text()).unwrap();
            let rendered = render(&text, &values);
            assert!(!rendered.contains("{{") && !rendered.contains("}}"), "{rendered}");
            assert!(rendered.contains("Acme Support"), "{rendered}");
        }
        assert_eq!(Templates::defaults().0.len(), 5);
    }

    #[test]
    fn variables_are_substituted_with_or_without_inner_spaces() {
        let values = Values { customer_phone: "+966500000000".into(), queue: "Billing".into(), ..Values::default() };
        assert_eq!(render("Hi {{customer_phone}}, queue {{ queue }}.", &values), "Hi +966500000000, queue Billing.");
    }

    #[test]
    fn unknown_variables_and_broken_braces_are_refused() {
        let e = validate("Hello {{first_name}} from {{business_name}}").unwrap_err();
        assert!(e.user_message().contains("{{first_name}}"), "{}", e.user_message());
        assert!(validate("Hello {{business_name").is_err());
        assert!(validate("Hello business_name}}").is_err());
        assert!(validate("   ").is_err());
        assert!(validate(&"a".repeat(MAX_TEXT_CHARS + 1)).is_err());
        assert!(validate("Plain text is fine.").is_ok());
    }

    #[test]
    fn templates_round_trip_through_json() {
        let mut t = Templates::defaults();
        t.set(CallEvent::AfterHours, Template { enabled: false, text: "Closed.".into() });
        let back = Templates::from_json(&t.to_json());
        assert_eq!(back, t);
        assert!(!back.get(CallEvent::AfterHours).enabled);
        assert!(back.to_json().contains("\"after_hours\""));
    }
}
