//! New deliveries wake the workers at once instead of waiting for a poll. Inside one process a
//! shared `Notify` does it (`wake()`, called after the commit that wrote the deliveries); across
//! processes PostgreSQL's LISTEN/NOTIFY does (`fan_out` notifies inside the transaction, which
//! PostgreSQL delivers only at commit). SQLite and MySQL have no such channel: other processes
//! see new work at their fallback poll.
use std::{sync::LazyLock, time::Duration};

use sea_orm::{DatabaseBackend, DatabaseConnection};
use tokio::sync::{futures::Notified, watch, Notify};

pub(crate) const CHANNEL: &str = "wag_webhooks";

static WAKE: LazyLock<Notify> = LazyLock::new(Notify::new);

/// Tells this process's delivery workers that deliveries were committed. Call it after the
/// commit (waking inside the transaction races it); a wake with nothing new is harmless.
pub fn wake() {
    WAKE.notify_waiters();
}

/// A wake-up to wait for, registered when this is called: a `wake()` that happens between
/// creating it and awaiting it is not lost (create it before looking for work).
pub(super) fn armed() -> std::pin::Pin<Box<Notified<'static>>> {
    let mut notified = Box::pin(WAKE.notified());
    notified.as_mut().enable();
    notified
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

    #[tokio::test]
    async fn a_wake_between_arming_and_waiting_is_not_lost() {
        let notified = armed();
        wake();
        tokio::time::timeout(Duration::from_secs(1), notified).await.expect("the early wake counts");
    }
}
