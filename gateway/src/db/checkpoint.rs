//! SQLite checkpoints, off the write path.
//!
//! In WAL mode a commit appends pages to the log, and a checkpoint copies them back into the
//! database file, with an fsync of each. SQLite's default does that inside the commit that
//! crosses 1,000 pages, so every few hundred sends one writer copied megabytes and waited for
//! the disk while holding the write lock, which every other writer queues for. The connections
//! have automatic checkpoints switched off (`db::connect`) and this task checkpoints instead,
//! on a pooled connection's own thread, beside the writers (PASSIVE: it never takes the write
//! lock, and copies what no reader still needs).
use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use tokio::sync::{watch, Notify};

/// Commits between checkpoints. A send's commits append a few pages each; this keeps the log
/// to a few megabytes under load.
const COMMITS: u64 = 256;
/// A checkpoint also runs this often, for writes made outside `db::begin_write`.
const SWEEP: Duration = Duration::from_secs(10);

/// One database file's count of write transactions committed, and the checkpointer's wake-up.
#[derive(Default)]
pub(crate) struct Checkpoints {
    commits: AtomicU64,
    wake: Notify,
}

impl Checkpoints {
    /// Called after each commit of a write transaction.
    pub(crate) fn committed(&self) {
        if (self.commits.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(COMMITS) {
            // A permit is kept if the checkpointer is busy, so this wake is not lost.
            self.wake.notify_one();
        }
    }
}

/// Checkpoints `db`'s file until shutdown. Returns at once on other databases.
pub async fn run(db: DatabaseConnection, mut shutdown: watch::Receiver<bool>) {
    if db.get_database_backend() != sea_orm::DatabaseBackend::Sqlite {
        return;
    }
    let file: Arc<Checkpoints> = super::sqlite_file(&db).checkpoints.clone();
    loop {
        tokio::select! {
            _ = file.wake.notified() => {}
            _ = tokio::time::sleep(SWEEP) => {}
            _ = shutdown.changed() => return,
        }
        if let Err(e) = checkpoint(&db).await {
            tracing::warn!(error = %e, "a SQLite checkpoint failed; the next one catches up");
        }
    }
}

/// One PASSIVE checkpoint: copies the log's pages that no reader still needs into the database.
pub async fn checkpoint(db: &DatabaseConnection) -> Result<(), sea_orm::DbErr> {
    let stmt = Statement::from_string(sea_orm::DatabaseBackend::Sqlite, "PRAGMA wal_checkpoint(PASSIVE)");
    db.query_one_raw(stmt).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sea_orm::{ConnectionTrait, Statement};

    use crate::db;

    #[tokio::test]
    async fn commits_leave_the_copy_to_the_checkpointer() {
        let dir = std::env::temp_dir().join(format!("wag-checkpoint-{}", crate::ids::new_id("t")));
        let file = dir.join("wag.db");
        let db = db::connect(&format!("sqlite://{}?mode=rwc", file.display())).await.unwrap();
        db.execute_unprepared("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)").await.unwrap();
        let size = || std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        let before = size();

        // Four megabytes in the log (past SQLite's own 1,000-page checkpoint), one commit short
        // of the checkpointer's turn: nothing copies it.
        for _ in 0..super::COMMITS - 1 {
            let txn = db::begin_write(&db).await.unwrap();
            txn.execute_raw(Statement::from_string(
                sea_orm::DatabaseBackend::Sqlite,
                "INSERT INTO t (v) VALUES (zeroblob(16384))",
            ))
            .await
            .unwrap();
            txn.commit().await.unwrap();
        }
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let checkpointer = tokio::spawn(super::run(db.clone(), stopped));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(size() < before + 1024 * 1024, "no commit copied the log into the database file");

        // The next commit wakes the checkpointer, which copies it.
        let txn = db::begin_write(&db).await.unwrap();
        txn.execute_unprepared("INSERT INTO t (v) VALUES (zeroblob(16384))").await.unwrap();
        txn.commit().await.unwrap();
        let mut waited = Duration::ZERO;
        while size() < before + super::COMMITS * 16384 && waited < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(20)).await;
            waited += Duration::from_millis(20);
        }
        assert!(size() >= before + super::COMMITS * 16384, "the checkpointer copied the log: {} bytes", size());
        let _ = stop.send(true);
        checkpointer.await.unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }
}
