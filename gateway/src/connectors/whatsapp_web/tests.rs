//! The session lifecycle against whatsapp-rust's real client, with its in-memory store (or a
//! SQLite file) and a transport that never connects: no WhatsApp server is involved.
use std::sync::Arc;

use super::*;
use crate::{
    connectors::registry::Registry,
    instances::{Instance, InstanceStatus},
};

/// WhatsApp unreachable: every connection attempt fails at once.
pub(super) struct NeverConnects;

#[async_trait::async_trait]
impl TransportFactory for NeverConnects {
    async fn create_transport(
        &self,
    ) -> Result<
        (Arc<dyn Transport>, whatsapp_rust::async_channel::Receiver<TransportEvent>),
        whatsapp_rust::anyhow::Error,
    > {
        Err(whatsapp_rust::anyhow::anyhow!("no network in tests"))
    }
}

pub(super) fn settings(storage: Storage) -> Settings {
    Settings {
        storage,
        transport: Some(Arc::new(NeverConnects)),
        restart_first: Duration::from_millis(50),
        restart_max: Duration::from_millis(400),
        stop_timeout: Duration::from_secs(5),
    }
}

fn boot(id: &str, status: InstanceStatus) -> InstanceBoot {
    InstanceBoot { instance_id: id.into(), status, linked_phone: None, fence: None, banned_until: None }
}

pub(super) fn session_of(session: &Arc<dyn ConnectorSession>) -> &WhatsAppWebSession {
    session.as_any().downcast_ref::<WhatsAppWebSession>().expect("a whatsapp-web session")
}

/// Waits (up to 10 s) for the session to run a client that `accept` likes.
pub(super) async fn client_where(session: &WhatsAppWebSession, accept: impl Fn(&Arc<Client>) -> bool) -> Arc<Client> {
    for _ in 0..200 {
        if let Some(client) = session.client().filter(|c| accept(c)) {
            return client;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no matching client within 10 s");
}

#[test]
fn restart_delay_doubles_up_to_the_cap() {
    let s = settings(Storage::Memory);
    let delays: Vec<u128> = (1..=6).map(|n| s.restart_delay(n).as_millis()).collect();
    assert_eq!(delays, [50, 100, 200, 400, 400, 400]);
    assert_eq!(Settings::new(Path::new("/data")).restart_delay(100), Duration::from_secs(300));
}

#[tokio::test]
async fn a_client_that_stops_by_itself_is_restarted_and_close_stops_it_for_good() {
    let (tx, _rx) = EventSink::channel(64);
    let connector = WhatsAppWebConnector::new(settings(Storage::Memory));
    let session = connector.open(boot("inst_crash", InstanceStatus::Unlinked), tx).await.unwrap();
    let ww = session_of(&session);
    let first = client_where(ww, |_| true).await;
    assert_eq!(session.link_state().await, LinkState::Starting, "no code until WhatsApp answers");
    let send = OutgoingMessage { to: "+966512345678".into(), content: OutgoingContent::Text("hi".into()) };
    assert_eq!(session.send(send.clone()).await, Err(ConnectorError::NotConnected));
    assert_eq!(session.disconnect().await, Err(ConnectorError::NotConnected), "nothing linked to disconnect");

    // The client's run loop ends without the session asking: a crash, as far as it knows.
    first.disconnect().await;
    let second = client_where(ww, |c| !Arc::ptr_eq(c, &first)).await;
    assert_eq!(ww.restarts(), 1);
    second.disconnect().await;
    let third = client_where(ww, |c| !Arc::ptr_eq(c, &second) && !Arc::ptr_eq(c, &first)).await;
    assert_eq!(ww.restarts(), 2);

    session.close().await;
    assert!(ww.client().is_none());
    assert!(!ww.supervised().await, "the supervisor ended");
    assert!(!third.is_connected());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(ww.client().is_none(), "a closed session is not restarted");
    assert_eq!(ww.restarts(), 2);
}

#[tokio::test]
async fn reconnect_rebuilds_a_parked_client() {
    let (tx, _rx) = EventSink::channel(64);
    let connector = WhatsAppWebConnector::new(settings(Storage::Memory));
    let session = connector.open(boot("inst_parked", InstanceStatus::Unlinked), tx).await.unwrap();
    let ww = session_of(&session);
    let first = client_where(ww, |_| true).await;
    // What the crate does when the QR codes run out: says so, then disconnects.
    ww.inner.apply(LinkChange::CodesExhausted { disconnected: true }, &first);
    first.disconnect().await;
    for _ in 0..100 {
        if ww.client().is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(ww.client().is_none(), "a parked client is not restarted by itself");
    assert_eq!(ww.restarts(), 0);
    assert!(matches!(session.link_state().await, LinkState::Idle { reason } if reason.contains("expired")));

    assert_eq!(session.reconnect().await, Ok(EventKind::ConnectionUpdated { state: "connecting".into() }));
    client_where(ww, |c| !Arc::ptr_eq(c, &first)).await;
    assert_eq!(session.link_state().await, LinkState::Starting);
    session.close().await;
}

#[tokio::test]
async fn logout_deletes_the_store_and_forget_too() {
    let dir = std::env::temp_dir().join(format!("wag-ww-{}", crate::ids::new_id("t")));
    let connector = WhatsAppWebConnector::new(settings(Storage::Files(dir.clone())));
    let (tx, _rx) = EventSink::channel(64);
    let session = connector.open(boot("inst_logout", InstanceStatus::Unlinked), tx.clone()).await.unwrap();
    client_where(session_of(&session), |_| true).await;
    let path = dir.join("inst_logout.db");
    assert!(path.exists(), "the client keeps its keys in the instance's own file");

    let out = session.logout().await.unwrap();
    // The transport never connects, so WhatsApp could not be told: the customer is asked to
    // remove the device on the phone.
    assert!(
        matches!(&out, EventKind::LoggedOut { reason, forced: false } if reason.contains("while offline")),
        "{out:?}"
    );
    assert!(!path.exists(), "logging out deletes the store");
    assert!(session_of(&session).client().is_none());
    assert!(matches!(session.link_state().await, LinkState::Idle { reason } if reason.contains("Linked devices")));
    session.close().await;

    // A deleted instance's store goes too, even when no session runs here.
    let other = connector.open(boot("inst_deleted", InstanceStatus::Unlinked), tx).await.unwrap();
    client_where(session_of(&other), |_| true).await;
    other.close().await;
    assert!(dir.join("inst_deleted.db").exists(), "closing keeps the link");
    connector.forget("inst_deleted").await;
    assert!(!dir.join("inst_deleted.db").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

fn instance(id: &str, status: InstanceStatus) -> Instance {
    Instance {
        id: id.into(),
        account_id: 1,
        name: "Support".into(),
        connector: NAME.into(),
        status,
        linked_phone: None,
        paused: false,
        review_paused: false,
        review_reason: None,
        review_paused_at: None,
        review_note: None,
        review_note_at: None,
        connection_alert: None,
        connection_alert_at: None,
        created_at: 0,
        status_changed_at: 0,
    }
}

#[tokio::test]
async fn the_registry_opens_sessions_once_and_shuts_them_down() {
    let dir = std::env::temp_dir().join(format!("wag-ww-reg-{}", crate::ids::new_id("t")));
    let db = crate::db::open(&format!("sqlite://{}?mode=rwc", dir.join("wag.db").display())).await.unwrap();
    let opens = Arc::new(AtomicU32::new(0));
    let connector =
        Arc::new(Counting { inner: WhatsAppWebConnector::new(settings(Storage::Memory)), opens: opens.clone() });
    let registry = Registry::new(db.clone(), vec![connector]);
    assert!(registry.has_connector(NAME));

    // At server start, linked instances come back up; unlinked ones wait until used.
    let owner = owner(&db).await;
    let linked = crate::instances::create(&db, owner.id, "Linked", NAME).await.unwrap();
    crate::instances::record_status(
        &db,
        &linked.id,
        InstanceStatus::Connected,
        Some(Some("+966500000009".into())),
        None,
    )
    .await
    .unwrap();
    crate::instances::create(&db, owner.id, "Unlinked", NAME).await.unwrap();
    registry.start_linked().await.unwrap();
    assert_eq!(opens.load(Ordering::Relaxed), 1, "only the linked instance started");
    let linked = crate::instances::find(&db, owner.id, &linked.id).await.unwrap();
    registry.session(&linked).await.unwrap();
    assert_eq!(opens.load(Ordering::Relaxed), 1, "started once");

    let a = instance("inst_reg_a", InstanceStatus::Connected);
    let session = registry.session(&a).await.unwrap();
    let again = registry.session(&a).await.unwrap();
    assert!(Arc::ptr_eq(&session, &again), "one session per instance");
    assert_eq!(opens.load(Ordering::Relaxed), 2);
    let client = client_where(session_of(&session), |_| true).await;
    // Linked before (status connected) but its keys are gone: reported as a forced logout (its
    // lane stores it: unlinked, with a loud alert), and it waits for a code like a new one.
    let mut stored = None;
    for _ in 0..100 {
        let now = crate::instances::find(&db, owner.id, &linked.id).await.unwrap();
        if now.status == InstanceStatus::Unlinked {
            stored = Some(now);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stored = stored.expect("the forced logout was stored within 5 s");
    assert!(stored.connection_alert.as_deref().is_some_and(|a| a.contains("session file")), "{stored:?}");
    assert!(matches!(registry.link_state(&a).await.unwrap(), LinkState::Starting));
    assert!(registry.request_pair_code(&a, "not a number").await.is_err());

    registry.shutdown().await;
    assert!(session_of(&session).client().is_none());
    assert!(!session_of(&session).supervised().await);
    assert!(!client.is_connected());
    std::fs::remove_dir_all(&dir).unwrap();
}

async fn owner(db: &sea_orm::DatabaseConnection) -> crate::accounts::Account {
    crate::accounts::create(
        db,
        crate::accounts::NewAccount {
            email: crate::accounts::Email::parse("owner@example.com").unwrap(),
            password: crate::accounts::NewPassword::parse("a long enough password").unwrap(),
            role: crate::accounts::Role::Customer,
            plan: crate::plans::Plan::Starter,
            api_enabled: true,
            threecx_enabled: false,
        },
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn link_attempts_are_bounded_per_account_and_stopped_when_idle() {
    let dir = std::env::temp_dir().join(format!("wag-ww-link-{}", crate::ids::new_id("t")));
    let db = crate::db::open(&format!("sqlite://{}?mode=rwc", dir.join("wag.db").display())).await.unwrap();
    let connector = Arc::new(WhatsAppWebConnector::new(settings(Storage::Memory)));
    let limits = crate::connectors::registry::LinkLimits { per_account: 2, idle: Duration::from_millis(600) };
    let registry = Registry::with_link_limits(db.clone(), vec![connector], limits);
    let owner = owner(&db).await;
    let mut unlinked = Vec::new();
    for name in ["One", "Two", "Three"] {
        unlinked.push(crate::instances::create(&db, owner.id, name, NAME).await.unwrap());
    }

    // Two connect tabs open clients; the third is refused with a reason, and nothing started.
    let first = registry.session(&unlinked[0]).await.unwrap();
    registry.session(&unlinked[1]).await.unwrap();
    assert_eq!(registry.link_attempts(), 2);
    let Err(crate::Error::Refused(reason)) = registry.session(&unlinked[2]).await else {
        panic!("a third attempt ran")
    };
    assert!(reason.contains("already linking 2 phones"), "{reason}");
    assert!(session_of(&first).supervised().await);

    // Looking at the first keeps it; the second, left alone, is stopped by the sweep.
    tokio::time::sleep(Duration::from_millis(400)).await;
    registry.link_state(&unlinked[0]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    registry.stop_idle_link_attempts().await;
    assert_eq!(registry.link_attempts(), 1);
    assert!(session_of(&first).supervised().await, "the attempt someone looks at runs on");
    registry.session(&unlinked[2]).await.expect("room for another attempt");

    // Left alone, all stop, clients and all.
    tokio::time::sleep(Duration::from_millis(700)).await;
    registry.stop_idle_link_attempts().await;
    assert_eq!(registry.link_attempts(), 0);
    assert!(!session_of(&first).supervised().await);
    assert!(session_of(&first).client().is_none());
    registry.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Counts the sessions a connector opens.
struct Counting {
    inner: WhatsAppWebConnector,
    opens: Arc<AtomicU32>,
}

#[async_trait::async_trait]
impl Connector for Counting {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn open(&self, boot: InstanceBoot, events: EventSink) -> Result<Arc<dyn ConnectorSession>, ConnectorError> {
        self.opens.fetch_add(1, Ordering::Relaxed);
        self.inner.open(boot, events).await
    }
}

#[tokio::test]
async fn receipts_are_held_only_for_messages_just_sent() {
    let (tx, _rx) = EventSink::channel(64);
    let session = WhatsAppWebConnector::new(settings(Storage::Memory))
        .open(boot("inst_receipts", InstanceStatus::Unlinked), tx)
        .await
        .unwrap();
    let inner = &session_of(&session).inner;
    let receipt = |id: &str| EventKind::MessageStatus {
        provider_message_id: id.into(),
        status: crate::connectors::DeliveryStatus::Delivered,
        at: 0,
        just_sent: false,
    };
    let now = 1_780_000_000;
    inner.note_sent("3EB0SENT", now);
    let held = |kind| matches!(kind, EventKind::MessageStatus { just_sent: true, .. });
    assert!(held(inner.with_just_sent(receipt("3EB0SENT"), now + 5)));
    assert!(!held(inner.with_just_sent(receipt("3EB0PHONE"), now + 5)), "sent from the phone, not by us");
    assert!(!held(inner.with_just_sent(receipt("3EB0SENT"), now + JUST_SENT_SECS + 1)), "long stored by then");
    for n in 0..JUST_SENT_MAX + 10 {
        inner.note_sent(&format!("id{n}"), now);
    }
    assert!(inner.just_sent.lock().unwrap().len() <= JUST_SENT_MAX, "bounded");
    session.close().await;
}

#[tokio::test]
async fn the_connect_tab_follows_the_client_events() {
    let (tx, _rx) = EventSink::channel(64);
    let connector = WhatsAppWebConnector::new(settings(Storage::Memory));
    let boot = InstanceBoot {
        instance_id: "inst_tab".into(),
        status: InstanceStatus::Unlinked,
        linked_phone: Some("+966500000009".into()),
        fence: None,
        banned_until: None,
    };
    let session = connector.open(boot, tx).await.unwrap();
    let ww = session_of(&session);
    let client = client_where(ww, |_| true).await;
    let later = time::now() + 60;
    let apply = |change| ww.inner.apply(change, &client);

    apply(LinkChange::Qr { code: "2@first".into(), expires_at: later });
    assert_eq!(session.link_state().await, LinkState::AwaitingScan { code: "2@first".into(), expires_at: later });
    apply(LinkChange::PairCode { code: "ABCD1234".into(), expires_at: later });
    apply(LinkChange::Qr { code: "2@second".into(), expires_at: later });
    assert_eq!(
        session.link_state().await,
        LinkState::AwaitingPairCode { code: "ABCD1234".into(), expires_at: later },
        "QR rotation does not hide a pair code being typed"
    );
    apply(LinkChange::CodesExhausted { disconnected: false });
    assert!(matches!(session.link_state().await, LinkState::AwaitingPairCode { .. }), "the pair code stays valid");
    apply(LinkChange::Paired);
    assert_eq!(session.link_state().await, LinkState::Starting);

    apply(LinkChange::Connected);
    assert_eq!(session.link_state().await, LinkState::Connected { phone: Some("+966500000009".into()), name: None });
    apply(LinkChange::ProfileName("Acme Support".into()));
    assert_eq!(
        session.link_state().await,
        LinkState::Connected { phone: Some("+966500000009".into()), name: Some("Acme Support".into()) }
    );

    apply(LinkChange::Banned { reason: "101: too many".into(), until: Some(later) });
    let LinkState::Disconnected { reason } = session.link_state().await else { panic!("not disconnected") };
    assert!(reason.starts_with("Temporarily banned by WhatsApp until"), "{reason}");

    apply(LinkChange::LoggedOut { reason: "the phone removed this linked device".into() });
    let LinkState::Idle { reason } = session.link_state().await else { panic!("not idle") };
    assert!(reason.contains("removed this linked device"));
    apply(LinkChange::Connected);
    assert_eq!(session.link_state().await, LinkState::Connected { phone: None, name: None }, "the old number is gone");
    session.close().await;
}

/// A temporary ban is stored with its end; a session opened before that end (this server
/// restarted, or another node took the instance) connects only once it has passed, and a
/// connection clears it.
#[tokio::test]
async fn a_recorded_ban_is_waited_out_before_connecting() {
    let dir = std::env::temp_dir().join(format!("wag-ww-ban-{}", crate::ids::new_id("t")));
    let db = crate::db::open(&format!("sqlite://{}?mode=rwc", dir.join("wag.db").display())).await.unwrap();
    let registry = Registry::new(db.clone(), vec![Arc::new(WhatsAppWebConnector::new(settings(Storage::Memory)))]);
    let owner = owner(&db).await;
    let line = crate::instances::create(&db, owner.id, "Banned", NAME).await.unwrap();
    let phone = Some(Some("+966500000009".to_string()));
    crate::instances::record_status(&db, &line.id, InstanceStatus::Connected, phone, None).await.unwrap();
    let until = time::now() + 3;
    let ban = EventKind::TemporarilyBanned { reason: "101".into(), until: Some(until) };
    crate::connectors::record::event(&db, &ConnectorEvent { instance_id: line.id.clone(), kind: ban }).await.unwrap();
    assert_eq!(crate::instances::banned_until(&db, &line.id).await.unwrap(), Some(until));

    let line = crate::instances::find(&db, owner.id, &line.id).await.unwrap();
    let session = registry.session(&line).await.unwrap();
    let ww = session_of(&session);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(ww.client().is_none(), "no client while the ban lasts");
    let state = session.link_state().await;
    assert!(matches!(&state, LinkState::Disconnected { reason } if reason.contains("banned")), "{state:?}");
    client_where(ww, |_| true).await;
    assert!(time::now() >= until, "the client came after the ban ended");

    let connected = EventKind::Connected { phone: Some("+966500000009".into()) };
    crate::connectors::record::event(&db, &ConnectorEvent { instance_id: line.id.clone(), kind: connected })
        .await
        .unwrap();
    assert_eq!(crate::instances::banned_until(&db, &line.id).await.unwrap(), None);
    registry.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
