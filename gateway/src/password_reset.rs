//! One-time password-reset links. An operator creates one for a customer (`wag admin
//! reset-password`) and hands it over; no email is sent. A link is good for an hour and once:
//! using it sets the new password and ends every session of the account (sessions remember the
//! password's change time). Only the token's SHA-256 is stored.
use sea_orm::{sea_query::Expr, ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use sha2::{Digest, Sha256};

use crate::{
    accounts::{Account, NewPassword},
    entities::{account, password_reset},
    error::{Error, Result},
    time,
};

pub const LIFETIME_SECS: i64 = 3600;
const SPENT: &str = "This reset link is not valid any more (it was used, or an hour has passed). Ask for a new one.";

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

/// A new link's token for the account (the path is `/reset-password?token=…`).
pub async fn create<C: sea_orm::ConnectionTrait>(db: &C, account_id: i64) -> Result<String> {
    let bytes: [u8; 32] = rand::random();
    let token = hex::encode(bytes);
    let now = time::now();
    password_reset::ActiveModel {
        token_hash: Set(hash(&token)),
        account_id: Set(account_id),
        created_at: Set(now),
        expires_at: Set(now + LIFETIME_SECS),
        used_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(token)
}

/// Whether the token names a link that can still be used (for the page, before the form).
pub async fn usable(db: &sea_orm::DatabaseConnection, token: &str) -> Result<bool> {
    let found = password_reset::Entity::find_by_id(hash(token)).one(db).await?;
    Ok(found.is_some_and(|r| r.used_at.is_none() && r.expires_at > time::now()))
}

/// Sets the new password and spends the link, together; a bad password spends nothing.
pub async fn redeem(db: &sea_orm::DatabaseConnection, token: &str, new_password: &str) -> Result<Account> {
    let password = NewPassword::parse(new_password)?;
    if !usable(db, token).await? {
        return Err(Error::invalid(SPENT));
    }
    let password_hash = crate::accounts::hash_new_password(password).await?;
    let now = time::now();
    let txn = crate::db::begin_write(db).await?;
    // Taken once: of two uses at the same moment, one finds it spent.
    let taken = password_reset::Entity::update_many()
        .col_expr(password_reset::Column::UsedAt, Expr::value(now))
        .filter(password_reset::Column::TokenHash.eq(hash(token)))
        .filter(password_reset::Column::UsedAt.is_null())
        .filter(password_reset::Column::ExpiresAt.gt(now))
        .exec(&txn)
        .await?;
    let Some(row) = password_reset::Entity::find_by_id(hash(token)).one(&txn).await? else {
        txn.rollback().await?;
        return Err(Error::invalid(SPENT));
    };
    if taken.rows_affected != 1 {
        txn.rollback().await?;
        return Err(Error::invalid(SPENT));
    }
    let Some(model) = account::Entity::find_by_id(row.account_id).one(&txn).await? else {
        txn.rollback().await?;
        return Err(Error::invalid(SPENT));
    };
    // Strictly increasing, so every session signed in before ends.
    let changed_at = now.max(model.password_changed_at + 1);
    let mut active: account::ActiveModel = model.into();
    active.password_hash = Set(password_hash);
    active.password_changed_at = Set(changed_at);
    let updated = active.update(&txn).await?;
    txn.commit().await?;
    Ok(updated.into())
}
