//! At-least-once from WhatsApp to the database: 10,000 inbound messages, built with
//! whatsapp-rust's own types, go through the durability hook and the event path of four
//! whatsapp-web sessions while another connection holds the database locked for 5 s. No hook
//! call may return (the client would acknowledge) before its messages are stored; afterwards
//! every message is stored exactly once, redeliveries included, with its events.
//!
//! SQLite always runs; PostgreSQL and MariaDB run when `WAG_TEST_POSTGRES_URL` /
//! `WAG_TEST_MYSQL_URL` name a server (as for the server's integration tests).
use std::{collections::HashSet, sync::Arc, time::Duration};

use sea_orm::{
    ColumnTrait, ConnectionTrait, Database, EntityTrait, PaginatorTrait, QueryFilter, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};
use whatsapp_rust::{
    chrono::Utc,
    types::{
        events::{BatchOrigin, InboundMessage as WaInbound, MessageBatch},
        message::{MessageInfo, MessageSource},
    },
    wacore::proto_helpers::MessageBuilderExt,
    waproto::whatsapp as wa,
    InboundDurabilityHook, Jid,
};

use super::{
    durable::DurableInbound,
    test_db::{Backend, TestDb},
    tests::{client_where, session_of, settings},
    *,
};
use crate::{
    connectors::registry::Registry,
    entities::{conversation, event, inbound_message, suppression},
};

const INSTANCES: usize = 4;
const PER_INSTANCE: usize = 2_500;
const LOCK_FOR: Duration = Duration::from_secs(5);
/// Of each instance's messages, this many arrive as `Event::Messages` without the hook (the
/// crate's newsletter and recovery paths), the rest through the hook.
const WITHOUT_HOOK: usize = 250;
/// Senders per instance: most batches hold several messages of one person.
const SENDERS: usize = 40;

impl TestDb {
    /// Another connection takes the inbound table (SQLite: the whole file) for `hold`; resolves
    /// once the lock is held, and the returned task releases it.
    async fn lock_inbound(&self, hold: Duration) -> tokio::task::JoinHandle<()> {
        let other = Database::connect(self.url.as_str()).await.expect("a second connection");
        let backend = self.backend;
        let (held_tx, held) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let options = TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Exclusive),
                ..Default::default()
            };
            let txn = other.begin_with_options(options).await.expect("begin the locking transaction");
            match backend {
                Backend::Sqlite => {}
                Backend::Postgres => {
                    txn.execute_unprepared("LOCK TABLE inbound_messages IN EXCLUSIVE MODE").await.unwrap();
                }
                Backend::Mysql => {
                    txn.execute_unprepared("LOCK TABLES inbound_messages WRITE").await.unwrap();
                }
            }
            held_tx.send(()).unwrap();
            tokio::time::sleep(hold).await;
            if let Backend::Mysql = backend {
                txn.execute_unprepared("UNLOCK TABLES").await.unwrap();
            }
            txn.commit().await.unwrap();
            other.close().await.ok();
        });
        held.await.expect("the lock was taken");
        task
    }
}

fn message(instance: usize, n: usize) -> WaInbound {
    let sender = Jid::pn(format!("96650{:02}{:05}", instance, n % SENDERS));
    let source = MessageSource { chat: sender.to_non_ad(), sender, ..Default::default() };
    // Every 500th message asks to stop: opt-outs are part of the batches too.
    let text = if n % 500 == 7 { "STOP".to_string() } else { format!("message {n} to instance {instance}") };
    let info =
        MessageInfo { source, id: format!("3EB0{instance:02}{n:08}"), timestamp: Utc::now(), ..Default::default() };
    WaInbound::builder().message(Arc::new(wa::Message::text(&text))).info(Arc::new(info)).build()
}

fn without_hook(batch: Vec<WaInbound>) -> Event {
    Event::Messages(MessageBatch::builder().messages(batch.into()).origin(BatchOrigin::Live).build())
}

async fn ten_thousand_while_locked(backend: Backend) {
    let Some(test) = TestDb::create(backend).await else { return };
    let db = test.conn.clone();
    let owner = crate::accounts::create(
        &db,
        crate::accounts::NewAccount {
            email: crate::accounts::Email::parse("durable@example.com").unwrap(),
            password: crate::accounts::NewPassword::parse("a long enough password").unwrap(),
            role: crate::accounts::Role::Customer,
            plan: crate::plans::Plan::Starter,
            api_enabled: true,
            threecx_enabled: false,
        },
    )
    .await
    .unwrap();
    let registry = Registry::new(db.clone(), vec![Arc::new(WhatsAppWebConnector::new(settings(Storage::Memory)))]);
    let mut lines = Vec::new();
    for i in 0..INSTANCES {
        let instance = crate::instances::create(&db, owner.id, &format!("Line {i}"), NAME).await.unwrap();
        let session = registry.session(&instance).await.unwrap();
        let inner = session_of(&session).inner.clone();
        let client = client_where(session_of(&session), |_| true).await;
        lines.push((instance, inner, client));
    }

    let lock = test.lock_inbound(LOCK_FOR).await;
    let locked_at = tokio::time::Instant::now();
    let mut hooks = Vec::new();
    let mut plain = Vec::new();
    for (i, (_, inner, client)) in lines.iter().enumerate() {
        // Four concurrent pipelines per instance, as the client runs live and offline batches.
        for part in 0..4 {
            let (inner, client) = (inner.clone(), client.clone());
            hooks.push(tokio::spawn(async move {
                let hook = DurableInbound { inner: Arc::downgrade(&inner) };
                let mine: Vec<usize> = (WITHOUT_HOOK..PER_INSTANCE).filter(|n| n % 4 == part).collect();
                // Live traffic is a batch of one; an offline drain commits up to 50 at once.
                for chunk in mine.chunks(if part % 2 == 0 { 1 } else { 50 }) {
                    let batch: Vec<WaInbound> = chunk.iter().map(|n| message(i, *n)).collect();
                    hook.on_messages(client.clone(), &batch).await.expect("stored");
                }
                tokio::time::Instant::now()
            }));
        }
        let (inner, client) = (inner.clone(), client.clone());
        plain.push(tokio::spawn(async move {
            for chunk in (0..WITHOUT_HOOK).collect::<Vec<_>>().chunks(10) {
                let batch = chunk.iter().map(|n| message(i, *n)).collect();
                inner.on_event(&without_hook(batch), &client).await;
            }
        }));
    }

    tokio::time::sleep(LOCK_FOR - Duration::from_millis(500)).await;
    assert!(
        hooks.iter().all(|h| !h.is_finished()),
        "no hook call returned (no message acknowledged) while the database was locked"
    );
    lock.await.unwrap();
    for hook in hooks {
        let returned = tokio::time::timeout(Duration::from_secs(120), hook).await.expect("stored in time").unwrap();
        assert!(returned >= locked_at + LOCK_FOR - Duration::from_millis(100), "returned before the lock ended");
    }
    for task in plain {
        task.await.unwrap();
    }

    // WhatsApp delivers again what it has no acknowledgement for (a crash after the commit):
    // through the hook as the crate replays them, and as a batch that also carries new ones.
    let (instance, inner, client) = &lines[0];
    let hook = DurableInbound { inner: Arc::downgrade(inner) };
    let replay: Vec<WaInbound> = (0..PER_INSTANCE).step_by(5).map(|n| message(0, n)).collect();
    for chunk in replay.chunks(100) {
        hook.on_messages(client.clone(), chunk).await.expect("a redelivery is accepted");
    }
    inner.on_event(&without_hook((0..20).map(|n| message(0, n)).collect()), client).await;
    // The event path only queues: wait until its lane is empty by storing one more through it.
    hook.on_messages(client.clone(), &[message(0, 1)]).await.unwrap();

    let total = INSTANCES * PER_INSTANCE;
    assert_eq!(inbound_message::Entity::find().count(&db).await.unwrap() as usize, total);
    let ids: HashSet<String> =
        inbound_message::Entity::find().all(&db).await.unwrap().into_iter().map(|m| m.provider_message_id).collect();
    assert_eq!(ids.len(), total, "each message stored once");
    for (i, (line, _, _)) in lines.iter().enumerate() {
        let stored =
            inbound_message::Entity::find().filter(inbound_message::Column::InstanceId.eq(line.id.as_str())).count(&db);
        assert_eq!(stored.await.unwrap() as usize, PER_INSTANCE, "instance {i}");
    }
    let events_of = |kind: &'static str| {
        event::Entity::find()
            .filter(event::Column::AccountId.eq(owner.id))
            .filter(event::Column::Kind.eq(kind))
            .count(&db)
    };
    assert_eq!(events_of("message.received").await.unwrap() as usize, total, "one event per message, none twice");
    assert_eq!(events_of("conversation.updated").await.unwrap() as usize, total);
    let stoppers =
        INSTANCES * (0..PER_INSTANCE).filter(|n| n % 500 == 7).map(|n| n % SENDERS).collect::<HashSet<_>>().len();
    assert_eq!(events_of("recipient.opted_out").await.unwrap() as usize, stoppers);
    assert_eq!(suppression::Entity::find().count(&db).await.unwrap() as usize, stoppers);
    assert_eq!(conversation::Entity::find().count(&db).await.unwrap() as usize, INSTANCES * SENDERS);
    let first = inbound_message::Entity::find()
        .filter(inbound_message::Column::InstanceId.eq(instance.id.as_str()))
        .filter(inbound_message::Column::ProviderMessageId.eq("3EB00000000012"))
        .one(&db)
        .await
        .unwrap()
        .expect("stored");
    assert_eq!((first.body.as_str(), first.from_phone.as_deref()), ("message 12 to instance 0", Some("+966500000012")));

    registry.shutdown().await;
    test.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_inbound_while_sqlite_is_locked() {
    ten_thousand_while_locked(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_inbound_while_postgres_is_locked() {
    ten_thousand_while_locked(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_inbound_while_mariadb_is_locked() {
    ten_thousand_while_locked(Backend::Mysql).await;
}
