//! Phone numbers ↔ WhatsApp addresses (JIDs). A phone-number JID is `<digits>@s.whatsapp.net`;
//! WhatsApp increasingly addresses people by an opaque LID (`<digits>@lid`) that is not their
//! number, with the number carried beside it (`sender_alt`) or only in the client's LID→PN map.
use whatsapp_rust::{types::message::MessageSource, wacore_binary::JidExt, Jid};

use crate::connectors::{ConnectorError, Sender};

/// The JID of an E.164 number (`+9665…`). Anything else than `+` and digits is refused, so a
/// malformed number never reaches WhatsApp as a different one.
pub fn phone_to_jid(e164: &str) -> Result<Jid, ConnectorError> {
    let digits = e164.strip_prefix('+').unwrap_or(e164);
    if digits.len() < 7 || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.starts_with('0') {
        return Err(ConnectorError::Rejected("not an international phone number".into()));
    }
    Ok(Jid::pn(digits))
}

/// The E.164 number of a phone-number JID (device suffix dropped); `None` for LIDs, groups and
/// everything else that is not a person's number.
pub fn jid_to_phone(jid: &Jid) -> Option<String> {
    if !jid.is_pn() || jid.user.is_empty() || !jid.user.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(format!("+{}", jid.user))
}

/// Finds the number behind an LID when WhatsApp did not send it along.
#[async_trait::async_trait]
pub trait LidLookup: Send + Sync {
    /// `lid_user` is the LID's user part (the digits before `@lid`).
    async fn phone_for_lid(&self, lid_user: &str) -> Option<String>;
}

/// Who sent a message: its address as WhatsApp gives it (without the device suffix), and the
/// number when it can be known.
pub async fn sender_of(source: &MessageSource, lookup: &dyn LidLookup) -> Sender {
    person(&source.sender, source.sender_alt.as_ref(), lookup).await
}

/// A person by JID, with an alternative JID WhatsApp may have sent beside it.
pub async fn person(jid: &Jid, alt: Option<&Jid>, lookup: &dyn LidLookup) -> Sender {
    let address = jid.to_non_ad_string();
    let phone = match jid_to_phone(jid) {
        Some(phone) => Some(phone),
        None if jid.is_lid() => match alt.and_then(jid_to_phone) {
            Some(phone) => Some(phone),
            None => lookup.phone_for_lid(&jid.user).await,
        },
        None => alt.and_then(jid_to_phone),
    };
    Sender { address, phone }
}

/// Whether a chat is one the gateway reports messages from: people and groups, not status
/// updates, channels or broadcast lists.
pub fn is_reportable_chat(chat: &Jid) -> bool {
    !(chat.is_status_broadcast() || chat.is_newsletter() || chat.is_broadcast_list())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Map(Option<&'static str>);

    #[async_trait::async_trait]
    impl LidLookup for Map {
        async fn phone_for_lid(&self, lid_user: &str) -> Option<String> {
            (lid_user == "100000012345678").then(|| self.0.map(|p| format!("+{p}"))).flatten()
        }
    }

    #[test]
    fn numbers_become_phone_jids_and_back() {
        let jid = phone_to_jid("+966512345678").unwrap();
        assert_eq!(jid.to_string(), "966512345678@s.whatsapp.net");
        assert_eq!(jid_to_phone(&jid).as_deref(), Some("+966512345678"));
        // A device suffix is not part of the number.
        let device: Jid = "966512345678:3@s.whatsapp.net".parse().unwrap();
        assert_eq!(jid_to_phone(&device).as_deref(), Some("+966512345678"));
        for bad in ["+12", "+0123456789", "+9665123abc", "", "+1234567890123456"] {
            assert!(phone_to_jid(bad).is_err(), "{bad:?} is refused");
        }
        assert_eq!(jid_to_phone(&Jid::lid("100000012345678")), None);
        assert_eq!(jid_to_phone(&Jid::group("120363000000000001")), None);
    }

    #[tokio::test]
    async fn lid_senders_use_the_alternative_or_the_lookup() {
        let lid = Jid::lid("100000012345678");
        let alt = Jid::pn("966512345678");
        let known = Map(Some("966500000001"));
        let unknown = Map(None);

        let with_alt = person(&lid, Some(&alt), &unknown).await;
        assert_eq!(with_alt.address, "100000012345678@lid");
        assert_eq!(with_alt.phone.as_deref(), Some("+966512345678"));

        let looked_up = person(&lid, None, &known).await;
        assert_eq!(looked_up.phone.as_deref(), Some("+966500000001"));

        let hidden = person(&lid, None, &unknown).await;
        assert_eq!(hidden, Sender { address: "100000012345678@lid".into(), phone: None });

        let pn_device: Jid = "966512345678:7@s.whatsapp.net".parse().unwrap();
        let by_number = person(&pn_device, None, &unknown).await;
        assert_eq!(
            by_number,
            Sender { address: "966512345678@s.whatsapp.net".into(), phone: Some("+966512345678".into()) }
        );
    }

    #[test]
    fn status_channels_and_broadcasts_are_not_reported() {
        assert!(!is_reportable_chat(&Jid::status_broadcast()));
        assert!(!is_reportable_chat(&Jid::newsletter("120363000000000002")));
        assert!(is_reportable_chat(&Jid::group("120363000000000001")));
        assert!(is_reportable_chat(&Jid::pn("966512345678")));
    }
}
