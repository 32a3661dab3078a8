//! 3CX middleware: integrations bound to an instance, their request log and call-event
//! cooldowns; where a sent message came from (API or 3CX); the webhook destination that
//! forwards an instance's inbound messages to 3CX belongs to its integration.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ThreecxIntegrations {
    Table,
    Id,
    AccountId,
    InstanceId,
    Enabled,
    OutboundEnabled,
    CallEventEnabled,
    StrictWindow,
    WindowHours,
    IpAllowlist,
    HmacRequired,
    HmacSecret,
    SecretHash,
    SecretHint,
    BusinessName,
    DestinationId,
    Templates,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ThreecxRequests {
    Table,
    Id,
    IntegrationId,
    AccountId,
    ReceivedAt,
    EventType,
    Outcome,
    StatusCode,
    PhoneMasked,
    LatencyMs,
    Detail,
}

#[derive(DeriveIden)]
enum ThreecxCooldowns {
    Table,
    IntegrationId,
    EventType,
    Phone,
    LastSentAt,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    Source,
    ConversationId,
    AgentExtension,
}

#[derive(DeriveIden)]
enum WebhookDestinations {
    Table,
    IntegrationId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ThreecxIntegrations::Table)
                    .col(ColumnDef::new(ThreecxIntegrations::Id).string_len(40).not_null().primary_key())
                    .col(ColumnDef::new(ThreecxIntegrations::AccountId).big_integer().not_null())
                    .col(ColumnDef::new(ThreecxIntegrations::InstanceId).string_len(40).not_null())
                    .col(ColumnDef::new(ThreecxIntegrations::Enabled).boolean().not_null())
                    .col(ColumnDef::new(ThreecxIntegrations::OutboundEnabled).boolean().not_null())
                    .col(ColumnDef::new(ThreecxIntegrations::CallEventEnabled).boolean().not_null())
                    .col(ColumnDef::new(ThreecxIntegrations::StrictWindow).boolean().not_null())
                    .col(ColumnDef::new(ThreecxIntegrations::WindowHours).integer().not_null())
                    .col(ColumnDef::new(ThreecxIntegrations::IpAllowlist).text().not_null())
                    .col(ColumnDef::new(ThreecxIntegrations::HmacRequired).boolean().not_null())
                    .col(ColumnDef::new(ThreecxIntegrations::HmacSecret).text().null())
                    .col(ColumnDef::new(ThreecxIntegrations::SecretHash).string_len(64).not_null())
                    .col(ColumnDef::new(ThreecxIntegrations::SecretHint).string_len(16).not_null())
                    .col(ColumnDef::new(ThreecxIntegrations::BusinessName).string_len(120).not_null())
                    .col(ColumnDef::new(ThreecxIntegrations::DestinationId).string_len(40).null())
                    .col(ColumnDef::new(ThreecxIntegrations::Templates).text().not_null())
                    .col(ColumnDef::new(ThreecxIntegrations::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(ThreecxIntegrations::UpdatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_threecx_integrations_account")
                    .table(ThreecxIntegrations::Table)
                    .col(ThreecxIntegrations::AccountId)
                    .to_owned(),
            )
            .await?;
        // One integration per instance, also when two creates race.
        manager
            .create_index(
                Index::create()
                    .name("idx_threecx_integrations_instance")
                    .table(ThreecxIntegrations::Table)
                    .col(ThreecxIntegrations::InstanceId)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ThreecxRequests::Table)
                    .col(ColumnDef::new(ThreecxRequests::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(ThreecxRequests::IntegrationId).string_len(40).not_null())
                    .col(ColumnDef::new(ThreecxRequests::AccountId).big_integer().not_null())
                    .col(ColumnDef::new(ThreecxRequests::ReceivedAt).big_integer().not_null())
                    .col(ColumnDef::new(ThreecxRequests::EventType).string_len(32).null())
                    .col(ColumnDef::new(ThreecxRequests::Outcome).string_len(40).not_null())
                    .col(ColumnDef::new(ThreecxRequests::StatusCode).integer().not_null())
                    .col(ColumnDef::new(ThreecxRequests::PhoneMasked).string_len(40).null())
                    .col(ColumnDef::new(ThreecxRequests::LatencyMs).big_integer().not_null())
                    .col(ColumnDef::new(ThreecxRequests::Detail).string_len(255).null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_threecx_requests_integration")
                    .table(ThreecxRequests::Table)
                    .col(ThreecxRequests::IntegrationId)
                    .col(ThreecxRequests::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_index(
                Index::create()
                    .name("idx_threecx_requests_received")
                    .table(ThreecxRequests::Table)
                    .col(ThreecxRequests::ReceivedAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ThreecxCooldowns::Table)
                    .col(ColumnDef::new(ThreecxCooldowns::IntegrationId).string_len(40).not_null())
                    .col(ColumnDef::new(ThreecxCooldowns::EventType).string_len(32).not_null())
                    .col(ColumnDef::new(ThreecxCooldowns::Phone).string_len(32).not_null())
                    .col(ColumnDef::new(ThreecxCooldowns::LastSentAt).big_integer().not_null())
                    .primary_key(
                        Index::create()
                            .col(ThreecxCooldowns::IntegrationId)
                            .col(ThreecxCooldowns::EventType)
                            .col(ThreecxCooldowns::Phone),
                    )
                    .to_owned(),
            )
            .await?;

        // One column per statement: SQLite adds a single column per ALTER TABLE.
        manager
            .alter_table(
                Table::alter()
                    .table(Messages::Table)
                    .add_column(ColumnDef::new(Messages::Source).string_len(8).not_null().default("api"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Messages::Table)
                    .add_column(ColumnDef::new(Messages::ConversationId).string_len(128).null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Messages::Table)
                    .add_column(ColumnDef::new(Messages::AgentExtension).string_len(32).null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(WebhookDestinations::Table)
                    .add_column(ColumnDef::new(WebhookDestinations::IntegrationId).string_len(40).null())
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(WebhookDestinations::Table)
                    .drop_column(WebhookDestinations::IntegrationId)
                    .to_owned(),
            )
            .await?;
        for column in [Messages::AgentExtension, Messages::ConversationId, Messages::Source] {
            manager.alter_table(Table::alter().table(Messages::Table).drop_column(column).to_owned()).await?;
        }
        for table in [
            ThreecxCooldowns::Table.into_iden(),
            ThreecxRequests::Table.into_iden(),
            ThreecxIntegrations::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
