//! Claiming due deliveries in batches: one query for the candidates (oldest due first, skipping
//! destinations and accounts that have no room), a fair choice among them in memory, then one
//! conditional UPDATE that leases the chosen rows under a fresh token, and one read-back of the
//! rows carrying that token. The UPDATE only takes rows that are still pending and unleased, so
//! when several processes claim at once each row goes to exactly one; the token tells each
//! process which ones it won, on SQLite, PostgreSQL and MySQL alike.
use std::{collections::HashMap, time::Instant};

use sea_orm::{sea_query::Expr, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::{
    lane::WriteLane,
    scheduler::{admit, Candidate, ClaimReport, Keyed, Plan},
};
use crate::{entities::webhook_delivery, error::Result, time};

/// A delivery this process holds the lease of.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub delivery: webhook_delivery::Model,
    pub(super) claimed_at: Instant,
}

impl Claimed {
    /// The claim's token: only it settles the delivery.
    pub(super) fn token(&self) -> &str {
        self.delivery.lease_owner.as_deref().unwrap_or_default()
    }
}

impl Keyed for Claimed {
    fn destination(&self) -> &str {
        &self.delivery.destination_id
    }

    fn account(&self) -> i64 {
        self.delivery.account_id
    }
}

pub(super) struct ClaimResult {
    pub jobs: Vec<Claimed>,
    pub report: ClaimReport,
    /// Asked for, and nothing was due: `Some` of the earliest time a pending delivery becomes
    /// due (`Some(None)`: none is pending).
    pub next_due: Option<Option<i64>>,
}

/// With `look_ahead`, a claim that finds nothing due also reads when the next delivery falls
/// due (a retry scheduled by another process, or before a restart).
pub(super) async fn claim(
    db: &DatabaseConnection,
    lane: &WriteLane,
    plan: &Plan,
    lease_secs: i64,
    look_ahead: bool,
) -> Result<ClaimResult> {
    let now = time::now();
    let candidates = candidates(db, plan, now).await?;
    let window_full = candidates.len() as u64 >= plan.limit;
    let account_of: HashMap<String, i64> =
        candidates.iter().map(|c| (c.destination_id.clone(), c.account_id)).collect();
    let (chosen, leftover) = admit(plan, candidates);
    let jobs = lease(db, lane, &chosen, now, lease_secs).await?;
    let next_due = if look_ahead && chosen.is_empty() && !window_full { Some(next_due(db, now).await?) } else { None };
    let report = ClaimReport {
        leftover: leftover.into_iter().map(|d| (d.clone(), account_of.get(&d).copied().unwrap_or_default())).collect(),
        excluded: plan.exclude_destinations.iter().cloned().collect(),
        window_full,
        lost: chosen.len() - jobs.len(),
        admitted: chosen.len(),
    };
    Ok(ClaimResult { jobs, report, next_due })
}

async fn candidates(db: &DatabaseConnection, plan: &Plan, now: i64) -> Result<Vec<Candidate>> {
    let mut query = webhook_delivery::Entity::find()
        .select_only()
        .column(webhook_delivery::Column::Id)
        .column(webhook_delivery::Column::DestinationId)
        .column(webhook_delivery::Column::AccountId)
        .filter(webhook_delivery::Column::Status.eq("pending"))
        .filter(webhook_delivery::Column::NextAttemptAt.lte(now))
        // Strictly before now: times are whole seconds, so a lease of L seconds lasts at
        // least L seconds, never less.
        .filter(webhook_delivery::Column::LockedUntil.lt(now));
    if !plan.exclude_destinations.is_empty() {
        query = query.filter(webhook_delivery::Column::DestinationId.is_not_in(plan.exclude_destinations.clone()));
    }
    if !plan.exclude_accounts.is_empty() {
        query = query.filter(webhook_delivery::Column::AccountId.is_not_in(plan.exclude_accounts.clone()));
    }
    let rows: Vec<(i64, String, i64)> = query
        .order_by_asc(webhook_delivery::Column::NextAttemptAt)
        .order_by_asc(webhook_delivery::Column::Id)
        .limit(plan.limit)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|(id, destination_id, account_id)| Candidate { id, destination_id, account_id }).collect())
}

/// Leases those of `ids` that are still free, under a new token, and returns them.
async fn lease(
    db: &DatabaseConnection,
    lane: &WriteLane,
    ids: &[i64],
    now: i64,
    lease_secs: i64,
) -> Result<Vec<Claimed>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let token = ulid::Ulid::new().to_string();
    let writing = lane.enter().await;
    // Through the process's SQLite writer queue like every other write, so the lease never
    // waits in SQLite's sleeping busy handler behind a request's transaction.
    let txn = crate::db::begin_write(db).await?;
    let mut won = 0;
    // In pieces of a few sizes, so the prepared statements stay cached (see db::shaped_chunks).
    for chunk in crate::db::shaped_chunks(ids, crate::db::INSERT_CHUNK) {
        won += webhook_delivery::Entity::update_many()
            .col_expr(webhook_delivery::Column::LockedUntil, Expr::value(now + lease_secs))
            .col_expr(webhook_delivery::Column::LeaseOwner, Expr::value(token.clone()))
            .filter(webhook_delivery::Column::Id.is_in(chunk.iter().copied()))
            .filter(webhook_delivery::Column::Status.eq("pending"))
            .filter(webhook_delivery::Column::LockedUntil.lt(now))
            .exec(&txn)
            .await?
            .rows_affected;
    }
    txn.commit().await?;
    drop(writing);
    if won == 0 {
        return Ok(Vec::new());
    }
    let claimed_at = Instant::now();
    let mut leased = Vec::with_capacity(won as usize);
    for chunk in crate::db::shaped_chunks(ids, crate::db::INSERT_CHUNK) {
        leased.extend(
            webhook_delivery::Entity::find()
                .filter(webhook_delivery::Column::Id.is_in(chunk.iter().copied()))
                .filter(webhook_delivery::Column::LeaseOwner.eq(token.clone()))
                .all(db)
                .await?,
        );
    }
    leased.sort_by_key(|d| (d.next_attempt_at, d.id));
    Ok(leased.into_iter().map(|delivery| Claimed { delivery, claimed_at }).collect())
}

/// The earliest time after `now` at which a pending delivery becomes due (a scheduled retry).
async fn next_due(db: &DatabaseConnection, now: i64) -> Result<Option<i64>> {
    let due: Option<Option<i64>> = webhook_delivery::Entity::find()
        .select_only()
        .column_as(webhook_delivery::Column::NextAttemptAt.min(), "due")
        .filter(webhook_delivery::Column::Status.eq("pending"))
        .filter(webhook_delivery::Column::NextAttemptAt.gt(now))
        .into_tuple()
        .one(db)
        .await?;
    Ok(due.flatten())
}
