//! Several `wag` servers on one database (issue 15): migrations run once however many servers
//! start together.
use crate::common::{Backend, TestDb};

on_every_database!(servers_starting_together_migrate_once);

/// Four servers starting at once on an empty database: each migrates, one after the other, and
/// every one of them starts; the schema is there once.
async fn servers_starting_together_migrate_once(backend: Backend) {
    let Some(db) = TestDb::create(backend).await else { return };
    let starts = (0..4).map(|_| {
        let url = db.url.clone();
        tokio::spawn(async move {
            let conn = gateway::db::connect(&url).await.expect("connect");
            let migrated = gateway::db::migrate(&conn).await;
            conn.close().await.ok();
            migrated
        })
    });
    for started in futures::future::join_all(starts).await {
        started.unwrap().expect("every server migrates without an error");
    }
    let conn = gateway::db::connect(&db.url).await.unwrap();
    use sea_orm::{ConnectionTrait, Statement};
    let applied = conn
        .query_one_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT COUNT(*) AS n FROM seaql_migrations",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap();
    use migrations::MigratorTrait;
    assert_eq!(applied as usize, migrations::Migrator::migrations().len());
    conn.close().await.ok();
    db.drop_database().await;
}
