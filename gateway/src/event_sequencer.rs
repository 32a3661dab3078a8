//! The event sequencer (PostgreSQL, MySQL): gives committed events their place in the stream
//! /api/events pages by.
//!
//! Ids are taken when a row is inserted, but transactions commit in any order, so a reader
//! paging by id could pass over an event whose transaction commits after a later id was read.
//! Locking the account's row in every event-writing transaction prevented that, at the price of
//! one account's events committing one transaction at a time. Instead, events are written
//! without a position and the sequencer, after they committed, numbers them in id order after
//! everything numbered before: an event that commits late gets a later position, so no reader
//! misses it. The sequencers of several processes take turns on the one `event_sequence` row.
//! SQLite needs none of this: its transactions commit one at a time, so ids are in commit order.
use std::time::Duration;

use sea_orm::{
    sea_query::{Expr, LockType, Query},
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, ExprTrait, IsolationLevel, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use tokio::sync::watch;

use crate::{entities::event, error::Result};

/// Events numbered per transaction.
const BATCH: u64 = 1000;
/// Runs this often even without a wake: events committed by a process that died before it
/// numbered them get their place from another process within this time.
const SWEEP: Duration = Duration::from_secs(1);

/// Turns are at least this far apart. Nothing waits for them: a reader of /api/events numbers
/// what its account has waiting first (`before_reading`), and webhook deliveries are written
/// with their events.
const PACE: Duration = Duration::from_millis(10);

fn needed(db: &DatabaseConnection) -> bool {
    db.get_database_backend() != sea_orm::DatabaseBackend::Sqlite
}

static COMMITTED: std::sync::LazyLock<tokio::sync::Notify> = std::sync::LazyLock::new(tokio::sync::Notify::new);

/// Tells this process's sequencer that events were committed. Call it after the commit (see
/// `db::commit_and_wake`); a wake with nothing new is harmless.
pub fn wake() {
    COMMITTED.notify_waiters();
}

/// Numbers committed events after every commit that wrote some (its own wake-up, separate from
/// the webhook workers', which only commits that wrote deliveries signal), until shutdown.
/// Returns at once on SQLite.
pub async fn run(db: DatabaseConnection, mut shutdown: watch::Receiver<bool>) {
    if !needed(&db) {
        return;
    }
    loop {
        // Armed before looking, so a commit in between is not missed.
        let mut woken = Box::pin(COMMITTED.notified());
        woken.as_mut().enable();
        let started = tokio::time::Instant::now();
        match sequence(&db).await {
            Ok(n) if n as u64 == BATCH => continue,
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "numbering committed events failed; trying again"),
        }
        tokio::select! {
            _ = woken => {}
            _ = tokio::time::sleep(SWEEP) => {}
            _ = shutdown.changed() => return,
        }
        // Under load every commit wakes the sequencer; one turn per PACE numbers what they
        // wrote together (each turn is a transaction with a commit of its own).
        tokio::time::sleep_until(started + PACE).await;
    }
}

/// Numbers the account's committed events before a reader pages them, so an answer never
/// lacks an event that committed before it was asked for.
pub async fn before_reading(db: &DatabaseConnection, account_id: i64) -> Result<()> {
    if !needed(db) {
        return Ok(());
    }
    let waiting = event::Entity::find()
        .select_only()
        .column(event::Column::Id)
        .filter(event::Column::Position.is_null())
        .filter(event::Column::AccountId.eq(account_id))
        .limit(1)
        .into_tuple::<i64>()
        .one(db)
        .await?;
    if waiting.is_some() {
        while sequence(db).await? as u64 == BATCH {}
    }
    Ok(())
}

/// One turn: numbers up to [`BATCH`] committed events in id order, after every position given
/// before; returns how many.
pub async fn sequence(db: &DatabaseConnection) -> Result<usize> {
    // Read committed: the read of waiting events sees what has committed by then, and waits
    // for no transaction still writing (MySQL's default would read an older snapshot).
    let txn = db.begin_with_config(Some(IsolationLevel::ReadCommitted), None).await?;
    let result = async {
        let mut turn = Query::select();
        turn.column(sea_orm::sea_query::Alias::new("last_position"))
            .from(sea_orm::sea_query::Alias::new("event_sequence"))
            .and_where(Expr::col(sea_orm::sea_query::Alias::new("id")).eq(1))
            .lock(LockType::Update);
        let last: i64 = match txn.query_one(&turn).await? {
            Some(row) => row.try_get_by_index(0)?,
            None => return Err(crate::Error::Internal("the event_sequence row is missing".into())),
        };
        let ids: Vec<i64> = event::Entity::find()
            .select_only()
            .column(event::Column::Id)
            .filter(event::Column::Position.is_null())
            .order_by_asc(event::Column::Id)
            .limit(BATCH)
            .into_tuple()
            .all(&txn)
            .await?;
        if ids.is_empty() {
            return Ok(0);
        }
        // Each event's position is its id plus one offset, so every event of this turn lands
        // after everything numbered before, in id order, with one UPDATE per piece of the list
        // (a CASE per row cost each statement time in proportion to the rows squared). Ids
        // skipped over (events not yet committed) leave gaps, which a cursor does not mind.
        let offset = last + 1 - ids[0];
        for condition in crate::db::bulk::one_of(txn.get_database_backend(), event::Column::Id, &ids) {
            event::Entity::update_many()
                .col_expr(event::Column::Position, Expr::col(event::Column::Id).add(offset))
                .filter(condition)
                .exec(&txn)
                .await?;
        }
        let mut advance = Query::update();
        advance
            .table(sea_orm::sea_query::Alias::new("event_sequence"))
            .value(sea_orm::sea_query::Alias::new("last_position"), ids[ids.len() - 1] + offset)
            .and_where(Expr::col(sea_orm::sea_query::Alias::new("id")).eq(1));
        txn.execute(&advance).await?;
        Ok(ids.len())
    }
    .await;
    match result {
        Ok(n) => {
            txn.commit().await?;
            Ok(n)
        }
        Err(e) => {
            let _ = txn.rollback().await;
            Err(e)
        }
    }
}
