//! At most one call-event follow-up per 15 minutes per (integration, event type, phone). The
//! claim is one conditional UPDATE, so racing events for the same caller send once, on every
//! database; a claim whose send is refused is given back.
use sea_orm::{
    sea_query::{Expr, OnConflict},
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set,
};

use super::templates::CallEvent;
use crate::{entities::threecx_cooldown, error::Result, send::phone::Phone};

pub const COOLDOWN_SECS: i64 = 15 * 60;

pub struct Claim {
    integration_id: String,
    event: CallEvent,
    phone: String,
    at: i64,
}

/// Takes the cooldown slot if no follow-up went out in the last 15 minutes.
pub async fn claim(
    db: &DatabaseConnection,
    integration_id: &str,
    event: CallEvent,
    phone: &Phone,
    now: i64,
) -> Result<Option<Claim>> {
    let row = threecx_cooldown::ActiveModel {
        integration_id: Set(integration_id.into()),
        event_type: Set(event.as_str().into()),
        phone: Set(phone.as_str().into()),
        last_sent_at: Set(0),
    };
    let pk =
        [threecx_cooldown::Column::IntegrationId, threecx_cooldown::Column::EventType, threecx_cooldown::Column::Phone];
    threecx_cooldown::Entity::insert(row)
        .on_conflict(OnConflict::columns(pk).do_nothing_on(pk).to_owned())
        .exec_without_returning(db)
        .await?;
    let taken = threecx_cooldown::Entity::update_many()
        .col_expr(threecx_cooldown::Column::LastSentAt, Expr::value(now))
        .filter(threecx_cooldown::Column::IntegrationId.eq(integration_id))
        .filter(threecx_cooldown::Column::EventType.eq(event.as_str()))
        .filter(threecx_cooldown::Column::Phone.eq(phone.as_str()))
        .filter(threecx_cooldown::Column::LastSentAt.lte(now - COOLDOWN_SECS))
        .exec(db)
        .await?
        .rows_affected
        == 1;
    Ok(taken.then(|| Claim { integration_id: integration_id.into(), event, phone: phone.as_str().into(), at: now }))
}

/// Nothing was sent: the next event may try again at once.
pub async fn give_back(db: &DatabaseConnection, claim: Claim) -> Result<()> {
    threecx_cooldown::Entity::update_many()
        .col_expr(threecx_cooldown::Column::LastSentAt, Expr::value(0i64))
        .filter(threecx_cooldown::Column::IntegrationId.eq(claim.integration_id))
        .filter(threecx_cooldown::Column::EventType.eq(claim.event.as_str()))
        .filter(threecx_cooldown::Column::Phone.eq(claim.phone))
        .filter(threecx_cooldown::Column::LastSentAt.eq(claim.at))
        .exec(db)
        .await?;
    Ok(())
}

/// Housekeeping: rows whose cooldown ended long ago hold nothing back.
pub async fn delete_spent(db: &DatabaseConnection, now: i64) -> Result<u64> {
    Ok(threecx_cooldown::Entity::delete_many()
        .filter(threecx_cooldown::Column::LastSentAt.lt(now - COOLDOWN_SECS))
        .exec(db)
        .await?
        .rows_affected)
}
