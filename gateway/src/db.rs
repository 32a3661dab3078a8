//! Connecting to SQLite, PostgreSQL or MySQL/MariaDB by URL, and running the migrations.
use std::time::Duration;

use migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let is_sqlite = url.starts_with("sqlite:");
    if is_sqlite {
        ensure_sqlite_parent_dir(url);
    }
    let mut options = ConnectOptions::new(url.to_string());
    options
        .sqlx_logging(false)
        .max_connections(if is_sqlite { 8 } else { 16 })
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(15));
    options.map_sqlx_sqlite_opts(|o| {
        use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
        o.journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(15))
            .foreign_keys(true)
            .create_if_missing(true)
    });
    Database::connect(options).await
}

pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// Connects and brings the schema up to date: what every entry point does first.
pub async fn open(url: &str) -> Result<DatabaseConnection, String> {
    let db = connect(url).await.map_err(|e| format!("cannot open the database: {e}"))?;
    migrate(&db).await.map_err(|e| format!("database migration failed: {e}"))?;
    Ok(db)
}

/// `sqlite://./data/wag.db?mode=rwc` → make sure `./data` exists, so a fresh checkout starts.
fn ensure_sqlite_parent_dir(url: &str) {
    let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:").split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return;
    }
    if let Some(parent) = std::path::Path::new(path).parent() {
        if !parent.as_os_str().is_empty() {
            let _ = std::fs::create_dir_all(parent);
        }
    }
}

pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.ping().await
}

/// A transaction that will write. On SQLite it takes the write lock at BEGIN (IMMEDIATE), so
/// it waits its turn under the busy timeout instead of failing with SQLITE_BUSY when another
/// connection wrote after its first read; other databases ignore the option.
pub async fn begin_write(db: &DatabaseConnection) -> Result<sea_orm::DatabaseTransaction, DbErr> {
    use sea_orm::{SqliteTransactionMode, TransactionOptions, TransactionTrait};
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}

/// Commits, then wakes this process's webhook workers: for transactions that may have written
/// webhook deliveries (anything that emits events). The wake comes after the commit on purpose:
/// a worker woken earlier could look before the deliveries are visible and go back to sleep.
pub async fn commit_and_wake(txn: sea_orm::DatabaseTransaction) -> Result<(), DbErr> {
    txn.commit().await?;
    crate::webhooks::wake();
    Ok(())
}
