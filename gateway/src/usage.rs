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

/// Every fair-use counter, for batches.
pub(crate) const COUNTERS: crate::counters::Counters = crate::counters::Counters {
    table: "usage_counters",
    key_columns: &["account_id", "period", "period_start"],
    count_column: "used",
};

/// The key of the account's counter of the UTC day of `at`, in [`COUNTERS`].
pub(crate) fn day_of(account_id: i64, at: DateTime<Utc>) -> (i64, String, String) {
    (account_id, "day".into(), day_key(at))
}

/// The key of the account's counter of the UTC month of `at`, in [`COUNTERS`].
pub(crate) fn month_of(account_id: i64, at: DateTime<Utc>) -> (i64, String, String) {
    (account_id, "month".into(), month_key(at))
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
