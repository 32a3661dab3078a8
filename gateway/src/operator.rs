//! The operator's view of the whole gateway, across tenants: what /admin shows. Read from the
//! hourly roll-ups and grouped queries, so it costs the same whatever the size of the logs.
use crate::error::Result;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, Value};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overview {
    pub accounts: i64,
    /// (connector, state, count); state is `paused_for_review` for paused instances.
    pub instances: Vec<(String, String, i64)>,
    /// Instances with a loud connection alert (banned, forced logout).
    pub alerts: i64,
    /// Messages handed to WhatsApp per hour of the last 24 (UTC hour start, total, failed), oldest first.
    pub hourly: Vec<(i64, i64, i64)>,
    /// Send decisions of the last 24 hours: allowed, flagged, blocked.
    pub decisions: (i64, i64, i64),
    pub webhook_backlog: i64,
    pub webhook_oldest_pending_secs: Option<i64>,
    /// Destinations failing now or switched off for failing.
    pub failing_destinations: i64,
    /// With several servers: each node and the instances it runs.
    pub nodes: Vec<crate::cluster::NodeView>,
    /// With several servers: each instance's owner and epoch.
    pub owners: Vec<crate::cluster::OwnerView>,
}

fn statement(db: &DatabaseConnection, sql: &str, values: Vec<Value>) -> Statement {
    let sql = match db.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => sql.to_string(),
        // `$n` placeholders in order are `?` elsewhere.
        _ => {
            let mut out = String::with_capacity(sql.len());
            let mut chars = sql.chars().peekable();
            while let Some(c) = chars.next() {
                if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
                    while chars.peek().is_some_and(char::is_ascii_digit) {
                        chars.next();
                    }
                    out.push('?');
                } else {
                    out.push(c);
                }
            }
            out
        }
    };
    Statement::from_sql_and_values(db.get_database_backend(), sql, values)
}

/// `SUM(column)` as a 64-bit integer on every database (MySQL sums to DECIMAL).
fn sum(db: &DatabaseConnection, column: &str) -> String {
    match db.get_database_backend() {
        sea_orm::DatabaseBackend::MySql => format!("CAST(SUM({column}) AS SIGNED)"),
        _ => format!("CAST(SUM({column}) AS BIGINT)"),
    }
}

async fn one_i64(db: &DatabaseConnection, sql: &str, values: Vec<Value>) -> Result<i64> {
    let row = db.query_one_raw(statement(db, sql, values)).await?;
    Ok(row.map(|r| r.try_get_by_index::<Option<i64>>(0)).transpose()?.flatten().unwrap_or(0))
}

/// Instances by (connector, state), `paused_for_review` counting as a state of its own.
pub async fn instances_by_state(db: &DatabaseConnection) -> Result<Vec<(String, String, i64)>> {
    let rows = db
        .query_all_raw(statement(
            db,
            "SELECT connector, status, review_paused, COUNT(*) AS n FROM instances \
             GROUP BY connector, status, review_paused ORDER BY connector, status",
            vec![],
        ))
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let paused: bool = row.try_get("", "review_paused")?;
        let status: String = row.try_get("", "status")?;
        let state = if paused { "paused_for_review".to_string() } else { status };
        out.push((row.try_get("", "connector")?, state, row.try_get("", "n")?));
    }
    Ok(out)
}

/// Webhook deliveries waiting, and the age in seconds of the oldest.
pub async fn webhook_backlog(db: &DatabaseConnection, now: i64) -> Result<(i64, Option<i64>)> {
    let sql = "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM webhook_deliveries WHERE status = 'pending'";
    let Some(row) = db.query_one_raw(statement(db, sql, vec![])).await? else { return Ok((0, None)) };
    let oldest: Option<i64> = row.try_get("", "oldest")?;
    Ok((row.try_get("", "n")?, oldest.map(|at| (now - at).max(0))))
}

/// `cluster_lease_ms`: the lease, when this server is one of several.
pub async fn overview(db: &DatabaseConnection, now: i64, cluster_lease_ms: Option<i64>) -> Result<Overview> {
    let mut overview =
        Overview { accounts: one_i64(db, "SELECT COUNT(*) FROM accounts", vec![]).await?, ..Overview::default() };
    overview.instances = instances_by_state(db).await?;
    overview.alerts = one_i64(db, "SELECT COUNT(*) FROM instances WHERE connection_alert IS NOT NULL", vec![]).await?;
    let since = (now - 23 * 3600) / 3600 * 3600;
    let rows = db
        .query_all_raw(statement(
            db,
            &format!(
                "SELECT hour_start, {} AS total, {} AS failed FROM message_stats WHERE hour_start >= $1 \
                 GROUP BY hour_start ORDER BY hour_start",
                sum(db, "total"),
                sum(db, "failed")
            ),
            vec![since.into()],
        ))
        .await?;
    let mut by_hour = std::collections::HashMap::new();
    for row in rows {
        let hour: i64 = row.try_get("", "hour_start")?;
        let total: Option<i64> = row.try_get("", "total")?;
        let failed: Option<i64> = row.try_get("", "failed")?;
        by_hour.insert(hour, (total.unwrap_or(0), failed.unwrap_or(0)));
    }
    overview.hourly = (0..24)
        .map(|i| {
            let hour = since + i * 3600;
            let (total, failed) = by_hour.get(&hour).copied().unwrap_or((0, 0));
            (hour, total, failed)
        })
        .collect();
    let row = db
        .query_one_raw(statement(
            db,
            &format!(
                "SELECT {} AS a, {} AS f, {} AS b FROM policy_stats WHERE hour_start >= $1",
                sum(db, "allowed"),
                sum(db, "flagged"),
                sum(db, "blocked")
            ),
            vec![since.into()],
        ))
        .await?;
    if let Some(row) = row {
        let get = |c: &str| row.try_get::<Option<i64>>("", c).map(|v| v.unwrap_or(0));
        overview.decisions = (get("a")?, get("f")?, get("b")?);
    }
    (overview.webhook_backlog, overview.webhook_oldest_pending_secs) = webhook_backlog(db, now).await?;
    overview.failing_destinations = one_i64(
        db,
        "SELECT COUNT(*) FROM webhook_destinations WHERE failing_since IS NOT NULL OR disabled_reason IS NOT NULL",
        vec![],
    )
    .await?;
    if let Some(lease_ms) = cluster_lease_ms {
        overview.nodes = crate::cluster::nodes(db, lease_ms).await?;
        overview.owners = crate::cluster::owners(db).await?;
    }
    Ok(overview)
}
