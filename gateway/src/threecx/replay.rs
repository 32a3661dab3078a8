//! A captured signed 3CX request must not work twice. Its timestamp keeps it fresh for ±300 s,
//! so each integration remembers the digest of every signed request it took (SHA-256 of
//! `timestamp + "." + body`, what the signature covers) for longer than that, in the database
//! so that every server of a cluster and a restarted one refuse it too. A sender that retries
//! signs again with a new timestamp.
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};
use sha2::{Digest, Sha256};

use super::signature::TIMESTAMP_TOLERANCE_SECS;
use crate::{entities::threecx_signature, error::Result};

/// Whether this is the first time the integration sees this signed request (and remembers it).
pub async fn first_sight(
    db: &DatabaseConnection,
    integration_id: &str,
    timestamp: &str,
    body: &[u8],
    now: i64,
) -> Result<bool> {
    let mut digest = Sha256::new();
    digest.update(timestamp.trim().as_bytes());
    digest.update(b".");
    digest.update(body);
    let row = threecx_signature::ActiveModel {
        integration_id: Set(integration_id.to_string()),
        digest: Set(hex::encode(digest.finalize())),
        seen_at: Set(now),
    };
    // A plain insert on every database: the key taken is the answer.
    match threecx_signature::Entity::insert(row).exec_without_returning(db).await {
        Ok(_) => Ok(true),
        Err(e) if crate::db::is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Housekeeping: digests whose timestamps can no longer pass (seen more than twice the
/// tolerance ago) are forgotten.
pub async fn forget_old(db: &DatabaseConnection, now: i64) -> Result<u64> {
    Ok(threecx_signature::Entity::delete_many()
        .filter(threecx_signature::Column::SeenAt.lt(now - 2 * TIMESTAMP_TOLERANCE_SECS))
        .exec(db)
        .await?
        .rows_affected)
}
