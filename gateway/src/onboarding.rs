//! A new account's first steps, for the dashboard's getting-started checklist: each step is
//! read from what exists (a key, a linked instance, a sent message, a webhook), so it is never
//! out of step with the account.
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter};

use crate::{
    entities::{api_key, instance, message, webhook_destination},
    error::Result,
};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub key_created: bool,
    pub instance_linked: bool,
    pub message_sent: bool,
    pub webhook_added: bool,
}

impl Progress {
    pub fn done(&self) -> bool {
        self.key_created && self.instance_linked && self.message_sent && self.webhook_added
    }
}

pub async fn progress(db: &DatabaseConnection, account_id: i64) -> Result<Progress> {
    let key_created = api_key::Entity::find()
        .filter(api_key::Column::AccountId.eq(account_id))
        .filter(api_key::Column::RevokedAt.is_null())
        .count(db)
        .await?
        > 0;
    let instance_linked = instance::Entity::find()
        .filter(instance::Column::AccountId.eq(account_id))
        .filter(instance::Column::LinkedPhone.is_not_null())
        .count(db)
        .await?
        > 0;
    // One row is enough (LIMIT 1): a busy account's message log is never counted here.
    let message_sent =
        message::Entity::find().filter(message::Column::AccountId.eq(account_id)).one(db).await?.is_some();
    let webhook_added = webhook_destination::Entity::find()
        .filter(webhook_destination::Column::AccountId.eq(account_id))
        .count(db)
        .await?
        > 0;
    Ok(Progress { key_created, instance_linked, message_sent, webhook_added })
}
