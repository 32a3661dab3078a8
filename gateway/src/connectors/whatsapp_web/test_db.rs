//! A fresh database per test on SQLite, PostgreSQL or MariaDB (the last two when
//! `WAG_TEST_POSTGRES_URL` / `WAG_TEST_MYSQL_URL` name a server, as for the server's
//! integration tests), migrated, and dropped afterwards.
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};

#[derive(Clone, Copy, Debug)]
pub(super) enum Backend {
    Sqlite,
    Postgres,
    Mysql,
}

pub(super) struct TestDb {
    pub(super) backend: Backend,
    pub(super) conn: DatabaseConnection,
    pub(super) url: String,
    pub(super) admin: Option<(String, String)>,
    pub(super) dir: std::path::PathBuf,
}

impl TestDb {
    pub(super) async fn create(backend: Backend) -> Option<TestDb> {
        let name = format!("wag_gw_test_{}", ulid::Ulid::new().to_string().to_ascii_lowercase());
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        let server = |var: &str| match std::env::var(var) {
            Ok(url) => Some(url),
            Err(_) => {
                eprintln!("{backend:?} part skipped: {var} is not set");
                None
            }
        };
        let (url, admin) = match backend {
            Backend::Sqlite => (format!("sqlite://{}?mode=rwc", dir.join("wag.db").display()), None),
            Backend::Postgres => {
                let server = server("WAG_TEST_POSTGRES_URL")?;
                (with_database(&server, &name), Some((server, name)))
            }
            Backend::Mysql => {
                let server = server("WAG_TEST_MYSQL_URL")?;
                (with_database(&server, &name), Some((server, name)))
            }
        };
        if let Some((server, name)) = &admin {
            let db = Database::connect(server.as_str()).await.expect("connect to the test database server");
            db.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create the test database");
            db.close().await.ok();
        }
        let conn = crate::db::open(&url).await.expect("open the test database");
        Some(TestDb { backend, conn, url, admin, dir })
    }

    pub(super) async fn drop(self) {
        self.conn.close().await.ok();
        if let Some((server, name)) = &self.admin {
            if let Ok(db) = Database::connect(server.as_str()).await {
                let sql = match self.backend {
                    Backend::Postgres => format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                    _ => format!("DROP DATABASE IF EXISTS {name}"),
                };
                let _ = db.execute_unprepared(&sql).await;
                db.close().await.ok();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(super) fn with_database(server: &str, name: &str) -> String {
    let (base, query) = server.split_once('?').map_or((server, None), |(b, q)| (b, Some(q)));
    let start = base.find("://").map_or(0, |i| i + 3);
    let host = base[start..].find('/').map_or(base, |i| &base[..start + i]);
    match query {
        Some(q) => format!("{host}/{name}?{q}"),
        None => format!("{host}/{name}"),
    }
}
