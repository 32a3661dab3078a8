//! Write transactions on SQLite whose statements run on the calling thread.
//!
//! sqlx runs every SQLite statement on the connection's own thread: a message there and one
//! back, two thread wake-ups, for each statement. A write transaction holds SQLite's one write
//! lock through all of its statements, so those wake-ups were the lock's hold time, and with it
//! the ceiling of everything that writes (a profile of the send path put most of the writer's
//! time in the kernel, switching threads). Here the transaction takes its connection away from
//! that thread once (`lock_handle_owned`, a small addition to the vendored sqlx-sqlite) and runs
//! its statements directly, with the connection's own prepared-statement cache.
//!
//! Statements then run on a runtime worker thread. They are short: the transaction's own rows
//! and index lookups. The only wait SQLite could impose, another process holding the write lock
//! at BEGIN, is waited for here with `sleep`, never inside SQLite's busy handler.
use std::{
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use sea_orm::{
    sqlx::{
        self,
        pool::PoolConnection,
        sqlite::{OwnedLockedSqliteHandle, Sqlite, SqlitePool, SqliteQueryResult, SqliteRow},
        AssertSqlSafe, IntoArguments,
    },
    DbErr, ExecResult, QueryResult, RuntimeErr, Statement,
};
use sea_query_sqlx::SqlxValues;

/// How long BEGIN waits for another process's write to end: the busy timeout the connections
/// have for everything else (`db::connect`).
pub(super) const BUSY_WAIT: Duration = Duration::from_secs(15);

/// An open `BEGIN IMMEDIATE` transaction on a pooled connection, run on the caller's thread.
/// Dropped without [`SqliteWrite::commit`], it rolls back.
pub(crate) struct SqliteWrite {
    // Dropped before `_conn` (fields drop in order): the connection goes back to its worker
    // thread, then to the pool.
    handle: Mutex<Handle>,
    _conn: PoolConnection<Sqlite>,
}

/// The connection taken from its worker, with SQLite's busy handler off. Dropped, it rolls back
/// a transaction left open and turns the busy handler back on, whenever that happens: after a
/// commit, on an error, or when the task is cancelled while BEGIN waits.
struct Handle {
    locked: OwnedLockedSqliteHandle,
    open: bool,
}

impl SqliteWrite {
    pub(crate) async fn begin(pool: &SqlitePool) -> Result<SqliteWrite, DbErr> {
        let mut conn = pool.acquire().await.map_err(conn_err)?;
        let mut locked = conn.lock_handle_owned().await.map_err(conn_err)?;
        // SQLite's busy handler would sleep on this thread; BEGIN is retried here instead.
        locked.execute("PRAGMA busy_timeout = 0", None).map_err(exec_err)?;
        let mut handle = Handle { locked, open: false };
        let deadline = Instant::now() + BUSY_WAIT;
        let mut pause = Duration::from_millis(1);
        loop {
            match handle.locked.execute("BEGIN IMMEDIATE", None) {
                Ok(_) => break,
                Err(e) if is_busy(&e) && Instant::now() < deadline => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(e) => return Err(exec_err(e)),
            }
        }
        handle.open = true;
        Ok(SqliteWrite { handle: Mutex::new(handle), _conn: conn })
    }

    pub(crate) fn commit(self) -> Result<(), DbErr> {
        self.end("COMMIT")
    }

    pub(crate) fn rollback(self) -> Result<(), DbErr> {
        self.end("ROLLBACK")
    }

    fn end(&self, sql: &'static str) -> Result<(), DbErr> {
        let mut handle = self.lock();
        handle.locked.execute(sql, None).map_err(exec_err)?;
        handle.open = false;
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Handle> {
        self.handle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn run(&self, stmt: Statement) -> Result<(SqliteQueryResult, Vec<SqliteRow>), sqlx::Error> {
        let arguments = stmt.values.map(|values| IntoArguments::<Sqlite>::into_arguments(SqlxValues(values)));
        self.lock().locked.execute(AssertSqlSafe(stmt.sql), arguments)
    }

    pub(crate) fn execute(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.run(stmt).map(|(done, _)| done.into()).map_err(exec_err)
    }

    pub(crate) fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        let mut handle = self.lock();
        handle.locked.execute(AssertSqlSafe(sql.to_string()), None).map(|(done, _)| done.into()).map_err(exec_err)
    }

    pub(crate) fn query_all(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.run(stmt).map(|(_, rows)| rows.into_iter().map(QueryResult::from).collect()).map_err(query_err)
    }

    pub(crate) fn query_one(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.run(stmt).map(|(_, rows)| rows.into_iter().next().map(QueryResult::from)).map_err(query_err)
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if self.open {
            if let Err(e) = self.locked.execute("ROLLBACK", None) {
                tracing::warn!(error = %e, "rolling back an unfinished SQLite write failed");
            }
        }
        if let Err(e) = self.locked.execute(RESTORE_BUSY_TIMEOUT, None) {
            tracing::warn!(error = %e, "restoring a SQLite connection's busy timeout failed");
        }
    }
}

/// `BUSY_WAIT` as a constant statement, so it stays prepared.
const RESTORE_BUSY_TIMEOUT: &str = "PRAGMA busy_timeout = 15000";

/// SQLITE_BUSY and its extended codes (the low byte is the primary code).
fn is_busy(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(e) = error else { return false };
    e.code().and_then(|c| c.parse::<i32>().ok()).is_some_and(|c| c & 0xff == 5)
}

fn exec_err(e: sqlx::Error) -> DbErr {
    DbErr::Exec(RuntimeErr::SqlxError(Arc::new(e)))
}

fn query_err(e: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(Arc::new(e)))
}

fn conn_err(e: sqlx::Error) -> DbErr {
    DbErr::Conn(RuntimeErr::SqlxError(Arc::new(e)))
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, TransactionTrait};

    use crate::db;

    async fn scratch() -> (DatabaseConnection, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("wag-sqlite-write-{}", crate::ids::new_id("t")));
        let url = format!("sqlite://{}?mode=rwc", dir.join("wag.db").display());
        let db = db::connect(&url).await.expect("open a scratch database");
        db.execute_unprepared("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE)").await.unwrap();
        (db, dir)
    }

    fn sql(text: &str) -> Statement {
        Statement::from_string(sea_orm::DatabaseBackend::Sqlite, text)
    }

    /// Another connection takes the write lock and keeps it, as another process would.
    async fn hold_the_write_lock(db: &DatabaseConnection) -> sea_orm::DatabaseTransaction {
        let options = sea_orm::TransactionOptions {
            sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
            ..Default::default()
        };
        db.begin_with_options(options).await.unwrap()
    }

    async fn values(db: &DatabaseConnection) -> Vec<String> {
        let rows = db.query_all_raw(sql("SELECT v FROM t ORDER BY id")).await.unwrap();
        rows.iter().map(|r| r.try_get::<String>("", "v").unwrap()).collect()
    }

    #[tokio::test]
    async fn commits_rolls_back_and_drops_as_a_transaction() {
        let (db, dir) = scratch().await;
        let txn = db::begin_write(&db).await.unwrap();
        let insert = Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Sqlite,
            "INSERT INTO t (v) VALUES ($1), ($2) RETURNING id",
            ["a".into(), "b".into()],
        );
        assert_eq!(txn.query_all_raw(insert).await.unwrap().len(), 2, "RETURNING rows come back");
        let done = txn.execute_raw(sql("UPDATE t SET v = v || '!'")).await.unwrap();
        assert_eq!(done.rows_affected(), 2);
        txn.commit().await.unwrap();
        assert_eq!(values(&db).await, ["a!", "b!"]);

        let txn = db::begin_write(&db).await.unwrap();
        txn.execute_raw(sql("DELETE FROM t")).await.unwrap();
        txn.rollback().await.unwrap();
        let txn = db::begin_write(&db).await.unwrap();
        txn.execute_raw(sql("DELETE FROM t")).await.unwrap();
        drop(txn);
        assert_eq!(values(&db).await, ["a!", "b!"], "a rollback and a drop both leave the rows");

        // A failed statement leaves the transaction usable and reports the database's error.
        let txn = db::begin_write(&db).await.unwrap();
        let duplicate = txn.execute_raw(sql("INSERT INTO t (v) VALUES ('a!')")).await.unwrap_err();
        assert!(matches!(duplicate.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))), "{duplicate}");
        txn.execute_raw(sql("INSERT INTO t (v) VALUES ('c')")).await.unwrap();
        txn.commit().await.unwrap();
        assert_eq!(values(&db).await, ["a!", "b!", "c"]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn waits_for_a_write_lock_held_elsewhere_without_blocking_the_runtime() {
        let (db, dir) = scratch().await;
        let other = hold_the_write_lock(&db).await;
        other.execute_raw(sql("INSERT INTO t (v) VALUES ('first')")).await.unwrap();
        let writer = {
            let db = db.clone();
            tokio::spawn(async move {
                let txn = db::begin_write(&db).await.unwrap();
                txn.execute_raw(sql("INSERT INTO t (v) VALUES ('second')")).await.unwrap();
                txn.commit().await.unwrap();
            })
        };
        // This test runs on a current-thread runtime: had the writer blocked its thread in
        // SQLite's busy handler, this sleep could not end before the writer gave up.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(!writer.is_finished(), "the writer waits for the lock");
        other.commit().await.unwrap();
        writer.await.unwrap();
        assert_eq!(values(&db).await, ["first", "second"]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_writer_cancelled_while_waiting_gives_its_connection_back_as_it_was() {
        let (db, dir) = scratch().await;
        let other = hold_the_write_lock(&db).await;
        let waiting = {
            let db = db.clone();
            tokio::spawn(async move { db::begin_write(&db).await.map(|_| ()) })
        };
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        waiting.abort();
        assert!(waiting.await.unwrap_err().is_cancelled());
        other.rollback().await.unwrap();
        // Every pooled connection (the one the writer had among them) waits for locks again.
        let pool = db.get_sqlite_connection_pool();
        let mut held = Vec::new();
        for _ in 0..pool.options().get_max_connections() {
            let mut conn = pool.acquire().await.unwrap();
            let timeout: i64 = sea_orm::sqlx::query_scalar("PRAGMA busy_timeout").fetch_one(&mut *conn).await.unwrap();
            assert_eq!(timeout, super::BUSY_WAIT.as_millis() as i64);
            held.push(conn);
        }
        drop(held);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_restored_busy_timeout_is_busy_wait() {
        assert_eq!(super::RESTORE_BUSY_TIMEOUT, format!("PRAGMA busy_timeout = {}", super::BUSY_WAIT.as_millis()));
    }
}
