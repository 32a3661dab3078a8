//! Group commit of sends: the admission of many sends is one transaction with one multi-row
//! insert of their policy decisions, so a decision is found again by the message it admitted
//! (to mark it `gateway_send_failed` when the provider refuses) instead of by an id returned
//! per row.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PolicyDecisions {
    Table,
    MessageLogId,
}

const INDEX: &str = "idx_policy_message";

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
                Index::create().name(INDEX).table(PolicyDecisions::Table).col(PolicyDecisions::MessageLogId).to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name(INDEX).table(PolicyDecisions::Table).to_owned()).await?;
        manager
            .alter_table(Table::alter().table(PolicyDecisions::Table).drop_column(PolicyDecisions::MessageLogId).to_owned())
            .await
    }
}
