//! The sea-orm session store on each database.
use std::collections::HashMap;

use gateway::session_store::DbSessionStore;
use tower_sessions::{
    session::{Id, Record},
    session_store::ExpiredDeletion,
    SessionStore,
};

use crate::common::{Backend, TestDb};

on_every_database!(session_store_round_trip);

async fn session_store_round_trip(backend: Backend) {
    let Some(test_db) = TestDb::create(backend).await else {
        return;
    };
    let db = gateway::db::connect(&test_db.url).await.unwrap();
    gateway::db::migrate(&db).await.unwrap();
    let store = DbSessionStore::new(db.clone());

    let mut data = HashMap::new();
    data.insert("account_id".to_string(), serde_json::json!(7));
    let mut record =
        Record { id: Id::default(), data, expiry_date: time::OffsetDateTime::now_utc() + time::Duration::hours(1) };
    store.create(&mut record).await.unwrap();
    assert_eq!(store.load(&record.id).await.unwrap(), Some(record.clone()));

    record.data.insert("flash".into(), serde_json::json!("hello"));
    store.save(&record).await.unwrap();
    assert_eq!(store.load(&record.id).await.unwrap().unwrap().data["flash"], "hello");

    let mut expired = Record {
        id: Id::default(),
        data: HashMap::new(),
        expiry_date: time::OffsetDateTime::now_utc() - time::Duration::hours(1),
    };
    store.create(&mut expired).await.unwrap();
    assert_eq!(store.load(&expired.id).await.unwrap(), None, "an expired session does not load");
    store.delete_expired().await.unwrap();
    assert_eq!(gateway::entities::session::Entity::find().all(&db).await.unwrap().len(), 1);

    store.delete(&record.id).await.unwrap();
    assert_eq!(store.load(&record.id).await.unwrap(), None);
    db.close().await.ok();
    test_db.drop_database().await;
}

use sea_orm::EntityTrait;
