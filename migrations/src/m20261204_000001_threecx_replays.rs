//! The signed 3CX requests already taken, per integration, so a captured request cannot be sent
//! again while its timestamp is still fresh (±300 s). Rows older than the window are deleted by
//! housekeeping.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ThreecxSignatures {
    Table,
    IntegrationId,
    Digest,
    SeenAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ThreecxSignatures::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(ThreecxSignatures::IntegrationId).string_len(40).not_null())
                    .col(ColumnDef::new(ThreecxSignatures::Digest).string_len(64).not_null())
                    .col(ColumnDef::new(ThreecxSignatures::SeenAt).big_integer().not_null())
                    .primary_key(Index::create().col(ThreecxSignatures::IntegrationId).col(ThreecxSignatures::Digest))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_threecx_signatures_seen")
                    .table(ThreecxSignatures::Table)
                    .col(ThreecxSignatures::SeenAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(ThreecxSignatures::Table).to_owned()).await
    }
}
