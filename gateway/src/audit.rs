//! The operators' audit log: every operator action, who did it (an operator's email, or "cli"
//! for `wag admin`), on which account or instance, what it was before and after, and when.
//! Rows are only ever added; retention does not prune them.
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use serde::Serialize;

use crate::{entities::audit_log, error::Result};

/// The actor name of `wag admin` commands.
pub const CLI: &str = "cli";

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub account_id: Option<i64>,
    pub instance_id: Option<String>,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// What an action changed.
pub struct Change<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub account_id: Option<i64>,
    pub instance_id: Option<&'a str>,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// Appends one row. Pass the transaction of the change itself where there is one, so an action
/// and its record commit together.
pub async fn record<C: ConnectionTrait>(conn: &C, change: Change<'_>) -> Result<()> {
    audit_log::ActiveModel {
        at: Set(crate::time::now()),
        actor: Set(change.actor.chars().take(255).collect()),
        action: Set(change.action.to_string()),
        account_id: Set(change.account_id),
        instance_id: Set(change.instance_id.map(str::to_string)),
        before_value: Set(change.before),
        after_value: Set(change.after),
        ..Default::default()
    }
    .insert(conn)
    .await?;
    Ok(())
}

/// The newest `limit` rows, of one account or of all.
pub async fn latest<C: ConnectionTrait>(conn: &C, account_id: Option<i64>, limit: u64) -> Result<Vec<Entry>> {
    page(conn, account_id, None, limit).await
}

/// `limit` rows older than the id `before`, newest first, of one account or of all.
pub async fn page<C: ConnectionTrait>(
    conn: &C,
    account_id: Option<i64>,
    before: Option<i64>,
    limit: u64,
) -> Result<Vec<Entry>> {
    let mut query = audit_log::Entity::find().order_by_desc(audit_log::Column::Id).limit(limit);
    if let Some(before) = before {
        query = query.filter(audit_log::Column::Id.lt(before));
    }
    if let Some(account_id) = account_id {
        query = query.filter(audit_log::Column::AccountId.eq(account_id));
    }
    Ok(query
        .all(conn)
        .await?
        .into_iter()
        .map(|m| Entry {
            id: m.id,
            at: m.at,
            actor: m.actor,
            action: m.action,
            account_id: m.account_id,
            instance_id: m.instance_id,
            before: m.before_value,
            after: m.after_value,
        })
        .collect())
}
