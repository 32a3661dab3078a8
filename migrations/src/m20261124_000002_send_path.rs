//! The send path: the message log, suppressions and their change log, the policy log,
//! idempotency keys, rate windows for fair-use throttling, contacted recipients, and the
//! review pause of instances.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Messages {
    Table,
    Id,
    MessageId,
    AccountId,
    InstanceId,
    Recipient,
    Purpose,
    Kind,
    Body,
    MediaMimeType,
    MediaFileName,
    MediaBytes,
    ContentFingerprint,
    RiskScore,
    Status,
    ProviderMessageId,
    Error,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Suppressions {
    Table,
    Id,
    AccountId,
    Phone,
    Reason,
    Source,
    CreatedBy,
    CreatedAt,
}

#[derive(DeriveIden)]
enum SuppressionChanges {
    Table,
    Id,
    AccountId,
    Phone,
    Action,
    Reason,
    ChangedBy,
    ChangedAt,
}

#[derive(DeriveIden)]
enum PolicyDecisions {
    Table,
    Id,
    AccountId,
    InstanceId,
    RecipientMasked,
    Purpose,
    Decision,
    ErrorCode,
    RiskScore,
    Reasons,
    CreatedAt,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    AccountId,
    Key,
    RequestHash,
    StatusCode,
    ResponseBody,
    CreatedAt,
}

#[derive(DeriveIden)]
enum RateWindows {
    Table,
    Scope,
    WindowStart,
    Count,
}

#[derive(DeriveIden)]
enum ContactedRecipients {
    Table,
    InstanceId,
    Phone,
    FirstContactedAt,
}

#[derive(DeriveIden)]
enum Instances {
    Table,
    ReviewPaused,
    ReviewReason,
    ReviewPausedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Messages::Table)
                    .col(ColumnDef::new(Messages::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(Messages::MessageId).string_len(40).not_null().unique_key())
                    .col(ColumnDef::new(Messages::AccountId).big_integer().not_null())
                    .col(ColumnDef::new(Messages::InstanceId).string_len(40).not_null())
                    .col(ColumnDef::new(Messages::Recipient).string_len(20).not_null())
                    .col(ColumnDef::new(Messages::Purpose).string_len(20).not_null())
                    .col(ColumnDef::new(Messages::Kind).string_len(10).not_null())
                    .col(ColumnDef::new(Messages::Body).text().not_null())
                    .col(ColumnDef::new(Messages::MediaMimeType).string_len(100).null())
                    .col(ColumnDef::new(Messages::MediaFileName).string_len(255).null())
                    .col(ColumnDef::new(Messages::MediaBytes).big_integer().null())
                    .col(ColumnDef::new(Messages::ContentFingerprint).string_len(64).not_null())
                    .col(ColumnDef::new(Messages::RiskScore).integer().not_null())
                    .col(ColumnDef::new(Messages::Status).string_len(16).not_null())
                    .col(ColumnDef::new(Messages::ProviderMessageId).string_len(128).null())
                    .col(ColumnDef::new(Messages::Error).string_len(255).null())
                    .col(ColumnDef::new(Messages::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(Messages::UpdatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            ("idx_messages_account", vec![Messages::AccountId, Messages::Id]),
            ("idx_messages_provider", vec![Messages::InstanceId, Messages::ProviderMessageId]),
            ("idx_messages_fingerprint", vec![Messages::AccountId, Messages::ContentFingerprint, Messages::CreatedAt]),
        ] {
            let mut index = Index::create();
            index.name(name).table(Messages::Table);
            for col in cols {
                index.col(col);
            }
            manager.create_index(index.to_owned()).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(Suppressions::Table)
                    .col(ColumnDef::new(Suppressions::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(Suppressions::AccountId).big_integer().not_null())
                    .col(ColumnDef::new(Suppressions::Phone).string_len(20).not_null())
                    .col(ColumnDef::new(Suppressions::Reason).string_len(64).not_null())
                    .col(ColumnDef::new(Suppressions::Source).string_len(16).not_null())
                    .col(ColumnDef::new(Suppressions::CreatedBy).string_len(254).not_null())
                    .col(ColumnDef::new(Suppressions::CreatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_suppressions_account_phone")
                    .table(Suppressions::Table)
                    .col(Suppressions::AccountId)
                    .col(Suppressions::Phone)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(SuppressionChanges::Table)
                    .col(ColumnDef::new(SuppressionChanges::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(SuppressionChanges::AccountId).big_integer().not_null())
                    .col(ColumnDef::new(SuppressionChanges::Phone).string_len(20).not_null())
                    .col(ColumnDef::new(SuppressionChanges::Action).string_len(16).not_null())
                    .col(ColumnDef::new(SuppressionChanges::Reason).string_len(64).not_null())
                    .col(ColumnDef::new(SuppressionChanges::ChangedBy).string_len(254).not_null())
                    .col(ColumnDef::new(SuppressionChanges::ChangedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_suppression_changes_account")
                    .table(SuppressionChanges::Table)
                    .col(SuppressionChanges::AccountId)
                    .col(SuppressionChanges::Id)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PolicyDecisions::Table)
                    .col(ColumnDef::new(PolicyDecisions::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(PolicyDecisions::AccountId).big_integer().not_null())
                    .col(ColumnDef::new(PolicyDecisions::InstanceId).string_len(40).null())
                    .col(ColumnDef::new(PolicyDecisions::RecipientMasked).string_len(24).not_null())
                    .col(ColumnDef::new(PolicyDecisions::Purpose).string_len(40).not_null())
                    .col(ColumnDef::new(PolicyDecisions::Decision).string_len(8).not_null())
                    .col(ColumnDef::new(PolicyDecisions::ErrorCode).string_len(40).null())
                    .col(ColumnDef::new(PolicyDecisions::RiskScore).integer().not_null())
                    .col(ColumnDef::new(PolicyDecisions::Reasons).text().not_null())
                    .col(ColumnDef::new(PolicyDecisions::CreatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_policy_account")
                    .table(PolicyDecisions::Table)
                    .col(PolicyDecisions::AccountId)
                    .col(PolicyDecisions::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_policy_instance_time")
                    .table(PolicyDecisions::Table)
                    .col(PolicyDecisions::InstanceId)
                    .col(PolicyDecisions::CreatedAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .col(ColumnDef::new(IdempotencyKeys::AccountId).big_integer().not_null())
                    .col(ColumnDef::new(IdempotencyKeys::Key).string_len(255).not_null())
                    .col(ColumnDef::new(IdempotencyKeys::RequestHash).string_len(64).not_null())
                    .col(ColumnDef::new(IdempotencyKeys::StatusCode).integer().not_null())
                    .col(ColumnDef::new(IdempotencyKeys::ResponseBody).text().not_null())
                    .col(ColumnDef::new(IdempotencyKeys::CreatedAt).big_integer().not_null())
                    .primary_key(Index::create().col(IdempotencyKeys::AccountId).col(IdempotencyKeys::Key))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RateWindows::Table)
                    .col(ColumnDef::new(RateWindows::Scope).string_len(80).not_null())
                    .col(ColumnDef::new(RateWindows::WindowStart).big_integer().not_null())
                    .col(ColumnDef::new(RateWindows::Count).integer().not_null())
                    .primary_key(Index::create().col(RateWindows::Scope).col(RateWindows::WindowStart))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ContactedRecipients::Table)
                    .col(ColumnDef::new(ContactedRecipients::InstanceId).string_len(40).not_null())
                    .col(ColumnDef::new(ContactedRecipients::Phone).string_len(20).not_null())
                    .col(ColumnDef::new(ContactedRecipients::FirstContactedAt).big_integer().not_null())
                    .primary_key(Index::create().col(ContactedRecipients::InstanceId).col(ContactedRecipients::Phone))
                    .to_owned(),
            )
            .await?;

        // SQLite adds one column per ALTER TABLE.
        manager
            .alter_table(
                Table::alter()
                    .table(Instances::Table)
                    .add_column(ColumnDef::new(Instances::ReviewPaused).boolean().not_null().default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Instances::Table)
                    .add_column(ColumnDef::new(Instances::ReviewReason).string_len(255).null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Instances::Table)
                    .add_column(ColumnDef::new(Instances::ReviewPausedAt).big_integer().null())
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Instances::ReviewPausedAt, Instances::ReviewReason, Instances::ReviewPaused] {
            manager.alter_table(Table::alter().table(Instances::Table).drop_column(column).to_owned()).await?;
        }
        for table in [
            ContactedRecipients::Table.into_iden(),
            RateWindows::Table.into_iden(),
            IdempotencyKeys::Table.into_iden(),
            PolicyDecisions::Table.into_iden(),
            SuppressionChanges::Table.into_iden(),
            Suppressions::Table.into_iden(),
            Messages::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
