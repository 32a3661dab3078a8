//! Normalized events (the durable outbox every webhook delivery and /api/events reads), inbound
//! messages, and the conversation window per (instance, phone).
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    EventId,
    AccountId,
    InstanceId,
    Kind,
    Payload,
    CreatedAt,
}

#[derive(DeriveIden)]
enum InboundMessages {
    Table,
    Id,
    AccountId,
    InstanceId,
    ProviderMessageId,
    FromPhone,
    FromAddress,
    GroupId,
    Kind,
    Body,
    MediaMimeType,
    MediaFileName,
    MediaBytes,
    OptOut,
    SentAt,
    ReceivedAt,
}

#[derive(DeriveIden)]
enum Conversations {
    Table,
    InstanceId,
    Phone,
    AccountId,
    LastInboundAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .col(ColumnDef::new(Events::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(Events::EventId).string_len(40).not_null().unique_key())
                    .col(ColumnDef::new(Events::AccountId).big_integer().not_null())
                    .col(ColumnDef::new(Events::InstanceId).string_len(40).not_null())
                    .col(ColumnDef::new(Events::Kind).string_len(40).not_null())
                    .col(ColumnDef::new(Events::Payload).text().not_null())
                    .col(ColumnDef::new(Events::CreatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_events_account")
                    .table(Events::Table)
                    .col(Events::AccountId)
                    .col(Events::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(InboundMessages::Table)
                    .col(ColumnDef::new(InboundMessages::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(InboundMessages::AccountId).big_integer().not_null())
                    .col(ColumnDef::new(InboundMessages::InstanceId).string_len(40).not_null())
                    .col(ColumnDef::new(InboundMessages::ProviderMessageId).string_len(128).not_null())
                    .col(ColumnDef::new(InboundMessages::FromPhone).string_len(20).null())
                    .col(ColumnDef::new(InboundMessages::FromAddress).string_len(128).not_null())
                    .col(ColumnDef::new(InboundMessages::GroupId).string_len(128).null())
                    .col(ColumnDef::new(InboundMessages::Kind).string_len(10).not_null())
                    .col(ColumnDef::new(InboundMessages::Body).text().not_null())
                    .col(ColumnDef::new(InboundMessages::MediaMimeType).string_len(100).null())
                    .col(ColumnDef::new(InboundMessages::MediaFileName).string_len(255).null())
                    .col(ColumnDef::new(InboundMessages::MediaBytes).big_integer().null())
                    .col(ColumnDef::new(InboundMessages::OptOut).boolean().not_null())
                    .col(ColumnDef::new(InboundMessages::SentAt).big_integer().not_null())
                    .col(ColumnDef::new(InboundMessages::ReceivedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        for (name, cols, unique) in [
            ("idx_inbound_account", vec![InboundMessages::AccountId, InboundMessages::Id], false),
            (
                "idx_inbound_instance",
                vec![InboundMessages::AccountId, InboundMessages::InstanceId, InboundMessages::Id],
                false,
            ),
            (
                "idx_inbound_phone",
                vec![InboundMessages::AccountId, InboundMessages::FromPhone, InboundMessages::Id],
                false,
            ),
            ("uq_inbound_provider", vec![InboundMessages::InstanceId, InboundMessages::ProviderMessageId], true),
        ] {
            let mut index = Index::create();
            index.name(name).table(InboundMessages::Table);
            for col in cols {
                index.col(col);
            }
            if unique {
                index.unique();
            }
            manager.create_index(index.to_owned()).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(Conversations::Table)
                    .col(ColumnDef::new(Conversations::InstanceId).string_len(40).not_null())
                    .col(ColumnDef::new(Conversations::Phone).string_len(20).not_null())
                    .col(ColumnDef::new(Conversations::AccountId).big_integer().not_null())
                    .col(ColumnDef::new(Conversations::LastInboundAt).big_integer().not_null())
                    .primary_key(Index::create().col(Conversations::InstanceId).col(Conversations::Phone))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [Conversations::Table.into_iden(), InboundMessages::Table.into_iden(), Events::Table.into_iden()] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
