//! One attempt: sign, send, and decide what the answer means for the delivery (succeeded,
//! retry when, failed) and for its destination (healthy, failing, disabled). Nothing is written
//! here; the settlement goes to `settle`, which writes many at once.
use std::{sync::Arc, time::Duration, time::Instant};

use sea_orm::Set;

use super::{
    cache::Target,
    claim::Claimed,
    client::{Client, Outcome, Request},
};
use crate::{entities::webhook_attempt, time};

/// A destination failing without a success for this long is disabled.
pub const DISABLE_AFTER_SECS: i64 = 5 * 24 * 3600;
pub(super) const GONE_REASON: &str = "The receiver answered 410 Gone.";
pub(super) const FAILING_REASON: &str = "Deliveries failed for 5 days.";
const MAX_RETRY_AFTER_SECS: i64 = 36000;
/// An attempt this slow (or unanswered) marks its destination slow: the scheduler then claims
/// for it only what it may have in flight.
const SLOW: Duration = Duration::from_secs(1);

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Update {
    Succeeded {
        code: u16,
    },
    Failed {
        code: Option<u16>,
    },
    Retry {
        code: Option<u16>,
        at: i64,
    },
    /// Its destination is disabled or gone: nothing was sent.
    Cancelled,
    /// Not attempted: the lease is given back for any process to claim again.
    Release,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Effect {
    None,
    Healthy,
    Failing { since: i64 },
    Disable { reason: &'static str },
}

/// What an attempt (or a cancellation, or a release) writes.
#[derive(Clone, Debug)]
pub(super) struct Settlement {
    pub delivery_id: i64,
    pub token: String,
    /// The delivery's attempt count after this one.
    pub attempts: i32,
    pub attempt: Option<webhook_attempt::ActiveModel>,
    pub update: Update,
    pub destination_id: String,
    pub effect: Effect,
    /// The effect changes what the worker's cached copy of the destination says.
    pub changes_destination: bool,
}

impl Settlement {
    pub fn release(job: &Claimed) -> Settlement {
        Settlement::without_attempt(job, Update::Release)
    }

    fn without_attempt(job: &Claimed, update: Update) -> Settlement {
        Settlement {
            delivery_id: job.delivery.id,
            token: job.token().to_string(),
            attempts: job.delivery.attempts,
            attempt: None,
            update,
            destination_id: job.delivery.destination_id.clone(),
            effect: Effect::None,
            changes_destination: false,
        }
    }
}

/// Sends the delivery to its destination (or cancels it when the destination is disabled or
/// gone). Also says whether the destination was slow to answer.
pub(super) async fn run(
    job: &Claimed,
    target: Option<Arc<Target>>,
    client: &Client,
    schedule: &[i64],
) -> (Settlement, bool) {
    let Some(target) = target.filter(|t| t.enabled) else {
        return (Settlement::without_attempt(job, Update::Cancelled), false);
    };
    let delivery = &job.delivery;
    let now = time::now();
    let started = Instant::now();
    let outcome = match &target.url {
        None => Outcome { error: Some("invalid URL".into()), ..Outcome::default() },
        Some(url) => {
            let signature = target.signature(&delivery.event_id, now, &delivery.payload, now);
            let request = Request {
                url,
                webhook_id: &delivery.event_id,
                timestamp: now,
                signature,
                body: delivery.payload.clone(),
            };
            client.post(request).await
        }
    };
    let elapsed = started.elapsed();
    let attempt = delivery.attempts + 1;
    let (update, effect) = decide(&outcome, attempt, target.failing_since, now, schedule);
    log_failure(delivery.id, &delivery.destination_id, attempt, &outcome, &update, effect);
    let changes_destination = match effect {
        Effect::None => false,
        Effect::Healthy => target.failing_since.is_some(),
        Effect::Failing { .. } => target.failing_since.is_none(),
        Effect::Disable { .. } => true,
    };
    let row = webhook_attempt::ActiveModel {
        delivery_id: Set(delivery.id),
        attempted_at: Set(now),
        status_code: Set(outcome.status.map(i32::from)),
        duration_ms: Set(elapsed.as_millis() as i64),
        response_excerpt: Set(outcome.excerpt),
        error: Set(outcome.error),
        ..Default::default()
    };
    let settlement = Settlement {
        delivery_id: delivery.id,
        token: job.token().to_string(),
        attempts: attempt,
        attempt: Some(row),
        update,
        destination_id: delivery.destination_id.clone(),
        effect,
        changes_destination,
    };
    (settlement, elapsed >= SLOW)
}

/// A failed attempt in the server's log, for the operator: which destination, what it answered,
/// when it goes again. Never the payload, the URL or a secret (the error text is the sanitized one
/// the customer sees too).
fn log_failure(
    delivery_id: i64,
    destination_id: &str,
    attempt: i32,
    outcome: &Outcome,
    update: &Update,
    effect: Effect,
) {
    let status = outcome.status;
    let error = outcome.error.as_deref().unwrap_or("");
    match update {
        Update::Retry { at, .. } => tracing::warn!(
            destination_id,
            delivery_id,
            attempt,
            status,
            error,
            next_attempt_at = %time::rfc3339(*at),
            "webhook delivery failed; retrying"
        ),
        Update::Failed { .. } => {
            let disabled = matches!(effect, Effect::Disable { .. });
            tracing::warn!(
                destination_id,
                delivery_id,
                attempt,
                status,
                error,
                disabled,
                "webhook delivery failed; no more attempts"
            )
        }
        Update::Succeeded { .. } | Update::Cancelled | Update::Release => {}
    }
}

/// What attempt number `attempt`'s outcome means, given since when the destination has been
/// failing (if it has).
pub(super) fn decide(
    outcome: &Outcome,
    attempt: i32,
    failing_since: Option<i64>,
    now: i64,
    schedule: &[i64],
) -> (Update, Effect) {
    let status = outcome.status.unwrap_or(0);
    if (200..300).contains(&status) {
        return (Update::Succeeded { code: status }, Effect::Healthy);
    }
    let code = outcome.status;
    if status == 410 {
        return (Update::Failed { code }, Effect::Disable { reason: GONE_REASON });
    }
    if now - failing_since.unwrap_or(now) >= DISABLE_AFTER_SECS {
        return (Update::Failed { code }, Effect::Disable { reason: FAILING_REASON });
    }
    let failing = Effect::Failing { since: now };
    let Some(base) = usize::try_from(attempt - 1).ok().and_then(|i| schedule.get(i)).copied() else {
        return (Update::Failed { code }, failing);
    };
    let wait = outcome.retry_after.map(|r| r.clamp(base, MAX_RETRY_AFTER_SECS.max(base))).unwrap_or(base);
    (Update::Retry { code, at: now + jitter(wait) }, failing)
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

    fn answered(status: u16) -> Outcome {
        Outcome { status: Some(status), ..Outcome::default() }
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        for _ in 0..1000 {
            let j = jitter(300);
            assert!((240..=360).contains(&j));
        }
        assert_eq!(jitter(0), 0);
    }

    #[test]
    fn answers_map_to_updates_and_effects() {
        let schedule = [5, 300];
        let now = 1_000_000;
        assert_eq!(
            decide(&answered(204), 1, Some(now - 10), now, &schedule),
            (Update::Succeeded { code: 204 }, Effect::Healthy)
        );
        assert_eq!(
            decide(&answered(410), 1, None, now, &schedule),
            (Update::Failed { code: Some(410) }, Effect::Disable { reason: GONE_REASON })
        );
        let (update, effect) = decide(&answered(500), 1, None, now, &schedule);
        assert!(matches!(update, Update::Retry { code: Some(500), at } if (now + 4..=now + 6).contains(&at)));
        assert_eq!(effect, Effect::Failing { since: now });
        // Retry-After lengthens the wait, never shortens it, and is capped at 10 hours.
        let later = Outcome { retry_after: Some(120), ..answered(503) };
        assert!(matches!(decide(&later, 1, None, now, &schedule).0, Update::Retry { at, .. } if at >= now + 96));
        let sooner = Outcome { retry_after: Some(1), ..answered(503) };
        assert!(matches!(decide(&sooner, 2, None, now, &schedule).0, Update::Retry { at, .. } if at >= now + 240));
        let huge = Outcome { retry_after: Some(10_000_000), ..answered(503) };
        assert!(matches!(decide(&huge, 1, None, now, &schedule).0, Update::Retry { at, .. } if at <= now + 43_200));
        // The schedule ran out.
        assert_eq!(decide(&answered(500), 3, None, now, &schedule).0, Update::Failed { code: Some(500) });
        // No answer at all.
        let timeout = Outcome { error: Some("timed out".into()), ..Outcome::default() };
        assert!(matches!(decide(&timeout, 1, None, now, &schedule).0, Update::Retry { code: None, .. }));
        // Five days of failures disable.
        assert_eq!(
            decide(&answered(500), 1, Some(now - DISABLE_AFTER_SECS), now, &schedule),
            (Update::Failed { code: Some(500) }, Effect::Disable { reason: FAILING_REASON })
        );
    }
}
