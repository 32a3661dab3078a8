//! Messages and failures per account and clock hour, kept up to date in the transactions that
//! create and fail messages, so the message log's failure rates read a few rows instead of
//! counting the messages table. A message counts in the hour it was created, also when it fails
//! later.
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, Value};

use crate::{counters::Counter, entities::message_stat, error::Result, message_log::FailureRate};

fn hour_of(at: i64) -> i64 {
    at - at.rem_euclid(3600)
}

async fn bump<C: ConnectionTrait>(conn: &C, account_id: i64, at: i64, column: &'static str, n: i64) -> Result<()> {
    let keys: Vec<(&'static str, Value)> = vec![("account_id", account_id.into()), ("hour_start", hour_of(at).into())];
    Counter { table: "message_stats", keys, count_column: column }.add(conn, n).await?;
    Ok(())
}

/// `n` messages were admitted at `created_at` (a batch's, in one statement).
pub async fn count_created_n<C: ConnectionTrait>(conn: &C, account_id: i64, created_at: i64, n: i64) -> Result<()> {
    bump(conn, account_id, created_at, "total", n).await
}

/// `n` messages created in the hour of `created_at` failed.
pub async fn count_failed_n<C: ConnectionTrait>(conn: &C, account_id: i64, created_at: i64, n: i64) -> Result<()> {
    bump(conn, account_id, created_at, "failed", n).await
}

/// Messages created in the hours that overlap [from, until), and how many of them failed. `from`
/// is rounded down to its hour: "the last 24 hours" covers 24 to 25 hours.
pub async fn failure_rate(db: &DatabaseConnection, account_id: i64, from: i64, until: i64) -> Result<FailureRate> {
    let rows = message_stat::Entity::find()
        .filter(message_stat::Column::AccountId.eq(account_id))
        .filter(message_stat::Column::HourStart.gte(hour_of(from)))
        .filter(message_stat::Column::HourStart.lt(until))
        .all(db)
        .await?;
    let mut rate = FailureRate::default();
    for row in rows {
        rate.total += row.total.max(0) as u64;
        rate.failed += row.failed.max(0) as u64;
    }
    Ok(rate)
}
