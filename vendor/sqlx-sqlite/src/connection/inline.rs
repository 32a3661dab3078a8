//! WA Gateway addition (see vendor/README.md): run statements on the caller's thread.
//!
//! Every statement sqlx runs on SQLite is a message to the connection's worker thread and back.
//! A write transaction of many statements pays that round trip (two thread wake-ups) for each
//! of them while it holds SQLite's one write lock. `OwnedLockedSqliteHandle` takes the
//! connection away from its worker (as `lock_handle` does, but without borrowing the
//! connection, so it can live across `.await`s inside a transaction object) and runs
//! statements directly, with the connection's own prepared-statement cache.
use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use std::sync::Arc;

use futures_intrusive::sync::MutexGuard;
use libsqlite3_sys::sqlite3;
use sqlx_core::error::Error;
use sqlx_core::sql_str::SqlSafeStr;
use sqlx_core::Either;

use crate::connection::worker::WorkerSharedState;
use crate::connection::{execute, ConnectionState};
use crate::{SqliteArguments, SqliteConnection, SqliteQueryResult, SqliteRow};

/// The connection's state, locked away from its worker thread until this is dropped. While it
/// lives, commands sent to the connection wait: the owner must not use the `SqliteConnection`
/// it came from (keep both together and drop this first).
pub struct OwnedLockedSqliteHandle {
    // Borrows from `shared`; dropped first (see `Drop`).
    guard: ManuallyDrop<MutexGuard<'static, ConnectionState>>,
    _shared: Arc<WorkerSharedState>,
}

// SAFETY: the guard is only a reference to the mutex (kept alive by `_shared`) and the lock is
// not tied to a thread (futures_intrusive's async mutex).
unsafe impl Send for OwnedLockedSqliteHandle {}

impl SqliteConnection {
    /// Like [`SqliteConnection::lock_handle`], but the lock does not borrow the connection.
    pub async fn lock_handle_owned(&mut self) -> Result<OwnedLockedSqliteHandle, Error> {
        let shared = Arc::clone(&self.worker.shared);
        let guard = self.worker.unlock_db().await?;
        // SAFETY: the guard refers to `shared.conn`, which the Arc stored beside it keeps alive
        // for as long as the guard exists; `Drop` releases the guard before the Arc.
        let guard: MutexGuard<'static, ConnectionState> = unsafe { std::mem::transmute(guard) };
        Ok(OwnedLockedSqliteHandle { guard: ManuallyDrop::new(guard), _shared: shared })
    }
}

impl OwnedLockedSqliteHandle {
    pub fn as_raw_handle(&mut self) -> NonNull<sqlite3> {
        self.guard.handle.as_non_null_ptr()
    }

    /// Runs `query` (one or more statements) on this thread, with its prepared form kept in the
    /// connection's statement cache; returns the summed result and every row produced.
    pub fn execute(
        &mut self,
        query: impl SqlSafeStr,
        arguments: Option<SqliteArguments>,
    ) -> Result<(SqliteQueryResult, Vec<SqliteRow>), Error> {
        let mut result = SqliteQueryResult::default();
        let mut rows = Vec::new();
        for step in execute::iter(&mut self.guard, query, arguments, true)? {
            match step? {
                Either::Left(done) => result.extend(std::iter::once(done)),
                Either::Right(row) => rows.push(row),
            }
        }
        Ok((result, rows))
    }
}

impl Drop for OwnedLockedSqliteHandle {
    fn drop(&mut self) {
        // SAFETY: dropped once, here, while `_shared` is still alive.
        unsafe { ManuallyDrop::drop(&mut self.guard) }
    }
}
