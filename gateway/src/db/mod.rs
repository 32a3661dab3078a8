//! Connecting to SQLite, PostgreSQL or MySQL/MariaDB by URL, running the migrations, and the
//! write transactions every concurrent write path goes through (`begin_write`).
use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

pub(crate) mod bulk;
pub mod checkpoint;
pub(crate) mod group_commit;
mod sqlite_write;

use migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbErr};
use sqlite_write::SqliteWrite;

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
    // sqlx pings every connection it hands out by default: a round trip (a thread hop on
    // SQLite) before every statement or transaction. A database file does not hang up; a server
    // (or a firewall between) may drop a connection left idle, so only those are checked.
    if is_sqlite {
        options.test_before_acquire(false);
    } else {
        options.test_before_acquire_if_idle_for(Duration::from_secs(30));
    }
    options.map_sqlx_postgres_opts(|o| o.statement_cache_capacity(STATEMENT_CACHE));
    options.map_sqlx_mysql_opts(|o| o.statement_cache_capacity(STATEMENT_CACHE));
    options.map_sqlx_sqlite_opts(|o| {
        use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
        o.journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(sqlite_write::BUSY_WAIT)
            // Checkpoints run beside the writers, not inside their commits (`checkpoint`).
            .pragma("wal_autocheckpoint", "0")
            // The log file is cut back to this size when it starts over after a checkpoint.
            .pragma("journal_size_limit", "67108864")
            .foreign_keys(true)
            .create_if_missing(true)
            .statement_cache_capacity(STATEMENT_CACHE)
    });
    Database::connect(options).await
}

/// Brings the schema up to date, one process at a time: several servers starting together on
/// one database would otherwise run the same migration at once and all but one would fail
/// half-way. PostgreSQL: a transaction-scoped advisory lock held by one pooled connection while
/// the migrations run on the others; MySQL/MariaDB: a named lock the same way; SQLite: one file,
/// a lock file beside the database file (`<file>.migrate-lock`), since another process may be
/// migrating between SQLite's transactions.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    use sea_orm::{DatabaseBackend, Statement, TransactionTrait};
    let backend = db.get_database_backend();
    let lock = match backend {
        DatabaseBackend::Postgres => Some(format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})")),
        DatabaseBackend::MySql => Some(format!("SELECT GET_LOCK('{MIGRATION_LOCK_NAME}', 600)")),
        _ => None,
    };
    let Some(lock) = lock else {
        let _file_lock = sqlite_migration_lock(db).await?;
        return Migrator::up(db, None).await;
    };
    let holder = db.begin().await?;
    holder.execute_raw(Statement::from_string(backend, lock)).await?;
    let migrated = Migrator::up(db, None).await;
    if backend == DatabaseBackend::MySql {
        let release = format!("SELECT RELEASE_LOCK('{MIGRATION_LOCK_NAME}')");
        holder.execute_raw(Statement::from_string(backend, release)).await?;
    }
    holder.commit().await?;
    migrated
}

/// Runs `work` unless another process is running work under the same lock: PostgreSQL's
/// transaction-scoped advisory lock (MySQL/MariaDB: a named lock), held by one pooled connection
/// while `work` runs on the others. `None` when another process holds it. SQLite runs `work`:
/// one file is one machine's, and its writers take turns anyway.
pub async fn alone<T>(
    db: &DatabaseConnection,
    lock_id: i64,
    work: impl std::future::Future<Output = T>,
) -> Result<Option<T>, DbErr> {
    use sea_orm::{DatabaseBackend, Statement, TransactionTrait};
    let backend = db.get_database_backend();
    let lock = match backend {
        DatabaseBackend::Postgres => format!("SELECT pg_try_advisory_xact_lock({lock_id}) AS taken"),
        DatabaseBackend::MySql => format!("SELECT GET_LOCK('wag_{lock_id}', 0) = 1 AS taken"),
        _ => return Ok(Some(work.await)),
    };
    let holder = db.begin().await?;
    let row = holder.query_one_raw(Statement::from_string(backend, lock)).await?;
    let taken = row.map(|r| r.try_get::<bool>("", "taken")).transpose()?.unwrap_or(false);
    if !taken {
        holder.rollback().await?;
        return Ok(None);
    }
    let result = work.await;
    if backend == DatabaseBackend::MySql {
        holder.execute_raw(Statement::from_string(backend, format!("SELECT RELEASE_LOCK('wag_{lock_id}')"))).await?;
    }
    holder.commit().await?;
    Ok(Some(result))
}

/// Holds an exclusive lock on `<database file>.migrate-lock` until dropped (none for an
/// in-memory database).
async fn sqlite_migration_lock(db: &DatabaseConnection) -> Result<Option<std::fs::File>, DbErr> {
    if db.get_database_backend() != sea_orm::DatabaseBackend::Sqlite {
        return Ok(None);
    }
    let path = db.get_sqlite_connection_pool().connect_options().get_filename().to_path_buf();
    if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" {
        return Ok(None);
    }
    let mut lock_path = path.into_os_string();
    lock_path.push(".migrate-lock");
    let locked = tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path)?;
        file.lock()?;
        Ok::<_, std::io::Error>(file)
    })
    .await
    .map_err(|e| DbErr::Custom(format!("taking the migration lock: {e}")))?
    .map_err(|e| DbErr::Custom(format!("taking the migration lock: {e}")))?;
    Ok(Some(locked))
}

/// The advisory lock key of migrations on PostgreSQL ("wagmigr" in ASCII).
const MIGRATION_LOCK_ID: i64 = 0x0077_6167_6d69_6772;
const MIGRATION_LOCK_NAME: &str = "wag_migrate";

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

/// A transaction that will write. On SQLite, one database file takes one writer at a time: the
/// transaction first waits its turn in this process's queue for that file (FIFO, woken at once),
/// then takes the write lock at BEGIN (IMMEDIATE) and runs its statements on the calling thread
/// (`sqlite_write`). Without the queue, every pooled connection would try the lock and wait in
/// SQLite's busy handler, which sleeps 1, 2, 5, 10… ms between tries — most of a send's latency
/// under load. Other databases get a plain transaction.
pub async fn begin_write(db: &DatabaseConnection) -> Result<WriteTxn, DbErr> {
    use sea_orm::TransactionTrait;
    let (txn, turn) = if db.get_database_backend() == sea_orm::DatabaseBackend::Sqlite {
        let file = sqlite_file(db);
        let turn = file.turn.clone().lock_owned().await;
        let txn = SqliteWrite::begin(db.get_sqlite_connection_pool()).await?;
        (Txn::Sqlite(txn, file.checkpoints.clone()), Some(turn))
    } else {
        (Txn::Server(db.begin().await?), None)
    };
    Ok(WriteTxn { txn, _turn: turn, deliveries_mark: crate::webhooks::wake::deliveries_mark() })
}

/// What the process keeps per SQLite file: the queue of its writers, and its checkpoints.
#[derive(Default)]
struct SqliteFile {
    turn: Arc<tokio::sync::Mutex<()>>,
    checkpoints: Arc<checkpoint::Checkpoints>,
}

fn sqlite_file(db: &DatabaseConnection) -> Arc<SqliteFile> {
    static FILES: OnceLock<Mutex<HashMap<PathBuf, Arc<SqliteFile>>>> = OnceLock::new();
    let file = db.get_sqlite_connection_pool().connect_options().get_filename().to_path_buf();
    let mut files = FILES.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    files.entry(file).or_default().clone()
}

/// A write transaction (see [`begin_write`]); it holds the SQLite writer's turn until it ends.
pub struct WriteTxn {
    // Ends (rolled back if not committed) before the turn is given up: fields drop in order.
    txn: Txn,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
    /// The process's count of written deliveries when the transaction began (see
    /// [`commit_and_wake`]).
    deliveries_mark: u64,
}

enum Txn {
    Sqlite(SqliteWrite, Arc<checkpoint::Checkpoints>),
    Server(DatabaseTransaction),
}

impl WriteTxn {
    pub async fn commit(self) -> Result<(), DbErr> {
        match self.txn {
            Txn::Sqlite(txn, checkpoints) => {
                txn.commit()?;
                checkpoints.committed();
                Ok(())
            }
            Txn::Server(txn) => txn.commit().await,
        }
    }

    pub async fn rollback(self) -> Result<(), DbErr> {
        match self.txn {
            Txn::Sqlite(txn, _) => txn.rollback(),
            Txn::Server(txn) => txn.rollback().await,
        }
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for WriteTxn {
    fn get_database_backend(&self) -> sea_orm::DbBackend {
        match &self.txn {
            Txn::Sqlite(..) => sea_orm::DbBackend::Sqlite,
            Txn::Server(txn) => txn.get_database_backend(),
        }
    }

    async fn execute_raw(&self, stmt: sea_orm::Statement) -> Result<sea_orm::ExecResult, DbErr> {
        match &self.txn {
            Txn::Sqlite(txn, _) => txn.execute(stmt),
            Txn::Server(txn) => txn.execute_raw(stmt).await,
        }
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<sea_orm::ExecResult, DbErr> {
        match &self.txn {
            Txn::Sqlite(txn, _) => txn.execute_unprepared(sql),
            Txn::Server(txn) => txn.execute_unprepared(sql).await,
        }
    }

    async fn query_one_raw(&self, stmt: sea_orm::Statement) -> Result<Option<sea_orm::QueryResult>, DbErr> {
        match &self.txn {
            Txn::Sqlite(txn, _) => txn.query_one(stmt),
            Txn::Server(txn) => txn.query_one_raw(stmt).await,
        }
    }

    async fn query_all_raw(&self, stmt: sea_orm::Statement) -> Result<Vec<sea_orm::QueryResult>, DbErr> {
        match &self.txn {
            Txn::Sqlite(txn, _) => txn.query_all(stmt),
            Txn::Server(txn) => txn.query_all_raw(stmt).await,
        }
    }
}

/// Rows per multi-row INSERT: far below every backend's limit on bound parameters (SQLite
/// 32,766, PostgreSQL and MySQL 65,535) for the widest table written in batches.
pub const INSERT_CHUNK: usize = 512;

/// Prepared statements each pooled connection keeps (sqlx's default is 100). Batch statements
/// come in a bounded number of shapes (see [`shaped_chunks`]: every list a batch statement takes is cut into pieces whose lengths are powers of two); a cache that holds them all
/// never evicts. On MySQL an eviction sends a close the server never answers, and the next
/// statement waits for its acknowledgement (Nagle's algorithm against delayed ACKs: ~40 ms).
/// MySQL allows 16,382 prepared statements in all by default: 16 connections × 256 leaves room
/// for several servers.
pub const STATEMENT_CACHE: usize = 256;

/// `items` cut into pieces whose lengths are powers of two, at most `max` (a power of two),
/// largest first: a multi-row statement over them has one of a few shapes (1, 2, 4 … `max`
/// rows), so its prepared form is found in the cache instead of being prepared anew for every
/// batch size.
pub fn shaped_chunks<T>(items: &[T], max: usize) -> impl Iterator<Item = &[T]> {
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let size = max.min(1 << rest.len().ilog2());
        let (piece, tail) = rest.split_at(size);
        rest = tail;
        Some(piece)
    })
}

/// Errors worth trying the whole transaction again for: a deadlock victim (PostgreSQL,
/// MySQL), a serialization failure, or SQLite's busy/locked after its timeout.
/// Whether an insert lost to a unique key (a row that is already there, or a race for it).
pub fn is_unique_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_)))
}

pub fn is_transient(error: &crate::Error) -> bool {
    let crate::Error::Db(e) = error else { return false };
    let text = e.to_string().to_ascii_lowercase();
    ["deadlock", "could not serialize", "database is locked", "lock wait timeout"].iter().any(|t| text.contains(t))
}

/// Commits a transaction that emitted events, then wakes this process's event sequencer, and its
/// webhook workers if the transaction wrote webhook deliveries. The wakes come after the commit
/// on purpose: a task woken earlier could look before the rows are visible and go back to sleep.
///
/// Whether it wrote any is read off the process's delivery counter, which every delivery insert
/// moves inside its transaction: a transaction that wrote some always finds the counter moved
/// since it began; one that wrote none may find it moved by another and wake the workers once
/// more, which costs a look and nothing else. So a send or receipt to an instance without
/// destinations no longer makes the workers look for work.
pub async fn commit_and_wake(txn: WriteTxn) -> Result<(), DbErr> {
    let wrote = crate::webhooks::wake::deliveries_mark() != txn.deliveries_mark;
    txn.commit().await?;
    crate::event_sequencer::wake();
    if wrote {
        crate::webhooks::wake();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_come_in_powers_of_two() {
        let items: Vec<u32> = (0..37).collect();
        let sizes: Vec<usize> = shaped_chunks(&items, 16).map(<[u32]>::len).collect();
        assert_eq!(sizes, [16, 16, 4, 1]);
        let joined: Vec<u32> = shaped_chunks(&items, 16).flatten().copied().collect();
        assert_eq!(joined, items, "every item once, in order");
        assert_eq!(shaped_chunks(&items[..0], 16).count(), 0);
    }
}
