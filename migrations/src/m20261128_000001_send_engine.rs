//! The send engine's bookkeeping: a change counter that tells every server when its in-memory
//! copies of keys, accounts and instances are stale, the Idempotency-Key a message was sent
//! under (so a crash-interrupted send can still answer its key), an index that finds
//! messages left `accepted` by a crash, and hourly message counts per account (filled from the
//! messages already there) so failure rates never count the messages table.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ChangeEpoch {
    Table,
    Id,
    Version,
}

#[derive(DeriveIden)]
enum MessageStats {
    Table,
    AccountId,
    HourStart,
    Total,
    Failed,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    IdempotencyKey,
    Status,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ChangeEpoch::Table)
                    .col(ColumnDef::new(ChangeEpoch::Id).integer().not_null().primary_key())
                    .col(ColumnDef::new(ChangeEpoch::Version).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(ChangeEpoch::Table)
                    .columns([ChangeEpoch::Id, ChangeEpoch::Version])
                    .values_panic([1.into(), 0.into()])
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Messages::Table)
                    .add_column(ColumnDef::new(Messages::IdempotencyKey).string_len(255).null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_messages_status_created")
                    .table(Messages::Table)
                    .col(Messages::Status)
                    .col(Messages::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MessageStats::Table)
                    .col(ColumnDef::new(MessageStats::AccountId).big_integer().not_null())
                    .col(ColumnDef::new(MessageStats::HourStart).big_integer().not_null())
                    .col(ColumnDef::new(MessageStats::Total).integer().not_null().default(0))
                    .col(ColumnDef::new(MessageStats::Failed).integer().not_null().default(0))
                    .primary_key(Index::create().col(MessageStats::AccountId).col(MessageStats::HourStart))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO message_stats (account_id, hour_start, total, failed) \
                 SELECT account_id, created_at - (created_at % 3600), COUNT(*), \
                 SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) \
                 FROM messages GROUP BY account_id, created_at - (created_at % 3600)",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(MessageStats::Table).to_owned()).await?;
        manager.drop_index(Index::drop().name("idx_messages_status_created").table(Messages::Table).to_owned()).await?;
        manager
            .alter_table(Table::alter().table(Messages::Table).drop_column(Messages::IdempotencyKey).to_owned())
            .await?;
        manager.drop_table(Table::drop().table(ChangeEpoch::Table).to_owned()).await
    }
}
