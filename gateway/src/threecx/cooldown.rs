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
    let pk =
        [threecx_cooldown::Column::IntegrationId, threecx_cooldown::Column::EventType, threecx_cooldown::Column::Phone];
    // Twice at most: housekeeping may delete a fresh row between the insert and the update.
    let mut taken = false;
    for _ in 0..2 {
        let row = threecx_cooldown::ActiveModel {
            integration_id: Set(integration_id.into()),
            event_type: Set(event.as_str().into()),
            phone: Set(phone.as_str().into()),
            last_sent_at: Set(0),
        };
        threecx_cooldown::Entity::insert(row)
            .on_conflict(OnConflict::columns(pk).do_nothing_on(pk).to_owned())
            .exec_without_returning(db)
            .await?;
        taken = threecx_cooldown::Entity::update_many()
            .col_expr(threecx_cooldown::Column::LastSentAt, Expr::value(now))
            .filter(threecx_cooldown::Column::IntegrationId.eq(integration_id))
            .filter(threecx_cooldown::Column::EventType.eq(event.as_str()))
            .filter(threecx_cooldown::Column::Phone.eq(phone.as_str()))
            .filter(threecx_cooldown::Column::LastSentAt.lte(now - COOLDOWN_SECS))
            .exec(db)
            .await?
            .rows_affected
            == 1;
        if taken {
            break;
        }
        let still_there = threecx_cooldown::Entity::find_by_id((
            integration_id.to_string(),
            event.as_str().to_string(),
            phone.as_str().to_string(),
        ))
        .one(db)
        .await?
        .is_some();
        if still_there {
            break;
        }
    }
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

/// Housekeeping: rows whose cooldown ended a day ago hold nothing back.
pub async fn delete_spent(db: &DatabaseConnection, now: i64) -> Result<u64> {
    Ok(threecx_cooldown::Entity::delete_many()
        .filter(threecx_cooldown::Column::LastSentAt.lt(now - 24 * 3600))
        .exec(db)
        .await?
        .rows_affected)
}
