//! Batch lookups by key lead with the key.
//!
//! The send and receive paths look rows up many keys at a time: `instance_id = $1 AND
//! provider_message_id IN (…)`, `account_id = $1 AND key IN (…)`, `instance_id = $1 AND phone IN
//! (…)`. With the owner's column first in the index, PostgreSQL's planner may read every row of
//! the owner and filter the keys: it does on a table not yet analyzed (a new database, the first
//! minute) and, with a generic plan, for an owner far bigger than the average one. Measured on a
//! new database: each inbound batch read all of its instance's messages. With the key first, the
//! only index that serves the query is probed once per key, whatever the statistics say.
//!
//! The two plain indexes are rebuilt on every database; the two primary keys only on PostgreSQL,
//! where the planner needs it (SQLite cannot change a primary key in place, and MySQL's range
//! optimizer probes both columns already).
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Messages {
    Table,
    InstanceId,
    ProviderMessageId,
}

#[derive(DeriveIden, Clone, Copy)]
enum InboundMessages {
    Table,
    InstanceId,
    ProviderMessageId,
}

const MESSAGES_OLD: &str = "idx_messages_provider";
const MESSAGES_NEW: &str = "idx_messages_provider_id";
const INBOUND_OLD: &str = "uq_inbound_provider";
const INBOUND_NEW: &str = "uq_inbound_provider_id";

/// (table, primary key as it was, primary key leading with the looked-up key).
const PRIMARY_KEYS: [(&str, &str, &str); 2] = [
    ("idempotency_keys", "account_id, key", "key, account_id"),
    ("contacted_recipients", "instance_id, phone", "phone, instance_id"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(MESSAGES_NEW)
                    .table(Messages::Table)
                    .col(Messages::ProviderMessageId)
                    .col(Messages::InstanceId)
                    .to_owned(),
            )
            .await?;
        manager.drop_index(Index::drop().name(MESSAGES_OLD).table(Messages::Table).to_owned()).await?;
        manager
            .create_index(
                Index::create()
                    .name(INBOUND_NEW)
                    .table(InboundMessages::Table)
                    .col(InboundMessages::ProviderMessageId)
                    .col(InboundMessages::InstanceId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager.drop_index(Index::drop().name(INBOUND_OLD).table(InboundMessages::Table).to_owned()).await?;
        set_primary_keys(manager, |(table, _, new)| (table, new)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        set_primary_keys(manager, |(table, old, _)| (table, old)).await?;
        manager
            .create_index(
                Index::create()
                    .name(INBOUND_OLD)
                    .table(InboundMessages::Table)
                    .col(InboundMessages::InstanceId)
                    .col(InboundMessages::ProviderMessageId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager.drop_index(Index::drop().name(INBOUND_NEW).table(InboundMessages::Table).to_owned()).await?;
        manager
            .create_index(
                Index::create()
                    .name(MESSAGES_OLD)
                    .table(Messages::Table)
                    .col(Messages::InstanceId)
                    .col(Messages::ProviderMessageId)
                    .to_owned(),
            )
            .await?;
        manager.drop_index(Index::drop().name(MESSAGES_NEW).table(Messages::Table).to_owned()).await
    }
}

/// Rebuilds each primary key with the columns `pick` chooses (PostgreSQL only, see above).
async fn set_primary_keys(
    manager: &SchemaManager<'_>,
    pick: impl Fn((&'static str, &'static str, &'static str)) -> (&'static str, &'static str),
) -> Result<(), DbErr> {
    if manager.get_database_backend() != sea_orm::DatabaseBackend::Postgres {
        return Ok(());
    }
    let conn = manager.get_connection();
    for entry in PRIMARY_KEYS {
        let (table, columns) = pick(entry);
        conn.execute_unprepared(&format!(
            "ALTER TABLE {table} DROP CONSTRAINT {table}_pkey, ADD CONSTRAINT {table}_pkey PRIMARY KEY ({columns})"
        ))
        .await?;
    }
    Ok(())
}
