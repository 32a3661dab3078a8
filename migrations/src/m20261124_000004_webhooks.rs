//! Customer webhook destinations per instance, their durable deliveries, and every attempt.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WebhookDestinations {
    Table,
    Id,
    AccountId,
    InstanceId,
    Url,
    Events,
    Enabled,
    Secret,
    PreviousSecret,
    PreviousSecretExpiresAt,
    DisabledReason,
    FailingSince,
    CreatedAt,
}

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    Id,
    DestinationId,
    AccountId,
    EventId,
    EventKind,
    Payload,
    Status,
    Attempts,
    NextAttemptAt,
    LockedUntil,
    LastStatusCode,
    CreatedAt,
    CompletedAt,
}

#[derive(DeriveIden)]
enum WebhookAttempts {
    Table,
    Id,
    DeliveryId,
    AttemptedAt,
    StatusCode,
    DurationMs,
    ResponseExcerpt,
    Error,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebhookDestinations::Table)
                    .col(ColumnDef::new(WebhookDestinations::Id).string_len(40).not_null().primary_key())
                    .col(ColumnDef::new(WebhookDestinations::AccountId).big_integer().not_null())
                    .col(ColumnDef::new(WebhookDestinations::InstanceId).string_len(40).not_null())
                    .col(ColumnDef::new(WebhookDestinations::Url).string_len(2048).not_null())
                    .col(ColumnDef::new(WebhookDestinations::Events).text().not_null())
                    .col(ColumnDef::new(WebhookDestinations::Enabled).boolean().not_null())
                    .col(ColumnDef::new(WebhookDestinations::Secret).text().not_null())
                    .col(ColumnDef::new(WebhookDestinations::PreviousSecret).text().null())
                    .col(ColumnDef::new(WebhookDestinations::PreviousSecretExpiresAt).big_integer().null())
                    .col(ColumnDef::new(WebhookDestinations::DisabledReason).string_len(255).null())
                    .col(ColumnDef::new(WebhookDestinations::FailingSince).big_integer().null())
                    .col(ColumnDef::new(WebhookDestinations::CreatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_destinations_instance")
                    .table(WebhookDestinations::Table)
                    .col(WebhookDestinations::InstanceId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(WebhookDeliveries::Table)
                    .col(ColumnDef::new(WebhookDeliveries::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(WebhookDeliveries::DestinationId).string_len(40).not_null())
                    .col(ColumnDef::new(WebhookDeliveries::AccountId).big_integer().not_null())
                    .col(ColumnDef::new(WebhookDeliveries::EventId).string_len(40).not_null())
                    .col(ColumnDef::new(WebhookDeliveries::EventKind).string_len(40).not_null())
                    .col(ColumnDef::new(WebhookDeliveries::Payload).text().not_null())
                    .col(ColumnDef::new(WebhookDeliveries::Status).string_len(16).not_null())
                    .col(ColumnDef::new(WebhookDeliveries::Attempts).integer().not_null())
                    .col(ColumnDef::new(WebhookDeliveries::NextAttemptAt).big_integer().not_null())
                    .col(ColumnDef::new(WebhookDeliveries::LockedUntil).big_integer().not_null())
                    .col(ColumnDef::new(WebhookDeliveries::LastStatusCode).integer().null())
                    .col(ColumnDef::new(WebhookDeliveries::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(WebhookDeliveries::CompletedAt).big_integer().null())
                    .to_owned(),
            )
            .await?;
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
            .create_index(
                Index::create()
                    .name("idx_webhook_deliveries_destination")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::DestinationId)
                    .col(WebhookDeliveries::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(WebhookAttempts::Table)
                    .col(ColumnDef::new(WebhookAttempts::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(WebhookAttempts::DeliveryId).big_integer().not_null())
                    .col(ColumnDef::new(WebhookAttempts::AttemptedAt).big_integer().not_null())
                    .col(ColumnDef::new(WebhookAttempts::StatusCode).integer().null())
                    .col(ColumnDef::new(WebhookAttempts::DurationMs).big_integer().not_null())
                    .col(ColumnDef::new(WebhookAttempts::ResponseExcerpt).text().not_null())
                    .col(ColumnDef::new(WebhookAttempts::Error).string_len(255).null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_attempts_delivery")
                    .table(WebhookAttempts::Table)
                    .col(WebhookAttempts::DeliveryId)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            WebhookAttempts::Table.into_iden(),
            WebhookDeliveries::Table.into_iden(),
            WebhookDestinations::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
