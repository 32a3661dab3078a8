//! Instances across tenants, as operators watch them: status, connector, owner account, the
//! last message received and the last one delivered, the failed share of recent sends, alerts;
//! and the review queue (instances paused for review, with the decisions that caused it).
//!
//! A page is one query for the instances, one for their accounts' emails, and one each for
//! their recent sends and last inbound message: a short range of an (account, instance, …)
//! index per instance, read in a single UNION ALL statement, never a count over the logs.
use std::collections::HashMap;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Value,
};

use super::sql::statement;
use crate::{entities::instance, error::Result, instances::Instance, policy::Reason};

/// How many of an instance's newest messages its failed share is taken over.
pub const RECENT_SENDS: u64 = 100;

/// Which instances a page lists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StateFilter {
    #[default]
    All,
    Connected,
    Disconnected,
    Unlinked,
    PausedForReview,
    /// WhatsApp suspended or ended the link (a ban, a forced logout).
    Alert,
}

impl StateFilter {
    pub fn parse(text: &str) -> StateFilter {
        match text {
            "connected" => StateFilter::Connected,
            "disconnected" => StateFilter::Disconnected,
            "unlinked" => StateFilter::Unlinked,
            "paused_for_review" => StateFilter::PausedForReview,
            "alert" => StateFilter::Alert,
            _ => StateFilter::All,
        }
    }
}

#[derive(Clone, Debug)]
pub struct FleetRow {
    pub instance: Instance,
    pub account_email: String,
    pub last_inbound_at: Option<i64>,
    /// When the newest of its last [`RECENT_SENDS`] messages that reached WhatsApp was updated.
    pub last_sent_at: Option<i64>,
    /// Of its last [`RECENT_SENDS`] messages: how many, and how many failed.
    pub recent_total: i64,
    pub recent_failed: i64,
}

/// Instances matching `filter`, by id, `limit` of them past the id `after`.
pub async fn instances(
    db: &DatabaseConnection,
    filter: StateFilter,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<FleetRow>> {
    let mut find = instance::Entity::find();
    find = match filter {
        StateFilter::All => find,
        StateFilter::Connected | StateFilter::Disconnected | StateFilter::Unlinked => {
            let status = match filter {
                StateFilter::Connected => "connected",
                StateFilter::Disconnected => "disconnected",
                _ => "unlinked",
            };
            find.filter(instance::Column::Status.eq(status)).filter(instance::Column::ReviewPaused.eq(false))
        }
        StateFilter::PausedForReview => find.filter(instance::Column::ReviewPaused.eq(true)),
        StateFilter::Alert => find.filter(instance::Column::ConnectionAlert.is_not_null()),
    };
    if let Some(after) = after {
        find = find.filter(instance::Column::Id.gt(after));
    }
    let found: Vec<Instance> =
        find.order_by_asc(instance::Column::Id).limit(limit).all(db).await?.into_iter().map(Instance::from).collect();
    rows_for(db, found).await
}

/// The rows of these instances, in the same order.
pub async fn rows_for(db: &DatabaseConnection, found: Vec<Instance>) -> Result<Vec<FleetRow>> {
    if found.is_empty() {
        return Ok(Vec::new());
    }
    let mut account_ids: Vec<i64> = found.iter().map(|i| i.account_id).collect();
    account_ids.sort_unstable();
    account_ids.dedup();
    let emails = super::accounts::emails(db, account_ids).await?;
    let keys: Vec<(i64, &str)> = found.iter().map(|i| (i.account_id, i.id.as_str())).collect();
    let recent = recent_sends(db, &keys).await?;
    let inbound = last_inbound(db, &keys).await?;
    Ok(found
        .into_iter()
        .map(|instance| {
            let (recent_total, recent_failed, last_sent_at) = recent.get(&instance.id).copied().unwrap_or_default();
            FleetRow {
                account_email: emails.get(&instance.account_id).cloned().unwrap_or_default(),
                last_inbound_at: inbound.get(&instance.id).copied(),
                last_sent_at,
                recent_total,
                recent_failed,
                instance,
            }
        })
        .collect())
}

/// `SELECT * FROM (<one>) t0 UNION ALL SELECT * FROM (<one>) t1 …`, each part with its own two
/// values: `$A` a number (an account id, a time), `$I` the instance id. `$A` must come first in
/// `one`: SQLite and MySQL bind `?` in the order they appear.
fn union_per_instance(db: &DatabaseConnection, one: &str, keys: &[(i64, &str)]) -> sea_orm::Statement {
    let mut sql = String::new();
    let mut values: Vec<Value> = Vec::with_capacity(keys.len() * 2);
    for (n, (first, instance_id)) in keys.iter().enumerate() {
        if n > 0 {
            sql.push_str(" UNION ALL ");
        }
        let part = one.replace("$A", &format!("${}", 2 * n + 1)).replace("$I", &format!("${}", 2 * n + 2));
        sql.push_str(&format!("SELECT * FROM ({part}) t{n}"));
        values.push((*first).into());
        values.push((*instance_id).to_string().into());
    }
    statement(db, &sql, values)
}

/// Per instance: (messages, failed, newest update of a delivered one) over its newest
/// [`RECENT_SENDS`] messages.
async fn recent_sends(
    db: &DatabaseConnection,
    keys: &[(i64, &str)],
) -> Result<HashMap<String, (i64, i64, Option<i64>)>> {
    let one = format!(
        "SELECT instance_id, status, updated_at FROM messages WHERE account_id = $A AND instance_id = $I \
         ORDER BY id DESC LIMIT {RECENT_SENDS}"
    );
    let mut out: HashMap<String, (i64, i64, Option<i64>)> = HashMap::new();
    for row in db.query_all_raw(union_per_instance(db, &one, keys)).await? {
        let instance_id: String = row.try_get("", "instance_id")?;
        let status: String = row.try_get("", "status")?;
        let updated_at: i64 = row.try_get("", "updated_at")?;
        let entry = out.entry(instance_id).or_default();
        entry.0 += 1;
        match status.as_str() {
            "failed" => entry.1 += 1,
            "sent" | "delivered" | "read" => entry.2 = Some(entry.2.map_or(updated_at, |at| at.max(updated_at))),
            _ => {}
        }
    }
    Ok(out)
}

async fn last_inbound(db: &DatabaseConnection, keys: &[(i64, &str)]) -> Result<HashMap<String, i64>> {
    let one = "SELECT instance_id, received_at FROM inbound_messages WHERE account_id = $A AND instance_id = $I \
               ORDER BY received_at DESC LIMIT 1";
    let mut out = HashMap::new();
    for row in db.query_all_raw(union_per_instance(db, one, keys)).await? {
        out.insert(row.try_get::<String>("", "instance_id")?, row.try_get::<i64>("", "received_at")?);
    }
    Ok(out)
}

/// A blocked send that counts toward a review pause, as the review queue shows it.
#[derive(Clone, Debug)]
pub struct Block {
    pub at: i64,
    pub recipient_masked: String,
    pub purpose: String,
    pub risk_score: i32,
    pub reasons: Vec<Reason>,
}

/// An instance waiting for review and the blocks before its pause.
#[derive(Clone, Debug)]
pub struct Waiting {
    pub row: FleetRow,
    pub blocks: Vec<Block>,
}

/// How many of the blocks before a pause the review queue shows.
pub const BLOCKS_SHOWN: u64 = 10;

/// The review queue: instances paused for review, oldest pause first, each with the newest
/// [`BLOCKS_SHOWN`] content-policy blocks up to its pause.
pub async fn review_queue(db: &DatabaseConnection, limit: u64) -> Result<Vec<Waiting>> {
    let paused: Vec<Instance> = instance::Entity::find()
        .filter(instance::Column::ReviewPaused.eq(true))
        .order_by_asc(instance::Column::ReviewPausedAt)
        .order_by_asc(instance::Column::Id)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(Instance::from)
        .collect();
    let rows = rows_for(db, paused).await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    // Each waiting instance's newest blocks up to its pause: a short range of the (instance,
    // time) index each, in one statement.
    let keys: Vec<(i64, &str)> =
        rows.iter().map(|r| (r.instance.review_paused_at.unwrap_or(i64::MAX), r.instance.id.as_str())).collect();
    let one = format!(
        "SELECT instance_id, created_at, recipient_masked, purpose, risk_score, reasons FROM policy_decisions \
         WHERE created_at <= $A AND instance_id = $I AND error_code = 'policy_violation' \
         ORDER BY created_at DESC LIMIT {BLOCKS_SHOWN}"
    );
    let mut blocks: HashMap<String, Vec<Block>> = HashMap::new();
    for row in db.query_all_raw(union_per_instance(db, &one, &keys)).await? {
        let reasons: String = row.try_get("", "reasons")?;
        blocks.entry(row.try_get("", "instance_id")?).or_default().push(Block {
            at: row.try_get("", "created_at")?,
            recipient_masked: row.try_get("", "recipient_masked")?,
            purpose: row.try_get("", "purpose")?,
            risk_score: row.try_get("", "risk_score")?,
            reasons: serde_json::from_str(&reasons).unwrap_or_default(),
        });
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let mut found = blocks.remove(&row.instance.id).unwrap_or_default();
            found.sort_by(|a, b| b.at.cmp(&a.at));
            Waiting { row, blocks: found }
        })
        .collect())
}
