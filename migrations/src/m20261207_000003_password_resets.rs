//! One-time password-reset links an operator hands to a customer: the token's SHA-256 only,
//! valid for an hour, used once.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PasswordResets {
    Table,
    TokenHash,
    AccountId,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PasswordResets::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(PasswordResets::TokenHash).string_len(64).not_null().primary_key())
                    .col(ColumnDef::new(PasswordResets::AccountId).big_integer().not_null())
                    .col(ColumnDef::new(PasswordResets::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(PasswordResets::ExpiresAt).big_integer().not_null())
                    .col(ColumnDef::new(PasswordResets::UsedAt).big_integer().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(PasswordResets::Table).to_owned()).await
    }
}
