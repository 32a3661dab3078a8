//! Group commit of sends, and event order without an account lock.
//!
//! - The admission of many sends is one transaction with one multi-row insert of their policy
//!   decisions, so a decision is found again by the message it admitted (to mark it
//!   `gateway_send_failed` when the provider refuses) instead of by an id returned per row.
//! - On PostgreSQL and MySQL an event's place in its account's stream (`position`, what
//!   /api/events pages by) is given after its transaction committed, by the event sequencer,
//!   instead of locking the account's row in every event-writing transaction. Existing events
//!   keep their id as their position, so cursors handed out before stay valid.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PolicyDecisions {
    Table,
    MessageLogId,
}

#[derive(DeriveIden, Clone, Copy)]
enum Events {
    Table,
    Id,
    AccountId,
    Position,
}

#[derive(DeriveIden)]
enum EventSequence {
    Table,
    Id,
    LastPosition,
}

const POLICY_INDEX: &str = "idx_policy_message";
const POSITION_INDEX: &str = "idx_events_position";
const UNSEQUENCED_INDEX: &str = "idx_events_unsequenced";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(PolicyDecisions::Table)
                    .add_column(ColumnDef::new(PolicyDecisions::MessageLogId).big_integer().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(POLICY_INDEX)
                    .table(PolicyDecisions::Table)
                    .col(PolicyDecisions::MessageLogId)
                    .to_owned(),
            )
            .await?;

        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .add_column(ColumnDef::new(Events::Position).big_integer().null())
                    .to_owned(),
            )
            .await?;
        let conn = manager.get_connection();
        conn.execute_unprepared("UPDATE events SET position = id").await?;
        manager
            .create_index(
                Index::create()
                    .name(POSITION_INDEX)
                    .table(Events::Table)
                    .col(Events::AccountId)
                    .col(Events::Position)
                    .to_owned(),
            )
            .await?;
        // What the sequencer looks for: the few events not numbered yet, in id order. On
        // PostgreSQL a partial index holds only those (otherwise the planner walks the primary
        // key through every numbered event); MySQL has no partial indexes, and its NULL entries
        // of (position, id) come first in id order.
        if manager.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            conn.execute_unprepared(&format!("CREATE INDEX {UNSEQUENCED_INDEX} ON events (id) WHERE position IS NULL"))
                .await?;
        } else {
            manager
                .create_index(
                    Index::create()
                        .name(UNSEQUENCED_INDEX)
                        .table(Events::Table)
                        .col(Events::Position)
                        .col(Events::Id)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(EventSequence::Table)
                    .col(ColumnDef::new(EventSequence::Id).integer().not_null().primary_key())
                    .col(ColumnDef::new(EventSequence::LastPosition).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        conn.execute_unprepared(
            "INSERT INTO event_sequence (id, last_position) SELECT 1, COALESCE(MAX(id), 0) FROM events",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(EventSequence::Table).to_owned()).await?;
        for name in [POSITION_INDEX, UNSEQUENCED_INDEX] {
            manager.drop_index(Index::drop().name(name).table(Events::Table).to_owned()).await?;
        }
        manager.alter_table(Table::alter().table(Events::Table).drop_column(Events::Position).to_owned()).await?;
        manager.drop_index(Index::drop().name(POLICY_INDEX).table(PolicyDecisions::Table).to_owned()).await?;
        manager
            .alter_table(
                Table::alter().table(PolicyDecisions::Table).drop_column(PolicyDecisions::MessageLogId).to_owned(),
            )
            .await
    }
}
