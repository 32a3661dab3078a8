//! `Idempotency-Key`: a retried request returns the first successful response without sending
//! or counting again. Keys are scoped to the account and kept 24 hours. A key is claimed in the
//! same transaction that admits the message, and answered in the one that settles it, so no
//! crash can leave a key without its message or send a message twice under one key.
use std::collections::BTreeMap;

use sea_orm::{
    sea_query::{CaseStatement, Expr},
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, ExprTrait, QueryFilter, Set,
};
use sha2::{Digest, Sha256};

use crate::{entities::idempotency_key, error::Result, time};

pub const KEEP_SECS: i64 = 24 * 3600;
pub const MAX_KEY_LEN: usize = 255;
/// Status stored while the first request is still running.
const IN_PROGRESS: i32 = 0;

/// A key the caller asked to send under, with the hash of the request body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyedRequest {
    pub key: String,
    /// The hash of the body's JSON in canonical form (what is stored with the key).
    pub request_hash: String,
    /// The hash of the body's bytes as sent, which keys stored before canonical hashing hold.
    pub raw_hash: String,
}

impl KeyedRequest {
    /// The same request is the same JSON: keys in another order or other whitespace do not
    /// make it another request. The canonical form is the parsed body written back compactly
    /// with its object keys sorted; a body that is not JSON is taken as its bytes.
    pub fn new(key: String, body: &[u8]) -> KeyedRequest {
        let raw_hash = request_hash(body);
        let request_hash = match serde_json::from_slice::<serde_json::Value>(body) {
            // serde_json's maps keep their keys sorted (no `preserve_order` in this build).
            Ok(value) => {
                serde_json::to_vec(&value).map(|canonical| request_hash(&canonical)).unwrap_or(raw_hash.clone())
            }
            Err(_) => raw_hash.clone(),
        };
        KeyedRequest { key, request_hash, raw_hash }
    }

    /// Whether a stored key's hash names this request.
    fn matches(&self, stored: &str) -> bool {
        stored == self.request_hash || stored == self.raw_hash
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
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

/// What an earlier use of the key answers, or `None` when the key is free (an expired one is
/// removed here).
pub async fn earlier_use(db: &DatabaseConnection, account_id: i64, keyed: &KeyedRequest) -> Result<Option<Claim>> {
    let Some(row) = idempotency_key::Entity::find_by_id((account_id, keyed.key.clone())).one(db).await? else {
        return Ok(None);
    };
    if row.created_at < time::now() - KEEP_SECS {
        idempotency_key::Entity::delete_many()
            .filter(idempotency_key::Column::AccountId.eq(account_id))
            .filter(idempotency_key::Column::Key.eq(keyed.key.as_str()))
            .filter(idempotency_key::Column::CreatedAt.eq(row.created_at))
            .exec(db)
            .await?;
        return Ok(None);
    }
    Ok(Some(answer_of(row, keyed)))
}

fn answer_of(row: idempotency_key::Model, keyed: &KeyedRequest) -> Claim {
    if !keyed.matches(&row.request_hash) {
        Claim::Mismatch
    } else if row.status_code == IN_PROGRESS {
        Claim::InProgress
    } else {
        Claim::Replay { status: u16::try_from(row.status_code).unwrap_or(200), body: row.response_body }
    }
}

/// The row that claims `keyed` for a send admitted at `at` (answered when it settles).
pub(crate) fn claim_row(account_id: i64, keyed: &KeyedRequest, at: i64) -> idempotency_key::ActiveModel {
    idempotency_key::ActiveModel {
        account_id: Set(account_id),
        key: Set(keyed.key.clone()),
        request_hash: Set(keyed.request_hash.clone()),
        status_code: Set(IN_PROGRESS),
        response_body: Set(String::new()),
        created_at: Set(at),
    }
}

/// Claims the key on its own. False when another request holds it.
pub async fn claim<C: ConnectionTrait>(conn: &C, account_id: i64, keyed: &KeyedRequest) -> Result<bool> {
    match claim_row(account_id, keyed, time::now()).insert(conn).await {
        Ok(_) => Ok(true),
        Err(e) if crate::db::is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Removes a key whose 24 hours are over (found by admission: the key is free again).
pub(crate) async fn remove_expired<C: ConnectionTrait>(
    conn: &C,
    account_id: i64,
    key: &str,
    created_at: i64,
) -> Result<()> {
    idempotency_key::Entity::delete_many()
        .filter(idempotency_key::Column::AccountId.eq(account_id))
        .filter(idempotency_key::Column::Key.eq(key))
        .filter(idempotency_key::Column::CreatedAt.eq(created_at))
        .exec(conn)
        .await?;
    Ok(())
}

/// The answer a key gets when its send settles.
pub(crate) struct Answer<'a> {
    pub account_id: i64,
    pub key: &'a str,
    pub status: u16,
    pub body: &'a str,
}

/// Stores the answer a retry will get (only over a key still in progress: the first answer
/// stays).
pub async fn complete<C: ConnectionTrait>(conn: &C, account_id: i64, key: &str, status: u16, body: &str) -> Result<()> {
    complete_many(conn, &[Answer { account_id, key, status, body }]).await
}

/// [`complete`] for many keys: one UPDATE per account and piece of the list (a CASE on the key).
pub(crate) async fn complete_many<C: ConnectionTrait>(conn: &C, answers: &[Answer<'_>]) -> Result<()> {
    let mut by_account: BTreeMap<i64, Vec<&Answer<'_>>> = BTreeMap::new();
    for answer in answers {
        by_account.entry(answer.account_id).or_default().push(answer);
    }
    for (account_id, answers) in by_account {
        for chunk in crate::db::shaped_chunks(&answers, crate::db::INSERT_CHUNK) {
            let when = |a: &Answer<'_>| Expr::col(idempotency_key::Column::Key).eq(a.key);
            let status = case_of(chunk, |a| (when(a), Expr::val(i32::from(a.status))));
            let body = case_of(chunk, |a| (when(a), Expr::val(a.body)));
            let (Some(status), Some(body)) = (status, body) else { continue };
            idempotency_key::Entity::update_many()
                .col_expr(
                    idempotency_key::Column::StatusCode,
                    status.finally(Expr::col(idempotency_key::Column::StatusCode)).into(),
                )
                .col_expr(
                    idempotency_key::Column::ResponseBody,
                    body.finally(Expr::col(idempotency_key::Column::ResponseBody)).into(),
                )
                .filter(idempotency_key::Column::AccountId.eq(account_id))
                .filter(idempotency_key::Column::Key.is_in(chunk.iter().map(|a| a.key)))
                .filter(idempotency_key::Column::StatusCode.eq(IN_PROGRESS))
                .exec(conn)
                .await?;
        }
    }
    Ok(())
}

/// `CASE WHEN … THEN … END` over `items`; `None` for none.
fn case_of<T>(items: &[T], arm: impl Fn(&T) -> (Expr, Expr)) -> Option<CaseStatement> {
    let mut arms = items.iter().map(arm);
    let (when, then) = arms.next()?;
    Some(arms.fold(Expr::case(when, then), |case, (when, then)| case.case(when, then)))
}

/// Frees the keys: nothing was sent, so a retry should run the checks again. One DELETE per
/// account and piece of the list.
pub(crate) async fn release_many<C: ConnectionTrait>(conn: &C, keys: &[(i64, &str)]) -> Result<()> {
    let mut by_account: BTreeMap<i64, Vec<&str>> = BTreeMap::new();
    for (account_id, key) in keys {
        by_account.entry(*account_id).or_default().push(key);
    }
    for (account_id, keys) in by_account {
        for chunk in crate::db::shaped_chunks(&keys, crate::db::INSERT_CHUNK) {
            idempotency_key::Entity::delete_many()
                .filter(idempotency_key::Column::AccountId.eq(account_id))
                .filter(idempotency_key::Column::Key.is_in(chunk.iter().copied()))
                .filter(idempotency_key::Column::StatusCode.eq(IN_PROGRESS))
                .exec(conn)
                .await?;
        }
    }
    Ok(())
}

pub async fn delete_expired(db: &DatabaseConnection) -> Result<u64> {
    Ok(idempotency_key::Entity::delete_many()
        .filter(idempotency_key::Column::CreatedAt.lt(time::now() - KEEP_SECS))
        .exec(db)
        .await?
        .rows_affected)
}

/// Keys still in progress (for the failure tests' checks and operators' eyes).
pub async fn in_progress_count(db: &DatabaseConnection) -> Result<u64> {
    use sea_orm::PaginatorTrait;
    Ok(idempotency_key::Entity::find().filter(idempotency_key::Column::StatusCode.eq(IN_PROGRESS)).count(db).await?)
}
