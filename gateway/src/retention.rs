//! Retention: how long each log keeps its rows, and the housekeeping that drops older ones.
//!
//! Rows go in small batches, each its own short write transaction, so pruning a backlog of
//! millions never holds a lock that sends or inbound messages would wait on. A batch is found by
//! walking the primary key from the oldest row (ids grow in the order rows were written, so the
//! oldest rows come first): that walk reads at most one batch of index entries, needs no index on
//! the time column, and stops at the first row young enough to keep.
use sea_orm::{
    sea_query::{Alias, Expr, Order, Query},
    ConnectionTrait, DatabaseConnection, ExprTrait,
};

use crate::error::Result;

pub const DAY: i64 = 86_400;

/// Days each kind of row is kept; 0 keeps it forever.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retention {
    pub messages_days: i64,
    pub inbound_days: i64,
    pub events_days: i64,
    pub deliveries_days: i64,
    pub attempts_days: i64,
    pub policy_days: i64,
    pub threecx_requests_days: i64,
    /// Rows per delete statement.
    pub batch: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            messages_days: 90,
            inbound_days: 90,
            events_days: 90,
            deliveries_days: 90,
            attempts_days: 30,
            policy_days: 90,
            threecx_requests_days: 30,
            batch: 1_000,
        }
    }
}

/// A kind of row retention applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Messages,
    Inbound,
    Events,
    Deliveries,
    Attempts,
    PolicyDecisions,
    ThreecxRequests,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Messages,
        Kind::Inbound,
        Kind::Events,
        Kind::Deliveries,
        Kind::Attempts,
        Kind::PolicyDecisions,
        Kind::ThreecxRequests,
    ];

    pub fn table(self) -> &'static str {
        match self {
            Kind::Messages => "messages",
            Kind::Inbound => "inbound_messages",
            Kind::Events => "events",
            Kind::Deliveries => "webhook_deliveries",
            Kind::Attempts => "webhook_attempts",
            Kind::PolicyDecisions => "policy_decisions",
            Kind::ThreecxRequests => "threecx_requests",
        }
    }

    fn time_column(self) -> &'static str {
        match self {
            Kind::Inbound | Kind::ThreecxRequests => "received_at",
            Kind::Attempts => "attempted_at",
            _ => "created_at",
        }
    }

    fn days(self, retention: &Retention) -> i64 {
        match self {
            Kind::Messages => retention.messages_days,
            Kind::Inbound => retention.inbound_days,
            Kind::Events => retention.events_days,
            Kind::Deliveries => retention.deliveries_days,
            Kind::Attempts => retention.attempts_days,
            Kind::PolicyDecisions => retention.policy_days,
            Kind::ThreecxRequests => retention.threecx_requests_days,
        }
    }
}

/// What one pruning pass of a kind did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub rows: u64,
    /// Delete statements (one short transaction each).
    pub batches: u64,
}

/// Drops, kind by kind, the rows older than their retention at `now`.
pub async fn prune(db: &DatabaseConnection, retention: &Retention, now: i64) -> Result<Vec<(Kind, Pruned)>> {
    let mut done = Vec::new();
    for kind in Kind::ALL {
        let days = kind.days(retention);
        if days <= 0 {
            continue;
        }
        let pruned = prune_before(db, kind, now - days * DAY, retention.batch).await?;
        if pruned.rows > 0 {
            tracing::info!(
                table = kind.table(),
                rows = pruned.rows,
                batches = pruned.batches,
                "retention pruned old rows"
            );
        }
        done.push((kind, pruned));
    }
    Ok(done)
}

/// Drops the rows of `kind` written before `cutoff`, `batch` rows per statement. Deliveries
/// still waiting for an attempt are kept whatever their age; a delivery goes with its attempts.
pub async fn prune_before(db: &DatabaseConnection, kind: Kind, cutoff: i64, batch: u64) -> Result<Pruned> {
    let batch = Ord::max(batch, 1);
    let table = Alias::new(kind.table());
    let mut pruned = Pruned::default();
    let mut after = i64::MIN;
    loop {
        let mut select = Query::select();
        select
            .column(Alias::new("id"))
            .expr(Expr::col(Alias::new(kind.time_column())))
            .from(table.clone())
            .and_where(Expr::col(Alias::new("id")).gt(after))
            .order_by(Alias::new("id"), Order::Asc)
            .limit(batch);
        if kind == Kind::Deliveries {
            select.expr(Expr::col(Alias::new("status")));
        }
        let rows = db.query_all(&select).await?;
        let mut doomed = Vec::new();
        let mut reached_kept = false;
        for row in &rows {
            let id: i64 = row.try_get_by_index(0)?;
            let at: i64 = row.try_get_by_index(1)?;
            after = id;
            if at >= cutoff {
                reached_kept = true;
                continue;
            }
            if kind == Kind::Deliveries && row.try_get_by_index::<String>(2)? == "pending" {
                continue;
            }
            doomed.push(id);
        }
        if !doomed.is_empty() {
            let txn = crate::db::begin_write(db).await?;
            if kind == Kind::Deliveries {
                let mut attempts = Query::delete();
                attempts
                    .from_table(Alias::new(Kind::Attempts.table()))
                    .and_where(Expr::col(Alias::new("delivery_id")).is_in(doomed.iter().copied()));
                txn.execute(&attempts).await?;
            }
            let mut delete = Query::delete();
            delete.from_table(table.clone()).and_where(Expr::col(Alias::new("id")).is_in(doomed.iter().copied()));
            pruned.rows += txn.execute(&delete).await?.rows_affected();
            txn.commit().await?;
            pruned.batches += 1;
        }
        if reached_kept || (rows.len() as u64) < batch {
            return Ok(pruned);
        }
        // Let the writers this batch held up go first.
        tokio::task::yield_now().await;
    }
}
