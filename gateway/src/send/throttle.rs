//! Sending speed per instance, kept in the database so it holds across restarts and across
//! several server processes: a fixed one-minute window of sends, and an hourly window of
//! recipients the instance has never written to (WhatsApp bans numbers that message many new
//! people quickly).
use sea_orm::{sea_query::OnConflict, ConnectionTrait, DatabaseConnection, EntityTrait, Set};

use crate::{counters::Counter, entities::contacted_recipient, error::Result, send::phone::Phone};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThrottleLimits {
    pub per_minute: i64,
    pub new_recipients_per_hour: i64,
}

/// What a send took, to give back if it does not happen.
#[derive(Clone, Debug)]
pub struct Admission {
    new_recipient_window: Option<(String, i64)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after_secs: i64,
}

fn window(scope: &str, start: i64) -> [(&'static str, sea_orm::Value); 2] {
    [("scope", scope.into()), ("window_start", start.into())]
}

fn counter<'a>(keys: &'a [(&'static str, sea_orm::Value)]) -> Counter<'a> {
    Counter { table: "rate_windows", keys, count_column: "count" }
}

async fn is_known<C: ConnectionTrait>(db: &C, instance_id: &str, phone: &Phone) -> Result<bool> {
    Ok(contacted_recipient::Entity::find_by_id((instance_id.to_string(), phone.as_str().to_string()))
        .one(db)
        .await?
        .is_some())
}

/// Takes a place in this minute's window (and, for a new recipient, in this hour's).
pub async fn admit<C: ConnectionTrait>(
    db: &C,
    instance_id: &str,
    phone: &Phone,
    limits: ThrottleLimits,
    now: i64,
) -> Result<Result<Admission, Throttled>> {
    let minute = now - now.rem_euclid(60);
    let speed_scope = format!("speed:{instance_id}");
    if counter(&window(&speed_scope, minute)).try_take(db, limits.per_minute).await?.is_none() {
        return Ok(Err(Throttled { retry_after_secs: (minute + 60 - now).max(1) }));
    }
    if is_known(db, instance_id, phone).await? {
        return Ok(Ok(Admission { new_recipient_window: None }));
    }
    let hour = now - now.rem_euclid(3600);
    let new_scope = format!("new:{instance_id}");
    if counter(&window(&new_scope, hour)).try_take(db, limits.new_recipients_per_hour).await?.is_none() {
        counter(&window(&speed_scope, minute)).give_back(db).await?;
        return Ok(Err(Throttled { retry_after_secs: (hour + 3600 - now).max(1) }));
    }
    Ok(Ok(Admission { new_recipient_window: Some((new_scope, hour)) }))
}

/// What `admit` would answer, taking nothing (dry runs).
pub async fn check<C: ConnectionTrait>(
    db: &C,
    instance_id: &str,
    phone: &Phone,
    limits: ThrottleLimits,
    now: i64,
) -> Result<Result<(), Throttled>> {
    let minute = now - now.rem_euclid(60);
    if counter(&window(&format!("speed:{instance_id}"), minute)).current(db).await? >= limits.per_minute {
        return Ok(Err(Throttled { retry_after_secs: (minute + 60 - now).max(1) }));
    }
    if !is_known(db, instance_id, phone).await? {
        let hour = now - now.rem_euclid(3600);
        if counter(&window(&format!("new:{instance_id}"), hour)).current(db).await? >= limits.new_recipients_per_hour {
            return Ok(Err(Throttled { retry_after_secs: (hour + 3600 - now).max(1) }));
        }
    }
    Ok(Ok(()))
}

/// A send that failed does not use up a new-recipient place.
pub async fn release<C: ConnectionTrait>(db: &C, admission: &Admission) -> Result<()> {
    if let Some((scope, start)) = &admission.new_recipient_window {
        counter(&window(scope, *start)).give_back(db).await?;
    }
    Ok(())
}

/// Remembers that the instance has written to this recipient.
pub async fn record_contact<C: ConnectionTrait>(db: &C, instance_id: &str, phone: &Phone, now: i64) -> Result<()> {
    let row = contacted_recipient::ActiveModel {
        instance_id: Set(instance_id.into()),
        phone: Set(phone.as_str().into()),
        first_contacted_at: Set(now),
    };
    let pk = [contacted_recipient::Column::InstanceId, contacted_recipient::Column::Phone];
    contacted_recipient::Entity::insert(row)
        .on_conflict(OnConflict::columns(pk).do_nothing_on(pk).to_owned())
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Housekeeping: windows that ended long ago (per-minute and per-hour counters of sends and
/// 3CX requests) count nothing any more.
pub async fn delete_old_windows(db: &DatabaseConnection, before: i64) -> Result<u64> {
    use sea_orm::{ColumnTrait, QueryFilter};
    Ok(crate::entities::rate_window::Entity::delete_many()
        .filter(crate::entities::rate_window::Column::WindowStart.lt(before))
        .exec(db)
        .await?
        .rows_affected)
}
