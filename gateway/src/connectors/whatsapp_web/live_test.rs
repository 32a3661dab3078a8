//! Against WhatsApp itself, with a phone: opt-in, for an operator.
//!
//! ```text
//! WAG_LIVE_WHATSAPP=1 cargo test -p gateway --lib live_whatsapp -- --ignored --nocapture
//! ```
//!
//! Scan the QR code printed in the terminal (or set `WAG_LIVE_WHATSAPP_PHONE=+<number>` to link
//! with a pairing code instead). Optional: `WAG_LIVE_WHATSAPP_TO=+<number>` sends a text there
//! and waits for its delivery receipt; `WAG_LIVE_WHATSAPP_INBOUND=1` waits for a message sent to
//! the linked number; `WAG_LIVE_WHATSAPP_DIR=<folder>` keeps the session between runs (without
//! it the test logs out and deletes the session at the end).
use std::time::Duration;

use super::*;
use crate::connectors::{DeliveryStatus, InstanceBoot};
use crate::instances::InstanceStatus;

const ID: &str = "inst_live_test";

fn env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.trim().is_empty())
}

/// The next event `want` accepts, printing what passes by; fails after `limit`.
async fn next_event<T>(
    rx: &mut crate::connectors::Reports,
    limit: Duration,
    mut want: impl FnMut(&EventKind) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let event = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("timed out waiting for WhatsApp")
            .expect("the session ended");
        match &event.kind {
            EventKind::QrUpdated { code, .. } => {
                let qr = qrcode::QrCode::new(code.as_bytes()).expect("a QR code");
                let art = qr.render::<qrcode::render::unicode::Dense1x2>().quiet_zone(true).build();
                println!("\nScan with WhatsApp › Linked devices › Link a device:\n{art}");
            }
            other => println!("event: {other:?}"),
        }
        if let Some(found) = want(&event.kind) {
            return found;
        }
    }
}

#[tokio::test]
#[ignore = "needs a phone and WhatsApp's servers: WAG_LIVE_WHATSAPP=1, see the README"]
async fn live_whatsapp() {
    assert_eq!(env("WAG_LIVE_WHATSAPP").as_deref(), Some("1"), "set WAG_LIVE_WHATSAPP=1 to run against WhatsApp");
    let keep = env("WAG_LIVE_WHATSAPP_DIR").map(PathBuf::from);
    let dir =
        keep.clone().unwrap_or_else(|| std::env::temp_dir().join(format!("wag-live-{}", crate::ids::new_id("t"))));
    let connector = WhatsAppWebConnector::new(Settings::new(&dir));
    let store = dir.join("whatsapp-web").join(format!("{ID}.db"));
    let status = if store.exists() { InstanceStatus::Connected } else { InstanceStatus::Unlinked };
    let (tx, mut rx) = crate::connectors::EventSink::channel(1024);
    let session = connector
        .open(InstanceBoot { instance_id: ID.into(), status, linked_phone: None, fence: None, banned_until: None }, tx)
        .await
        .unwrap();

    if status == InstanceStatus::Unlinked {
        if let Some(phone) = env("WAG_LIVE_WHATSAPP_PHONE") {
            let code = session.request_pair_code(&phone).await.expect("a pairing code");
            println!("\nOn the phone: Linked devices › Link a device › Link with phone number instead: {code}");
        }
    }
    let phone = next_event(&mut rx, Duration::from_secs(300), |e| match e {
        EventKind::Connected { phone } => Some(phone.clone()),
        _ => None,
    })
    .await;
    assert!(phone.as_deref().is_some_and(|p| p.starts_with('+')), "the linked number: {phone:?}");
    let LinkState::Connected { phone: shown, name } = session.link_state().await else { panic!("not connected") };
    assert_eq!(shown, phone);
    println!("linked: {} as {name:?}", shown.unwrap_or_default());
    // Wait until the client is fully ready to send (login and first sync).
    tokio::time::sleep(Duration::from_secs(5)).await;

    if let Some(to) = env("WAG_LIVE_WHATSAPP_TO") {
        let message =
            OutgoingMessage { to, content: OutgoingContent::Text("WA Gateway live test: please ignore.".into()) };
        let sent = session.send(message).await.expect("sent");
        println!("sent {}", sent.provider_message_id);
        next_event(&mut rx, Duration::from_secs(120), |e| match e {
            EventKind::MessageStatus {
                provider_message_id,
                status: DeliveryStatus::Delivered | DeliveryStatus::Read,
                ..
            } if *provider_message_id == sent.provider_message_id => Some(()),
            _ => None,
        })
        .await;
        let nobody = OutgoingMessage { to: "+15005550006".into(), content: OutgoingContent::Text("x".into()) };
        assert_eq!(session.send(nobody).await, Err(ConnectorError::NotOnWhatsApp));
    }

    if env("WAG_LIVE_WHATSAPP_INBOUND").as_deref() == Some("1") {
        println!("\nSend a WhatsApp message to the linked number now (2 minutes).");
        let received = next_event(&mut rx, Duration::from_secs(120), |e| match e {
            EventKind::MessageReceived(m) => Some(m.clone()),
            _ => None,
        })
        .await;
        assert!(received.text.is_some() || received.media.is_some());
    }

    if keep.is_none() {
        session.logout().await.expect("logged out");
        assert!(!store.exists(), "logging out deletes the store");
        std::fs::remove_dir_all(&dir).ok();
    }
    session.close().await;
}
