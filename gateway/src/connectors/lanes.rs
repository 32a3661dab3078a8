//! One lane per instance between its connector session and the database: a bounded queue and a
//! task of its own, made on first use. A busy or stuck instance fills only its own queue (and
//! slows only its own session down); the others keep going.
//!
//! The task drains what has gathered — up to [`MAX_BATCH`] events — and stores the inbound
//! messages among them in one transaction (group commit), the delivery receipts in another,
//! other events one by one, in order.
//! A database error is retried with backoff: for as long as it lasts when it is the kind that
//! passes (a lock, a deadlock, a lost connection), a few times otherwise. Only then is a waiting
//! sender told it failed (whatsapp-web then leaves the messages unacknowledged, so WhatsApp
//! delivers them again), and the error is logged with the instance.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use sea_orm::{DatabaseConnection, DbErr};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{
    record::ReceiptWriter,
    sink::{Report, Reports, Unrecorded},
    ConnectorEvent, EventKind, EventSink, InboundMessage,
};
use crate::error::Error;

/// Events queued per lane before a sender waits.
const LANE_QUEUE: usize = 1024;
/// Events one turn of a lane takes at most (one transaction for the messages among them).
pub(crate) const MAX_BATCH: usize = 256;
/// Tries for an error that is not known to pass by itself.
const STUBBORN_TRIES: u32 = 4;

/// Waits between tries: 50 ms, doubled per failure, at most 5 s.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: Duration::from_millis(50) }
    }
}

impl Backoff {
    pub(crate) fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(Duration::from_secs(5));
        wait
    }
}

/// An error that goes away by waiting: the database busy, locked, unreachable or restarting.
fn passes(error: &Error) -> bool {
    if crate::db::is_transient(error) {
        return true;
    }
    let Error::Db(e) = error else { return false };
    if matches!(e, DbErr::ConnectionAcquire(_) | DbErr::Conn(_)) {
        return true;
    }
    let text = e.to_string().to_ascii_lowercase();
    [
        "connection refused",
        "connection reset",
        "broken pipe",
        "pool timed out",
        "server has gone away",
        "lost connection",
    ]
    .iter()
    .any(|t| text.contains(t))
}

/// Runs `attempt` until it succeeds, or fails with an error that does not pass after
/// [`STUBBORN_TRIES`]; logs while it waits.
async fn with_retries<T, F, Fut>(instance_id: &str, what: &str, mut attempt: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    let mut backoff = Backoff::default();
    let mut failures = 0u32;
    let mut stubborn = 0u32;
    loop {
        match attempt().await {
            Ok(done) => {
                if failures > 0 {
                    tracing::info!(instance_id, what, failures, "stored after retrying");
                }
                return Ok(done);
            }
            Err(e) => {
                failures += 1;
                if !passes(&e) {
                    stubborn += 1;
                    if stubborn >= STUBBORN_TRIES {
                        return Err(e);
                    }
                }
                let wait = backoff.next_wait();
                // The first failure and then every tenth: a long lock must not flood the log.
                if failures == 1 || failures % 10 == 0 {
                    tracing::warn!(instance_id, what, failures, error = %e, retry_in_ms = wait.as_millis() as u64, "storing connector events failed; retrying");
                }
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// The lanes of this process, by instance id.
pub(crate) struct Lanes {
    db: DatabaseConnection,
    /// One writer for the receipts of every lane.
    receipts: Arc<ReceiptWriter>,
    open: Mutex<HashMap<String, EventSink>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    stop: CancellationToken,
    fence: Arc<std::sync::OnceLock<Fence>>,
    metrics: Arc<std::sync::OnceLock<Arc<crate::metrics::Metrics>>>,
}

/// With several servers: what this node owns. A session's state changes and receipts are
/// written only while this node still owns the instance at the epoch the session was opened
/// with; a node that was paused past its lease finds another owner (or a higher epoch, when it
/// took the instance back since) and writes nothing of the old session.
pub(crate) struct Fence {
    pub node_id: String,
    pub owned: Arc<crate::cluster::node::Owned>,
}

impl Lanes {
    pub(crate) fn new(db: DatabaseConnection) -> Lanes {
        Lanes {
            receipts: Arc::new(ReceiptWriter::new(db.clone())),
            db,
            open: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
            stop: CancellationToken::new(),
            fence: Arc::new(std::sync::OnceLock::new()),
            metrics: Arc::new(std::sync::OnceLock::new()),
        }
    }

    pub(crate) fn count_with(&self, metrics: Arc<crate::metrics::Metrics>) {
        let _ = self.metrics.set(metrics);
    }

    pub(crate) fn fence_with(&self, fence: Fence) {
        let _ = self.fence.set(fence);
    }

    /// The instance's lane, started on first use.
    pub(crate) fn sink(&self, instance_id: &str) -> EventSink {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(sink) = open.get(instance_id) {
            return sink.clone();
        }
        let (sink, reports) = EventSink::channel(LANE_QUEUE);
        // The epoch the instance's session runs with here: a lane serves one session, and what
        // it reports is checked against that epoch, not whatever this node holds later.
        let epoch = self.fence.get().and_then(|fence| fence.owned.epoch(instance_id));
        let store = Store {
            db: self.db.clone(),
            receipts: self.receipts.clone(),
            fence: self.fence.clone(),
            epoch,
            metrics: self.metrics.clone(),
        };
        let task = tokio::spawn(run(store, instance_id.to_string(), reports, self.stop.clone()));
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
        open.insert(instance_id.to_string(), sink.clone());
        sink
    }

    /// Forgets the instance's lane: it ends once its session's sink is gone and its queue is
    /// stored.
    pub(crate) fn remove(&self, instance_id: &str) {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).remove(instance_id);
    }

    /// Lets every lane store what is queued, for up to `limit`; then stops them. Whoever still
    /// waits is told the events were not stored (whatsapp-web leaves those messages unacknowledged).
    pub(crate) async fn close(&self, limit: Duration) {
        self.stop.cancel();
        self.open.lock().unwrap_or_else(|p| p.into_inner()).clear();
        let tasks: Vec<_> = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        let aborts: Vec<_> = tasks.iter().map(|t| t.abort_handle()).collect();
        if tokio::time::timeout(limit, futures::future::join_all(tasks)).await.is_err() {
            tracing::warn!(lanes = aborts.len(), "connector events still unstored at shutdown; stopping their lanes");
            for abort in aborts {
                abort.abort();
            }
        }
    }
}

/// Where a lane stores what it takes.
#[derive(Clone)]
pub(crate) struct Store {
    pub db: DatabaseConnection,
    pub receipts: Arc<ReceiptWriter>,
    pub fence: Arc<std::sync::OnceLock<Fence>>,
    /// With several servers: the epoch this lane's session was opened with.
    pub epoch: Option<i64>,
    pub metrics: Arc<std::sync::OnceLock<Arc<crate::metrics::Metrics>>>,
}

impl Store {
    /// Whether this node may write what only an instance's owner may (always, on one server).
    async fn owner_may_write(&self, instance_id: &str) -> bool {
        let Some(fence) = self.fence.get() else { return true };
        let Some(epoch) = self.epoch else {
            tracing::warn!(instance_id, "a state change of an instance this node does not run was not written");
            return false;
        };
        match crate::cluster::ownership::holds(&self.db, instance_id, &fence.node_id, epoch).await {
            Ok(true) => true,
            Ok(false) => {
                tracing::warn!(instance_id, epoch, "a state change with a stale epoch was not written");
                false
            }
            // The write itself meets the same trouble and is retried.
            Err(_) => true,
        }
    }
}

async fn run(store: Store, instance_id: String, mut reports: Reports, stop: CancellationToken) {
    let mut stopping = false;
    loop {
        let first = if stopping {
            reports.next().await
        } else {
            tokio::select! {
                report = reports.next() => report,
                _ = stop.cancelled() => {
                    // No new events; the queued ones are still stored.
                    stopping = true;
                    reports.close();
                    continue;
                }
            }
        };
        let Some(first) = first else { return };
        let mut count = first.events.len();
        let mut batch = vec![first];
        while count < MAX_BATCH {
            let Some(next) = reports.try_next() else { break };
            count += next.events.len();
            batch.push(next);
        }
        store_batch(&store, &instance_id, batch).await;
    }
}

/// Stores a lane's batch in order: runs of inbound messages together, runs of receipts
/// together, other events one by one.
pub(crate) async fn store_batch(store: &Store, lane: &str, batch: Vec<Report>) {
    let db = &store.db;
    let mut failed: Vec<Option<String>> = vec![None; batch.len()];
    let mut run: Vec<(usize, &ConnectorEvent, &InboundMessage)> = Vec::new();
    let mut receipts: Vec<(usize, &ConnectorEvent)> = Vec::new();
    for (owner, report) in batch.iter().enumerate() {
        for event in &report.events {
            match &event.kind {
                EventKind::MessageReceived(message) => {
                    store_receipts(store, &receipts, &mut failed).await;
                    receipts.clear();
                    if run.first().is_some_and(|(_, first, _)| first.instance_id != event.instance_id) {
                        store_messages(store, lane, &run, &mut failed).await;
                        run.clear();
                    }
                    run.push((owner, event, message));
                }
                EventKind::MessageStatus { .. } => {
                    store_messages(store, lane, &run, &mut failed).await;
                    run.clear();
                    if receipts.first().is_some_and(|(_, first)| first.instance_id != event.instance_id) {
                        store_receipts(store, &receipts, &mut failed).await;
                        receipts.clear();
                    }
                    receipts.push((owner, event));
                }
                _ => {
                    store_messages(store, lane, &run, &mut failed).await;
                    run.clear();
                    store_receipts(store, &receipts, &mut failed).await;
                    receipts.clear();
                    if !store.owner_may_write(&event.instance_id).await {
                        continue;
                    }
                    let stored = with_retries(&event.instance_id, "event", || super::record::event(db, event)).await;
                    if let Err(e) = stored {
                        tracing::error!(instance_id = %event.instance_id, error = %e, "a connector event could not be stored");
                        failed[owner] = Some(e.to_string());
                    }
                }
            }
        }
    }
    store_messages(store, lane, &run, &mut failed).await;
    store_receipts(store, &receipts, &mut failed).await;
    for (report, failure) in batch.into_iter().zip(failed) {
        report.answer(match failure {
            None => Ok(()),
            Some(e) => Err(Unrecorded::Failed(e)),
        });
    }
}

/// Applies a run of receipts of one instance, in a transaction shared with other lanes' receipts
/// (retried like the rest).
async fn store_receipts(store: &Store, run: &[(usize, &ConnectorEvent)], failed: &mut [Option<String>]) {
    let Some((_, first)) = run.first() else { return };
    let instance_id = first.instance_id.as_str();
    if !store.owner_may_write(instance_id).await {
        return;
    }
    let receipts: Vec<(&str, super::DeliveryStatus, bool)> = run
        .iter()
        .filter_map(|(_, event)| match &event.kind {
            EventKind::MessageStatus { provider_message_id, status, just_sent, .. } => {
                Some((provider_message_id.as_str(), *status, *just_sent))
            }
            _ => None,
        })
        .collect();
    let stored = with_retries(instance_id, "receipts", || {
        super::record::receipts(&store.db, &store.receipts, instance_id, &receipts)
    })
    .await;
    if let Err(e) = stored {
        tracing::error!(instance_id, receipts = run.len(), error = %e, "receipts could not be stored");
        for (owner, _) in run {
            failed[*owner] = Some(e.to_string());
        }
    }
}

/// Stores inbound messages of one instance in one transaction. When that keeps failing with
/// an error that does not pass, each is tried alone, so one bad message fails only itself.
async fn store_messages(
    store_to: &Store,
    lane: &str,
    run: &[(usize, &ConnectorEvent, &InboundMessage)],
    failed: &mut [Option<String>],
) {
    let Some((_, first, _)) = run.first() else { return };
    let instance_id = first.instance_id.as_str();
    let db = &store_to.db;
    let counted = |new: usize| {
        if let Some(metrics) = store_to.metrics.get() {
            metrics.inbound_stored(new as u64);
        }
    };
    let all: Vec<&InboundMessage> = run.iter().map(|(_, _, m)| *m).collect();
    let together = with_retries(instance_id, "inbound messages", || store(db, lane, instance_id, &all)).await;
    let e = match together {
        Ok(new) => return counted(new),
        Err(e) => e,
    };
    if run.len() == 1 {
        tracing::error!(instance_id, error = %e, "an inbound message could not be stored");
        failed[run[0].0] = Some(e.to_string());
        return;
    }
    tracing::warn!(instance_id, messages = run.len(), error = %e, "an inbound batch failed; storing its messages one by one");
    for (owner, _, message) in run {
        let alone = [*message];
        match with_retries(instance_id, "inbound message", || store(db, lane, instance_id, &alone)).await {
            Ok(new) => counted(new),
            Err(e) => {
                tracing::error!(instance_id, error = %e, "an inbound message could not be stored");
                failed[*owner] = Some(e.to_string());
            }
        }
    }
}

async fn store(
    db: &DatabaseConnection,
    lane: &str,
    instance_id: &str,
    messages: &[&InboundMessage],
) -> Result<usize, Error> {
    // Read per batch, not kept: a rename shows in the next events.
    let Some(instance) = crate::instances::find_for_connector(db, instance_id).await? else {
        // Deleted meanwhile: nothing to store it under.
        tracing::debug!(instance_id, lane, "inbound messages for a deleted instance dropped");
        return Ok(0);
    };
    Ok(crate::inbound::receive_many(db, &instance, messages).await?.iter().filter(|r| r.new).count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_seconds() {
        let mut backoff = Backoff::default();
        let waits: Vec<u128> = (0..9).map(|_| backoff.next_wait().as_millis()).collect();
        assert_eq!(waits, [50, 100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    }

    #[test]
    fn locks_and_lost_connections_pass_constraint_errors_do_not() {
        let db = |text: &str| Error::Db(DbErr::Custom(text.into()));
        assert!(passes(&db("database is locked")));
        assert!(passes(&db("Lock wait timeout exceeded; try restarting transaction")));
        assert!(passes(&Error::Db(DbErr::ConnectionAcquire(sea_orm::error::ConnAcquireErr::Timeout))));
        assert!(!passes(&db("UNIQUE constraint failed: inbound_messages.id")));
        assert!(!passes(&Error::Invalid("bad".into())));
    }

    #[tokio::test]
    async fn a_stubborn_error_is_tried_a_few_times_a_passing_one_until_it_passes() {
        let tries = std::sync::atomic::AtomicU32::new(0);
        let stubborn: Result<(), Error> = with_retries("inst_t", "test", || async {
            tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err(Error::Internal("broken".into()))
        })
        .await;
        assert!(stubborn.is_err());
        assert_eq!(tries.load(std::sync::atomic::Ordering::SeqCst), STUBBORN_TRIES);

        let tries = std::sync::atomic::AtomicU32::new(0);
        let passing = with_retries("inst_t", "test", || async {
            let n = tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if n < STUBBORN_TRIES + 2 {
                Err(Error::Db(DbErr::Custom("database is locked".into())))
            } else {
                Ok(())
            }
        })
        .await;
        assert!(passing.is_ok(), "a lock is waited out however many tries it takes");
        assert_eq!(tries.load(std::sync::atomic::Ordering::SeqCst), STUBBORN_TRIES + 3);
    }
}
