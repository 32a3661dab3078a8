//! `Idempotency-Key`: a retried request returns the first successful response without sending
//! or counting again. Keys are scoped to the account and kept 24 hours. A key is claimed before
//! the send starts, so two concurrent requests with one key cannot both send.
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};
use sha2::{Digest, Sha256};

use crate::{entities::idempotency_key, error::Result, time};

pub const KEEP_SECS: i64 = 24 * 3600;
pub const MAX_KEY_LEN: usize = 255;
/// Status stored while the first request is still running.
const IN_PROGRESS: i32 = 0;

pub enum Claim {
    /// First use: go ahead, then `complete` or `release`.
    Claimed,
    /// A finished request with this key and the same body: answer this again.
    Replay { status: u16, body: String },
    /// The same key with a different body.
    Mismatch,
    /// The first request with this key is still running.
    InProgress,
}

pub fn request_hash(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

pub async fn claim(db: &DatabaseConnection, account_id: i64, key: &str, hash: &str) -> Result<Claim> {
    let now = time::now();
    // An expired key is free again.
    idempotency_key::Entity::delete_many()
        .filter(idempotency_key::Column::AccountId.eq(account_id))
        .filter(idempotency_key::Column::Key.eq(key))
        .filter(idempotency_key::Column::CreatedAt.lt(now - KEEP_SECS))
        .exec(db)
        .await?;
    let inserted = idempotency_key::ActiveModel {
        account_id: Set(account_id),
        key: Set(key.into()),
        request_hash: Set(hash.into()),
        status_code: Set(IN_PROGRESS),
        response_body: Set(String::new()),
        created_at: Set(now),
    }
    .insert(db)
    .await;
    match inserted {
        Ok(_) => Ok(Claim::Claimed),
        Err(e) if matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_))) => {
            let Some(row) = idempotency_key::Entity::find_by_id((account_id, key.to_string())).one(db).await? else {
                return Ok(Claim::InProgress);
            };
            if row.request_hash != hash {
                Ok(Claim::Mismatch)
            } else if row.status_code == IN_PROGRESS {
                Ok(Claim::InProgress)
            } else {
                Ok(Claim::Replay { status: u16::try_from(row.status_code).unwrap_or(200), body: row.response_body })
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Stores the response to replay.
pub async fn complete(db: &DatabaseConnection, account_id: i64, key: &str, status: u16, body: &str) -> Result<()> {
    idempotency_key::ActiveModel {
        account_id: Set(account_id),
        key: Set(key.into()),
        status_code: Set(i32::from(status)),
        response_body: Set(body.into()),
        ..Default::default()
    }
    .update(db)
    .await?;
    Ok(())
}

/// Frees the key: the request did not send, so a retry should run the checks again.
pub async fn release(db: &DatabaseConnection, account_id: i64, key: &str) -> Result<()> {
    idempotency_key::Entity::delete_by_id((account_id, key.to_string())).exec(db).await?;
    Ok(())
}

pub async fn delete_expired(db: &DatabaseConnection) -> Result<u64> {
    Ok(idempotency_key::Entity::delete_many()
        .filter(idempotency_key::Column::CreatedAt.lt(time::now() - KEEP_SECS))
        .exec(db)
        .await?
        .rows_affected)
}
