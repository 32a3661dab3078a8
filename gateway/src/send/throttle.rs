//! Sending speed per instance, kept in the database so it holds across restarts and across
//! several server processes: a fixed one-minute window of sends, and an hourly window of
//! recipients the instance has never written to (WhatsApp bans numbers that message many new
//! people quickly).
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, Set};

use crate::{
    counters::{Counter, Counters},
    entities::contacted_recipient,
    error::Result,
    send::phone::Phone,
};

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

fn window((scope, start): (String, i64)) -> Counter {
    Counter {
        table: "rate_windows",
        keys: vec![("scope", scope.into()), ("window_start", start.into())],
        count_column: "count",
    }
}

/// Every rate window, for batches.
pub(crate) const WINDOWS: Counters =
    Counters { table: "rate_windows", key_columns: &["scope", "window_start"], count_column: "count" };

/// The key of the instance's window of sends in the minute of `at`, in [`WINDOWS`].
pub(crate) fn speed_window(instance_id: &str, at: i64) -> (String, i64) {
    (format!("speed:{instance_id}"), at - at.rem_euclid(60))
}

/// The key of the instance's window of new recipients in the hour of `at`, in [`WINDOWS`].
pub(crate) fn new_window(instance_id: &str, at: i64) -> (String, i64) {
    (format!("new:{instance_id}"), at - at.rem_euclid(3600))
}

impl Admission {
    /// `new_recipient_window`: the hour a new recipient was counted in (see [`new_window`]).
    pub(crate) fn new(new_recipient_window: Option<(String, i64)>) -> Admission {
        Admission { new_recipient_window }
    }

    /// The new-recipient hour this send took a place in, if it did.
    pub(crate) fn new_recipient_window(&self) -> Option<&(String, i64)> {
        self.new_recipient_window.as_ref()
    }
}

async fn is_known<C: ConnectionTrait>(db: &C, instance_id: &str, phone: &Phone) -> Result<bool> {
    Ok(contacted_recipient::Entity::find_by_id((instance_id.to_string(), phone.as_str().to_string()))
        .one(db)
        .await?
        .is_some())
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
    if window(speed_window(instance_id, now)).current(db).await? >= limits.per_minute {
        return Ok(Err(Throttled { retry_after_secs: (minute + 60 - now).max(1) }));
    }
    if !is_known(db, instance_id, phone).await? {
        let hour = now - now.rem_euclid(3600);
        if window(new_window(instance_id, now)).current(db).await? >= limits.new_recipients_per_hour {
            return Ok(Err(Throttled { retry_after_secs: (hour + 3600 - now).max(1) }));
        }
    }
    Ok(Ok(()))
}

/// Remembers that each instance has written to each recipient (pairs known already stay as
/// they were).
pub(crate) async fn record_contacts<C: ConnectionTrait>(db: &C, pairs: &[(&str, &Phone)], now: i64) -> Result<()> {
    // PostgreSQL refuses a multi-row insert that touches one row twice.
    let mut seen = std::collections::HashSet::new();
    let rows: Vec<contacted_recipient::ActiveModel> = pairs
        .iter()
        .filter(|(instance_id, phone)| seen.insert((*instance_id, phone.as_str())))
        .map(|(instance_id, phone)| contacted_recipient::ActiveModel {
            instance_id: Set((*instance_id).into()),
            phone: Set(phone.as_str().into()),
            first_contacted_at: Set(now),
        })
        .collect();
    let pk = [contacted_recipient::Column::InstanceId, contacted_recipient::Column::Phone];
    crate::db::bulk::insert_new::<contacted_recipient::Entity, _>(db, &rows, &pk).await?;
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
