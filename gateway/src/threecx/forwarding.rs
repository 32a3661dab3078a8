//! Forwarding an instance's inbound WhatsApp messages to 3CX: the integration owns one webhook
//! destination (marked with its id, so the instance's webhook tab does not list it) that takes
//! `message.received`. Delivery, retries, signatures and the SSRF guard are the customer
//! webhooks' own.
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};

use super::integrations::{self, Integration};
use crate::{
    config::MasterKey,
    entities::webhook_destination,
    error::{Error, Result},
    events::EventKind,
    webhooks::destinations::{self, DeliveryRow, Destination},
};

/// What 3CX receives: inbound one-to-one messages (group messages are not conversations an
/// agent can answer under the window rule).
pub const FORWARDED: [EventKind; 1] = [EventKind::MessageReceived];

async fn row_of(db: &DatabaseConnection, integration: &Integration) -> Result<Option<webhook_destination::Model>> {
    Ok(webhook_destination::Entity::find()
        .filter(webhook_destination::Column::IntegrationId.eq(integration.id.as_str()))
        .one(db)
        .await?)
}

pub async fn destination(db: &DatabaseConnection, integration: &Integration) -> Result<Option<Destination>> {
    Ok(row_of(db, integration).await?.map(Destination::from))
}

/// Points forwarding at `url` (already checked with `destinations::check_url`). Returns the
/// signing secret when the destination is new (shown once).
pub async fn set_url(
    db: &DatabaseConnection,
    key: &MasterKey,
    account_id: i64,
    integration_id: &str,
    url: &str,
) -> Result<Option<String>> {
    // Under the integration's lock, so two saves cannot both create a destination.
    let txn = crate::db::begin_write(db).await?;
    let integration: Integration = match integrations::locked_row(&txn, account_id, integration_id).await {
        Ok(row) => row.into(),
        Err(e) => {
            txn.rollback().await?;
            return Err(e);
        }
    };
    let existing = webhook_destination::Entity::find()
        .filter(webhook_destination::Column::IntegrationId.eq(integration.id.as_str()))
        .one(&txn)
        .await?;
    if let Some(row) = existing {
        let mut active: webhook_destination::ActiveModel = row.into();
        active.url = Set(url.into());
        active.enabled = Set(true);
        active.disabled_reason = Set(None);
        active.failing_since = Set(None);
        active.update(&txn).await?;
        txn.commit().await?;
        destinations::destinations_changed();
        return Ok(None);
    }
    let new = destinations::NewRow {
        account_id,
        instance_id: &integration.instance_id,
        url,
        kinds: &FORWARDED,
        integration_id: Some(&integration.id),
    };
    let (row, secret) = destinations::insert(&txn, key, new).await?;
    integrations::set_destination_id(&txn, &integration.id, Some(&row.id)).await?;
    txn.commit().await?;
    Ok(Some(secret))
}

/// Stops forwarding; queued deliveries are cancelled.
pub async fn clear(db: &DatabaseConnection, account_id: i64, integration_id: &str) -> Result<()> {
    let integration = integrations::find(db, account_id, integration_id).await?;
    let Some(row) = row_of(db, &integration).await? else { return Ok(()) };
    let txn = crate::db::begin_write(db).await?;
    destinations::delete_with_deliveries(&txn, vec![row.id]).await?;
    integrations::set_destination_id(&txn, &integration.id, None).await?;
    txn.commit().await?;
    Ok(())
}

/// A new signing secret for the forwarding destination; the old one signs 24 h more.
pub async fn rotate_secret(
    db: &DatabaseConnection,
    key: &MasterKey,
    account_id: i64,
    integration_id: &str,
) -> Result<String> {
    let integration = integrations::find(db, account_id, integration_id).await?;
    let row = row_of(db, &integration).await?.ok_or_else(|| Error::invalid("Set a 3CX destination URL first."))?;
    destinations::rotate_row(db, key, row).await
}

/// Enables a destination the worker disabled (410, or 5 days of failures).
pub async fn enable(db: &DatabaseConnection, account_id: i64, integration_id: &str) -> Result<()> {
    let integration = integrations::find(db, account_id, integration_id).await?;
    let row = row_of(db, &integration).await?.ok_or_else(|| Error::invalid("Set a 3CX destination URL first."))?;
    let mut active: webhook_destination::ActiveModel = row.into();
    active.enabled = Set(true);
    active.disabled_reason = Set(None);
    active.failing_since = Set(None);
    active.update(db).await?;
    Ok(())
}

/// The recent deliveries of the destination `destination` (as found for its integration).
pub async fn recent_deliveries(
    db: &DatabaseConnection,
    destination: &Destination,
    limit: u64,
) -> Result<Vec<DeliveryRow>> {
    destinations::deliveries_of(db, &destination.id, limit, None).await
}
