//! API keys: high-entropy secrets with a recognisable prefix. Only a SHA-256 hash and a short
//! display prefix are stored; the full key is returned once, at creation. Lookup is by hash, so
//! the API path never pays for argon2.
use rand::Rng;
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    entities::api_key,
    error::{Error, Result},
    ids, time,
};

pub const KEY_PREFIX: &str = "wag_";
const SECRET_CHARS: usize = 40;
const DISPLAY_CHARS: usize = 12;
/// `last_used_at` is refreshed at most this often, so a busy key does not write on every call.
pub(crate) const LAST_USED_RESOLUTION_SECS: i64 = 60;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ApiKeyInfo {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl From<api_key::Model> for ApiKeyInfo {
    fn from(m: api_key::Model) -> Self {
        ApiKeyInfo {
            id: m.id,
            name: m.name,
            prefix: m.prefix,
            created_at: m.created_at,
            last_used_at: m.last_used_at,
            revoked_at: m.revoked_at,
        }
    }
}

/// A key just created: `secret` is the only copy of the full key that will ever exist.
#[derive(Clone, Debug)]
pub struct CreatedKey {
    pub info: ApiKeyInfo,
    pub secret: String,
}

pub fn parse_name(text: &str) -> Result<String> {
    crate::names::display_name(text, "Give the key a name, such as the system that will use it.", "Key names")
}

pub fn hash_key(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn generate_secret() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let body: String = (0..SECRET_CHARS).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
    format!("{KEY_PREFIX}{body}")
}

pub async fn create(db: &DatabaseConnection, account_id: i64, name: &str) -> Result<CreatedKey> {
    create_capped(db, account_id, name, None).await
}

/// Creates a key unless the account already holds `cap` active ones (see `caps`).
pub async fn create_capped(
    db: &DatabaseConnection,
    account_id: i64,
    name: &str,
    cap: Option<u64>,
) -> Result<CreatedKey> {
    let name = parse_name(name)?;
    let txn = crate::db::begin_write(db).await?;
    if let Some(cap) = cap {
        crate::caps::check(&txn, account_id, crate::caps::Capped::ApiKeys, cap).await?;
    }
    let secret = generate_secret();
    let model = api_key::ActiveModel {
        id: Set(ids::new_id("key")),
        account_id: Set(account_id),
        name: Set(name),
        prefix: Set(secret[..DISPLAY_CHARS].to_string()),
        key_hash: Set(hash_key(&secret)),
        created_at: Set(time::now()),
        last_used_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(CreatedKey { info: model.into(), secret })
}

pub async fn list(db: &DatabaseConnection, account_id: i64) -> Result<Vec<ApiKeyInfo>> {
    Ok(api_key::Entity::find()
        .filter(api_key::Column::AccountId.eq(account_id))
        .order_by_desc(api_key::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(ApiKeyInfo::from)
        .collect())
}

/// Revokes one of the account's keys; another account's key is `NotFound`.
pub async fn revoke(db: &DatabaseConnection, account_id: i64, key_id: &str) -> Result<ApiKeyInfo> {
    let model = api_key::Entity::find_by_id(key_id.to_string())
        .filter(api_key::Column::AccountId.eq(account_id))
        .one(db)
        .await?
        .ok_or(Error::NotFound)?;
    mark_revoked(db, model).await
}

/// Operator action: revokes whichever key this full secret is.
pub async fn revoke_by_secret(db: &DatabaseConnection, secret: &str) -> Result<ApiKeyInfo> {
    let model = api_key::Entity::find()
        .filter(api_key::Column::KeyHash.eq(hash_key(secret.trim())))
        .one(db)
        .await?
        .ok_or_else(|| Error::invalid("No API key matches the key given."))?;
    mark_revoked(db, model).await
}

async fn mark_revoked(db: &DatabaseConnection, model: api_key::Model) -> Result<ApiKeyInfo> {
    if model.revoked_at.is_some() {
        return Ok(model.into());
    }
    let txn = crate::db::begin_write(db).await?;
    let mut active: api_key::ActiveModel = model.into();
    active.revoked_at = Set(Some(time::now()));
    let revoked = active.update(&txn).await?;
    crate::cache::epoch::mark(&txn).await?;
    crate::cache::epoch::commit(txn).await?;
    Ok(revoked.into())
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyCheck {
    Valid { key_id: String, account_id: i64 },
    Revoked,
    Invalid,
}

/// Whether the text has the shape of one of our keys (anything else is not looked up).
pub fn looks_like_key(presented: &str) -> bool {
    presented.starts_with(KEY_PREFIX) && presented.len() == KEY_PREFIX.len() + SECRET_CHARS
}

/// A stored key found by its hash.
pub struct FoundKey {
    pub check: KeyCheck,
    pub last_used_at: Option<i64>,
}

pub async fn find_by_hash(db: &DatabaseConnection, hash: &str) -> Result<Option<FoundKey>> {
    let Some(model) = api_key::Entity::find().filter(api_key::Column::KeyHash.eq(hash)).one(db).await? else {
        return Ok(None);
    };
    let check = if model.revoked_at.is_some() {
        KeyCheck::Revoked
    } else {
        KeyCheck::Valid { key_id: model.id, account_id: model.account_id }
    };
    Ok(Some(FoundKey { check, last_used_at: model.last_used_at }))
}

pub async fn touch_last_used(db: &DatabaseConnection, key_id: &str, now: i64) -> Result<()> {
    api_key::Entity::update_many()
        .col_expr(api_key::Column::LastUsedAt, sea_orm::sea_query::Expr::value(now))
        .filter(api_key::Column::Id.eq(key_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Resolves a presented bearer key straight from the database: one indexed lookup by hash. The
/// API path goes through `cache::HotCache::authenticate`, which remembers the answer.
pub async fn authenticate(db: &DatabaseConnection, presented: &str) -> Result<KeyCheck> {
    let presented = presented.trim();
    if !looks_like_key(presented) {
        return Ok(KeyCheck::Invalid);
    }
    let Some(found) = find_by_hash(db, &hash_key(presented)).await? else {
        return Ok(KeyCheck::Invalid);
    };
    if let KeyCheck::Valid { key_id, .. } = &found.check {
        let now = time::now();
        if found.last_used_at.is_none_or(|t| now - t >= LAST_USED_RESOLUTION_SECS) {
            touch_last_used(db, key_id, now).await?;
        }
    }
    Ok(found.check)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_have_the_prefix_and_enough_entropy() {
        let a = generate_secret();
        let b = generate_secret();
        assert!(a.starts_with("wag_") && a.len() == 44);
        assert_ne!(a, b);
        assert_eq!(hash_key(&a).len(), 64);
        assert!(parse_name("  ").is_err());
        assert_eq!(parse_name(" ERP ").unwrap(), "ERP");
    }
}
