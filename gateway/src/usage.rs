//! Fair-use counters per account, per UTC day and UTC month. The send pipeline counts units
//! here; the dashboard reads them.
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

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

pub async fn current(db: &DatabaseConnection, account_id: i64, at: DateTime<Utc>) -> Result<Usage> {
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
