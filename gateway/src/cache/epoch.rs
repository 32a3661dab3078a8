//! The change counter behind the hot caches. Every write that changes what they hold (an API
//! key revoked, a plan, limit or module changed, an instance paused, renamed, relinked or
//! deleted) bumps one row in the same transaction, whichever process makes it (portal, CLI,
//! another server). Each server reads that row a few times a second and drops its copies when
//! it moved; in the writing process the change counts at once, right after the commit.
use std::sync::atomic::{AtomicU64, Ordering};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};

use crate::db::WriteTxn;

/// Changes committed by this process (every cache in it compares against this too).
static LOCAL: AtomicU64 = AtomicU64::new(0);

/// How often a server looks at the shared counter: changes made elsewhere apply within this.
pub const POLL_MS: u64 = 250;

pub(crate) fn local() -> u64 {
    LOCAL.load(Ordering::Acquire)
}

/// Marks the shared counter inside the caller's transaction; follow with [`commit`].
pub async fn mark<C: ConnectionTrait>(conn: &C) -> Result<(), DbErr> {
    conn.execute_unprepared("UPDATE change_epoch SET version = version + 1 WHERE id = 1").await?;
    Ok(())
}

/// Commits a transaction that called [`mark`], then lets this process's caches know. Counting
/// after the commit matters: a reader refilling its cache before then would read the old row.
pub async fn commit(txn: WriteTxn) -> Result<(), DbErr> {
    txn.commit().await?;
    LOCAL.fetch_add(1, Ordering::AcqRel);
    Ok(())
}

/// The shared counter's current value.
pub async fn read(db: &DatabaseConnection) -> Result<i64, DbErr> {
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT version FROM change_epoch WHERE id = 1",
        ))
        .await?;
    match row {
        Some(row) => row.try_get_by_index::<i64>(0),
        None => Ok(0),
    }
}
