//! Accounts as operators see them: a search by email, paged by id (never counted), and one
//! account in full (plan, limits, usage, modules, instances, keys, recent policy decisions,
//! limit requests and its audit rows).
use sea_orm::{
    sea_query::LikeExpr, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use crate::{
    accounts::Account,
    api_keys::ApiKeyInfo,
    audit,
    entities::account,
    error::{Error, Result},
    instances::Instance,
    limit_requests::{self, LimitRequest},
    policy_log,
};

/// Accounts whose email contains `query` (all when empty), by id, `limit` of them past `after`.
pub async fn search(db: &DatabaseConnection, query: &str, after: Option<i64>, limit: u64) -> Result<Vec<Account>> {
    let mut find = account::Entity::find();
    let query = query.trim().to_lowercase();
    if !query.is_empty() {
        let pattern = LikeExpr::new(super::sql::contains_pattern(&query)).escape('!');
        find = find.filter(account::Column::Email.like(pattern));
    }
    if let Some(after) = after {
        find = find.filter(account::Column::Id.gt(after));
    }
    Ok(find.order_by_asc(account::Column::Id).limit(limit).all(db).await?.into_iter().map(Account::from).collect())
}

/// One account as its page shows it.
#[derive(Clone, Debug)]
pub struct AccountDetail {
    pub account: Account,
    pub used_today: i64,
    pub used_this_month: i64,
    pub instances: Vec<Instance>,
    pub keys: Vec<ApiKeyInfo>,
    /// The newest blocked and flagged send attempts.
    pub concerns: Vec<policy_log::Entry>,
    pub limit_requests: Vec<LimitRequest>,
    pub audit: Vec<audit::Entry>,
}

pub async fn detail(db: &DatabaseConnection, account_id: i64) -> Result<AccountDetail> {
    let model = account::Entity::find_by_id(account_id).one(db).await?.ok_or(Error::NotFound)?;
    let usage = crate::usage::current(db, account_id, chrono::Utc::now()).await?;
    Ok(AccountDetail {
        account: model.into(),
        used_today: usage.today,
        used_this_month: usage.this_month,
        instances: crate::instances::list(db, account_id).await?,
        keys: crate::api_keys::list(db, account_id).await?,
        concerns: policy_log::recent_concerns(db, account_id, None, 10).await?,
        limit_requests: limit_requests::of_account(db, account_id, 5).await?,
        audit: audit::latest(db, Some(account_id), 20).await?,
    })
}

/// The emails of these accounts, in one query.
pub async fn emails(db: &DatabaseConnection, ids: Vec<i64>) -> Result<std::collections::HashMap<i64, String>> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    Ok(account::Entity::find()
        .select_only()
        .column(account::Column::Id)
        .column(account::Column::Email)
        .filter(account::Column::Id.is_in(ids))
        .into_tuple::<(i64, String)>()
        .all(db)
        .await?
        .into_iter()
        .collect())
}
