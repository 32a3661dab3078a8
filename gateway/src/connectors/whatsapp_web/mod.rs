//! The `whatsapp-web` connector: the gateway is a linked device of the customer's number, like
//! WhatsApp Web, through the `whatsapp-rust` client. Each instance runs one client (a "bot")
//! with its own session store; a supervisor task per instance owns it, rebuilds it when it
//! stops by itself, and leaves it stopped when WhatsApp ended the link.
mod calls;
mod durable;
pub mod events;
pub mod jid;
pub mod outgoing;
pub mod shared_store;
pub mod store;
mod supervisor;

use std::{
    any::Any,
    collections::HashSet,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU32, Ordering},
        Arc, Mutex as StdMutex,
    },
    time::Duration,
};

use tokio::sync::{oneshot, Mutex};
use whatsapp_rust::{
    bot::{Bot, EventDelivery},
    pair_code::PairCodeOptions,
    store::traits::Backend,
    transport::{Transport, TransportEvent, TransportFactory},
    types::events::Event,
    upload::UploadOptions,
    Client, Jid,
};

use self::events::{Context, LinkChange};
use super::{
    Connector, ConnectorError, ConnectorEvent, ConnectorSession, EventKind, EventSink, InstanceBoot, LinkState,
    OutgoingContent, OutgoingMessage, SentMessage,
};
use crate::time;

pub const NAME: &str = "whatsapp-web";

/// How long a pair code stays valid (WhatsApp says about three minutes).
const PAIR_CODE_SECS: i64 = 180;
/// Events a client may have queued for us before whatsapp-rust drops new ones. Inbound
/// messages do not depend on it (the durability hook stores them before they are acknowledged);
/// receipts, calls and link changes do, and the lane behind it takes them in batches.
const EVENT_MAILBOX: usize = 4096;
/// Numbers known to be on WhatsApp, per session, before the set starts over.
const KNOWN_RECIPIENTS: usize = 10_000;
/// How long a sent message counts as just sent (its id may not be stored yet when a receipt
/// comes), and how many such ids are kept at most.
const JUST_SENT_SECS: i64 = 120;
const JUST_SENT_MAX: usize = 5_000;

/// Where sessions keep their keys.
#[derive(Clone, Debug)]
pub enum Storage {
    /// One SQLite file per instance in this folder.
    Files(PathBuf),
    /// In the shared database (servers running as a cluster): an instance's next owner
    /// opens the same linked device.
    Shared(Arc<shared_store::KeyVault>),
    /// Kept in memory only: lost on restart. For tests.
    Memory,
}

#[derive(Clone)]
pub struct Settings {
    pub storage: Storage,
    /// `None` for WhatsApp's own servers; tests pass a transport that never connects.
    pub transport: Option<Arc<dyn TransportFactory>>,
    /// The wait before restarting a client that stopped by itself, doubled per failure in a row.
    pub restart_first: Duration,
    pub restart_max: Duration,
    /// How long a clean stop may take before the client is aborted.
    pub stop_timeout: Duration,
}

impl Settings {
    /// Real WhatsApp, stores under `<data dir>/whatsapp-web/`.
    pub fn new(data_dir: &Path) -> Settings {
        Settings {
            storage: Storage::Files(data_dir.join("whatsapp-web")),
            transport: None,
            restart_first: Duration::from_secs(2),
            restart_max: Duration::from_secs(300),
            stop_timeout: Duration::from_secs(10),
        }
    }

    /// Real WhatsApp, keys in the shared database.
    pub fn shared(vault: Arc<shared_store::KeyVault>) -> Settings {
        Settings { storage: Storage::Shared(vault), ..Settings::new(Path::new(".")) }
    }

    fn restart_delay(&self, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
        self.restart_first.saturating_mul(factor).min(self.restart_max)
    }
}

pub struct WhatsAppWebConnector {
    settings: Arc<Settings>,
}

impl WhatsAppWebConnector {
    pub fn new(settings: Settings) -> WhatsAppWebConnector {
        WhatsAppWebConnector { settings: Arc::new(settings) }
    }
}

#[async_trait::async_trait]
impl Connector for WhatsAppWebConnector {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn open(&self, boot: InstanceBoot, events: EventSink) -> Result<Arc<dyn ConnectorSession>, ConnectorError> {
        let store_path = match &self.settings.storage {
            Storage::Files(dir) => {
                let path = store::store_path(dir, &boot.instance_id)
                    .ok_or_else(|| ConnectorError::Unavailable("unusable instance id for a store".into()))?;
                // The folder holds the keys of every linked number: owner only, like the master key.
                let mut builder = std::fs::DirBuilder::new();
                builder.recursive(true);
                #[cfg(unix)]
                std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
                builder
                    .create(dir)
                    .map_err(|e| ConnectorError::Unavailable(format!("cannot create the session folder: {e}")))?;
                Some(path)
            }
            Storage::Shared(_) | Storage::Memory => None,
        };
        let banned = boot.banned_until.map(|until| Phase::Banned {
            reason: "a temporary ban WhatsApp announced has not ended".into(),
            until: Some(until),
        });
        let inner = Arc::new(Inner {
            instance_id: boot.instance_id,
            settings: self.settings.clone(),
            store_path,
            fence: boot.fence,
            memory: StdMutex::new(None),
            shared: Mutex::new(None),
            banned_at_open: std::sync::atomic::AtomicBool::new(banned.is_some()),
            replaced: std::sync::atomic::AtomicBool::new(false),
            events,
            link: StdMutex::new(Link {
                phase: banned.unwrap_or(Phase::Starting),
                phone: boot.linked_phone,
                name: None,
            }),
            client: StdMutex::new(None),
            known_recipients: StdMutex::new(HashSet::new()),
            just_sent: StdMutex::new(std::collections::VecDeque::new()),
            ringing: calls::Ringing::default(),
            restarts: AtomicU32::new(0),
            boot_linked: std::sync::atomic::AtomicBool::new(boot.status != crate::instances::InstanceStatus::Unlinked),
        });
        let session = Arc::new(WhatsAppWebSession {
            inner,
            supervisor: Mutex::new(None),
            closed: std::sync::atomic::AtomicBool::new(false),
        });
        session.start().await;
        Ok(session)
    }

    fn links_with_live_client(&self) -> bool {
        true
    }

    async fn forget(&self, instance_id: &str) {
        match &self.settings.storage {
            Storage::Files(dir) => {
                if let Some(path) = store::store_path(dir, instance_id) {
                    if let Err(e) = store::delete(&path) {
                        tracing::error!(instance_id, error = %e, "deleting a WhatsApp session store failed");
                    }
                }
            }
            Storage::Shared(vault) => {
                if let Err(e) = vault.forget(instance_id).await {
                    tracing::error!(instance_id, error = %e, "deleting a WhatsApp session's keys failed");
                }
            }
            Storage::Memory => {}
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    Starting,
    Qr {
        code: String,
        expires_at: i64,
    },
    PairCode {
        code: String,
        expires_at: i64,
    },
    Connected,
    /// The client lost its connection and is getting it back by itself.
    Reconnecting,
    /// Stopped by the customer (disconnect); the link is kept.
    Stopped,
    /// Stopped, and nothing happens until the customer retries.
    Idle {
        reason: String,
    },
    /// The link is gone (logged out here, on the phone, or by WhatsApp); the store is wiped.
    LoggedOut {
        reason: String,
    },
    /// Waiting out a temporary ban.
    Banned {
        reason: String,
        until: Option<i64>,
    },
}

struct Link {
    phase: Phase,
    phone: Option<String>,
    name: Option<String>,
}

struct Inner {
    instance_id: String,
    settings: Arc<Settings>,
    store_path: Option<PathBuf>,
    /// With several servers: this session's right to write the instance's keys.
    fence: Option<super::SessionFence>,
    /// The in-memory store, kept across client rebuilds like a file would be.
    memory: StdMutex<Option<Arc<dyn Backend>>>,
    /// The shared-database store, loaded once and kept across client rebuilds.
    shared: Mutex<Option<Arc<shared_store::SharedStore>>>,
    /// The session opened during a recorded ban: the first supervisor waits it out.
    banned_at_open: std::sync::atomic::AtomicBool,
    /// WhatsApp said another connection took the session over (read by the supervisor).
    replaced: std::sync::atomic::AtomicBool,
    events: EventSink,
    link: StdMutex<Link>,
    /// The running client, while there is one.
    client: StdMutex<Option<Arc<Client>>>,
    known_recipients: StdMutex<HashSet<String>>,
    /// Ids of messages sent in the last [`JUST_SENT_SECS`], oldest first.
    just_sent: StdMutex<std::collections::VecDeque<(String, i64)>>,
    /// Calls ringing now, to tell when one ends unanswered.
    ringing: calls::Ringing,
    /// Clients rebuilt after stopping by themselves, for logs and tests.
    restarts: AtomicU32,
    /// The instance was linked when the session opened; cleared once checked against the store.
    boot_linked: std::sync::atomic::AtomicBool,
}

impl Inner {
    fn phase(&self) -> Phase {
        self.link.lock().unwrap_or_else(|p| p.into_inner()).phase.clone()
    }

    fn set_phase(&self, phase: Phase) {
        self.link.lock().unwrap_or_else(|p| p.into_inner()).phase = phase;
    }

    fn client(&self) -> Option<Arc<Client>> {
        self.client.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_client(&self, client: Option<Arc<Client>>) {
        *self.client.lock().unwrap_or_else(|p| p.into_inner()) = client;
    }

    async fn backend(&self) -> Result<Arc<dyn Backend>, String> {
        if let Storage::Shared(vault) = &self.settings.storage {
            let mut shared = self.shared.lock().await;
            if let Some(store) = shared.as_ref() {
                return Ok(store.clone());
            }
            let store = shared_store::SharedStore::open(vault.clone(), &self.instance_id, self.fence.clone())
                .await
                .map_err(|e| format!("loading the keys from the database: {e}"))?;
            let store = Arc::new(store);
            *shared = Some(store.clone());
            return Ok(store);
        }
        match &self.store_path {
            Some(path) => {
                let url = path.to_str().ok_or("the session store path is not UTF-8")?;
                let store =
                    whatsapp_rust::store::SqliteStore::new(url).await.map_err(|e| format!("opening the store: {e}"))?;
                Ok(Arc::new(store))
            }
            None => {
                let mut memory = self.memory.lock().unwrap_or_else(|p| p.into_inner());
                let backend = memory
                    .get_or_insert_with(|| Arc::new(whatsapp_rust::wacore::store::InMemoryBackend::new()))
                    .clone();
                Ok(backend)
            }
        }
    }

    /// With several servers, whether this session's node still owns the instance at its epoch:
    /// a connection that replaced ours is then a stale node's, which stops itself within the
    /// lease, and ours takes the session back instead of waiting for the customer.
    async fn still_owner(&self) -> bool {
        match (&self.settings.storage, &self.fence) {
            (Storage::Shared(vault), Some(fence)) => vault.holds(&self.instance_id, fence).await,
            _ => false,
        }
    }

    async fn wipe_store(&self) {
        if let Storage::Shared(vault) = &self.settings.storage {
            // The loaded store goes with the keys; the delete needs nothing loaded.
            self.shared.lock().await.take();
            let wiped = vault.wipe(&self.instance_id, self.fence.as_ref()).await;
            if let Err(e) = wiped {
                tracing::error!(instance_id = %self.instance_id, error = %e, "deleting the WhatsApp session's keys failed");
            }
            self.known_recipients.lock().unwrap_or_else(|p| p.into_inner()).clear();
            return;
        }
        match &self.store_path {
            Some(path) => {
                if let Err(e) = store::delete(path) {
                    tracing::error!(instance_id = %self.instance_id, error = %e, "deleting the WhatsApp session store failed");
                }
            }
            None => *self.memory.lock().unwrap_or_else(|p| p.into_inner()) = None,
        }
        self.known_recipients.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    async fn build_bot(self: &Arc<Self>) -> Result<Bot, String> {
        let backend = self.backend().await?;
        let inner = Arc::downgrade(self);
        let builder = Bot::builder()
            .with_backend_arc(backend)
            .skip_history_sync()
            .with_event_delivery(EventDelivery::Ordered { capacity: EVENT_MAILBOX })
            .with_inbound_durability_hook(durable::DurableInbound { inner: Arc::downgrade(self) })
            .on_event(move |event, client| {
                let inner = inner.clone();
                async move {
                    if let Some(inner) = inner.upgrade() {
                        inner.on_event(&event, &client).await;
                    }
                }
            });
        let bot = match &self.settings.transport {
            Some(transport) => builder.with_transport_factory(SharedTransport(transport.clone())).build().await,
            None => builder.build().await,
        };
        bot.map_err(|e| format!("building the client: {e}"))
    }

    fn note_sent(&self, id: &str, now: i64) {
        let mut recent = self.just_sent.lock().unwrap_or_else(|p| p.into_inner());
        while recent.front().is_some_and(|(_, at)| *at < now - JUST_SENT_SECS) || recent.len() >= JUST_SENT_MAX {
            recent.pop_front();
        }
        recent.push_back((id.to_string(), now));
    }

    /// Marks a receipt for a message this session sent moments ago.
    fn with_just_sent(&self, mut kind: EventKind, now: i64) -> EventKind {
        if let EventKind::MessageStatus { provider_message_id, just_sent, .. } = &mut kind {
            let recent = self.just_sent.lock().unwrap_or_else(|p| p.into_inner());
            *just_sent = recent.iter().any(|(id, at)| id == provider_message_id && *at >= now - JUST_SENT_SECS);
        }
        kind
    }

    async fn on_event(&self, event: &Event, client: &Arc<Client>) {
        if let Event::Messages(batch) = event {
            // The durability hook stored them before they were acknowledged.
            if batch.hook_committed {
                return;
            }
        }
        let ctx = ClientContext(client);
        let now = time::now();
        let mapped = events::map_event(event, &ctx, now).await;
        if let Some(change) = mapped.link {
            self.apply(change, client);
        }
        let mut kinds = mapped.events;
        if let Event::IncomingCall(call) = event {
            let rang = kinds.iter().find_map(|k| match k {
                EventKind::Call { from, missed: false, .. } => Some(from.clone()),
                _ => None,
            });
            kinds.extend(self.ringing.follow(call, rang.as_ref()));
        }
        for kind in kinds {
            let kind = self.with_just_sent(kind, now);
            let event = ConnectorEvent { instance_id: self.instance_id.clone(), kind };
            if self.events.send(event).await.is_err() {
                return;
            }
        }
    }

    fn apply(&self, change: LinkChange, client: &Client) {
        let mut link = self.link.lock().unwrap_or_else(|p| p.into_inner());
        link.phase = match change {
            LinkChange::Qr { code, expires_at } => match &link.phase {
                // A pair code on screen stays there; the QR rotation runs on regardless.
                Phase::PairCode { expires_at: until, .. } if *until > time::now() => return,
                _ => Phase::Qr { code, expires_at },
            },
            LinkChange::PairCode { code, expires_at } => Phase::PairCode { code, expires_at },
            LinkChange::PairCodeEnded { reason } => match &link.phase {
                Phase::PairCode { .. } => Phase::Idle { reason },
                _ => return,
            },
            LinkChange::CodesExhausted { disconnected: false } => return,
            LinkChange::CodesExhausted { disconnected: true } => {
                Phase::Idle { reason: "The QR codes expired before a phone scanned one.".into() }
            }
            LinkChange::Paired => Phase::Starting,
            LinkChange::ProfileName(name) => {
                link.name = (!name.trim().is_empty()).then_some(name);
                return;
            }
            LinkChange::Connected => {
                link.phone = client.pn().as_ref().and_then(jid::jid_to_phone).or(link.phone.take());
                let name = client.push_name();
                link.name = (!name.trim().is_empty()).then_some(name);
                Phase::Connected
            }
            LinkChange::Reconnecting => Phase::Reconnecting,
            LinkChange::LoggedOut { reason } => {
                link.phone = None;
                link.name = None;
                Phase::LoggedOut { reason: format!("Logged out: {reason}. Link the phone again to continue.") }
            }
            LinkChange::Banned { reason, until } => Phase::Banned { reason, until },
            LinkChange::Replaced => {
                self.replaced.store(true, std::sync::atomic::Ordering::Relaxed);
                Phase::Idle { reason: "Another connection took over this session. Reconnect to take it back.".into() }
            }
            LinkChange::Refused { reason } => Phase::Idle { reason },
        };
    }
}

pub struct WhatsAppWebSession {
    inner: Arc<Inner>,
    supervisor: Mutex<Option<supervisor::Supervisor>>,
    /// Set by `close`: a pair-code request or reconnect racing a delete or shutdown must not
    /// start a client again.
    closed: std::sync::atomic::AtomicBool,
}

impl WhatsAppWebSession {
    /// Starts the supervisor unless one is running.
    async fn start(&self) {
        let mut supervisor = self.supervisor.lock().await;
        if self.closed.load(std::sync::atomic::Ordering::SeqCst)
            || supervisor.as_ref().is_some_and(|s| !s.task.is_finished())
        {
            return;
        }
        let waiting_out_ban = self.inner.banned_at_open.load(std::sync::atomic::Ordering::Relaxed);
        if !waiting_out_ban && !matches!(self.inner.phase(), Phase::Connected | Phase::Reconnecting) {
            self.inner.set_phase(Phase::Starting);
        }
        let (stop, stop_rx) = oneshot::channel();
        let task = tokio::spawn(supervisor::supervise(self.inner.clone(), stop_rx));
        *supervisor = Some(supervisor::Supervisor { stop, task });
    }

    /// Stops the supervisor and its client, waiting for a clean stop.
    async fn stop(&self) {
        let Some(supervisor::Supervisor { stop, mut task }) = self.supervisor.lock().await.take() else { return };
        let _ = stop.send(());
        let limit = self.inner.settings.stop_timeout + Duration::from_secs(1);
        if tokio::time::timeout(limit, &mut task).await.is_err() {
            task.abort();
        }
        self.inner.set_client(None);
    }

    fn linked(&self) -> bool {
        self.inner.client().is_some_and(|c| c.pn().is_some())
            || matches!(self.inner.phase(), Phase::Connected | Phase::Reconnecting | Phase::Banned { .. })
    }

    /// The client, when it is logged in and connected.
    fn ready_client(&self) -> Result<Arc<Client>, ConnectorError> {
        match self.inner.client() {
            Some(c) if c.is_logged_in() && c.is_connected() => Ok(c),
            _ => Err(ConnectorError::NotConnected),
        }
    }

    /// Clients rebuilt after stopping by themselves.
    pub fn restarts(&self) -> u32 {
        self.inner.restarts.load(Ordering::Relaxed)
    }

    /// The running client, for tests that make it fail.
    #[cfg(test)]
    fn client(&self) -> Option<Arc<Client>> {
        self.inner.client()
    }

    #[cfg(test)]
    async fn supervised(&self) -> bool {
        self.supervisor.lock().await.as_ref().is_some_and(|s| !s.task.is_finished())
    }

    async fn check_recipient(&self, client: &Arc<Client>, to: &Jid) -> Result<(), ConnectorError> {
        let key = to.user.to_string();
        if self.inner.known_recipients.lock().unwrap_or_else(|p| p.into_inner()).contains(&key) {
            return Ok(());
        }
        let found = client.contacts().is_on_whatsapp(std::slice::from_ref(to)).await.map_err(|e| match e {
            whatsapp_rust::ContactError::Iq(iq) => outgoing::iq_error(iq),
            other => ConnectorError::Rejected(outgoing::redact(&other.to_string())),
        })?;
        if !found.iter().any(|r| r.is_registered) {
            return Err(ConnectorError::NotOnWhatsApp);
        }
        let mut known = self.inner.known_recipients.lock().unwrap_or_else(|p| p.into_inner());
        if known.len() >= KNOWN_RECIPIENTS {
            known.clear();
        }
        known.insert(key);
        Ok(())
    }
}

#[async_trait::async_trait]
impl ConnectorSession for WhatsAppWebSession {
    async fn link_state(&self) -> LinkState {
        let link = self.inner.link.lock().unwrap_or_else(|p| p.into_inner());
        match &link.phase {
            Phase::Starting => LinkState::Starting,
            Phase::Qr { code, expires_at } => LinkState::AwaitingScan { code: code.clone(), expires_at: *expires_at },
            Phase::PairCode { code, expires_at } if *expires_at > time::now() => {
                LinkState::AwaitingPairCode { code: code.clone(), expires_at: *expires_at }
            }
            Phase::PairCode { .. } => LinkState::Idle { reason: "The pairing code expired.".into() },
            Phase::Connected => LinkState::Connected { phone: link.phone.clone(), name: link.name.clone() },
            Phase::Reconnecting => {
                LinkState::Disconnected { reason: "The connection to WhatsApp dropped; reconnecting by itself.".into() }
            }
            Phase::Stopped => LinkState::Disconnected { reason: "Disconnected from the portal.".into() },
            Phase::Idle { reason } | Phase::LoggedOut { reason } => LinkState::Idle { reason: reason.clone() },
            Phase::Banned { reason, until } => LinkState::Disconnected {
                reason: match until {
                    Some(until) => format!("Temporarily banned by WhatsApp until {}: {reason}", time::display(*until)),
                    None => format!("Temporarily banned by WhatsApp: {reason}"),
                },
            },
        }
    }

    async fn send(&self, message: OutgoingMessage) -> Result<SentMessage, ConnectorError> {
        let client = self.ready_client()?;
        let to = jid::phone_to_jid(&message.to)?;
        self.check_recipient(&client, &to).await?;
        // The id is chosen and noted before sending: a receipt can arrive before the send returns.
        let id = client.generate_message_id();
        self.inner.note_sent(&id, time::now());
        let options = || whatsapp_rust::send::SendOptions::default().with_message_id(id.clone());
        let sent = match message.content {
            OutgoingContent::Text(text) => client
                .send_message_with_options(to, outgoing::text_message(&text), options())
                .await
                .map_err(outgoing::send_error)?,
            OutgoingContent::Media { kind, mime_type, file_name, data, caption } => {
                let upload = client
                    .upload(data, outgoing::media_type(kind), UploadOptions::default())
                    .await
                    .map_err(|e| ConnectorError::Unavailable(outgoing::redact(&format!("media upload: {e}"))))?;
                let body =
                    outgoing::media_message(kind, upload.into(), &mime_type, file_name.as_deref(), caption.as_deref());
                let sent = client
                    .send_message_with_options(to.clone(), body, options())
                    .await
                    .map_err(outgoing::send_error)?;
                if let Some(caption) = outgoing::caption_after(kind, caption.as_deref()) {
                    if let Err(e) = client.send_text(to, caption).await {
                        // The file went out; a lost caption is not worth failing the send for.
                        let error = outgoing::redact(&e.to_string());
                        tracing::warn!(instance_id = %self.inner.instance_id, error, "sending an audio caption failed");
                    }
                }
                sent
            }
        };
        if sent.message_id != id {
            self.inner.note_sent(&sent.message_id, time::now());
        }
        Ok(SentMessage { provider_message_id: sent.message_id })
    }

    async fn disconnect(&self) -> Result<EventKind, ConnectorError> {
        if !self.linked() {
            return Err(ConnectorError::NotConnected);
        }
        self.stop().await;
        self.inner.set_phase(Phase::Stopped);
        Ok(EventKind::Disconnected { reason: "Disconnected from the portal.".into() })
    }

    async fn reconnect(&self) -> Result<EventKind, ConnectorError> {
        let running = self.supervisor.lock().await.as_ref().is_some_and(|s| !s.task.is_finished());
        if running && matches!(self.inner.phase(), Phase::Connected) {
            return Ok(EventKind::ConnectionUpdated { state: "connected".into() });
        }
        // A parked or banned client is rebuilt; a stopped one starts again.
        self.stop().await;
        self.start().await;
        Ok(EventKind::ConnectionUpdated { state: "connecting".into() })
    }

    async fn logout(&self) -> Result<EventKind, ConnectorError> {
        // Set first, so the supervisor reads the client's end as an unlink, not a crash.
        self.inner
            .set_phase(Phase::LoggedOut { reason: "Logged out. Link a phone to use this instance again.".into() });
        // Only a connected client can tell WhatsApp to remove this linked device from the phone.
        let told_whatsapp = match self.inner.client() {
            Some(client) if client.is_connected() => {
                client.logout().await;
                true
            }
            _ => false,
        };
        self.stop().await;
        self.inner.wipe_store().await;
        let reason = if told_whatsapp {
            "Logged out. Link a phone to use this instance again."
        } else {
            "Logged out here, but the instance was offline, so WhatsApp was not told: on the phone, open Linked devices and remove this device."
        };
        {
            let mut link = self.inner.link.lock().unwrap_or_else(|p| p.into_inner());
            link.phone = None;
            link.name = None;
            // No new client until the customer asks for a code: nothing stored, nothing offered.
            link.phase = Phase::LoggedOut { reason: reason.into() };
        }
        let event_reason = if told_whatsapp {
            "Logged out from the portal."
        } else {
            "Logged out from the portal while offline; the device may still be listed on the phone."
        };
        Ok(EventKind::LoggedOut { reason: event_reason.into(), forced: false })
    }

    async fn request_pair_code(&self, phone: &str) -> Result<String, ConnectorError> {
        if self.linked() {
            return Err(ConnectorError::Rejected("already linked to a phone".into()));
        }
        if matches!(self.inner.phase(), Phase::Idle { .. } | Phase::LoggedOut { .. } | Phase::Stopped) {
            self.stop().await;
            self.start().await;
        }
        let mut client = self.inner.client();
        for _ in 0..40 {
            if client.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
            client = self.inner.client();
        }
        let client = client.ok_or(ConnectorError::NotConnected)?;
        client
            .wait_for_socket(Duration::from_secs(20))
            .await
            .map_err(|e| ConnectorError::Unavailable(format!("waiting for WhatsApp: {e}")))?;
        let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
        let options = PairCodeOptions { phone_number: digits, ..Default::default() };
        let code = client
            .pair_with_code(options)
            .await
            .map_err(|e| ConnectorError::Unavailable(outgoing::redact(&format!("requesting a pair code: {e}"))))?;
        self.inner.set_phase(Phase::PairCode { code: code.clone(), expires_at: time::now() + PAIR_CODE_SECS });
        Ok(code)
    }

    async fn close(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        self.stop().await;
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

struct ClientContext<'a>(&'a Arc<Client>);

#[async_trait::async_trait]
impl jid::LidLookup for ClientContext<'_> {
    async fn phone_for_lid(&self, lid_user: &str) -> Option<String> {
        match self.0.get_lid_pn_entry(&Jid::lid(lid_user)).await {
            Ok(entry) => entry.map(|e| format!("+{}", e.phone_number)),
            Err(e) => {
                tracing::debug!(error = %outgoing::redact(&e.to_string()), "looking up a LID's number failed");
                None
            }
        }
    }
}

impl Context for ClientContext<'_> {
    fn own_phone(&self) -> Option<String> {
        self.0.pn().as_ref().and_then(jid::jid_to_phone)
    }
}

/// Lets one transport factory (the tests') serve every client rebuild.
struct SharedTransport(Arc<dyn TransportFactory>);

#[async_trait::async_trait]
impl TransportFactory for SharedTransport {
    async fn create_transport(
        &self,
    ) -> Result<
        (Arc<dyn Transport>, whatsapp_rust::async_channel::Receiver<TransportEvent>),
        whatsapp_rust::anyhow::Error,
    > {
        self.0.create_transport().await
    }
}

#[cfg(test)]
mod durable_test;
#[cfg(test)]
mod live_test;
#[cfg(test)]
mod shared_store_test;
#[cfg(test)]
mod test_db;
#[cfg(test)]
mod tests;
