//! Per-account caps on what a customer may create (`config::AccountCaps`). The count and the
//! insert share one write transaction with the account's row locked, so parallel creates cannot
//! pass a cap together. Operators' `wag admin` commands are not capped.
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect};

use crate::{
    entities::{account, api_key, instance, webhook_destination},
    error::{Error, Result},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capped {
    Instances,
    /// Keys not revoked.
    ApiKeys,
    WebhookDestinations,
}

/// Refuses when the account already holds `cap` of `what`. Call inside the transaction that
/// creates the row; the account's row stays locked until it ends (SQLite: the one writer).
pub async fn check<C: ConnectionTrait>(conn: &C, account_id: i64, what: Capped, cap: u64) -> Result<()> {
    account::Entity::find_by_id(account_id).lock_exclusive().one(conn).await?;
    let held = match what {
        Capped::Instances => {
            instance::Entity::find().filter(instance::Column::AccountId.eq(account_id)).count(conn).await?
        }
        Capped::ApiKeys => {
            api_key::Entity::find()
                .filter(api_key::Column::AccountId.eq(account_id))
                .filter(api_key::Column::RevokedAt.is_null())
                .count(conn)
                .await?
        }
        Capped::WebhookDestinations => {
            webhook_destination::Entity::find()
                .filter(webhook_destination::Column::AccountId.eq(account_id))
                .count(conn)
                .await?
        }
    };
    if held < cap {
        return Ok(());
    }
    let (things, remedy) = match what {
        Capped::Instances => ("instances", "Delete one you no longer use"),
        Capped::ApiKeys => ("active API keys", "Revoke one you no longer use"),
        Capped::WebhookDestinations => ("webhook destinations", "Remove one you no longer use"),
    };
    Err(Error::Refused(format!(
        "This account has reached its limit of {cap} {things}. {remedy}, or ask the gateway's operator for a higher limit."
    )))
}
