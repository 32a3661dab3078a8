//! The delivery worker: claims due deliveries in batches, sends them through one pooled HTTP
//! client with per-destination and per-account limits (see `scheduler`), and settles the
//! outcomes in batches. It keeps claiming while work is waiting and otherwise sleeps until it is
//! woken (new deliveries in this process, or on PostgreSQL in any process), until the earliest
//! retry falls due, or until the fallback poll.
//!
//! At least once: a delivery is leased before it is sent and settled after; a process that dies
//! in between loses nothing, because the lease runs out and the delivery is claimed again.
//! Shutdown stops claiming, gives back the leases of deliveries not yet started, waits for the
//! attempts in flight and writes their outcomes.
use std::{panic::AssertUnwindSafe, sync::Arc, time::Duration};

use futures::FutureExt;

use sea_orm::DatabaseConnection;
use tokio::{
    sync::{mpsc, watch},
    time::Instant,
};

pub use super::{attempt::DISABLE_AFTER_SECS, claim::Claimed};
use super::{
    attempt::{self, Effect, Settlement},
    cache::Cache,
    claim::{self, ClaimResult},
    client::Client,
    lane::WriteLane,
    scheduler::{Limits, Plan, Scheduler},
    settle, wake,
};
use crate::{
    config::MasterKey,
    error::{Error, Result},
    time,
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookSettings {
    /// Attempts in flight at once in this process.
    pub concurrency: usize,
    /// Attempts in flight at once to one destination.
    pub per_destination: usize,
    /// Waits after each failed attempt; the first attempt goes at once.
    pub retry_schedule_secs: Vec<i64>,
    /// The fallback poll: how often the worker looks for due deliveries without being woken
    /// (other processes' new deliveries on SQLite and MySQL, expired leases).
    pub poll_ms: u64,
    pub lease_secs: i64,
    /// The whole request, from connecting to the last byte read.
    pub timeout_secs: u64,
    pub allow_private: bool,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            concurrency: 64,
            per_destination: 8,
            retry_schedule_secs: vec![5, 300, 1800, 7200, 18000, 36000, 36000],
            poll_ms: 1000,
            lease_secs: 60,
            timeout_secs: 15,
            allow_private: false,
        }
    }
}

/// After a failed claim, the next waits this long.
const CLAIM_ERROR_PAUSE: Duration = Duration::from_millis(500);
const SETTLE_QUEUE: usize = 4096;

pub struct Worker {
    db: DatabaseConnection,
    settings: WebhookSettings,
    cache: Arc<Cache>,
    client: Arc<Client>,
    lane: WriteLane,
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

enum Event {
    Claimed(Result<ClaimResult>),
    Finished { destination_id: String, account_id: i64, slow: bool },
    RetryAt(i64),
}

impl Worker {
    pub fn new(db: DatabaseConnection, key: MasterKey, settings: WebhookSettings) -> Result<Worker> {
        let client = Client::new(
            Duration::from_secs(settings.timeout_secs.max(1)),
            settings.per_destination.max(1) * 2,
            settings.allow_private,
        )
        .map_err(|e| Error::Internal(format!("building the webhook HTTP client failed: {e}")))?;
        let lane = WriteLane::for_database(&db);
        Ok(Worker { db, settings, cache: Arc::new(Cache::new(key)), client: Arc::new(client), lane, metrics: None })
    }

    /// Counts each attempt's result in `metrics`.
    pub fn counted_in(mut self, metrics: Arc<crate::metrics::Metrics>) -> Worker {
        self.metrics = Some(metrics);
        self
    }

    fn limits(&self) -> Limits {
        Limits { global: self.settings.concurrency.max(1), per_destination: self.settings.per_destination.max(1) }
    }

    /// Takes up to `limit` due deliveries for this worker, without fair shares: for driving a
    /// worker by hand (`deliver` sends them).
    pub async fn claim(&self, limit: u64) -> Result<Vec<Claimed>> {
        Ok(claim::claim(&self.db, &self.lane, &Plan::unlimited(limit), self.settings.lease_secs, false).await?.jobs)
    }

    /// Sends one claimed delivery and records the attempt and its outcome.
    pub async fn deliver(&self, job: Claimed) -> Result<()> {
        let target = self.cache.get(&self.db, &job.delivery.destination_id).await?;
        let (settlement, _) = attempt::run(&job, target, &self.client, &self.settings.retry_schedule_secs).await;
        settle::write(&self.db, &self.lane, &[settlement.clone()]).await?;
        if settlement.changes_destination {
            self.cache.forget(&settlement.destination_id);
        }
        Ok(())
    }

    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let (events_tx, mut events) = mpsc::unbounded_channel::<Event>();
        let (settle_tx, settle_rx) = mpsc::channel::<Settlement>(SETTLE_QUEUE);
        let retries = events_tx.clone();
        let settler = tokio::spawn(settle::run(
            self.db.clone(),
            self.lane.clone(),
            settle_rx,
            self.cache.clone(),
            self.metrics.clone(),
            move |at| {
                let _ = retries.send(Event::RetryAt(at));
            },
        ));
        let listener = tokio::spawn(wake::listen(self.db.clone(), shutdown.clone()));

        let mut scheduler: Scheduler<Claimed> = Scheduler::new(self.limits());
        let poll = Duration::from_millis(self.settings.poll_ms.max(1));
        // Claimed deliveries that waited here longer than this are given back rather than sent:
        // the lease must outlast the wait plus the request (with a margin for whole seconds).
        let lease_ms = self.settings.lease_secs.max(1) as u64 * 1000;
        let max_wait =
            Duration::from_millis(lease_ms.saturating_sub((self.settings.timeout_secs + 2) * 1000).max(lease_ms / 2));
        let mut woken = wake::armed();
        let mut look = true;
        // The next look also reads when the next retry falls due: at start and on the timer
        // (new deliveries, which wake the worker, are due at once).
        let mut look_ahead = true;
        let mut claiming = false;
        let mut stopping = false;
        let mut not_before = Instant::now();
        let mut last_look = Instant::now();
        let mut next_due: Option<i64> = None;

        loop {
            if !stopping {
                while let Some(job) = scheduler.next() {
                    if job.claimed_at.elapsed() > max_wait {
                        scheduler.finished(&job.delivery.destination_id, job.delivery.account_id, false);
                        let _ = settle_tx.send(Settlement::release(&job)).await;
                        continue;
                    }
                    self.start(job, settle_tx.clone(), events_tx.clone());
                }
                if !claiming && (look || scheduler.wants_claim()) && Instant::now() >= not_before {
                    if let Some(plan) = scheduler.plan() {
                        look = false;
                        claiming = true;
                        let ahead = std::mem::take(&mut look_ahead);
                        let db = self.db.clone();
                        let cache = self.cache.clone();
                        let lane = self.lane.clone();
                        let lease_secs = self.settings.lease_secs;
                        let events_tx = events_tx.clone();
                        tokio::spawn(async move {
                            // Always answered, even by a panic: the loop waits for this answer
                            // before it claims again.
                            let result = AssertUnwindSafe(claim_and_load(&db, &lane, &cache, &plan, lease_secs, ahead))
                                .catch_unwind()
                                .await
                                .unwrap_or_else(|_| {
                                    Err(Error::Internal("claiming webhook deliveries panicked".into()))
                                });
                            let _ = events_tx.send(Event::Claimed(result));
                        });
                    }
                }
            }
            if stopping && !claiming && scheduler.in_flight() == 0 {
                break;
            }
            let deadline = if look && Instant::now() < not_before {
                not_before
            } else {
                wake_deadline(last_look + poll, next_due)
            };
            tokio::select! {
                Some(event) = events.recv() => match event {
                    Event::Claimed(result) => {
                        claiming = false;
                        last_look = Instant::now();
                        match result {
                            Ok(claimed) if stopping => {
                                for job in &claimed.jobs {
                                    let _ = settle_tx.send(Settlement::release(job)).await;
                                }
                            }
                            Ok(claimed) => {
                                // Only a look ahead that found nothing due reads the next due time.
                                if let Some(due) = claimed.next_due {
                                    // Keeps a retry this worker scheduled meanwhile.
                                    next_due = match (next_due, due) {
                                        (Some(known), Some(read)) => Some(known.min(read)),
                                        (known, read) => known.or(read),
                                    };
                                }
                                scheduler.claimed(claimed.jobs, &claimed.report);
                            }
                            Err(e) => {
                                tracing::error!(error = %e, "claiming webhook deliveries failed");
                                not_before = Instant::now() + CLAIM_ERROR_PAUSE;
                                look = true;
                                look_ahead = true;
                            }
                        }
                    }
                    Event::Finished { destination_id, account_id, slow } => {
                        scheduler.finished(&destination_id, account_id, slow);
                    }
                    Event::RetryAt(at) => {
                        next_due = Some(next_due.map_or(at, |due| due.min(at)));
                        if at <= time::now() {
                            look = true;
                        }
                    }
                },
                _ = &mut woken, if !stopping => {
                    woken = wake::armed();
                    look = true;
                }
                _ = tokio::time::sleep_until(deadline), if !stopping && !claiming => {
                    look = true;
                    look_ahead = true;
                    last_look = Instant::now();
                    if next_due.is_some_and(|due| due <= time::now()) {
                        next_due = None;
                    }
                }
                changed = shutdown.changed(), if !stopping => {
                    if changed.is_ok() && !*shutdown.borrow() {
                        continue;
                    }
                    stopping = true;
                    for job in scheduler.drain_waiting() {
                        let _ = settle_tx.send(Settlement::release(&job)).await;
                    }
                }
            }
        }
        // The attempts are done and their outcomes queued: let the settle task write them.
        drop(settle_tx);
        drop(events_tx);
        if let Err(e) = settler.await {
            tracing::error!(error = %e, "the webhook settle task failed");
        }
        listener.abort();
    }

    fn start(&self, job: Claimed, settle_tx: mpsc::Sender<Settlement>, events_tx: mpsc::UnboundedSender<Event>) {
        let db = self.db.clone();
        let cache = self.cache.clone();
        let client = self.client.clone();
        let schedule = self.settings.retry_schedule_secs.clone();
        tokio::spawn(async move {
            let mut finished = Finished {
                events: events_tx,
                destination_id: job.delivery.destination_id.clone(),
                account_id: job.delivery.account_id,
                slow: false,
            };
            match cache.get(&db, &job.delivery.destination_id).await {
                Ok(target) => {
                    let (settlement, slow) = attempt::run(&job, target, &client, &schedule).await;
                    finished.slow = slow;
                    if matches!(settlement.effect, Effect::Disable { .. }) {
                        // The deliveries that start before the settlement is written are
                        // cancelled, not sent to a receiver that said it is gone.
                        cache.disable(&settlement.destination_id);
                    }
                    // Queued before `finished` reports, so shutdown never closes the queue ahead
                    // of it.
                    let _ = settle_tx.send(settlement).await;
                }
                // Left leased: it goes again after the lease, like after a crash.
                Err(e) => tracing::error!(
                    error = %e,
                    delivery_id = job.delivery.id,
                    "reading a webhook destination failed; the delivery goes again after its lease"
                ),
            }
        });
    }
}

/// Reports a started delivery as finished when dropped: at the end of its task, or when the
/// task panicked (the loop counts on every started delivery finishing).
struct Finished {
    events: mpsc::UnboundedSender<Event>,
    destination_id: String,
    account_id: i64,
    slow: bool,
}

impl Drop for Finished {
    fn drop(&mut self) {
        let _ = self.events.send(Event::Finished {
            destination_id: std::mem::take(&mut self.destination_id),
            account_id: self.account_id,
            slow: self.slow,
        });
    }
}

/// Claims, then reads the claimed deliveries' destinations in one query (so attempts find them
/// cached).
async fn claim_and_load(
    db: &DatabaseConnection,
    lane: &WriteLane,
    cache: &Cache,
    plan: &Plan,
    lease_secs: i64,
    look_ahead: bool,
) -> Result<ClaimResult> {
    let claimed = claim::claim(db, lane, plan, lease_secs, look_ahead).await?;
    let destinations: Vec<String> = claimed.jobs.iter().map(|j| j.delivery.destination_id.clone()).collect();
    // The claim stands either way: attempts read what is missing themselves.
    if let Err(e) = cache.load(db, &destinations).await {
        tracing::warn!(error = %e, "reading claimed deliveries' webhook destinations failed");
    }
    Ok(claimed)
}

/// The fallback poll, or the second the earliest known retry falls due if that is sooner.
fn wake_deadline(poll: Instant, next_due: Option<i64>) -> Instant {
    let Some(due) = next_due else { return poll };
    let wait_ms = (due * 1000 - chrono::Utc::now().timestamp_millis()).max(0) as u64;
    poll.min(Instant::now() + Duration::from_millis(wait_ms))
}
