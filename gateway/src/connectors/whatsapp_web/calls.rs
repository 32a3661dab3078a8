//! Missed calls as the phone sees them. Without whatsapp-rust's VoIP runtime the crate reports a
//! `MissedCall` only for offers replayed after a reconnect; a call that rings and ends unanswered
//! arrives as an offer and, later, a terminate. This remembers the offers that rang and turns an
//! unanswered end into `call.missed`.
use std::{collections::HashMap, sync::Mutex};

use whatsapp_rust::types::call::{CallAction, IncomingCall};

use crate::connectors::{EventKind, Sender};

/// Calls ring for about a minute; an offer older than this has ended without us hearing it.
const RING_SECS: i64 = 600;
const MAX_RINGING: usize = 256;

#[derive(Default)]
pub(super) struct Ringing(Mutex<HashMap<String, (Sender, i64)>>);

impl Ringing {
    /// Follows one call stanza. `rang` is the caller of an offer we reported as `call.received`;
    /// the answer is a missed call when an unanswered call ends.
    pub(super) fn follow(&self, call: &IncomingCall, rang: Option<&Sender>) -> Option<EventKind> {
        let at = call.timestamp.timestamp();
        let mut ringing = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match &call.action {
            CallAction::Offer { call_id, .. } => {
                let from = rang?;
                ringing.retain(|_, (_, since)| *since > at - RING_SECS);
                if ringing.len() < MAX_RINGING {
                    ringing.insert(call_id.clone(), (from.clone(), at));
                }
                None
            }
            CallAction::Accept { call_id, .. } | CallAction::Reject { call_id, .. } => {
                ringing.remove(call_id);
                None
            }
            CallAction::Terminate { call_id, reason, .. } => {
                let (from, _) = ringing.remove(call_id)?;
                // As WhatsApp Web's call log: answered or declined on another device is not missed.
                match reason.as_deref() {
                    None | Some("timeout") | Some("group_call_ended") => {
                        Some(EventKind::Call { from, missed: true, at })
                    }
                    Some(_) => None,
                }
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use whatsapp_rust::{
        chrono::{TimeZone, Utc},
        Jid,
    };

    use super::*;

    fn stanza(action: CallAction) -> IncomingCall {
        IncomingCall::builder()
            .from(Jid::pn("966512345678"))
            .stanza_id("stanza".into())
            .timestamp(Utc.timestamp_opt(1_800_000_000, 0).unwrap())
            .offline(false)
            .action(action)
            .build()
    }

    fn offer(id: &str) -> IncomingCall {
        stanza(CallAction::Offer {
            call_id: id.into(),
            call_creator: Jid::pn("966512345678"),
            caller_pn: None,
            caller_country_code: None,
            device_class: None,
            joinable: false,
            is_video: false,
            audio: vec![],
            group_jid: None,
        })
    }

    fn terminate(id: &str, reason: Option<&str>) -> IncomingCall {
        stanza(CallAction::Terminate {
            call_id: id.into(),
            call_creator: Jid::pn("966512345678"),
            reason: reason.map(str::to_string),
            duration: None,
            audio_duration: None,
        })
    }

    fn caller() -> Sender {
        Sender { address: "966512345678@s.whatsapp.net".into(), phone: Some("+966512345678".into()) }
    }

    #[test]
    fn an_unanswered_call_that_ends_is_missed_once() {
        let ringing = Ringing::default();
        assert_eq!(ringing.follow(&offer("A"), Some(&caller())), None);
        let missed = ringing.follow(&terminate("A", None), None);
        assert_eq!(missed, Some(EventKind::Call { from: caller(), missed: true, at: 1_800_000_000 }));
        assert_eq!(ringing.follow(&terminate("A", None), None), None, "a repeated terminate is not a second call");
        ringing.follow(&offer("T"), Some(&caller()));
        assert!(ringing.follow(&terminate("T", Some("timeout")), None).is_some());
    }

    #[test]
    fn calls_answered_or_declined_elsewhere_are_not_missed() {
        let ringing = Ringing::default();
        for (id, reason) in [("B", "accepted_elsewhere"), ("C", "rejected_elsewhere")] {
            ringing.follow(&offer(id), Some(&caller()));
            assert_eq!(ringing.follow(&terminate(id, Some(reason)), None), None, "{reason}");
        }
        // A terminate for a call that never rang here (our own outgoing call, a replay) is nothing.
        assert_eq!(ringing.follow(&terminate("unknown", None), None), None);
    }
}
