//! How an instance reaches WhatsApp. A [`Connector`] opens one [`ConnectorSession`] per
//! instance; the session links (QR code), sends, and reports what happens as normalized
//! [`ConnectorEvent`]s into the registry, which records them.
//!
//! The shapes follow a WhatsApp Web linked-device client, not only the sandbox: link codes
//! rotate and expire, sessions drop and come back by themselves, receipts refer back to the
//! provider's message id, and a sender may be known only by an opaque address without a phone.
pub mod registry;
pub mod sandbox;

use std::{any::Any, sync::Arc};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::instances::InstanceStatus;

/// What the connect tab shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinkState {
    /// Waiting for the phone to scan `code` (what the QR code encodes) before `expires_at`.
    AwaitingScan {
        code: String,
        expires_at: i64,
    },
    /// No code on offer right now (starting, or codes ran out); the page offers a retry.
    Starting,
    Connected {
        phone: Option<String>,
    },
    Disconnected {
        reason: String,
    },
}

/// What a connector needs to open or resume an instance's session.
#[derive(Clone, Debug)]
pub struct InstanceBoot {
    pub instance_id: String,
    pub status: InstanceStatus,
    pub linked_phone: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Image,
    Document,
    Audio,
    Video,
}

#[derive(Clone, Debug)]
pub enum OutgoingContent {
    Text(String),
    Media { kind: MediaKind, mime_type: String, file_name: Option<String>, data: Vec<u8>, caption: Option<String> },
}

#[derive(Clone, Debug)]
pub struct OutgoingMessage {
    /// E.164, with the leading `+`.
    pub to: String,
    pub content: OutgoingContent,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentMessage {
    /// The id receipts will refer to.
    pub provider_message_id: String,
}

#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConnectorError {
    #[error("the instance is not connected")]
    NotConnected,
    #[error("the recipient cannot be reached: {0}")]
    Rejected(String),
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    #[error("this action is not available for the {0} connector")]
    Unsupported(&'static str),
}

/// Who sent an inbound message. WhatsApp may hide the phone behind an opaque address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sender {
    pub address: String,
    pub phone: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundMedia {
    pub kind: MediaKind,
    pub mime_type: String,
    pub file_name: Option<String>,
    pub size_bytes: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundMessage {
    pub provider_message_id: String,
    pub from: Sender,
    pub group_id: Option<String>,
    pub text: Option<String>,
    pub media: Option<InboundMedia>,
    pub sent_at: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Sent,
    Delivered,
    Read,
    Failed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    Connected {
        phone: Option<String>,
    },
    /// Transient: the connector is expected to come back by itself.
    Disconnected {
        reason: String,
    },
    /// The phone removed this linked device, or the customer logged out: a new scan is needed.
    LoggedOut {
        reason: String,
    },
    ConnectionUpdated {
        state: String,
    },
    QrUpdated {
        code: String,
        expires_at: i64,
    },
    MessageReceived(InboundMessage),
    MessageStatus {
        provider_message_id: String,
        status: DeliveryStatus,
        at: i64,
    },
    Call {
        from: Sender,
        missed: bool,
        at: i64,
    },
    GroupUpdated {
        group_id: String,
        change: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectorEvent {
    pub instance_id: String,
    pub kind: EventKind,
}

/// Where sessions report events. Bounded, so a flood from one session slows it down instead of
/// growing memory without end.
pub type EventSink = mpsc::Sender<ConnectorEvent>;

#[async_trait::async_trait]
pub trait Connector: Send + Sync + 'static {
    /// The name stored on the instance (`sandbox`, `whatsapp-web`, …).
    fn name(&self) -> &'static str;

    /// Opens, or resumes from what the connector stored, the session of one instance.
    async fn open(&self, boot: InstanceBoot, events: EventSink) -> Result<Arc<dyn ConnectorSession>, ConnectorError>;
}

#[async_trait::async_trait]
pub trait ConnectorSession: Send + Sync + 'static {
    async fn link_state(&self) -> LinkState;
    async fn send(&self, message: OutgoingMessage) -> Result<SentMessage, ConnectorError>;
    /// Drops the connection but keeps the link, so `reconnect` needs no new scan.
    async fn disconnect(&self) -> Result<EventKind, ConnectorError>;
    async fn reconnect(&self) -> Result<EventKind, ConnectorError>;
    /// Unlinks the device; the next link needs a new scan.
    async fn logout(&self) -> Result<EventKind, ConnectorError>;
    /// Stops background work (server shutdown, instance deleted). Keeps the link.
    async fn close(&self);
    /// Lets the registry reach connector-specific controls (the sandbox's simulated scan).
    fn as_any(&self) -> &dyn Any;
}
