//! The per-account suppression list: recipients who opted out or were blocked. Every change is
//! written to the change log in the same transaction.
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};

use crate::{
    entities::{suppression, suppression_change},
    error::{Error, Result},
    send::phone::Phone,
    time,
};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppression {
    pub id: i64,
    pub phone: String,
    pub reason: String,
    pub source: String,
    pub created_by: String,
    pub created_at: i64,
}

impl From<suppression::Model> for Suppression {
    fn from(m: suppression::Model) -> Self {
        Suppression {
            id: m.id,
            phone: m.phone,
            reason: m.reason,
            source: m.source,
            created_by: m.created_by,
            created_at: m.created_at,
        }
    }
}

/// Reasons a person may pick in the portal; opt-outs use `recipient_requested_stop`.
pub const REASONS: &[(&str, &str)] = &[
    ("recipient_requested_stop", "The recipient asked to stop"),
    ("blocked_by_customer", "Blocked by us"),
    ("wrong_number", "Wrong number"),
    ("complaint", "Complaint"),
];

pub fn parse_reason(text: &str) -> Result<&'static str> {
    REASONS
        .iter()
        .find(|(code, _)| *code == text.trim())
        .map(|(code, _)| *code)
        .ok_or_else(|| Error::invalid("Choose a reason from the list."))
}

pub async fn is_suppressed<C: sea_orm::ConnectionTrait>(db: &C, account_id: i64, phone: &Phone) -> Result<bool> {
    Ok(suppression::Entity::find()
        .filter(suppression::Column::AccountId.eq(account_id))
        .filter(suppression::Column::Phone.eq(phone.as_str()))
        .one(db)
        .await?
        .is_some())
}

/// Adds a recipient; adding one already on the list changes nothing and says so.
pub async fn add(
    db: &DatabaseConnection,
    account_id: i64,
    phone: &Phone,
    reason: &str,
    source: &str,
    by: &str,
) -> Result<bool> {
    let txn = crate::db::begin_write(db).await?;
    let added = add_in(&txn, account_id, phone, reason, source, by).await?;
    txn.commit().await?;
    Ok(added)
}

/// `add` inside the caller's transaction (an opt-out stores the message, the suppression and
/// the event together).
pub async fn add_in<C: sea_orm::ConnectionTrait>(
    conn: &C,
    account_id: i64,
    phone: &Phone,
    reason: &str,
    source: &str,
    by: &str,
) -> Result<bool> {
    let now = time::now();
    let existing = suppression::Entity::find()
        .filter(suppression::Column::AccountId.eq(account_id))
        .filter(suppression::Column::Phone.eq(phone.as_str()))
        .one(conn)
        .await?;
    if existing.is_some() {
        return Ok(false);
    }
    suppression::ActiveModel {
        account_id: Set(account_id),
        phone: Set(phone.as_str().into()),
        reason: Set(reason.into()),
        source: Set(source.into()),
        created_by: Set(by.into()),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(conn)
    .await?;
    log_change(conn, account_id, phone.as_str(), "added", reason, by, now).await?;
    Ok(true)
}

pub async fn remove(db: &DatabaseConnection, account_id: i64, id: i64, by: &str) -> Result<Suppression> {
    let txn = crate::db::begin_write(db).await?;
    let row = suppression::Entity::find_by_id(id)
        .filter(suppression::Column::AccountId.eq(account_id))
        .one(&txn)
        .await?
        .ok_or(Error::NotFound)?;
    suppression::Entity::delete_by_id(row.id).exec(&txn).await?;
    log_change(&txn, account_id, &row.phone, "removed", &row.reason, by, time::now()).await?;
    txn.commit().await?;
    Ok(row.into())
}

async fn log_change<C: sea_orm::ConnectionTrait>(
    txn: &C,
    account_id: i64,
    phone: &str,
    action: &str,
    reason: &str,
    by: &str,
    at: i64,
) -> Result<()> {
    suppression_change::ActiveModel {
        account_id: Set(account_id),
        phone: Set(phone.into()),
        action: Set(action.into()),
        reason: Set(reason.into()),
        changed_by: Set(by.into()),
        changed_at: Set(at),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    Ok(())
}

/// The account's list, newest first, optionally only numbers containing `search`'s digits.
pub async fn list(
    db: &DatabaseConnection,
    account_id: i64,
    search: Option<&str>,
    limit: u64,
) -> Result<Vec<Suppression>> {
    let mut query = suppression::Entity::find().filter(suppression::Column::AccountId.eq(account_id));
    let digits: String = search.unwrap_or_default().chars().filter(char::is_ascii_digit).collect();
    if !digits.is_empty() {
        query = query.filter(suppression::Column::Phone.contains(digits.as_str()));
    }
    Ok(query
        .order_by_desc(suppression::Column::Id)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(Suppression::from)
        .collect())
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub phone: String,
    pub action: String,
    pub reason: String,
    pub changed_by: String,
    pub changed_at: i64,
}

pub async fn recent_changes(db: &DatabaseConnection, account_id: i64, limit: u64) -> Result<Vec<Change>> {
    Ok(suppression_change::Entity::find()
        .filter(suppression_change::Column::AccountId.eq(account_id))
        .order_by_desc(suppression_change::Column::Id)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(|m| Change {
            phone: m.phone,
            action: m.action,
            reason: m.reason,
            changed_by: m.changed_by,
            changed_at: m.changed_at,
        })
        .collect())
}
