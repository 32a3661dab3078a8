//! The batched webhook delivery engine: a per-claim token on each delivery, so a batch claimed
//! with one UPDATE can be read back exactly and only its owner settles it; and the claim index
//! ends with the id, so "oldest due first" is read straight from the index on every database.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    Id,
    Status,
    NextAttemptAt,
    LeaseOwner,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(WebhookDeliveries::Table)
                    .add_column(ColumnDef::new(WebhookDeliveries::LeaseOwner).string_len(32).null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_deliveries_claim")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::Status)
                    .col(WebhookDeliveries::NextAttemptAt)
                    .col(WebhookDeliveries::Id)
                    .to_owned(),
            )
            .await?;
        // The new index starts with the same columns: the old one would only cost writes.
        manager
            .drop_index(Index::drop().name("idx_webhook_deliveries_due").table(WebhookDeliveries::Table).to_owned())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_deliveries_due")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::Status)
                    .col(WebhookDeliveries::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(Index::drop().name("idx_webhook_deliveries_claim").table(WebhookDeliveries::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter().table(WebhookDeliveries::Table).drop_column(WebhookDeliveries::LeaseOwner).to_owned(),
            )
            .await
    }
}
