//! Accounts, sessions, login throttling, API keys, instances and their status history,
//! and the per-account usage counters the dashboard reads.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
    Email,
    PasswordHash,
    Role,
    Plan,
    DailyLimitOverride,
    MonthlyLimitOverride,
    ApiEnabled,
    ThreecxEnabled,
    CreatedAt,
    PasswordChangedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    Data,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum LoginThrottles {
    Table,
    Key,
    Failures,
    WindowStartedAt,
    LockedUntil,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
    AccountId,
    Name,
    Prefix,
    KeyHash,
    CreatedAt,
    LastUsedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Instances {
    Table,
    Id,
    AccountId,
    Name,
    Connector,
    Status,
    LinkedPhone,
    Paused,
    CreatedAt,
    StatusChangedAt,
}

#[derive(DeriveIden)]
enum InstanceStatusChanges {
    Table,
    Id,
    InstanceId,
    Status,
    Detail,
    ChangedAt,
}

#[derive(DeriveIden)]
enum UsageCounters {
    Table,
    AccountId,
    Period,
    PeriodStart,
    Used,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Accounts::Table)
                    .col(ColumnDef::new(Accounts::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(Accounts::Email).string_len(254).not_null().unique_key())
                    .col(ColumnDef::new(Accounts::PasswordHash).string_len(255).not_null())
                    .col(ColumnDef::new(Accounts::Role).string_len(16).not_null())
                    .col(ColumnDef::new(Accounts::Plan).string_len(16).not_null())
                    .col(ColumnDef::new(Accounts::DailyLimitOverride).integer().null())
                    .col(ColumnDef::new(Accounts::MonthlyLimitOverride).integer().null())
                    .col(ColumnDef::new(Accounts::ApiEnabled).boolean().not_null())
                    .col(ColumnDef::new(Accounts::ThreecxEnabled).boolean().not_null())
                    .col(ColumnDef::new(Accounts::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Accounts::PasswordChangedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .col(ColumnDef::new(Sessions::Id).string_len(64).not_null().primary_key())
                    .col(ColumnDef::new(Sessions::Data).text().not_null())
                    .col(ColumnDef::new(Sessions::ExpiresAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sessions_expires_at")
                    .table(Sessions::Table)
                    .col(Sessions::ExpiresAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(LoginThrottles::Table)
                    .col(ColumnDef::new(LoginThrottles::Key).string_len(128).not_null().primary_key())
                    .col(ColumnDef::new(LoginThrottles::Failures).integer().not_null())
                    .col(ColumnDef::new(LoginThrottles::WindowStartedAt).big_integer().not_null())
                    .col(ColumnDef::new(LoginThrottles::LockedUntil).big_integer().null())
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ApiKeys::Table)
                    .col(ColumnDef::new(ApiKeys::Id).string_len(40).not_null().primary_key())
                    .col(ColumnDef::new(ApiKeys::AccountId).big_integer().not_null())
                    .col(ColumnDef::new(ApiKeys::Name).string_len(100).not_null())
                    .col(ColumnDef::new(ApiKeys::Prefix).string_len(32).not_null())
                    .col(ColumnDef::new(ApiKeys::KeyHash).string_len(64).not_null().unique_key())
                    .col(ColumnDef::new(ApiKeys::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(ApiKeys::LastUsedAt).big_integer().null())
                    .col(ColumnDef::new(ApiKeys::RevokedAt).big_integer().null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_api_keys_account")
                            .from(ApiKeys::Table, ApiKeys::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("idx_api_keys_account").table(ApiKeys::Table).col(ApiKeys::AccountId).to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Instances::Table)
                    .col(ColumnDef::new(Instances::Id).string_len(40).not_null().primary_key())
                    .col(ColumnDef::new(Instances::AccountId).big_integer().not_null())
                    .col(ColumnDef::new(Instances::Name).string_len(100).not_null())
                    .col(ColumnDef::new(Instances::Connector).string_len(32).not_null())
                    .col(ColumnDef::new(Instances::Status).string_len(32).not_null())
                    .col(ColumnDef::new(Instances::LinkedPhone).string_len(32).null())
                    .col(ColumnDef::new(Instances::Paused).boolean().not_null())
                    .col(ColumnDef::new(Instances::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Instances::StatusChangedAt).big_integer().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_instances_account")
                            .from(Instances::Table, Instances::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_instances_account")
                    .table(Instances::Table)
                    .col(Instances::AccountId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(InstanceStatusChanges::Table)
                    .col(
                        ColumnDef::new(InstanceStatusChanges::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(InstanceStatusChanges::InstanceId).string_len(40).not_null())
                    .col(ColumnDef::new(InstanceStatusChanges::Status).string_len(32).not_null())
                    .col(ColumnDef::new(InstanceStatusChanges::Detail).string_len(255).null())
                    .col(ColumnDef::new(InstanceStatusChanges::ChangedAt).big_integer().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_status_changes_instance")
                            .from(InstanceStatusChanges::Table, InstanceStatusChanges::InstanceId)
                            .to(Instances::Table, Instances::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_status_changes_instance")
                    .table(InstanceStatusChanges::Table)
                    .col(InstanceStatusChanges::InstanceId)
                    .col(InstanceStatusChanges::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(UsageCounters::Table)
                    .col(ColumnDef::new(UsageCounters::AccountId).big_integer().not_null())
                    .col(ColumnDef::new(UsageCounters::Period).string_len(8).not_null())
                    .col(ColumnDef::new(UsageCounters::PeriodStart).string_len(10).not_null())
                    .col(ColumnDef::new(UsageCounters::Used).integer().not_null())
                    .primary_key(
                        Index::create()
                            .col(UsageCounters::AccountId)
                            .col(UsageCounters::Period)
                            .col(UsageCounters::PeriodStart),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_usage_account")
                            .from(UsageCounters::Table, UsageCounters::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            UsageCounters::Table.into_iden(),
            InstanceStatusChanges::Table.into_iden(),
            Instances::Table.into_iden(),
            ApiKeys::Table.into_iden(),
            LoginThrottles::Table.into_iden(),
            Sessions::Table.into_iden(),
            Accounts::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
