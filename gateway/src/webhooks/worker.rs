//! The delivery worker: claims due deliveries with a lease (a conditional UPDATE, safe on
//! SQLite, PostgreSQL and MySQL alike: only one process wins a row), sends each outside any
//! transaction, records every attempt, and schedules the next one. A process killed between
//! claim and send loses nothing: the lease runs out and the delivery is claimed again.
use std::{sync::Arc, time::Duration};

use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use tokio::sync::{watch, Semaphore};

use super::{destinations, signing};
use crate::{
    config::MasterKey,
    entities::{webhook_attempt, webhook_delivery, webhook_destination},
    error::Result,
    net_guard, time,
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookSettings {
    pub concurrency: usize,
    /// Waits after each failed attempt; the first attempt goes at once.
    pub retry_schedule_secs: Vec<i64>,
    pub poll_ms: u64,
    pub lease_secs: i64,
    pub timeout_secs: u64,
    pub allow_private: bool,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            concurrency: 8,
            retry_schedule_secs: vec![5, 300, 1800, 7200, 18000, 36000, 36000],
            poll_ms: 500,
            lease_secs: 60,
            timeout_secs: 15,
            allow_private: false,
        }
    }
}

/// A destination failing without a success for this long is disabled.
pub const DISABLE_AFTER_SECS: i64 = 5 * 24 * 3600;
const EXCERPT_BYTES: usize = 4096;
const MAX_RETRY_AFTER_SECS: i64 = 36000;

pub struct Worker {
    pub db: DatabaseConnection,
    pub key: MasterKey,
    pub settings: WebhookSettings,
}

impl Worker {
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let permits = Arc::new(Semaphore::new(self.settings.concurrency.max(1)));
        loop {
            let free = permits.available_permits();
            if free > 0 {
                match self.claim(free as u64).await {
                    Ok(claimed) => {
                        for delivery in claimed {
                            let Ok(permit) = permits.clone().acquire_owned().await else { return };
                            let worker = self.clone();
                            tokio::spawn(async move {
                                if let Err(e) = worker.deliver(delivery).await {
                                    tracing::error!(error = %e, "recording a webhook attempt failed");
                                }
                                drop(permit);
                            });
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "claiming webhook deliveries failed"),
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(self.settings.poll_ms)) => {}
                _ = shutdown.changed() => break,
            }
        }
        // Shutdown waits for the attempts in flight.
        let _ = permits.acquire_many(self.settings.concurrency.max(1) as u32).await;
    }

    /// Takes up to `limit` due deliveries for this process.
    pub async fn claim(&self, limit: u64) -> Result<Vec<webhook_delivery::Model>> {
        let now = time::now();
        let due = webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::Status.eq("pending"))
            .filter(webhook_delivery::Column::NextAttemptAt.lte(now))
            // Strictly before now: times are whole seconds, so a lease of L seconds lasts at
            // least L seconds, never less.
            .filter(webhook_delivery::Column::LockedUntil.lt(now))
            .order_by_asc(webhook_delivery::Column::NextAttemptAt)
            .limit(limit)
            .all(&self.db)
            .await?;
        let mut claimed = Vec::new();
        for row in due {
            let won = webhook_delivery::Entity::update_many()
                .col_expr(webhook_delivery::Column::LockedUntil, Expr::value(now + self.settings.lease_secs))
                .filter(webhook_delivery::Column::Id.eq(row.id))
                .filter(webhook_delivery::Column::Status.eq("pending"))
                .filter(webhook_delivery::Column::LockedUntil.lt(now))
                .exec(&self.db)
                .await?
                .rows_affected
                == 1;
            if won {
                claimed.push(row);
            }
        }
        Ok(claimed)
    }

    pub async fn deliver(&self, delivery: webhook_delivery::Model) -> Result<()> {
        let Some(destination) =
            webhook_destination::Entity::find_by_id(delivery.destination_id.clone()).one(&self.db).await?
        else {
            return self.finish(&delivery, "cancelled", None).await;
        };
        if !destination.enabled {
            return self.finish(&delivery, "cancelled", None).await;
        }
        let now = time::now();
        let secrets = destinations::signing_secrets(&self.key, &destination, now)?;
        let started = std::time::Instant::now();
        let outcome = self.send(&destination.url, &delivery, &secrets, now).await;
        let duration_ms = started.elapsed().as_millis() as i64;
        let attempt = delivery.attempts + 1;
        webhook_attempt::ActiveModel {
            delivery_id: Set(delivery.id),
            attempted_at: Set(now),
            status_code: Set(outcome.status.map(i32::from)),
            duration_ms: Set(duration_ms),
            response_excerpt: Set(outcome.excerpt.clone()),
            error: Set(outcome.error.clone()),
            ..Default::default()
        }
        .insert(&self.db)
        .await?;

        let status = outcome.status.unwrap_or(0);
        if (200..300).contains(&status) {
            self.set_failing(&destination, None).await?;
            return self.finish_with(&delivery, "succeeded", outcome.status, attempt).await;
        }
        if status == 410 {
            self.disable(&destination, "The receiver answered 410 Gone.").await?;
            return self.finish_with(&delivery, "failed", outcome.status, attempt).await;
        }
        let failing_since = destination.failing_since.unwrap_or(now);
        if destination.failing_since.is_none() {
            self.set_failing(&destination, Some(now)).await?;
        }
        if now - failing_since >= DISABLE_AFTER_SECS {
            self.disable(&destination, "Deliveries failed for 5 days.").await?;
            return self.finish_with(&delivery, "failed", outcome.status, attempt).await;
        }
        let Some(base) = self.settings.retry_schedule_secs.get((attempt - 1) as usize).copied() else {
            return self.finish_with(&delivery, "failed", outcome.status, attempt).await;
        };
        let wait = outcome.retry_after.map(|r| r.clamp(base, MAX_RETRY_AFTER_SECS.max(base))).unwrap_or(base);
        let wait = jitter(wait);
        let mut active: webhook_delivery::ActiveModel = delivery.into();
        active.attempts = Set(attempt);
        active.last_status_code = Set(outcome.status.map(i32::from));
        active.next_attempt_at = Set(now + wait);
        active.locked_until = Set(0);
        active.update(&self.db).await?;
        Ok(())
    }

    async fn send(&self, url: &str, delivery: &webhook_delivery::Model, secrets: &[String], now: i64) -> Outcome {
        let failed =
            |error: String| Outcome { status: None, excerpt: String::new(), error: Some(error), retry_after: None };
        let Ok(parsed) = reqwest::Url::parse(url) else { return failed("invalid URL".into()) };
        let Some(host) = parsed.host_str().map(str::to_string) else { return failed("invalid URL".into()) };
        let port = parsed.port_or_known_default().unwrap_or(443);
        // Checked again on the address actually dialled, so DNS rebinding cannot slip through.
        let address = match net_guard::resolve(net_guard::bare_host(&host), port, self.settings.allow_private).await {
            Ok(a) => a,
            Err(e) => return failed(e.to_string()),
        };
        let client = match reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(self.settings.timeout_secs))
            .resolve(&host, address)
            .build()
        {
            Ok(c) => c,
            Err(e) => return failed(e.to_string()),
        };
        let signature = signing::signature_header(secrets, &delivery.event_id, now, &delivery.payload);
        let result = client
            .post(parsed)
            .header("content-type", "application/json")
            .header("user-agent", "WA-Gateway-Webhooks/1")
            .header("webhook-id", &delivery.event_id)
            .header("webhook-timestamp", now.to_string())
            .header("webhook-signature", signature)
            .body(delivery.payload.clone())
            .send()
            .await;
        match result {
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<i64>().ok());
                // Only the first 4 KB are kept, and only they are read: a receiver that streams
                // without end cannot fill our memory.
                let mut response = response;
                let mut body = Vec::new();
                while body.len() < EXCERPT_BYTES {
                    match response.chunk().await {
                        Ok(Some(chunk)) => {
                            body.extend_from_slice(&chunk[..chunk.len().min(EXCERPT_BYTES - body.len())])
                        }
                        _ => break,
                    }
                }
                let excerpt = String::from_utf8_lossy(&body).into_owned();
                Outcome { status: Some(status), excerpt, error: None, retry_after }
            }
            Err(e) if e.is_timeout() => failed("timed out".into()),
            Err(e) if e.is_connect() => failed("could not connect".into()),
            Err(_) => failed("the request failed".into()),
        }
    }

    async fn finish(&self, delivery: &webhook_delivery::Model, status: &str, code: Option<u16>) -> Result<()> {
        self.finish_with(delivery, status, code, delivery.attempts).await
    }

    async fn finish_with(
        &self,
        delivery: &webhook_delivery::Model,
        status: &str,
        code: Option<u16>,
        attempts: i32,
    ) -> Result<()> {
        let mut active: webhook_delivery::ActiveModel = delivery.clone().into();
        active.status = Set(status.into());
        active.attempts = Set(attempts);
        active.last_status_code = Set(code.map(i32::from));
        active.completed_at = Set(Some(time::now()));
        active.locked_until = Set(0);
        active.update(&self.db).await?;
        Ok(())
    }

    async fn set_failing(&self, destination: &webhook_destination::Model, since: Option<i64>) -> Result<()> {
        if destination.failing_since == since {
            return Ok(());
        }
        webhook_destination::Entity::update_many()
            .col_expr(webhook_destination::Column::FailingSince, Expr::value(since))
            .filter(webhook_destination::Column::Id.eq(destination.id.clone()))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    async fn disable(&self, destination: &webhook_destination::Model, reason: &str) -> Result<()> {
        tracing::warn!(destination_id = %destination.id, reason, "webhook destination disabled");
        webhook_destination::Entity::update_many()
            .col_expr(webhook_destination::Column::Enabled, Expr::value(false))
            .col_expr(webhook_destination::Column::DisabledReason, Expr::value(reason))
            .filter(webhook_destination::Column::Id.eq(destination.id.clone()))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}

struct Outcome {
    status: Option<u16>,
    excerpt: String,
    error: Option<String>,
    retry_after: Option<i64>,
}

/// ±20 %, so receivers that come back are not hit by every retry at the same second.
fn jitter(secs: i64) -> i64 {
    if secs <= 0 {
        return 0;
    }
    let spread = (secs as f64 * 0.2) as i64;
    if spread == 0 {
        return secs;
    }
    secs + rand::random_range(-spread..=spread)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_twenty_percent() {
        for _ in 0..1000 {
            let j = jitter(300);
            assert!((240..=360).contains(&j));
        }
        assert_eq!(jitter(0), 0);
    }
}
