//! WhatsApp Web keys in the shared PostgreSQL database: what one node's session stores, the
//! instance's next owner loads; the old owner's writes are refused once the epoch moved on;
//! values are sealed to their row and the master key. Runs when `WAG_TEST_POSTGRES_URL` is set.
use std::sync::Arc;

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use whatsapp_rust::wacore::{
    appstate::processor::AppStateMutationMAC,
    store::traits::{
        AppStateSyncKey, AppSyncStore, DeviceListRecord, DeviceStore, LidPnMappingEntry, MsgSecretEntry,
        MsgSecretStore, ProtocolStore, SignalStore, TcTokenEntry,
    },
};

use super::{
    shared_store::{KeyVault, SharedStore},
    test_db::{Backend, TestDb},
    tests::{client_where, session_of, settings},
    *,
};
use crate::{config::MasterKey, connectors::SessionFence};

const ID: &str = "inst_keys";

async fn exec(db: &DatabaseConnection, sql: &str) {
    db.execute_raw(Statement::from_string(db.get_database_backend(), sql.to_string())).await.unwrap();
}

async fn own(db: &DatabaseConnection, node: &str, epoch: i64) -> Option<SessionFence> {
    exec(
        db,
        &format!(
            "INSERT INTO instance_owners (instance_id, node_id, epoch, since) VALUES ('{ID}', '{node}', {epoch}, 0) \
         ON CONFLICT (instance_id) DO UPDATE SET node_id = excluded.node_id, epoch = excluded.epoch"
        ),
    )
    .await;
    Some(SessionFence { node_id: node.into(), epoch })
}

async fn rows(db: &DatabaseConnection) -> i64 {
    let sql = format!("SELECT COUNT(*) AS n FROM whatsapp_keys WHERE instance_id = '{ID}'");
    let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap().unwrap();
    row.try_get("", "n").unwrap()
}

fn lid(n: &str) -> LidPnMappingEntry {
    LidPnMappingEntry {
        lid: format!("10000{n}"),
        phone_number: format!("96650{n}"),
        created_at: 1,
        updated_at: 2,
        learning_source: "usync".into(),
    }
}

#[tokio::test]
async fn the_next_owner_loads_what_the_last_one_stored_and_the_last_one_can_no_longer_write() {
    let Some(test) = TestDb::create(Backend::Postgres).await else { return };
    let db = test.conn.clone();
    let vault = Arc::new(KeyVault::new(db.clone(), &MasterKey([3; 32])));
    let a = SharedStore::open(vault.clone(), ID, own(&db, "node-a", 1).await).await.unwrap();

    // What a linked device's client stores, kind by kind.
    a.create().await.unwrap();
    let mut device = a.load().await.unwrap().unwrap();
    device.push_name = "Front desk".into();
    a.save(&device).await.unwrap();
    a.put_identity("96650111@s.whatsapp.net.0", [9; 32]).await.unwrap();
    a.put_session("96650111.0", b"ratchet one").await.unwrap();
    a.put_sessions_batch(&[("96650222.0".into(), "ratchet two".into()), ("96650111.0".into(), "ratchet 1b".into())])
        .await
        .unwrap();
    a.store_prekeys_batch(&[(1, "pk1".into()), (2, "pk2".into()), (3, "pk3".into())], false).await.unwrap();
    a.remove_prekey(2).await.unwrap();
    a.store_signed_prekey(7, b"signed").await.unwrap();
    a.put_sender_key("group@g.us::96650111", b"sender key").await.unwrap();
    let sync = |n: u8| AppStateSyncKey { key_data: vec![n; 32], fingerprint: vec![n], timestamp: i64::from(n) };
    a.set_sync_key(b"key-1", sync(1)).await.unwrap();
    a.set_sync_key(b"key-2", sync(2)).await.unwrap();
    a.put_mutation_macs("regular", 3, &[AppStateMutationMAC { index_mac: vec![1; 32], value_mac: vec![2; 32] }])
        .await
        .unwrap();
    a.set_sender_key_status("group@g.us", &[("96650111:1@s.whatsapp.net", true), ("96650222@s.whatsapp.net", false)])
        .await
        .unwrap();
    a.put_lid_mapping(&lid("1")).await.unwrap();
    a.save_base_key("96650111.0", "3EB0A", b"base").await.unwrap();
    a.update_device_list(DeviceListRecord {
        user: "96650111".into(),
        devices: vec![],
        timestamp: 5,
        phash: Some("2:abc".into()),
        raw_id: None,
    })
    .await
    .unwrap();
    a.put_tc_token(
        "96650111@s.whatsapp.net",
        &TcTokenEntry { token: vec![4; 8], token_timestamp: 10, sender_timestamp: None },
    )
    .await
    .unwrap();
    a.touch_tc_token_sender_timestamp("96650111@s.whatsapp.net", 20).await.unwrap();
    a.store_sent_message("96650111@s.whatsapp.net", "3EB0B", b"sent payload").await.unwrap();
    a.store_pending_inbound("96650111@s.whatsapp.net", "96650111@s.whatsapp.net", "3EB0C", b"pending").await.unwrap();
    let secret = |id: &str, expires_at: i64| MsgSecretEntry {
        chat: "96650111@s.whatsapp.net".into(),
        sender: "96650111@s.whatsapp.net".into(),
        msg_id: id.into(),
        secret: [6; 32],
        expires_at,
        message_ts: 1_700_000_000,
    };
    a.put_msg_secrets(vec![secret("3EB0D", 0), secret("3EB0E", 100)]).await.unwrap();

    // Stored sealed: no plaintext in the table.
    let sql = format!("SELECT v FROM whatsapp_keys WHERE instance_id = '{ID}' AND ns = 'session'");
    for row in db.query_all_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap() {
        let v: Vec<u8> = row.try_get("", "v").unwrap();
        assert!(!v.windows(7).any(|w| w == b"ratchet"), "a session value is stored in the clear");
    }

    // The instance moves to node B (A's lease ran out).
    let b_fence = own(&db, "node-b", 2).await;
    assert!(a.put_session("96650111.0", b"stale").await.is_err(), "the old owner's write is refused");
    assert!(a.save(&device).await.is_err());
    a.remove_prekey(1).await.unwrap();
    a.wipe().await.unwrap();
    let before_b = rows(&db).await;
    assert!(before_b > 15, "a stale session's deletes change nothing ({before_b} rows)");

    let b = SharedStore::open(vault.clone(), ID, b_fence).await.unwrap();
    let loaded = b.load().await.unwrap().expect("the device");
    assert_eq!(serde_json::to_value(&loaded).unwrap(), serde_json::to_value(&device).unwrap());
    assert_eq!(b.load_identity("96650111@s.whatsapp.net.0").await.unwrap(), Some([9; 32]));
    assert_eq!(b.get_session("96650111.0").await.unwrap().as_deref(), Some(&b"ratchet 1b"[..]));
    assert_eq!(b.get_session("96650222.0").await.unwrap().as_deref(), Some(&b"ratchet two"[..]));
    assert_eq!(b.load_prekey(1).await.unwrap().as_deref(), Some(&b"pk1"[..]));
    assert_eq!(b.load_prekey(2).await.unwrap(), None);
    assert_eq!(b.get_max_prekey_id().await.unwrap(), 3);
    assert_eq!(b.load_all_signed_prekeys().await.unwrap(), vec![(7, b"signed".to_vec())]);
    assert_eq!(b.get_sender_key("group@g.us::96650111").await.unwrap(), Some(b"sender key".to_vec()));
    assert_eq!(b.get_latest_sync_key_id().await.unwrap(), Some(b"key-2".to_vec()));
    assert_eq!(b.get_sync_key(b"key-1").await.unwrap().unwrap().key_data, vec![1; 32]);
    assert_eq!(b.get_mutation_mac("regular", &[1; 32]).await.unwrap(), Some(vec![2; 32]));
    let mut devices = b.get_sender_key_devices("group@g.us").await.unwrap();
    devices.sort();
    assert_eq!(
        devices,
        vec![("96650111:1@s.whatsapp.net".to_string(), true), ("96650222@s.whatsapp.net".to_string(), false)]
    );
    assert_eq!(b.get_pn_mapping("966501").await.unwrap().unwrap().lid, "100001");
    assert!(b.has_same_base_key("96650111.0", "3EB0A", b"base").await.unwrap());
    assert_eq!(b.get_devices("96650111").await.unwrap().unwrap().phash.as_deref(), Some("2:abc"));
    let tc = b.get_tc_token("96650111@s.whatsapp.net").await.unwrap().unwrap();
    assert_eq!((tc.token, tc.token_timestamp, tc.sender_timestamp), (vec![4; 8], 10, Some(20)));
    assert_eq!(
        b.get_pending_inbound("96650111@s.whatsapp.net", "96650111@s.whatsapp.net", "3EB0C").await.unwrap(),
        Some(b"pending".to_vec())
    );
    let chat = "96650111@s.whatsapp.net";
    assert_eq!(b.get_msg_secret_with_ts(chat, chat, "3EB0D").await.unwrap(), Some((vec![6; 32], 1_700_000_000)));

    // The new owner writes, prunes and takes as usual, and that sticks for the owner after it.
    assert_eq!(b.take_sent_message(chat, "3EB0B").await.unwrap(), Some(b"sent payload".to_vec()));
    assert_eq!(b.delete_expired_msg_secrets(1_000).await.unwrap(), 1, "the one with a deadline went");
    b.put_session("96650111.0", b"ratchet 1c").await.unwrap();
    let c = SharedStore::open(vault.clone(), ID, own(&db, "node-c", 3).await).await.unwrap();
    assert_eq!(c.get_session("96650111.0").await.unwrap().as_deref(), Some(&b"ratchet 1c"[..]));
    assert_eq!(c.take_sent_message(chat, "3EB0B").await.unwrap(), None);
    assert!(c.get_msg_secret(chat, chat, "3EB0D").await.unwrap().is_some());
    assert!(c.get_msg_secret(chat, chat, "3EB0E").await.unwrap().is_none());

    // Another master key opens nothing; a value moved to another row does not open either.
    assert!(SharedStore::open(Arc::new(KeyVault::new(db.clone(), &MasterKey([4; 32]))), ID, None).await.is_err());
    exec(
        &db,
        &format!(
            "UPDATE whatsapp_keys SET v = (SELECT v FROM whatsapp_keys WHERE instance_id = '{ID}' AND ns = 'session' \
             AND k = '96650222.0') WHERE instance_id = '{ID}' AND ns = 'session' AND k = '96650111.0'"
        ),
    )
    .await;
    assert!(SharedStore::open(vault.clone(), ID, None).await.is_err(), "a value is sealed to its row");

    // The owner's wipe (WhatsApp ended the link) and the instance's deletion remove everything.
    c.wipe().await.unwrap();
    assert_eq!(rows(&db).await, 0);
    b.put_session("x", b"y").await.expect_err("still fenced off");
    vault.forget(ID).await.unwrap();
    test.drop().await;
}

/// The crate's own client runs on the shared store: the keys it creates for a new device are
/// there for the same instance's next session (on another node), and a logout removes them.
#[tokio::test]
async fn a_client_on_the_shared_store_keeps_its_device_across_sessions() {
    let Some(test) = TestDb::create(Backend::Postgres).await else { return };
    let db = test.conn.clone();
    let vault = Arc::new(KeyVault::new(db.clone(), &MasterKey([5; 32])));
    let connector = WhatsAppWebConnector::new(settings(Storage::Shared(vault.clone())));
    let boot = |fence| InstanceBoot {
        instance_id: ID.into(),
        status: crate::instances::InstanceStatus::Unlinked,
        linked_phone: None,
        fence,
        banned_until: None,
    };
    let (tx, _rx) = EventSink::channel(64);
    let first = connector.open(boot(own(&db, "node-a", 1).await), tx).await.unwrap();
    let client = client_where(session_of(&first), |_| true).await;
    let identity = client.persistence_manager().get_device_snapshot().identity_key.public_key.serialize();
    first.close().await;
    assert!(rows(&db).await > 0, "the new device's keys are in the database");

    let (tx, _rx) = EventSink::channel(64);
    let second = connector.open(boot(own(&db, "node-b", 2).await), tx).await.unwrap();
    let client = client_where(session_of(&second), |_| true).await;
    let again = client.persistence_manager().get_device_snapshot().identity_key.public_key.serialize();
    assert_eq!(again, identity, "the same device on the next owner");
    second.logout().await.unwrap();
    assert_eq!(rows(&db).await, 0, "logging out removes the keys");
    second.close().await;
    test.drop().await;
}

/// "Stream replaced" seen by the instance's owner comes from a stale node's connection (one
/// that resumed after a pause before fencing itself): the owner takes the session back. Seen by
/// a node that no longer owns the instance, it parks as on one server.
#[tokio::test]
async fn an_owner_replaced_by_a_stale_node_takes_its_session_back() {
    let Some(test) = TestDb::create(Backend::Postgres).await else { return };
    let db = test.conn.clone();
    let vault = Arc::new(KeyVault::new(db.clone(), &MasterKey([5; 32])));
    let connector = WhatsAppWebConnector::new(settings(Storage::Shared(vault)));
    let boot = InstanceBoot {
        instance_id: ID.into(),
        status: crate::instances::InstanceStatus::Unlinked,
        linked_phone: None,
        fence: own(&db, "node-a", 1).await,
        banned_until: None,
    };
    let (tx, _rx) = EventSink::channel(64);
    let session = connector.open(boot, tx).await.unwrap();
    let ww = session_of(&session);
    let first = client_where(ww, |_| true).await;
    ww.inner.apply(LinkChange::Replaced, &first);
    first.disconnect().await;
    let second = client_where(ww, |c| !Arc::ptr_eq(c, &first)).await;

    // Now another node owns it: this one was the stale one, and stays parked.
    own(&db, "node-b", 2).await;
    ww.inner.apply(LinkChange::Replaced, &second);
    second.disconnect().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(ww.client().is_none(), "a replaced session of a node that lost the instance stays parked");
    assert!(matches!(session.link_state().await, LinkState::Idle { .. }));
    session.close().await;
    test.drop().await;
}
