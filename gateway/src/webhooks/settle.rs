//! Writing outcomes in batches: the settle task collects finished attempts for a few
//! milliseconds (or until it has many) and writes their attempt rows, their deliveries and their
//! destinations' state in one transaction. Each delivery is updated only under the token of the
//! claim that leased it, so a process whose lease ran out cannot overwrite the outcome of the
//! process that claimed the delivery after it.
use std::{collections::HashMap, sync::Arc, time::Duration};

use sea_orm::{
    sea_query::{Expr, ExprTrait, SimpleExpr},
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter,
};
use tokio::sync::mpsc;

use super::{
    attempt::{Effect, Settlement, Update},
    cache::Cache,
    lane::WriteLane,
};
use crate::{
    entities::{webhook_attempt, webhook_delivery, webhook_destination},
    error::Result,
    time,
};

/// How long the settle task waits for more outcomes before writing a batch.
const LINGER: Duration = Duration::from_millis(10);
const MAX_BATCH: usize = 256;
/// Rows per multi-row INSERT (well under every database's bound-parameter limit).
const INSERT_CHUNK: usize = 200;

/// Receives settlements until every sender is gone, writing them in batches. `retry_at` hears
/// of every retry this schedules (the worker sleeps until the earliest).
pub(super) async fn run(
    db: DatabaseConnection,
    lane: WriteLane,
    mut settlements: mpsc::Receiver<Settlement>,
    cache: Arc<Cache>,
    metrics: Option<Arc<crate::metrics::Metrics>>,
    retry_at: impl Fn(i64) + Send,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = settlements.recv().await {
        batch.push(first);
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.len() < MAX_BATCH {
            match tokio::time::timeout_at(deadline, settlements.recv()).await {
                Ok(Some(settlement)) => batch.push(settlement),
                Ok(None) | Err(_) => break,
            }
        }
        flush(&db, &lane, &batch, &cache).await;
        for settlement in &batch {
            if let Update::Retry { at, .. } = settlement.update {
                retry_at(at);
            }
            if let Some(metrics) = &metrics {
                match settlement.update {
                    Update::Succeeded { .. } => metrics.webhook_attempt("delivered"),
                    Update::Retry { .. } => metrics.webhook_attempt("retry"),
                    Update::Failed { .. } => metrics.webhook_attempt("failed"),
                    Update::Cancelled | Update::Release => {}
                }
            }
        }
        batch.clear();
    }
}

/// Writes a batch, trying again a few times: a batch that cannot be written leaves its
/// deliveries leased, and they are sent again once the lease runs out (at least once).
pub(super) async fn flush(db: &DatabaseConnection, lane: &WriteLane, batch: &[Settlement], cache: &Cache) {
    let mut pause = Duration::from_millis(100);
    for left in (0..4).rev() {
        match write(db, lane, batch).await {
            Ok(()) => {
                for settlement in batch.iter().filter(|s| s.changes_destination) {
                    cache.forget(&settlement.destination_id);
                }
                return;
            }
            Err(e) if left > 0 => {
                tracing::warn!(error = %e, settlements = batch.len(), "writing webhook outcomes failed; trying again");
                tokio::time::sleep(pause).await;
                pause *= 4;
            }
            Err(e) => {
                tracing::error!(error = %e, settlements = batch.len(), "writing webhook outcomes failed; the deliveries go again after their lease");
            }
        }
    }
}

pub(super) async fn write(db: &DatabaseConnection, lane: &WriteLane, batch: &[Settlement]) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let _writing = lane.enter().await;
    let txn = crate::db::begin_write(db).await?;
    match write_in(&txn, batch).await {
        Ok(()) => Ok(txn.commit().await?),
        Err(e) => {
            txn.rollback().await.ok();
            Err(e)
        }
    }
}

async fn write_in(txn: &crate::db::WriteTxn, batch: &[Settlement]) -> Result<()> {
    let now = time::now();
    let attempts: Vec<webhook_attempt::ActiveModel> = batch.iter().filter_map(|s| s.attempt.clone()).collect();
    for chunk in crate::db::shaped_chunks(&attempts, INSERT_CHUNK) {
        webhook_attempt::Entity::insert_many(chunk.to_vec()).exec_without_returning(txn).await?;
    }

    // The common outcomes share their values: one UPDATE per claim token and outcome.
    let mut grouped: HashMap<(&str, GroupKey), Vec<i64>> = HashMap::new();
    for s in batch {
        let key = match &s.update {
            Update::Succeeded { code } => GroupKey::Succeeded(*code),
            Update::Cancelled => GroupKey::Cancelled,
            Update::Release => GroupKey::Release,
            Update::Failed { code } => {
                let values = [
                    (webhook_delivery::Column::Status, Expr::value("failed")),
                    (webhook_delivery::Column::Attempts, Expr::value(s.attempts)),
                    (webhook_delivery::Column::LastStatusCode, Expr::value(code.map(i32::from))),
                    (webhook_delivery::Column::CompletedAt, Expr::value(now)),
                    (webhook_delivery::Column::LockedUntil, Expr::value(0)),
                ];
                update(txn, &s.token, &[s.delivery_id], values).await?;
                continue;
            }
            Update::Retry { code, at } => {
                let values = [
                    (webhook_delivery::Column::Attempts, Expr::value(s.attempts)),
                    (webhook_delivery::Column::LastStatusCode, Expr::value(code.map(i32::from))),
                    (webhook_delivery::Column::NextAttemptAt, Expr::value(*at)),
                    (webhook_delivery::Column::LockedUntil, Expr::value(0)),
                ];
                update(txn, &s.token, &[s.delivery_id], values).await?;
                continue;
            }
        };
        grouped.entry((s.token.as_str(), key)).or_default().push(s.delivery_id);
    }
    for ((token, key), ids) in grouped {
        match key {
            GroupKey::Succeeded(code) => {
                let values = [
                    (webhook_delivery::Column::Status, Expr::value("succeeded")),
                    (webhook_delivery::Column::Attempts, Expr::col(webhook_delivery::Column::Attempts).add(1)),
                    (webhook_delivery::Column::LastStatusCode, Expr::value(i32::from(code))),
                    (webhook_delivery::Column::CompletedAt, Expr::value(now)),
                    (webhook_delivery::Column::LockedUntil, Expr::value(0)),
                ];
                update(txn, token, &ids, values).await?;
            }
            GroupKey::Cancelled => {
                let values = [
                    (webhook_delivery::Column::Status, Expr::value("cancelled")),
                    (webhook_delivery::Column::CompletedAt, Expr::value(now)),
                    (webhook_delivery::Column::LockedUntil, Expr::value(0)),
                ];
                update(txn, token, &ids, values).await?;
            }
            GroupKey::Release => {
                update(txn, token, &ids, [(webhook_delivery::Column::LockedUntil, Expr::value(0))]).await?;
            }
        }
    }

    write_destinations(txn, batch).await
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum GroupKey {
    Succeeded(u16),
    Cancelled,
    Release,
}

async fn update<const N: usize>(
    txn: &crate::db::WriteTxn,
    token: &str,
    ids: &[i64],
    values: [(webhook_delivery::Column, SimpleExpr); N],
) -> Result<()> {
    for chunk in crate::db::shaped_chunks(ids, crate::db::INSERT_CHUNK) {
        let mut query = webhook_delivery::Entity::update_many();
        for (column, value) in values.iter().cloned() {
            query = query.col_expr(column, value);
        }
        query
            .filter(webhook_delivery::Column::Id.is_in(chunk.iter().copied()))
            .filter(webhook_delivery::Column::LeaseOwner.eq(token))
            .exec(txn)
            .await?;
    }
    Ok(())
}

/// What a batch changes about a destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Change {
    /// Succeeded after failing: no longer failing.
    Clear,
    /// Failing since then, unless it already was (keeps the earlier start).
    FailingUnlessAlready(i64),
    /// Failing since then, after a success earlier in this batch (a new start).
    FailingAnew(i64),
    Disable(&'static str),
}

/// A destination's state after the batch: disabling wins; otherwise its last outcome counts,
/// and a failure after a success in the same batch starts a new failing period. Only changes
/// from what the worker's copy of the destination said are written (a copy a second stale is
/// corrected by the next outcome). Sorted by destination, so every batch takes the row locks in
/// one order and two processes' batches cannot deadlock.
fn destination_changes(batch: &[Settlement]) -> Vec<(&str, Change)> {
    #[derive(Default)]
    struct Seen {
        disable: Option<&'static str>,
        last: Option<(Effect, bool)>,
        succeeded: bool,
        /// The first failure since the last success (or since the batch began).
        failing_start: Option<i64>,
    }
    let mut seen: HashMap<&str, Seen> = HashMap::new();
    for s in batch {
        let d = seen.entry(s.destination_id.as_str()).or_default();
        match s.effect {
            Effect::None => continue,
            Effect::Disable { reason } => d.disable = d.disable.or(Some(reason)),
            Effect::Healthy => {
                d.succeeded = true;
                d.failing_start = None;
            }
            Effect::Failing { since } => {
                d.failing_start = d.failing_start.or(Some(since));
            }
        }
        d.last = Some((s.effect, s.changes_destination));
    }
    let mut changes: Vec<(&str, Change)> = seen
        .into_iter()
        .filter_map(|(id, d)| {
            let change = match (d.disable, d.last?) {
                (Some(reason), _) => Change::Disable(reason),
                (None, (Effect::Healthy, true)) => Change::Clear,
                (None, (Effect::Failing { .. }, _)) if d.succeeded => Change::FailingAnew(d.failing_start?),
                (None, (Effect::Failing { .. }, true)) => Change::FailingUnlessAlready(d.failing_start?),
                _ => return None,
            };
            Some((id, change))
        })
        .collect();
    changes.sort_unstable_by_key(|(id, _)| *id);
    changes
}

async fn write_destinations(txn: &crate::db::WriteTxn, batch: &[Settlement]) -> Result<()> {
    for (id, change) in destination_changes(batch) {
        let (value, only_if): (SimpleExpr, Option<SimpleExpr>) = match change {
            Change::Disable(reason) => {
                tracing::warn!(destination_id = %id, reason, "webhook destination disabled");
                webhook_destination::Entity::update_many()
                    .col_expr(webhook_destination::Column::Enabled, Expr::value(false))
                    .col_expr(webhook_destination::Column::DisabledReason, Expr::value(reason))
                    .filter(webhook_destination::Column::Id.eq(id))
                    .exec(txn)
                    .await?;
                continue;
            }
            // Conditional where another process may have changed it first: its change stays.
            Change::Clear => {
                (Expr::value(Option::<i64>::None), Some(webhook_destination::Column::FailingSince.is_not_null()))
            }
            Change::FailingUnlessAlready(since) => {
                (Expr::value(since), Some(webhook_destination::Column::FailingSince.is_null()))
            }
            Change::FailingAnew(since) => (Expr::value(since), None),
        };
        let mut query = webhook_destination::Entity::update_many()
            .col_expr(webhook_destination::Column::FailingSince, value)
            .filter(webhook_destination::Column::Id.eq(id));
        if let Some(condition) = only_if {
            query = query.filter(condition);
        }
        query.exec(txn).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settled(destination: &str, effect: Effect, changes_destination: bool) -> Settlement {
        Settlement {
            delivery_id: 1,
            token: "t".into(),
            attempts: 1,
            attempt: None,
            update: Update::Release,
            destination_id: destination.into(),
            effect,
            changes_destination,
        }
    }

    #[test]
    fn a_batch_writes_each_destination_s_final_state_once() {
        let batch = [
            // a: was failing, then succeeded twice: cleared.
            settled("a", Effect::Healthy, true),
            settled("a", Effect::Healthy, true),
            // b: healthy, then a failure: failing from then on.
            settled("b", Effect::Failing { since: 10 }, true),
            settled("b", Effect::Failing { since: 11 }, true),
            // c: was failing, succeeded, failed again: a new failing period.
            settled("c", Effect::Healthy, true),
            settled("c", Effect::Failing { since: 12 }, false),
            settled("c", Effect::Failing { since: 13 }, false),
            // d: gone (410), whatever came after.
            settled("d", Effect::Disable { reason: "gone" }, true),
            settled("d", Effect::Healthy, false),
            // e: succeeded and was not failing: nothing to write.
            settled("e", Effect::Healthy, false),
            // f: failed and already was failing: the earlier start stays.
            settled("f", Effect::Failing { since: 14 }, false),
            // g: failed, then succeeded, as the copy said (not failing): nothing to write.
            settled("g", Effect::Failing { since: 15 }, true),
            settled("g", Effect::Healthy, false),
            // h: cancelled only.
            settled("h", Effect::None, false),
        ];
        assert_eq!(
            destination_changes(&batch),
            vec![
                ("a", Change::Clear),
                ("b", Change::FailingUnlessAlready(10)),
                ("c", Change::FailingAnew(12)),
                ("d", Change::Disable("gone")),
            ]
        );
    }
}
