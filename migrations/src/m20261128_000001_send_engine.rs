//! The send engine's bookkeeping: a change counter that tells every server when its in-memory
//! copies of keys, accounts and instances are stale, the Idempotency-Key a message was sent
//! under (so a crash-interrupted send can still answer its key), and an index that finds
//! messages left `accepted` by a crash.
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
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name("idx_messages_status_created").table(Messages::Table).to_owned()).await?;
        manager
            .alter_table(Table::alter().table(Messages::Table).drop_column(Messages::IdempotencyKey).to_owned())
            .await?;
        manager.drop_table(Table::drop().table(ChangeEpoch::Table).to_owned()).await
    }
}
