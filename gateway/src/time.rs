//! Wall-clock helpers. Times are stored as Unix seconds (UTC) so the same column works on
//! SQLite, PostgreSQL and MySQL without timezone surprises.
use chrono::{DateTime, TimeZone, Utc};

pub fn now() -> i64 {
    Utc::now().timestamp()
}

pub fn to_datetime(unix: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(unix, 0).single().unwrap_or_default()
}

/// "2026-11-24 09:30 UTC", the format every page uses.
pub fn display(unix: i64) -> String {
    to_datetime(unix).format("%Y-%m-%d %H:%M UTC").to_string()
}

pub fn rfc3339(unix: i64) -> String {
    to_datetime(unix).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
