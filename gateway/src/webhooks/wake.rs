//! New deliveries wake the workers at once instead of waiting for a poll. Inside one process a
//! shared `Notify` does it (`wake()`, called after the commit that wrote the deliveries); across
//! processes PostgreSQL's LISTEN/NOTIFY does (`fan_out` notifies inside the transaction, which
//! PostgreSQL delivers only at commit; at most one busy transaction per 25 ms does, see
//! `notify_other_processes`). SQLite and MySQL have no such channel: other processes see new
//! work at their fallback poll.
use std::{
    sync::{
        atomic::{AtomicI64, AtomicU64, Ordering},
        LazyLock,
    },
    time::Duration,
};

use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection};
use tokio::sync::{futures::Notified, watch};

use crate::error::Result;

pub(crate) const CHANNEL: &str = "wag_webhooks";

static WAKE: LazyLock<tokio::sync::Notify> = LazyLock::new(tokio::sync::Notify::new);

/// How many times this process has written deliveries (committed or not); see
/// `db::commit_and_wake`.
static DELIVERIES_WRITTEN: AtomicU64 = AtomicU64::new(0);

pub(crate) fn deliveries_mark() -> u64 {
    DELIVERIES_WRITTEN.load(Ordering::SeqCst)
}

/// Called inside the transaction that inserts deliveries.
pub(super) fn deliveries_written() {
    DELIVERIES_WRITTEN.fetch_add(1, Ordering::SeqCst);
}

/// Tells this process's delivery workers that deliveries were committed. Call it after the
/// commit (waking inside the transaction races it); a wake with nothing new is harmless.
pub fn wake() {
    WAKE.notify_waiters();
}

/// A wake-up to wait for, registered when this is called: a `wake()` that happens between
/// creating it and awaiting it is not lost (create it before looking for work).
pub(crate) fn armed() -> std::pin::Pin<Box<Notified<'static>>> {
    let mut notified = Box::pin(WAKE.notified());
    notified.as_mut().enable();
    notified
}

/// Whether a NOTIFY may be skipped when another was sent a moment ago.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Notify {
    Throttled,
    Always,
}

/// PostgreSQL commits every transaction that sent a NOTIFY under one global lock, held through
/// its WAL flush, so notifying commits run one at a time (pgbench with 8 clients on the
/// development machine: 378 instead of 1484 commits/s). So in busy write transactions at most
/// one per this interval notifies; the others' deliveries are sent by this process's own
/// worker, which `db::commit_and_wake` wakes after every commit that wrote some, and other processes hear of
/// them with the next notification (they claim whatever is due, not particular rows).
const NOTIFY_EVERY_MS: i64 = 25;
static LAST_NOTIFY_MS: AtomicI64 = AtomicI64::new(0);

/// On PostgreSQL, tells every worker process (through LISTEN/NOTIFY) that deliveries were
/// written. Inside a transaction PostgreSQL delivers it only at commit, which is exactly when
/// the deliveries become visible.
pub(super) async fn notify_other_processes<C: ConnectionTrait>(conn: &C, how: Notify) -> Result<()> {
    if conn.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(());
    }
    if how == Notify::Throttled && !take_turn(&LAST_NOTIFY_MS, chrono::Utc::now().timestamp_millis()) {
        return Ok(());
    }
    conn.execute_unprepared(&format!("SELECT pg_notify('{CHANNEL}', '')")).await?;
    Ok(())
}

/// Whether a notification may go at `now_ms`, the last having gone at `last`'s time; if so,
/// records this one. One caller wins when several race.
fn take_turn(last: &AtomicI64, now_ms: i64) -> bool {
    let previous = last.load(Ordering::Relaxed);
    now_ms - previous >= NOTIFY_EVERY_MS
        && last.compare_exchange(previous, now_ms, Ordering::Relaxed, Ordering::Relaxed).is_ok()
}

/// On PostgreSQL, listens for other processes' new deliveries and wakes this one's workers;
/// reconnects with backoff when the connection drops. Returns at once on other databases.
pub(super) async fn listen(db: DatabaseConnection, mut shutdown: watch::Receiver<bool>) {
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return;
    }
    let pool = db.get_postgres_connection_pool().clone();
    let mut backoff = Duration::from_millis(100);
    loop {
        let connected = async {
            let mut listener = sea_orm::sqlx::postgres::PgListener::connect_with(&pool).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sea_orm::sqlx::Error>(listener)
        };
        let mut listener = tokio::select! {
            result = connected => match result {
                Ok(listener) => listener,
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "listening for webhook notifications failed");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        // Anything committed while we were not listening is found by this wake.
        wake();
        loop {
            tokio::select! {
                received = listener.try_recv() => match received {
                    Ok(Some(_)) => {
                        backoff = Duration::from_millis(100);
                        wake();
                    }
                    // The connection dropped and was made again: notifications in between are lost.
                    Ok(None) => wake(),
                    Err(e) => {
                        tracing::warn!(error = %e, "the webhook notification listener stopped; reconnecting");
                        break;
                    }
                },
                _ = shutdown.changed() => return,
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_transactions_take_turns_to_notify() {
        let last = AtomicI64::new(0);
        assert!(take_turn(&last, 1_000));
        assert!(!take_turn(&last, 1_000 + NOTIFY_EVERY_MS - 1), "too soon after the last one");
        assert!(take_turn(&last, 1_000 + NOTIFY_EVERY_MS));
    }

    #[tokio::test]
    async fn a_wake_between_arming_and_waiting_is_not_lost() {
        let notified = armed();
        wake();
        tokio::time::timeout(Duration::from_secs(1), notified).await.expect("the early wake counts");
    }
}
