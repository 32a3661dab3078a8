//! Slows and then stops password guessing. Failures are counted per email and per client
//! address in the database, so several server processes share the count.
use std::time::Duration;

use sea_orm::{ActiveModelTrait, DatabaseConnection, EntityTrait, Set};

use crate::{
    entities::login_throttle,
    error::{Error, Result},
    time,
};

/// Failures are counted within this window.
const WINDOW_SECS: i64 = 15 * 60;
/// From this many failures on, each attempt waits a little longer before it is checked.
const SLOW_AFTER: i32 = 3;
const STEP_MS: u64 = 250;
const MAX_DELAY_MS: u64 = 2_000;
/// This many failures lock the email for LOCK_SECS.
const LOCK_EMAIL_AFTER: i32 = 10;
/// Addresses get more room: an office behind one NAT has many users.
const LOCK_IP_AFTER: i32 = 50;
const LOCK_SECS: i64 = 15 * 60;

pub const LOCKED_MESSAGE: &str = "Too many failed sign-in attempts. Please wait 15 minutes and try again.";

/// The throttle key of an email: hashed, so typed addresses (and typos of passwords pasted into
/// the email field) are not stored.
pub fn email_key(email_text: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(email_text.trim().to_ascii_lowercase().as_bytes());
    format!("email:{}", &hex::encode(digest)[..40])
}

pub async fn check_and_delay(db: &DatabaseConnection, email_key: &str, ip_key: &str) -> Result<()> {
    let now = time::now();
    let email = login_throttle::Entity::find_by_id(email_key.to_string()).one(db).await?;
    let ip = login_throttle::Entity::find_by_id(ip_key.to_string()).one(db).await?;
    for row in [&email, &ip].into_iter().flatten() {
        if row.locked_until.is_some_and(|until| until > now) {
            return Err(Error::Refused(LOCKED_MESSAGE.into()));
        }
    }
    let failures = [&email, &ip]
        .into_iter()
        .flatten()
        .filter(|row| row.window_started_at > now - WINDOW_SECS)
        .map(|row| row.failures)
        .max()
        .unwrap_or(0);
    if failures >= SLOW_AFTER {
        let delay = (STEP_MS * (failures - SLOW_AFTER + 1) as u64).min(MAX_DELAY_MS);
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    Ok(())
}

pub async fn record_failure(db: &DatabaseConnection, email_key: &str, ip_key: &str) -> Result<()> {
    bump(db, email_key, LOCK_EMAIL_AFTER).await?;
    bump(db, ip_key, LOCK_IP_AFTER).await
}

pub async fn clear(db: &DatabaseConnection, key: &str) -> Result<()> {
    login_throttle::Entity::delete_by_id(key.to_string()).exec(db).await?;
    Ok(())
}

async fn bump(db: &DatabaseConnection, key: &str, lock_after: i32) -> Result<()> {
    let now = time::now();
    let key = key.to_string();
    match login_throttle::Entity::find_by_id(key.clone()).one(db).await? {
        Some(row) => {
            let fresh = row.window_started_at <= now - WINDOW_SECS || row.locked_until.is_some_and(|u| u <= now);
            let failures = if fresh { 1 } else { row.failures + 1 };
            let mut active: login_throttle::ActiveModel = row.into();
            active.failures = Set(failures);
            if fresh {
                active.window_started_at = Set(now);
                active.locked_until = Set(None);
            }
            if failures >= lock_after {
                active.locked_until = Set(Some(now + LOCK_SECS));
            }
            active.update(db).await?;
        }
        None => {
            let insert = login_throttle::ActiveModel {
                key: Set(key),
                failures: Set(1),
                window_started_at: Set(now),
                locked_until: Set(None),
            }
            .insert(db)
            .await;
            // A concurrent first failure already inserted the row; one uncounted failure is harmless.
            if let Err(e) = insert {
                if !matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))) {
                    return Err(e.into());
                }
            }
        }
    }
    Ok(())
}
