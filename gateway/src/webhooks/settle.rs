//! Writing outcomes in batches: the settle task collects finished attempts for a few
//! milliseconds (or until it has many) and writes their attempt rows, their deliveries and their
//! destinations' state in one transaction. Each delivery is updated only under the token of the
//! claim that leased it, so a process whose lease ran out cannot overwrite the outcome of the
//! process that claimed the delivery after it.
use std::{collections::HashMap, sync::Arc, time::Duration};

use sea_orm::{
    sea_query::{Expr, ExprTrait, SimpleExpr},
    ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, QueryFilter,
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

async fn write_in(txn: &DatabaseTransaction, batch: &[Settlement]) -> Result<()> {
    let now = time::now();
    let attempts: Vec<webhook_attempt::ActiveModel> = batch.iter().filter_map(|s| s.attempt.clone()).collect();
    for chunk in attempts.chunks(INSERT_CHUNK) {
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
    txn: &DatabaseTransaction,
    token: &str,
    ids: &[i64],
    values: [(webhook_delivery::Column, SimpleExpr); N],
) -> Result<()> {
    let mut query = webhook_delivery::Entity::update_many();
    for (column, value) in values {
        query = query.col_expr(column, value);
    }
    query
        .filter(webhook_delivery::Column::Id.is_in(ids.iter().copied()))
        .filter(webhook_delivery::Column::LeaseOwner.eq(token))
        .exec(txn)
        .await?;
    Ok(())
}

/// A destination's state after the batch: its last outcome counts, and disabling wins. Only
/// changes are written (as the worker's copy saw the destination; one that is a second stale
/// is corrected by the next outcome).
async fn write_destinations(txn: &DatabaseTransaction, batch: &[Settlement]) -> Result<()> {
    let mut last: HashMap<&str, (Effect, bool)> = HashMap::new();
    for s in batch {
        let entry = last.entry(s.destination_id.as_str()).or_insert((Effect::None, false));
        match (s.effect, entry.0) {
            (Effect::None, _) | (_, Effect::Disable { .. }) => {}
            (effect, _) => *entry = (effect, s.changes_destination),
        }
    }
    let mut ids: Vec<&str> = last.keys().copied().collect();
    // One order for the row locks of every batch, so two processes' batches cannot deadlock.
    ids.sort_unstable();
    let mut healthy = Vec::new();
    let mut failing: HashMap<i64, Vec<String>> = HashMap::new();
    for id in ids {
        let (effect, changes) = last[id];
        if !changes {
            continue;
        }
        match effect {
            Effect::None => {}
            Effect::Healthy => healthy.push(id.to_string()),
            Effect::Failing { since } => failing.entry(since).or_default().push(id.to_string()),
            Effect::Disable { reason } => {
                tracing::warn!(destination_id = %id, reason, "webhook destination disabled");
                webhook_destination::Entity::update_many()
                    .col_expr(webhook_destination::Column::Enabled, Expr::value(false))
                    .col_expr(webhook_destination::Column::DisabledReason, Expr::value(reason))
                    .filter(webhook_destination::Column::Id.eq(id))
                    .exec(txn)
                    .await?;
            }
        }
    }
    // Conditional, so a change another process made first is kept.
    if !healthy.is_empty() {
        webhook_destination::Entity::update_many()
            .col_expr(webhook_destination::Column::FailingSince, Expr::value(Option::<i64>::None))
            .filter(webhook_destination::Column::Id.is_in(healthy))
            .filter(webhook_destination::Column::FailingSince.is_not_null())
            .exec(txn)
            .await?;
    }
    for (since, ids) in failing {
        webhook_destination::Entity::update_many()
            .col_expr(webhook_destination::Column::FailingSince, Expr::value(since))
            .filter(webhook_destination::Column::Id.is_in(ids))
            .filter(webhook_destination::Column::FailingSince.is_null())
            .exec(txn)
            .await?;
    }
    Ok(())
}
