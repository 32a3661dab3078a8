//! The sandbox: a simulated WhatsApp inside the process, so every path can be tried without a
//! phone. An instance starts unlinked with a QR code that changes every 30 seconds; a simulated
//! scan links it to a made-up number. Sends get receipts after a short delay: delivered, then
//! read. Magic recipients try the failure paths: +15550000001 fails at send, +15550000002 is
//! sent and later reported failed, +15550000003 is delivered but never read.
use std::{any::Any, sync::Arc, time::Duration};

use sha2::{Digest, Sha256};
use tokio::{sync::Mutex, task::JoinHandle};

use super::{
    Connector, ConnectorError, ConnectorEvent, ConnectorSession, DeliveryStatus, EventKind, EventSink, InstanceBoot,
    LinkState, OutgoingMessage, SentMessage,
};
use crate::{ids, instances::InstanceStatus, time};

pub const NAME: &str = "sandbox";
pub const QR_ROTATION_SECS: i64 = 30;
pub const FAILS_AT_SEND: &str = "+15550000001";
pub const FAILS_LATER: &str = "+15550000002";
pub const NEVER_READ: &str = "+15550000003";

pub struct SandboxConnector {
    /// The wait before each simulated receipt.
    pub receipt_delay: Duration,
}

impl Default for SandboxConnector {
    fn default() -> Self {
        SandboxConnector { receipt_delay: Duration::from_secs(2) }
    }
}

#[async_trait::async_trait]
impl Connector for SandboxConnector {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn open(&self, boot: InstanceBoot, events: EventSink) -> Result<Arc<dyn ConnectorSession>, ConnectorError> {
        let linked = match boot.status {
            InstanceStatus::Unlinked => None,
            _ => Some(boot.linked_phone.clone().unwrap_or_else(|| sandbox_phone(&boot.instance_id))),
        };
        let state = SandboxState { connected: boot.status == InstanceStatus::Connected, linked };
        let session = Arc::new(SandboxSession {
            instance_id: boot.instance_id.clone(),
            seed: rand::random(),
            state: Mutex::new(state),
            ticker: Mutex::new(None),
            events: events.clone(),
            receipt_delay: self.receipt_delay,
        });
        let ticker = tokio::spawn(rotate_codes(Arc::downgrade(&session), events));
        *session.ticker.lock().await = Some(ticker);
        Ok(session)
    }
}

struct SandboxState {
    linked: Option<String>,
    connected: bool,
}

pub struct SandboxSession {
    instance_id: String,
    seed: [u8; 16],
    state: Mutex<SandboxState>,
    ticker: Mutex<Option<JoinHandle<()>>>,
    events: EventSink,
    receipt_delay: Duration,
}

/// A stable made-up number per instance, in the +1 555 range reserved for fiction.
pub fn sandbox_phone(instance_id: &str) -> String {
    let digest = Sha256::digest(instance_id.as_bytes());
    let n = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % 10_000_000;
    format!("+1555{n:07}")
}

impl SandboxSession {
    fn code_at(&self, unix: i64) -> (String, i64) {
        let window = unix.div_euclid(QR_ROTATION_SECS);
        let mut hasher = Sha256::new();
        hasher.update(self.seed);
        hasher.update(self.instance_id.as_bytes());
        hasher.update(window.to_be_bytes());
        let code = format!("wag-sandbox:{}:{}", self.instance_id, &hex::encode(hasher.finalize())[..24]);
        (code, (window + 1) * QR_ROTATION_SECS)
    }

    /// What the phone's camera would do: links the instance and connects it.
    pub async fn simulate_scan(&self) -> Result<EventKind, ConnectorError> {
        let mut state = self.state.lock().await;
        let phone = state.linked.clone().unwrap_or_else(|| sandbox_phone(&self.instance_id));
        state.linked = Some(phone.clone());
        state.connected = true;
        Ok(EventKind::Connected { phone: Some(phone) })
    }
}

/// WhatsApp offers a handful of codes and then stops until the user retries; the sandbox
/// reports at most this many `QrUpdated` events per wait, so an unwatched instance does not
/// fill the event log.
pub const QR_EVENTS_PER_WAIT: u32 = 10;

async fn rotate_codes(session: std::sync::Weak<SandboxSession>, events: EventSink) {
    let mut emitted = 0;
    loop {
        let Some(s) = session.upgrade() else { return };
        let now = time::now();
        let waiting = s.state.lock().await.linked.is_none();
        let (code, expires_at) = s.code_at(now);
        let instance_id = s.instance_id.clone();
        drop(s);
        if !waiting {
            emitted = 0;
        } else if emitted < QR_EVENTS_PER_WAIT {
            emitted += 1;
            let event = ConnectorEvent { instance_id, kind: EventKind::QrUpdated { code, expires_at } };
            if events.send(event).await.is_err() {
                return;
            }
        }
        let wait = (expires_at - now).max(1) as u64;
        tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
    }
}

/// What the recipient's phone would report, one receipt per delay.
async fn send_receipts(
    events: EventSink,
    instance_id: String,
    provider_message_id: String,
    receipts: Vec<DeliveryStatus>,
    delay: Duration,
) {
    for status in receipts {
        tokio::time::sleep(delay).await;
        let kind = EventKind::MessageStatus {
            provider_message_id: provider_message_id.clone(),
            status,
            at: time::now(),
            just_sent: true,
        };
        if events.send(ConnectorEvent { instance_id: instance_id.clone(), kind }).await.is_err() {
            return;
        }
    }
}

#[async_trait::async_trait]
impl ConnectorSession for SandboxSession {
    async fn link_state(&self) -> LinkState {
        let state = self.state.lock().await;
        match (&state.linked, state.connected) {
            (Some(phone), true) => LinkState::Connected { phone: Some(phone.clone()), name: None },
            (Some(_), false) => LinkState::Disconnected { reason: "Disconnected from the portal.".into() },
            (None, _) => {
                let (code, expires_at) = self.code_at(time::now());
                LinkState::AwaitingScan { code, expires_at }
            }
        }
    }

    async fn send(&self, message: OutgoingMessage) -> Result<SentMessage, ConnectorError> {
        if !self.state.lock().await.connected {
            return Err(ConnectorError::NotConnected);
        }
        if message.to == FAILS_AT_SEND {
            return Err(ConnectorError::Unavailable(format!(
                "simulated send failure (sandbox test number {FAILS_AT_SEND})"
            )));
        }
        let provider_message_id = ids::new_id("sbx");
        let receipts: &[DeliveryStatus] = match message.to.as_str() {
            FAILS_LATER => &[DeliveryStatus::Failed],
            NEVER_READ => &[DeliveryStatus::Delivered],
            _ => &[DeliveryStatus::Delivered, DeliveryStatus::Read],
        };
        tokio::spawn(send_receipts(
            self.events.clone(),
            self.instance_id.clone(),
            provider_message_id.clone(),
            receipts.to_vec(),
            self.receipt_delay,
        ));
        if let super::OutgoingContent::Text(text) = &message.content {
            crate::faults::witness_send(text);
        }
        Ok(SentMessage { provider_message_id })
    }

    async fn disconnect(&self) -> Result<EventKind, ConnectorError> {
        let mut state = self.state.lock().await;
        if state.linked.is_none() {
            return Err(ConnectorError::NotConnected);
        }
        state.connected = false;
        Ok(EventKind::Disconnected { reason: "Disconnected from the portal.".into() })
    }

    async fn reconnect(&self) -> Result<EventKind, ConnectorError> {
        let mut state = self.state.lock().await;
        let Some(phone) = state.linked.clone() else {
            return Err(ConnectorError::NotConnected);
        };
        state.connected = true;
        Ok(EventKind::Connected { phone: Some(phone) })
    }

    async fn logout(&self) -> Result<EventKind, ConnectorError> {
        let mut state = self.state.lock().await;
        state.linked = None;
        state.connected = false;
        Ok(EventKind::LoggedOut { reason: "Logged out from the portal.".into(), forced: false })
    }

    async fn close(&self) {
        if let Some(ticker) = self.ticker.lock().await.take() {
            ticker.abort();
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::OutgoingContent;

    fn boot(status: InstanceStatus) -> InstanceBoot {
        InstanceBoot { instance_id: "inst_test".into(), status, linked_phone: None, fence: None, banned_until: None }
    }

    #[tokio::test]
    async fn starts_unlinked_with_rotating_code_and_links_on_scan() {
        let (tx, _rx) = EventSink::channel(8);
        let session = SandboxConnector::default().open(boot(InstanceStatus::Unlinked), tx).await.unwrap();
        let LinkState::AwaitingScan { code, expires_at } = session.link_state().await else { panic!("not awaiting") };
        assert!(code.starts_with("wag-sandbox:inst_test:"));
        assert_eq!(expires_at % QR_ROTATION_SECS, 0);
        let sandbox = session.as_any().downcast_ref::<SandboxSession>().unwrap();
        let (now_code, _) = sandbox.code_at(expires_at - 1);
        let (next_code, _) = sandbox.code_at(expires_at);
        assert_eq!(now_code, code);
        assert_ne!(next_code, code, "the code changes every {QR_ROTATION_SECS} s");
        assert!(matches!(sandbox.simulate_scan().await.unwrap(), EventKind::Connected { phone: Some(_) }));
        assert!(matches!(session.link_state().await, LinkState::Connected { .. }));
        session.close().await;
    }

    #[tokio::test]
    async fn magic_numbers_and_receipts() {
        let (tx, mut rx) = EventSink::channel(8);
        let connector = SandboxConnector { receipt_delay: Duration::from_millis(5) };
        let session = connector.open(boot(InstanceStatus::Unlinked), tx).await.unwrap();
        let msg = |to: &str| OutgoingMessage { to: to.into(), content: OutgoingContent::Text("hi".into()) };
        assert_eq!(session.send(msg("+15551234567")).await, Err(ConnectorError::NotConnected));
        session.as_any().downcast_ref::<SandboxSession>().unwrap().simulate_scan().await.unwrap();
        assert!(matches!(session.send(msg(FAILS_AT_SEND)).await, Err(ConnectorError::Unavailable(_))));

        let sent = session.send(msg("+15551234567")).await.unwrap();
        assert!(sent.provider_message_id.starts_with("sbx_"));
        let mut statuses = Vec::new();
        while statuses.len() < 2 {
            if let Some(ConnectorEvent { kind: EventKind::MessageStatus { provider_message_id, status, .. }, .. }) =
                rx.recv().await
            {
                assert_eq!(provider_message_id, sent.provider_message_id);
                statuses.push(status);
            }
        }
        assert_eq!(statuses, [DeliveryStatus::Delivered, DeliveryStatus::Read]);
        let failed_later = session.send(msg(FAILS_LATER)).await.unwrap();
        loop {
            if let Some(ConnectorEvent { kind: EventKind::MessageStatus { provider_message_id, status, .. }, .. }) =
                rx.recv().await
            {
                assert_eq!(provider_message_id, failed_later.provider_message_id);
                assert_eq!(status, DeliveryStatus::Failed);
                break;
            }
        }
        assert!(matches!(session.logout().await.unwrap(), EventKind::LoggedOut { .. }));
        assert!(matches!(session.link_state().await, LinkState::AwaitingScan { .. }));
        session.close().await;
    }
}
