//! The policy log: every send decision past the instance check, allowed or blocked, with the
//! masked recipient, purpose, risk score and reasons.
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, Value,
};
use serde::{Deserialize, Serialize};

use crate::{
    counters::Counter,
    entities::{policy_decision, policy_stat},
    error::Result,
    policy::Reason,
    time,
};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub id: i64,
    pub instance_id: Option<String>,
    pub recipient_masked: String,
    pub purpose: String,
    /// allow, flag or block
    pub decision: String,
    pub error_code: Option<String>,
    pub risk_score: i32,
    pub reasons: Vec<Reason>,
    pub created_at: i64,
}

pub struct NewEntry<'a> {
    pub account_id: i64,
    pub instance_id: &'a str,
    pub recipient_masked: String,
    pub purpose: &'a str,
    pub decision: &'a str,
    pub error_code: Option<&'a str>,
    pub risk_score: u8,
    pub reasons: &'a [Reason],
}

/// Logs a decision inside the caller's transaction, and counts it in its hour (see `summary`).
pub async fn record<C: ConnectionTrait>(db: &C, entry: NewEntry<'_>) -> Result<i64> {
    let now = time::now();
    let (account_id, decision) = (entry.account_id, entry.decision);
    let row = policy_decision::ActiveModel {
        account_id: Set(entry.account_id),
        instance_id: Set(Some(entry.instance_id.into())),
        recipient_masked: Set(entry.recipient_masked),
        purpose: Set(entry.purpose.chars().take(40).collect()),
        decision: Set(entry.decision.into()),
        error_code: Set(entry.error_code.map(str::to_string)),
        risk_score: Set(i32::from(entry.risk_score)),
        reasons: Set(serde_json::to_string(entry.reasons).unwrap_or_else(|_| "[]".into())),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    count(db, account_id, decision, now).await?;
    if let Some(code) = entry.error_code {
        count_refusals(db, account_id, code, now, 1).await?;
    }
    Ok(row.id)
}

/// `record` on its own write transaction, so the row and its count land together.
pub async fn record_alone(db: &DatabaseConnection, entry: NewEntry<'_>) -> Result<i64> {
    let txn = crate::db::begin_write(db).await?;
    let id = record(&txn, entry).await?;
    txn.commit().await?;
    Ok(id)
}

fn hour_of(at: i64) -> i64 {
    at - at.rem_euclid(3600)
}

async fn count<C: ConnectionTrait>(db: &C, account_id: i64, decision: &str, at: i64) -> Result<()> {
    count_n(db, account_id, decision, at, 1).await
}

/// Counts `n` decisions of one kind in the hour of `at` (a batch's in one statement).
pub(crate) async fn count_n<C: ConnectionTrait>(
    db: &C,
    account_id: i64,
    decision: &str,
    at: i64,
    n: i64,
) -> Result<()> {
    let column = match decision {
        "allow" => "allowed",
        "flag" => "flagged",
        _ => "blocked",
    };
    let keys: Vec<(&'static str, Value)> = vec![("account_id", account_id.into()), ("hour_start", hour_of(at).into())];
    Counter { table: "policy_stats", keys, count_column: column }.add(db, n).await?;
    Ok(())
}

/// Counts `n` sends answered with error `code` in the hour of `at`, per account (the operator
/// overview's refusals by code).
pub(crate) async fn count_refusals<C: ConnectionTrait>(
    db: &C,
    account_id: i64,
    code: &str,
    at: i64,
    n: i64,
) -> Result<()> {
    let keys: Vec<(&'static str, Value)> = vec![
        ("account_id", account_id.into()),
        ("hour_start", hour_of(at).into()),
        ("code", code.chars().take(64).collect::<String>().into()),
    ];
    Counter { table: "refusal_stats", keys, count_column: "n" }.add(db, n).await?;
    Ok(())
}

/// Blocked and flagged attempts, newest first, `limit` of them with an id below `before`. One
/// short range of the (account, decision, id) index per outcome, merged here, so a page costs
/// the same however many allowed decisions surround the concerns.
pub async fn recent_concerns(
    db: &DatabaseConnection,
    account_id: i64,
    before: Option<i64>,
    limit: u64,
) -> Result<Vec<Entry>> {
    let mut rows = Vec::new();
    for decision in ["block", "flag"] {
        let mut query = policy_decision::Entity::find()
            .filter(policy_decision::Column::AccountId.eq(account_id))
            .filter(policy_decision::Column::Decision.eq(decision));
        if let Some(before) = before {
            query = query.filter(policy_decision::Column::Id.lt(before));
        }
        rows.extend(query.order_by_desc(policy_decision::Column::Id).limit(limit).all(db).await?);
    }
    rows.sort_by(|a, b| b.id.cmp(&a.id));
    rows.truncate(limit as usize);
    Ok(rows
        .into_iter()
        .map(|m| Entry {
            reasons: serde_json::from_str(&m.reasons).unwrap_or_default(),
            id: m.id,
            instance_id: m.instance_id,
            recipient_masked: m.recipient_masked,
            purpose: m.purpose,
            decision: m.decision,
            error_code: m.error_code,
            risk_score: m.risk_score,
            created_at: m.created_at,
        })
        .collect())
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub allowed: u64,
    pub flagged: u64,
    pub blocked: u64,
}

/// Decisions of the account in the hours since `since` (rounded down to its hour), by
/// outcome, from the hourly counts `record` keeps: a week is at most 169 small rows.
pub async fn summary(db: &DatabaseConnection, account_id: i64, since: i64) -> Result<Summary> {
    let rows = policy_stat::Entity::find()
        .filter(policy_stat::Column::AccountId.eq(account_id))
        .filter(policy_stat::Column::HourStart.gte(hour_of(since)))
        .all(db)
        .await?;
    let mut summary = Summary::default();
    for row in rows {
        summary.allowed += row.allowed.max(0) as u64;
        summary.flagged += row.flagged.max(0) as u64;
        summary.blocked += row.blocked.max(0) as u64;
    }
    Ok(summary)
}

pub async fn policy_blocks_since(db: &DatabaseConnection, instance_id: &str, since: i64) -> Result<u64> {
    Ok(policy_decision::Entity::find()
        .filter(policy_decision::Column::InstanceId.eq(instance_id))
        .filter(policy_decision::Column::CreatedAt.gte(since))
        .filter(policy_decision::Column::ErrorCode.eq("policy_violation"))
        .count(db)
        .await?)
}

/// [`policy_blocks_since`] counting only the blocks whose reasons `counts` accepts. Reads the reasons of the window's
/// blocks (an instance is paused after a handful, so there are few), newest first, at most [`BLOCKS_READ_CAP`].
pub async fn policy_blocks_since_where(
    db: &DatabaseConnection,
    instance_id: &str,
    since: i64,
    counts: impl Fn(&[Reason]) -> bool,
) -> Result<u64> {
    let rows: Vec<String> = policy_decision::Entity::find()
        .select_only()
        .column(policy_decision::Column::Reasons)
        .filter(policy_decision::Column::InstanceId.eq(instance_id))
        .filter(policy_decision::Column::CreatedAt.gte(since))
        .filter(policy_decision::Column::ErrorCode.eq("policy_violation"))
        .order_by_desc(policy_decision::Column::CreatedAt)
        .limit(BLOCKS_READ_CAP)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.iter().filter(|r| counts(&serde_json::from_str::<Vec<Reason>>(r).unwrap_or_default())).count() as u64)
}

/// Blocks of one instance read by [`policy_blocks_since_where`]; far above any sensible `WAG_REVIEW_PAUSE_BLOCKS`.
const BLOCKS_READ_CAP: u64 = 1_000;
