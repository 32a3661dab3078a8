//! Fair-use counters per account, per UTC day and UTC month. The send pipeline counts units
//! here; the dashboard reads them.
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use crate::{entities::usage_counter, error::Result};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Usage {
    pub today: i64,
    pub this_month: i64,
}

pub fn day_key(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}

pub fn month_key(at: DateTime<Utc>) -> String {
    at.format("%Y-%m").to_string()
}

pub async fn current<C: ConnectionTrait>(db: &C, account_id: i64, at: DateTime<Utc>) -> Result<Usage> {
    let rows = usage_counter::Entity::find()
        .filter(usage_counter::Column::AccountId.eq(account_id))
        .filter(usage_counter::Column::PeriodStart.is_in([day_key(at), month_key(at)]))
        .all(db)
        .await?;
    let mut usage = Usage::default();
    for row in rows {
        match row.period.as_str() {
            "day" => usage.today = row.used.into(),
            "month" => usage.this_month = row.used.into(),
            _ => {}
        }
    }
    Ok(usage)
}

fn counter<'a>(keys: &'a [(&'static str, sea_orm::Value)]) -> crate::counters::Counter<'a> {
    crate::counters::Counter { table: "usage_counters", keys, count_column: "used" }
}

fn keys(account_id: i64, period: &'static str, start: &str) -> [(&'static str, sea_orm::Value); 3] {
    [("account_id", account_id.into()), ("period", period.into()), ("period_start", start.into())]
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LimitExceeded {
    Daily { limit: i64, used: i64 },
    Monthly { limit: i64, used: i64 },
}

/// A unit taken from today's and this month's counters; give it back if the send does not happen.
#[derive(Clone, Debug)]
pub struct Reservation {
    pub account_id: i64,
    pub day: String,
    pub month: String,
    /// Today's remaining quota after this send.
    pub remaining_today: i64,
}

/// Takes one unit of the day's and the month's quota, atomically and exactly.
pub async fn reserve<C: ConnectionTrait>(
    db: &C,
    account_id: i64,
    limits: crate::plans::Limits,
    at: DateTime<Utc>,
) -> Result<Result<Reservation, LimitExceeded>> {
    let (day, month) = (day_key(at), month_key(at));
    let day_keys = keys(account_id, "day", &day);
    let month_keys = keys(account_id, "month", &month);
    let Some(used_today) = counter(&day_keys).try_take(db, limits.daily).await? else {
        let used = counter(&day_keys).current(db).await?;
        return Ok(Err(LimitExceeded::Daily { limit: limits.daily, used }));
    };
    if counter(&month_keys).try_take(db, limits.monthly).await?.is_none() {
        counter(&day_keys).give_back(db).await?;
        let used = counter(&month_keys).current(db).await?;
        return Ok(Err(LimitExceeded::Monthly { limit: limits.monthly, used }));
    }
    Ok(Ok(Reservation { account_id, day, month, remaining_today: (limits.daily - used_today).max(0) }))
}

/// What a reservation would meet, without taking anything (dry runs).
pub async fn check<C: ConnectionTrait>(
    db: &C,
    account_id: i64,
    limits: crate::plans::Limits,
    at: DateTime<Utc>,
) -> Result<Result<i64, LimitExceeded>> {
    let usage = current(db, account_id, at).await?;
    if usage.today >= limits.daily {
        return Ok(Err(LimitExceeded::Daily { limit: limits.daily, used: usage.today }));
    }
    if usage.this_month >= limits.monthly {
        return Ok(Err(LimitExceeded::Monthly { limit: limits.monthly, used: usage.this_month }));
    }
    Ok(Ok(limits.daily - usage.today - 1))
}

pub async fn refund<C: ConnectionTrait>(db: &C, reservation: &Reservation) -> Result<()> {
    counter(&keys(reservation.account_id, "day", &reservation.day)).give_back(db).await?;
    counter(&keys(reservation.account_id, "month", &reservation.month)).give_back(db).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn days_and_months_roll_over_in_utc() {
        let before = Utc.with_ymd_and_hms(2026, 11, 30, 23, 59, 59).unwrap();
        let after = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        assert_eq!((day_key(before), month_key(before)), ("2026-11-30".to_string(), "2026-11".to_string()));
        assert_eq!((day_key(after), month_key(after)), ("2026-12-01".to_string(), "2026-12".to_string()));
        // 23:30 in Riyadh (UTC+3) is still the previous UTC day.
        let riyadh = chrono::FixedOffset::east_opt(3 * 3600).unwrap().with_ymd_and_hms(2026, 12, 1, 2, 30, 0).unwrap();
        assert_eq!(day_key(riyadh.with_timezone(&Utc)), "2026-11-30");
    }
}
