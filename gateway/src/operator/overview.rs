//! The operator's view of the whole gateway, across tenants: what /admin shows. Read from the
//! hourly roll-ups and grouped queries, so it costs the same whatever the size of the logs.
use sea_orm::{ConnectionTrait, DatabaseConnection};

use super::sql::{one_i64, statement, sum};
use crate::error::Result;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overview {
    pub accounts: i64,
    /// (connector, state, count); state is `paused_for_review` for paused instances.
    pub instances: Vec<(String, String, i64)>,
    /// Instances with a loud connection alert (banned, forced logout).
    pub alerts: i64,
    /// Messages handed to WhatsApp per hour of the last 24 (UTC hour start, total, failed), oldest first.
    pub hourly: Vec<(i64, i64, i64)>,
    /// Messages per UTC day of the last 7 (day start, total, failed), oldest first.
    pub daily: Vec<(i64, i64, i64)>,
    /// Send decisions of the last 24 hours: allowed, flagged, blocked.
    pub decisions: (i64, i64, i64),
    /// Messages handed to WhatsApp since the start of today (UTC), and how many of them failed.
    pub sent_today: (i64, i64),
    /// Sends answered with an error since the start of today (UTC), by code, most first.
    pub refusals_today: Vec<(String, i64)>,
    /// 3CX webhook calls refused since the start of today (UTC), by outcome, most first.
    pub threecx_refusals_today: Vec<(String, i64)>,
    pub webhook_backlog: i64,
    pub webhook_oldest_pending_secs: Option<i64>,
    /// Destinations failing now or switched off for failing.
    pub failing_destinations: i64,
    /// With several servers: each node and the instances it runs.
    pub nodes: Vec<crate::cluster::NodeView>,
    /// With several servers: each instance's owner and epoch.
    pub owners: Vec<crate::cluster::OwnerView>,
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
    let today = now - now.rem_euclid(86_400);
    let week_start = today - 6 * 86_400;
    let rows = db
        .query_all_raw(statement(
            db,
            &format!(
                "SELECT hour_start, {} AS total, {} AS failed FROM message_stats WHERE hour_start >= $1 \
                 GROUP BY hour_start ORDER BY hour_start",
                sum(db, "total"),
                sum(db, "failed")
            ),
            vec![week_start.min(since).into()],
        ))
        .await?;
    let mut by_hour = std::collections::HashMap::new();
    let mut by_day = std::collections::HashMap::new();
    for row in rows {
        let hour: i64 = row.try_get("", "hour_start")?;
        let total = row.try_get::<Option<i64>>("", "total")?.unwrap_or(0);
        let failed = row.try_get::<Option<i64>>("", "failed")?.unwrap_or(0);
        by_hour.insert(hour, (total, failed));
        if hour >= today {
            overview.sent_today.0 += total;
            overview.sent_today.1 += failed;
        }
        let day = by_day.entry(hour - hour.rem_euclid(86_400)).or_insert((0, 0));
        day.0 += total;
        day.1 += failed;
    }
    overview.hourly = (0..24)
        .map(|i| {
            let hour = since + i * 3600;
            let (total, failed) = by_hour.get(&hour).copied().unwrap_or((0, 0));
            (hour, total, failed)
        })
        .collect();
    overview.daily = (0..7)
        .map(|i| {
            let day = week_start + i * 86_400;
            let (total, failed) = by_day.get(&day).copied().unwrap_or((0, 0));
            (day, total, failed)
        })
        .collect();
    overview.refusals_today = counts_by(
        db,
        &format!("SELECT code AS k, {} AS n FROM refusal_stats WHERE hour_start >= $1 GROUP BY code", sum(db, "n")),
        today,
    )
    .await?;
    // 3CX calls are few (one per call or agent reply), and the range has an index.
    overview.threecx_refusals_today = counts_by(
        db,
        "SELECT outcome AS k, COUNT(*) AS n FROM threecx_requests WHERE received_at >= $1 \
         AND status_code >= 400 GROUP BY outcome",
        today,
    )
    .await?;
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

/// (key, count) rows of a grouped query over one time bound, most first.
async fn counts_by(db: &DatabaseConnection, sql: &str, since: i64) -> Result<Vec<(String, i64)>> {
    let mut out: Vec<(String, i64)> = Vec::new();
    for row in db.query_all_raw(statement(db, sql, vec![since.into()])).await? {
        let n: Option<i64> = row.try_get("", "n")?;
        out.push((row.try_get("", "k")?, n.unwrap_or(0)));
    }
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(out)
}
