//! 60 authenticated requests per minute per integration, counted in the database so the limit
//! holds across server processes; and a cap on how many refused (unauthenticated) requests are
//! written to the request log, so nobody can fill it by guessing.
use sea_orm::DatabaseConnection;

use crate::{counters::Counter, error::Result};

pub const REFUSALS_LOGGED_PER_MINUTE: i64 = 30;

async fn take(db: &DatabaseConnection, scope: String, limit: i64, now: i64) -> Result<Result<(), i64>> {
    let minute = now - now.rem_euclid(60);
    let keys = [("scope", scope.into()), ("window_start", minute.into())];
    let counter = Counter { table: "rate_windows", keys: keys.to_vec(), count_column: "count" };
    if counter.try_take(db, limit).await?.is_some() {
        Ok(Ok(()))
    } else {
        Ok(Err((minute + 60 - now).max(1)))
    }
}

/// Admits one authenticated request, or answers the seconds until the next minute.
pub async fn admit(db: &DatabaseConnection, integration_id: &str, now: i64) -> Result<Result<(), i64>> {
    take(db, format!("3cx:{integration_id}"), super::REQUESTS_PER_MINUTE, now).await
}

/// Whether this refused request may still be written to the request log this minute.
pub async fn may_log_refusal(db: &DatabaseConnection, integration_id: &str, now: i64) -> Result<bool> {
    Ok(take(db, format!("3cx-refused:{integration_id}"), REFUSALS_LOGGED_PER_MINUTE, now).await?.is_ok())
}
