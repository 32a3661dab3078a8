//! The policy log: every send decision past the instance check, allowed or blocked, with the
//! masked recipient, purpose, risk score and reasons.
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde::{Deserialize, Serialize};

use crate::{entities::policy_decision, error::Result, policy::Reason, time};

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

pub async fn record<C: sea_orm::ConnectionTrait>(db: &C, entry: NewEntry<'_>) -> Result<i64> {
    let row = policy_decision::ActiveModel {
        account_id: Set(entry.account_id),
        instance_id: Set(Some(entry.instance_id.into())),
        recipient_masked: Set(entry.recipient_masked),
        purpose: Set(entry.purpose.chars().take(40).collect()),
        decision: Set(entry.decision.into()),
        error_code: Set(entry.error_code.map(str::to_string)),
        risk_score: Set(i32::from(entry.risk_score)),
        reasons: Set(serde_json::to_string(entry.reasons).unwrap_or_else(|_| "[]".into())),
        created_at: Set(time::now()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(row.id)
}

/// Recent blocked and flagged attempts, newest first.
pub async fn recent_concerns(db: &DatabaseConnection, account_id: i64, limit: u64) -> Result<Vec<Entry>> {
    Ok(policy_decision::Entity::find()
        .filter(policy_decision::Column::AccountId.eq(account_id))
        .filter(policy_decision::Column::Decision.ne("allow"))
        .order_by_desc(policy_decision::Column::Id)
        .limit(limit)
        .all(db)
        .await?
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

/// Decisions of the account since `since`, by outcome.
pub async fn summary(db: &DatabaseConnection, account_id: i64, since: i64) -> Result<Summary> {
    let count = |decision: &'static str| {
        policy_decision::Entity::find()
            .filter(policy_decision::Column::AccountId.eq(account_id))
            .filter(policy_decision::Column::CreatedAt.gte(since))
            .filter(policy_decision::Column::Decision.eq(decision))
            .count(db)
    };
    Ok(Summary { allowed: count("allow").await?, flagged: count("flag").await?, blocked: count("block").await? })
}

/// Policy-violation blocks of an instance since `since` (for the review pause).
/// A send that passed every check but that the provider did not take.
pub async fn mark_send_failed<C: sea_orm::ConnectionTrait>(db: &C, id: i64, error_code: &str) -> Result<()> {
    policy_decision::Entity::update_many()
        .col_expr(policy_decision::Column::ErrorCode, sea_orm::sea_query::Expr::value(error_code))
        .filter(policy_decision::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn policy_blocks_since(db: &DatabaseConnection, instance_id: &str, since: i64) -> Result<u64> {
    Ok(policy_decision::Entity::find()
        .filter(policy_decision::Column::InstanceId.eq(instance_id))
        .filter(policy_decision::Column::CreatedAt.gte(since))
        .filter(policy_decision::Column::ErrorCode.eq("policy_violation"))
        .count(db)
        .await?)
}
