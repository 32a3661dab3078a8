//! The integration's request log: when, which event, the outcome code, the phone masked, and
//! how long it took. No secrets, no bodies, no full numbers (the spec's "sanitized logs").
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};

use crate::{entities::threecx_request, error::Result};

pub struct Entry<'a> {
    pub integration_id: &'a str,
    pub account_id: i64,
    pub received_at: i64,
    pub event_type: Option<&'a str>,
    pub outcome: &'a str,
    pub status_code: u16,
    pub phone_masked: Option<String>,
    pub latency_ms: i64,
    /// A fixed description of why, for refusals the response keeps generic.
    pub detail: Option<&'a str>,
}

pub async fn record(db: &DatabaseConnection, entry: Entry<'_>) -> Result<()> {
    threecx_request::ActiveModel {
        integration_id: Set(entry.integration_id.into()),
        account_id: Set(entry.account_id),
        received_at: Set(entry.received_at),
        event_type: Set(entry.event_type.map(|t| t.chars().take(32).collect())),
        outcome: Set(entry.outcome.chars().take(40).collect()),
        status_code: Set(i32::from(entry.status_code)),
        phone_masked: Set(entry.phone_masked),
        latency_ms: Set(entry.latency_ms),
        detail: Set(entry.detail.map(|d| d.chars().take(255).collect())),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    pub id: i64,
    pub received_at: i64,
    pub event_type: Option<String>,
    pub outcome: String,
    pub status_code: i32,
    pub phone_masked: Option<String>,
    pub latency_ms: i64,
    pub detail: Option<String>,
}

/// Newest first: the most recent, or those older than the request `before` (keyset paging on
/// the (integration, id) index).
pub async fn recent(
    db: &DatabaseConnection,
    account_id: i64,
    integration_id: &str,
    limit: u64,
    before: Option<i64>,
) -> Result<Vec<Row>> {
    let mut query = threecx_request::Entity::find()
        .filter(threecx_request::Column::AccountId.eq(account_id))
        .filter(threecx_request::Column::IntegrationId.eq(integration_id));
    if let Some(before) = before {
        query = query.filter(threecx_request::Column::Id.lt(before));
    }
    Ok(crate::log_page::ranged(db, query, "idx_threecx_requests_integration")
        .order_by_desc(threecx_request::Column::Id)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(|m| Row {
            id: m.id,
            received_at: m.received_at,
            event_type: m.event_type,
            outcome: m.outcome,
            status_code: m.status_code,
            phone_masked: m.phone_masked,
            latency_ms: m.latency_ms,
            detail: m.detail,
        })
        .collect())
}

/// Drops rows received before `cutoff`, in batches (housekeeping does this with the
/// configured retention, `WAG_RETENTION_3CX_REQUESTS_DAYS`).
pub async fn delete_before(db: &DatabaseConnection, cutoff: i64) -> Result<u64> {
    let kind = crate::retention::Kind::ThreecxRequests;
    Ok(crate::retention::prune_before(db, kind, cutoff, crate::retention::Retention::default().batch).await?.rows)
}
