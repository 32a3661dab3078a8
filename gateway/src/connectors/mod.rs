//! How an instance reaches WhatsApp. A [`Connector`] opens one [`ConnectorSession`] per
//! instance; the session links (QR code), sends, and reports what happens as normalized
//! [`ConnectorEvent`]s into its instance's lane in the registry ([`EventSink`]), which stores
//! them. The lane is bounded, so a flood from one session slows that session down instead of
//! growing memory without end or dropping anything.
//!
//! The shapes follow a WhatsApp Web linked-device client, not only the sandbox: link codes
//! rotate and expire, sessions drop and come back by themselves, receipts refer back to the
//! provider's message id, and a sender may be known only by an opaque address without a phone.
pub(crate) mod lanes;
pub(crate) mod record;
pub mod registry;
pub mod sandbox;
mod sink;
#[cfg(feature = "whatsapp-web")]
pub mod whatsapp_web;

use std::{any::Any, sync::Arc};

use serde::{Deserialize, Serialize};
pub use sink::{EventSink, Reports, Unrecorded};

use crate::instances::InstanceStatus;

/// Every connector this code knows, enabled or not.
pub const KNOWN: [&str; 2] = [sandbox::NAME, "whatsapp-web"];

/// The connectors this server offers, as configured; the first is the default for new
/// instances (the sandbox, while it is enabled). `db` keeps WhatsApp Web's keys when servers
/// run as a cluster (one server keeps them in files in its data dir).
pub fn from_config(config: &crate::config::Config, db: &sea_orm::DatabaseConnection) -> Vec<Arc<dyn Connector>> {
    #[cfg(not(feature = "whatsapp-web"))]
    let _ = db;
    let mut connectors: Vec<Arc<dyn Connector>> = Vec::new();
    if config.sandbox_enabled {
        connectors.push(Arc::new(sandbox::SandboxConnector {
            receipt_delay: std::time::Duration::from_millis(config.sandbox_receipt_delay_ms),
        }));
    }
    #[cfg(feature = "whatsapp-web")]
    if config.whatsapp_web_enabled {
        let settings = match config.cluster {
            Some(_) => whatsapp_web::Settings::shared(Arc::new(whatsapp_web::shared_store::KeyVault::new(
                db.clone(),
                &config.master_key,
            ))),
            None => whatsapp_web::Settings::new(&config.data_dir),
        };
        connectors.push(Arc::new(whatsapp_web::WhatsAppWebConnector::new(settings)));
    }
    connectors
}

/// The names of [`from_config`]'s connectors, in the same order, without building them.
pub fn enabled_names(config: &crate::config::Config) -> Vec<&'static str> {
    let mut names = Vec::new();
    if config.sandbox_enabled {
        names.push(sandbox::NAME);
    }
    #[cfg(feature = "whatsapp-web")]
    if config.whatsapp_web_enabled {
        names.push(whatsapp_web::NAME);
    }
    names
}

/// How the portal names a connector.
pub fn label(name: &str) -> &'static str {
    match name {
        sandbox::NAME => "Sandbox (simulated WhatsApp, no phone)",
        "whatsapp-web" => "WhatsApp Web (linked device of your phone)",
        _ => "Unknown connector",
    }
}

/// What the connect tab shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinkState {
    /// Waiting for the phone to scan `code` (what the QR code encodes) before `expires_at`.
    AwaitingScan {
        code: String,
        expires_at: i64,
    },
    /// Waiting for the customer to type `code` into the phone (linking by phone number).
    AwaitingPairCode {
        code: String,
        expires_at: i64,
    },
    /// No code on offer yet; one is on its way.
    Starting,
    /// No code on offer and none coming (codes ran out, logged out, another connection took
    /// over): the page offers a retry, which is [`ConnectorSession::reconnect`].
    Idle {
        reason: String,
    },
    Connected {
        phone: Option<String>,
        /// The WhatsApp profile name of the linked number, when the connector knows it.
        name: Option<String>,
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
    /// With several servers: who may write the instance's connector state (this node, at the
    /// epoch it took the instance with).
    pub fence: Option<SessionFence>,
    /// The end of a temporary ban WhatsApp announced: no connection before it.
    pub banned_until: Option<i64>,
}

/// The node that runs an instance and the epoch it took it with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionFence {
    pub node_id: String,
    pub epoch: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Image,
    Document,
    Audio,
    Video,
}

/// Serializable so that a server can hand a send to the server that runs the instance's
/// connection (`cluster::forward`); file bytes travel as base64.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum OutgoingContent {
    Text(String),
    Media {
        kind: MediaKind,
        mime_type: String,
        file_name: Option<String>,
        #[serde(with = "base64_bytes")]
        data: Vec<u8>,
        caption: Option<String>,
    },
}

mod base64_bytes {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        base64::engine::general_purpose::STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OutgoingMessage {
    /// E.164, with the leading `+`.
    pub to: String,
    pub content: OutgoingContent,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    #[error("the recipient is not on WhatsApp")]
    NotOnWhatsApp,
    #[error("the provider is limiting our sending rate")]
    RateLimited,
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
    /// `forced` when WhatsApp or the phone ended the link rather than the customer, which the
    /// portal shows loudly.
    LoggedOut {
        reason: String,
        forced: bool,
    },
    /// WhatsApp banned the number for a while (`until`, when known): nothing is sent or received
    /// until then, and more of what caused it risks a permanent ban.
    TemporarilyBanned {
        reason: String,
        until: Option<i64>,
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
        /// The connector sent this message moments ago, so its id may not be stored yet and the
        /// receipt is worth holding on to. Otherwise an unknown id belongs to a message the
        /// gateway did not send (one sent from the phone, say) and is dropped at once.
        just_sent: bool,
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

#[async_trait::async_trait]
pub trait Connector: Send + Sync + 'static {
    /// The name stored on the instance (`sandbox`, `whatsapp-web`, …).
    fn name(&self) -> &'static str;

    /// Opens, or resumes from what the connector stored, the session of one instance.
    async fn open(&self, boot: InstanceBoot, events: EventSink) -> Result<Arc<dyn ConnectorSession>, ConnectorError>;

    /// Drops whatever the connector stored for an instance that is gone (deleted).
    async fn forget(&self, _instance_id: &str) {}

    /// Whether a session waiting for a phone to link holds a live client (a connection to
    /// WhatsApp, memory): such link attempts are bounded per account and stopped when idle.
    fn links_with_live_client(&self) -> bool {
        false
    }
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
    /// Links by phone number instead of a scan: asks WhatsApp for a code the customer types
    /// into the phone (Linked devices › Link with phone number), and returns it.
    async fn request_pair_code(&self, _phone: &str) -> Result<String, ConnectorError> {
        Err(ConnectorError::Unsupported("selected"))
    }
    /// Stops background work (server shutdown, instance deleted). Keeps the link.
    async fn close(&self);
    /// Lets the registry reach connector-specific controls (the sandbox's simulated scan).
    fn as_any(&self) -> &dyn Any;
}
