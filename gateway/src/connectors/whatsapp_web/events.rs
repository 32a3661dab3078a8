//! What each whatsapp-rust event means for the gateway: the normalized events the registry
//! records, and how the connect tab's link state changes.
use whatsapp_rust::{
    types::{
        call::{CallAction, IncomingCall, MissedCall},
        events::{ConnectFailureReason, Event, InboundMessage as WaInbound, Receipt},
        presence::ReceiptType,
    },
    waproto::whatsapp as wa,
    Jid,
};

use super::jid::{self, LidLookup};
use crate::connectors::{DeliveryStatus, EventKind, InboundMedia, InboundMessage, MediaKind};

/// How the session's link state moves on an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkChange {
    Qr {
        code: String,
        expires_at: i64,
    },
    PairCode {
        code: String,
        expires_at: i64,
    },
    /// WhatsApp offers no more QR codes until the client is rebuilt. Not `disconnected` while a
    /// pair code is still outstanding on the same connection.
    CodesExhausted {
        disconnected: bool,
    },
    /// The pairing code on screen is no longer good (expired, or the request failed).
    PairCodeEnded {
        reason: String,
    },
    /// The phone accepted the link; the client reconnects as the new device before it is usable.
    Paired,
    Connected,
    /// The account's profile name, as other people see it.
    ProfileName(String),
    /// Transient: the client reconnects by itself.
    Reconnecting,
    /// The link is gone; the stored keys are worthless now.
    LoggedOut {
        reason: String,
    },
    Banned {
        reason: String,
        until: Option<i64>,
    },
    /// Another client uses this session; this one stopped and must not fight it.
    Replaced,
    /// WhatsApp refused this client (outdated version, unknown failure): stopped until a retry.
    Refused {
        reason: String,
    },
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Mapped {
    pub events: Vec<EventKind>,
    pub link: Option<LinkChange>,
}

impl Mapped {
    fn one(event: EventKind, link: Option<LinkChange>) -> Mapped {
        Mapped { events: vec![event], link }
    }
}

/// What the mapping needs to know about the live client.
#[async_trait::async_trait]
pub trait Context: LidLookup {
    /// The linked number (E.164), once paired.
    fn own_phone(&self) -> Option<String>;
}

pub async fn map_event(event: &Event, ctx: &dyn Context, now: i64) -> Mapped {
    match event {
        Event::PairingQrCode(qr) => {
            let expires_at = now + qr.timeout.as_secs() as i64;
            Mapped::one(
                EventKind::QrUpdated { code: qr.code.clone(), expires_at },
                Some(LinkChange::Qr { code: qr.code.clone(), expires_at }),
            )
        }
        Event::PairingCode(code) => Mapped {
            events: vec![],
            link: Some(LinkChange::PairCode {
                code: code.code.clone(),
                expires_at: now + code.timeout.as_secs() as i64,
            }),
        },
        Event::PairingCodeRefresh(_) => Mapped::one(
            EventKind::ConnectionUpdated { state: "pair_code_expired".into() },
            Some(LinkChange::PairCodeEnded {
                reason: "The pairing code expired. Request a new one, or link with the QR code.".into(),
            }),
        ),
        Event::PairingCodeError(_) => Mapped::one(
            EventKind::ConnectionUpdated { state: "pair_code_failed".into() },
            Some(LinkChange::PairCodeEnded {
                reason: "WhatsApp did not accept the pairing-code request. Try again in a few minutes, or link with the QR code."
                    .into(),
            }),
        ),
        Event::PairingQrCodesExhausted(exhausted) => Mapped::one(
            EventKind::ConnectionUpdated { state: "qr_codes_exhausted".into() },
            Some(LinkChange::CodesExhausted { disconnected: exhausted.disconnected }),
        ),
        Event::PairSuccess(_) => {
            Mapped::one(EventKind::ConnectionUpdated { state: "paired".into() }, Some(LinkChange::Paired))
        }
        Event::SelfPushNameUpdated(update) => {
            Mapped { events: vec![], link: Some(LinkChange::ProfileName(update.new_name.clone())) }
        }
        Event::PairError(_) => Mapped::one(EventKind::ConnectionUpdated { state: "pairing_failed".into() }, None),
        Event::Connected(_) => {
            Mapped::one(EventKind::Connected { phone: ctx.own_phone() }, Some(LinkChange::Connected))
        }
        Event::Disconnected(_) if ctx.own_phone().is_none() => Mapped::default(),
        Event::Disconnected(_) => Mapped::one(
            EventKind::Disconnected { reason: "The connection to WhatsApp dropped; reconnecting.".into() },
            Some(LinkChange::Reconnecting),
        ),
        // A logout this gateway asked for has no stanza behind it; the portal's logout already
        // reports it, so only logouts WhatsApp or the phone caused count here.
        Event::LoggedOut(out) if out.raw.is_none() => Mapped::default(),
        Event::LoggedOut(out) => {
            let reason = match out.reason {
                ConnectFailureReason::AccountLocked => "WhatsApp locked the account".to_string(),
                ConnectFailureReason::LoggedOut => {
                    "the phone removed this linked device, or WhatsApp logged it out".to_string()
                }
                other => format!("WhatsApp logged the device out (code {})", other.code()),
            };
            Mapped::one(
                EventKind::LoggedOut { reason: reason.clone(), forced: true },
                Some(LinkChange::LoggedOut { reason }),
            )
        }
        Event::StreamReplaced(_) => Mapped::one(
            lost(
                ctx,
                "Another connection took over this session; reconnect from the portal to take it back.",
                "replaced",
            ),
            Some(LinkChange::Replaced),
        ),
        Event::TemporaryBan(ban) => {
            let until = now.checked_add(ban.expire.num_seconds());
            let reason = ban.code.to_string();
            Mapped::one(
                EventKind::TemporarilyBanned { reason: reason.clone(), until },
                Some(LinkChange::Banned { reason, until }),
            )
        }
        Event::ClientOutdated(_) => {
            let reason = "WhatsApp refused this gateway's client version; the gateway needs an update.".to_string();
            Mapped::one(lost(ctx, &reason, "client_outdated"), Some(LinkChange::Refused { reason }))
        }
        Event::ConnectFailure(failure) if !failure.reason.should_reconnect() => {
            let reason = format!("WhatsApp refused the connection (code {}).", failure.reason.code());
            Mapped::one(lost(ctx, &reason, "connect_failed"), Some(LinkChange::Refused { reason }))
        }
        Event::Messages(batch) => {
            let mut events = Vec::new();
            for message in batch.iter() {
                if let Some(inbound) = inbound_message(message, ctx).await {
                    events.push(EventKind::MessageReceived(inbound));
                }
            }
            Mapped { events, link: None }
        }
        Event::Receipt(receipt) => Mapped { events: receipt_events(receipt), link: None },
        Event::IncomingCall(call) => {
            Mapped { events: incoming_call(call, ctx).await.into_iter().collect(), link: None }
        }
        Event::MissedCall(call) => Mapped::one(missed_call(call, ctx).await, None),
        Event::GroupUpdate(update) => Mapped::one(
            EventKind::GroupUpdated { group_id: update.group_jid.to_string(), change: update.action.wire_tag().into() },
            None,
        ),
        _ => Mapped::default(),
    }
}

/// A lost connection: the instance is disconnected when it was linked; before linking there is
/// no status to change, only a state to report.
fn lost(ctx: &dyn Context, reason: &str, state: &str) -> EventKind {
    match ctx.own_phone() {
        Some(_) => EventKind::Disconnected { reason: reason.into() },
        None => EventKind::ConnectionUpdated { state: state.into() },
    }
}

/// A message from someone else in a chat the gateway reports; `None` for our own echoes
/// (sent from the phone or by this gateway), status updates, channels and broadcasts.
pub(super) async fn inbound_message(message: &WaInbound, ctx: &dyn Context) -> Option<InboundMessage> {
    use whatsapp_rust::wacore::proto_helpers::MessageExt;
    let info = &message.info;
    if info.source.is_from_me || !jid::is_reportable_chat(&info.source.chat) {
        return None;
    }
    let base = message.message.get_base_message();
    let media = inbound_media(base);
    let text = base.text_content().or_else(|| base.get_caption()).map(str::to_string);
    if text.is_none() && media.is_none() {
        // Reactions, edits, deletions, protocol messages: nothing a customer's system reads.
        return None;
    }
    Some(InboundMessage {
        provider_message_id: info.id.clone(),
        from: jid::sender_of(&info.source, ctx).await,
        group_id: info.source.is_group.then(|| info.source.chat.to_non_ad_string()),
        text,
        media,
        sent_at: info.timestamp.timestamp(),
    })
}

fn inbound_media(message: &wa::Message) -> Option<InboundMedia> {
    let media = |kind, mime: &Option<String>, default: &str, file_name: Option<String>, size: Option<u64>| {
        Some(InboundMedia {
            kind,
            mime_type: mime.clone().unwrap_or_else(|| default.to_string()),
            file_name,
            size_bytes: size,
        })
    };
    if let Some(m) = message.image_message.as_option() {
        return media(MediaKind::Image, &m.mimetype, "image/jpeg", None, m.file_length);
    }
    if let Some(m) = message.video_message.as_option() {
        return media(MediaKind::Video, &m.mimetype, "video/mp4", None, m.file_length);
    }
    if let Some(m) = message.audio_message.as_option() {
        return media(MediaKind::Audio, &m.mimetype, "audio/ogg", None, m.file_length);
    }
    if let Some(m) = message.document_message.as_option() {
        return media(MediaKind::Document, &m.mimetype, "application/octet-stream", m.file_name.clone(), m.file_length);
    }
    None
}

fn receipt_events(receipt: &Receipt) -> Vec<EventKind> {
    let status = match receipt.r#type {
        ReceiptType::Delivered => DeliveryStatus::Delivered,
        // A played voice note or video has been read, and more.
        ReceiptType::Read | ReceiptType::Played => DeliveryStatus::Read,
        // Our own devices reading, retries, server errors: not the recipient's progress.
        _ => return vec![],
    };
    let at = receipt.timestamp.timestamp();
    receipt
        .message_ids
        .iter()
        // Whether the session sent it moments ago is for the session to say.
        .map(|id| EventKind::MessageStatus { provider_message_id: id.clone(), status, at, just_sent: false })
        .collect()
}

/// Only an offer rings; the rest of a call's signalling (accept, terminate, transport) is not a
/// new call. Offers replayed after a reconnect arrive as `MissedCall` instead.
async fn incoming_call(call: &IncomingCall, ctx: &dyn Context) -> Option<EventKind> {
    let CallAction::Offer { caller_pn, .. } = &call.action else { return None };
    if call.offline {
        return None;
    }
    let from = jid::person(&call.from, caller_pn.as_ref(), ctx).await;
    Some(EventKind::Call { from, missed: false, at: call.timestamp.timestamp() })
}

async fn missed_call(call: &MissedCall, ctx: &dyn Context) -> EventKind {
    let from = jid::person(&call.from, None::<&Jid>, ctx).await;
    EventKind::Call { from, missed: true, at: call.timestamp.timestamp() }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use whatsapp_rust::{
        chrono::{self, TimeZone, Utc},
        transport::DisconnectReason,
        types::{
            call::MissedReason,
            events::{
                BatchOrigin, ClientOutdated, ConnectFailure, Connected, Disconnected, LoggedOut, MessageBatch,
                PairSuccess, PairingCode, PairingCodeError, PairingCodeRefresh, PairingQrCode, PairingQrCodesExhausted,
                SelfPushNameUpdated, StreamReplaced, TempBanReason, TemporaryBan,
            },
            message::{MessageInfo, MessageSource},
        },
        wacore::{
            proto_helpers::MessageBuilderExt, stanza::groups::GroupNotificationAction, types::events::GroupUpdate,
        },
        wacore_binary::builder::NodeBuilder,
        waproto::buffa::MessageField,
    };

    use super::*;
    use crate::connectors::Sender;

    const NOW: i64 = 1_780_000_000;

    struct Phone;

    #[async_trait::async_trait]
    impl LidLookup for Phone {
        async fn phone_for_lid(&self, lid_user: &str) -> Option<String> {
            (lid_user == "200000000000001").then(|| "+966500000002".to_string())
        }
    }

    impl Context for Phone {
        fn own_phone(&self) -> Option<String> {
            Some("+966500000009".into())
        }
    }

    struct Unpaired;

    #[async_trait::async_trait]
    impl LidLookup for Unpaired {
        async fn phone_for_lid(&self, _lid_user: &str) -> Option<String> {
            None
        }
    }

    impl Context for Unpaired {
        fn own_phone(&self) -> Option<String> {
            None
        }
    }

    async fn map(event: Event) -> Mapped {
        map_event(&event, &Phone, NOW).await
    }

    fn at() -> chrono::DateTime<Utc> {
        Utc.timestamp_opt(NOW - 5, 0).unwrap()
    }

    fn inbound(source: MessageSource, id: &str, message: wa::Message) -> WaInbound {
        let info = MessageInfo { source, id: id.into(), timestamp: at(), ..Default::default() };
        WaInbound::builder().message(Arc::new(message)).info(Arc::new(info)).build()
    }

    fn from_person(sender: Jid, alt: Option<Jid>) -> MessageSource {
        MessageSource { chat: sender.to_non_ad(), sender, sender_alt: alt, ..Default::default() }
    }

    fn batch(messages: Vec<WaInbound>) -> Event {
        Event::Messages(MessageBatch::builder().messages(messages.into()).origin(BatchOrigin::Live).build())
    }

    #[tokio::test]
    async fn linking_events() {
        let qr = map(Event::PairingQrCode(
            PairingQrCode::builder().code("2@abc,def".into()).timeout(Duration::from_secs(60)).build(),
        ))
        .await;
        assert_eq!(qr.events, vec![EventKind::QrUpdated { code: "2@abc,def".into(), expires_at: NOW + 60 }]);
        assert_eq!(qr.link, Some(LinkChange::Qr { code: "2@abc,def".into(), expires_at: NOW + 60 }));

        let code = map(Event::PairingCode(
            PairingCode::builder().code("ABCD1234".into()).timeout(Duration::from_secs(180)).build(),
        ))
        .await;
        assert_eq!(code.link, Some(LinkChange::PairCode { code: "ABCD1234".into(), expires_at: NOW + 180 }));
        let expired = map(Event::PairingCodeRefresh(PairingCodeRefresh::builder().force_manual(false).build())).await;
        assert!(matches!(expired.link, Some(LinkChange::PairCodeEnded { .. })));
        assert_eq!(expired.events, vec![EventKind::ConnectionUpdated { state: "pair_code_expired".into() }]);
        let failed = map(Event::PairingCodeError(PairingCodeError::builder().error("refused".into()).build())).await;
        assert!(matches!(failed.link, Some(LinkChange::PairCodeEnded { .. })));
        assert!(code.events.is_empty(), "a pair code is shown to the customer, not sent to webhooks");

        let exhausted =
            map(Event::PairingQrCodesExhausted(PairingQrCodesExhausted::builder().disconnected(true).build())).await;
        assert_eq!(exhausted.events, vec![EventKind::ConnectionUpdated { state: "qr_codes_exhausted".into() }]);
        assert_eq!(exhausted.link, Some(LinkChange::CodesExhausted { disconnected: true }));

        let paired = map(Event::PairSuccess(
            PairSuccess::builder()
                .id(Jid::pn_device("966500000009", 12))
                .lid(Jid::lid("200000000000009"))
                .business_name(String::new())
                .platform("android".into())
                .build(),
        ))
        .await;
        assert_eq!(paired.events, vec![EventKind::ConnectionUpdated { state: "paired".into() }]);
        assert_eq!(paired.link, Some(LinkChange::Paired));

        let renamed =
            SelfPushNameUpdated::builder().from_server(true).old_name(String::new()).new_name("Acme Support".into());
        let named = map(Event::SelfPushNameUpdated(renamed.build())).await;
        assert_eq!(named, Mapped { events: vec![], link: Some(LinkChange::ProfileName("Acme Support".into())) });

        let connected = map(Event::Connected(Connected::builder().build())).await;
        assert_eq!(connected.events, vec![EventKind::Connected { phone: Some("+966500000009".into()) }]);
        assert_eq!(connected.link, Some(LinkChange::Connected));
    }

    #[tokio::test]
    async fn connection_losses_logouts_and_bans() {
        let dropped =
            map(Event::Disconnected(Disconnected::builder().reason(DisconnectReason::StreamEnded).build())).await;
        assert!(matches!(dropped.events[..], [EventKind::Disconnected { .. }]));
        assert_eq!(dropped.link, Some(LinkChange::Reconnecting));

        // The crate reports our own logout too, without a stanza: the portal already did.
        let own = LoggedOut::builder().on_connect(false).reason(ConnectFailureReason::LoggedOut).build();
        assert_eq!(map(Event::LoggedOut(own)).await, Mapped::default());

        let removed = LoggedOut::builder()
            .on_connect(false)
            .reason(ConnectFailureReason::LoggedOut)
            .raw(NodeBuilder::new("stream:error").build())
            .build();
        let removed = map(Event::LoggedOut(removed)).await;
        let [EventKind::LoggedOut { reason, forced: true }] = &removed.events[..] else { panic!("{removed:?}") };
        assert!(reason.contains("removed this linked device"));
        assert!(matches!(removed.link, Some(LinkChange::LoggedOut { .. })));

        let locked = LoggedOut::builder()
            .on_connect(true)
            .reason(ConnectFailureReason::AccountLocked)
            .raw(NodeBuilder::new("failure").build())
            .build();
        let locked = map(Event::LoggedOut(locked)).await;
        assert!(
            matches!(&locked.events[..], [EventKind::LoggedOut { reason, forced: true }] if reason.contains("locked"))
        );

        let ban = TemporaryBan::builder()
            .code(TempBanReason::SentToTooManyPeople)
            .expire(chrono::Duration::seconds(7200))
            .build();
        let ban = map(Event::TemporaryBan(ban)).await;
        let [EventKind::TemporarilyBanned { reason, until: Some(until) }] = &ban.events[..] else { panic!("{ban:?}") };
        assert_eq!(*until, NOW + 7200);
        assert!(reason.contains("too many messages"), "{reason}");
        assert!(matches!(ban.link, Some(LinkChange::Banned { .. })));

        // Before a phone is linked, a dropped connection changes no status: only codes are lost.
        let drop = Event::Disconnected(Disconnected::builder().reason(DisconnectReason::StreamEnded).build());
        assert_eq!(map_event(&drop, &Unpaired, NOW).await, Mapped::default());
        let replaced_early = map_event(&Event::StreamReplaced(StreamReplaced::builder().build()), &Unpaired, NOW).await;
        assert_eq!(replaced_early.events, vec![EventKind::ConnectionUpdated { state: "replaced".into() }]);

        let replaced = map(Event::StreamReplaced(StreamReplaced::builder().build())).await;
        assert!(matches!(replaced.events[..], [EventKind::Disconnected { .. }]));
        assert_eq!(replaced.link, Some(LinkChange::Replaced));

        let outdated = map(Event::ClientOutdated(ClientOutdated::builder().build())).await;
        assert!(matches!(outdated.link, Some(LinkChange::Refused { .. })));

        let refused =
            map(Event::ConnectFailure(ConnectFailure::builder().reason(ConnectFailureReason::BadUserAgent).build()))
                .await;
        assert!(matches!(refused.link, Some(LinkChange::Refused { .. })));
        // The client retries these by itself.
        let busy = ConnectFailure::builder().reason(ConnectFailureReason::ServiceUnavailable).build();
        assert_eq!(map(Event::ConnectFailure(busy)).await, Mapped::default());
    }

    #[tokio::test]
    async fn messages_from_people_and_groups() {
        let text = inbound(from_person(Jid::pn_device("966512345678", 3), None), "3EB0A1", wa::Message::text("STOP"));
        let lid = inbound(
            from_person(Jid::lid("100000012345678"), Some(Jid::pn("966512345679"))),
            "3EB0A2",
            wa::Message::text("Where is my order?"),
        );
        let lid_looked_up =
            inbound(from_person(Jid::lid("200000000000001"), None), "3EB0A3", wa::Message::text("Hello"));
        let group_source = MessageSource {
            chat: Jid::group("120363000000000001"),
            sender: Jid::pn("966512345670"),
            is_group: true,
            ..Default::default()
        };
        let document = wa::Message {
            document_message: MessageField::some(wa::message::DocumentMessage {
                mimetype: Some("application/pdf".into()),
                file_name: Some("order.pdf".into()),
                file_length: Some(2048),
                caption: Some("My order".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let group = inbound(group_source, "3EB0A4", document);
        let image = wa::Message {
            image_message: MessageField::some(wa::message::ImageMessage {
                mimetype: Some("image/png".into()),
                file_length: Some(10),
                ..Default::default()
            }),
            ..Default::default()
        };
        let photo = inbound(from_person(Jid::pn("966512345671"), None), "3EB0A5", image);

        // Skipped: our own echo, a status update, and a message with nothing to read.
        let mut own_source = from_person(Jid::pn("966500000009"), None);
        own_source.is_from_me = true;
        let own = inbound(own_source, "3EB0B1", wa::Message::text("sent from the phone"));
        let status_source =
            MessageSource { chat: Jid::status_broadcast(), sender: Jid::pn("966512345678"), ..Default::default() };
        let status = inbound(status_source, "3EB0B2", wa::Message::text("my status"));
        let empty = inbound(from_person(Jid::pn("966512345678"), None), "3EB0B3", wa::Message::default());

        let mapped = map(batch(vec![text, own, lid, status, lid_looked_up, empty, group, photo])).await;
        let received: Vec<InboundMessage> = mapped
            .events
            .into_iter()
            .map(|e| match e {
                EventKind::MessageReceived(m) => m,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(received.len(), 5, "{received:#?}");

        assert_eq!(received[0].provider_message_id, "3EB0A1");
        assert_eq!(
            received[0].from,
            Sender { address: "966512345678@s.whatsapp.net".into(), phone: Some("+966512345678".into()) }
        );
        assert_eq!(received[0].text.as_deref(), Some("STOP"));
        assert_eq!(received[0].sent_at, NOW - 5);
        assert_eq!(received[0].group_id, None);

        assert_eq!(received[1].from.address, "100000012345678@lid");
        assert_eq!(received[1].from.phone.as_deref(), Some("+966512345679"), "from sender_alt");
        assert_eq!(received[2].from.phone.as_deref(), Some("+966500000002"), "from the LID map");

        assert_eq!(received[3].group_id.as_deref(), Some("120363000000000001@g.us"));
        assert_eq!(received[3].text.as_deref(), Some("My order"));
        assert_eq!(
            received[3].media,
            Some(InboundMedia {
                kind: MediaKind::Document,
                mime_type: "application/pdf".into(),
                file_name: Some("order.pdf".into()),
                size_bytes: Some(2048)
            })
        );
        assert_eq!(received[4].media.as_ref().map(|m| m.kind), Some(MediaKind::Image));
        assert_eq!(received[4].text, None);
    }

    #[tokio::test]
    async fn receipts_calls_and_group_changes() {
        let receipt = |kind: ReceiptType| {
            Event::Receipt(
                Receipt::builder()
                    .source(from_person(Jid::pn("966512345678"), None))
                    .message_ids(vec!["3EB0C1".into(), "3EB0C2".into()])
                    .timestamp(at())
                    .r#type(kind)
                    .offline(false)
                    .build(),
            )
        };
        let delivered = map(receipt(ReceiptType::Delivered)).await;
        assert_eq!(
            delivered.events,
            vec![
                EventKind::MessageStatus {
                    provider_message_id: "3EB0C1".into(),
                    status: DeliveryStatus::Delivered,
                    at: NOW - 5,
                    just_sent: false
                },
                EventKind::MessageStatus {
                    provider_message_id: "3EB0C2".into(),
                    status: DeliveryStatus::Delivered,
                    at: NOW - 5,
                    just_sent: false
                },
            ]
        );
        for read in [ReceiptType::Read, ReceiptType::Played] {
            let mapped = map(receipt(read)).await;
            assert!(mapped
                .events
                .iter()
                .all(|e| matches!(e, EventKind::MessageStatus { status: DeliveryStatus::Read, .. })));
            assert_eq!(mapped.events.len(), 2);
        }
        for ignored in [ReceiptType::ReadSelf, ReceiptType::Retry, ReceiptType::Sender] {
            assert_eq!(map(receipt(ignored)).await, Mapped::default());
        }

        let offer = |offline: bool| {
            Event::IncomingCall(
                IncomingCall::builder()
                    .from(Jid::lid_device("100000012345678", 1))
                    .stanza_id("stanza".into())
                    .timestamp(at())
                    .offline(offline)
                    .action(CallAction::Offer {
                        call_id: "CALL1".into(),
                        call_creator: Jid::lid("100000012345678"),
                        caller_pn: Some(Jid::pn("966512345678")),
                        caller_country_code: None,
                        device_class: None,
                        joinable: false,
                        is_video: false,
                        audio: vec![],
                        group_jid: None,
                    })
                    .build(),
            )
        };
        let ringing = map(offer(false)).await;
        assert_eq!(
            ringing.events,
            vec![EventKind::Call {
                from: Sender { address: "100000012345678@lid".into(), phone: Some("+966512345678".into()) },
                missed: false,
                at: NOW - 5
            }]
        );
        assert_eq!(map(offer(true)).await, Mapped::default(), "a replayed offer comes again as a missed call");
        let hang_up = Event::IncomingCall(
            IncomingCall::builder()
                .from(Jid::pn("966512345678"))
                .stanza_id("stanza".into())
                .timestamp(at())
                .offline(false)
                .action(CallAction::Terminate {
                    call_id: "CALL1".into(),
                    call_creator: Jid::pn("966512345678"),
                    reason: None,
                    duration: None,
                    audio_duration: None,
                })
                .build(),
        );
        assert_eq!(map(hang_up).await, Mapped::default());

        let missed = map(Event::MissedCall(MissedCall::new(
            Jid::pn("966512345678"),
            "CALL2".into(),
            at(),
            MissedReason::Remote,
        )))
        .await;
        assert!(
            matches!(&missed.events[..], [EventKind::Call { missed: true, from, .. }] if from.phone.as_deref() == Some("+966512345678"))
        );

        let update = GroupUpdate::builder()
            .group_jid(Jid::group("120363000000000001"))
            .timestamp(at())
            .is_lid_addressing_mode(false)
            .action(GroupNotificationAction::Subject {
                subject: "Support".into(),
                subject_owner: None,
                subject_time: None,
            })
            .build();
        assert_eq!(
            map(Event::GroupUpdate(update)).await.events,
            vec![EventKind::GroupUpdated { group_id: "120363000000000001@g.us".into(), change: "subject".into() }]
        );
    }
}
