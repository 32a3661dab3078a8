//! The operator console: customers' requests for higher reviewed limits, the note an operator
//! leaves on an instance after a review (the customer sees it on the instance), and refused
//! sends counted per account, hour and error code (the overview's "refusals today" reads a few
//! rows instead of the policy log).
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum LimitRequests {
    Table,
    Id,
    AccountId,
    RequestedDaily,
    RequestedMonthly,
    UseCase,
    ExpectedVolume,
    Status,
    /// 1 while the request waits, NULL once decided: unique with the account, so an account has
    /// at most one waiting request on every database (NULLs never collide in a unique index).
    PendingSlot,
    DecidedBy,
    DecisionNote,
    GrantedDaily,
    GrantedMonthly,
    CreatedAt,
    DecidedAt,
}

#[derive(DeriveIden)]
enum RefusalStats {
    Table,
    AccountId,
    HourStart,
    Code,
    N,
}

#[derive(DeriveIden)]
enum Instances {
    Table,
    ReviewNote,
    ReviewNoteAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(LimitRequests::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(LimitRequests::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(LimitRequests::AccountId).big_integer().not_null())
                    .col(ColumnDef::new(LimitRequests::RequestedDaily).big_integer().not_null())
                    .col(ColumnDef::new(LimitRequests::RequestedMonthly).big_integer().not_null())
                    .col(ColumnDef::new(LimitRequests::UseCase).text().not_null())
                    .col(ColumnDef::new(LimitRequests::ExpectedVolume).string_len(255).not_null())
                    .col(ColumnDef::new(LimitRequests::Status).string_len(16).not_null())
                    .col(ColumnDef::new(LimitRequests::PendingSlot).small_integer().null())
                    .col(ColumnDef::new(LimitRequests::DecidedBy).string_len(255).null())
                    .col(ColumnDef::new(LimitRequests::DecisionNote).text().null())
                    .col(ColumnDef::new(LimitRequests::GrantedDaily).big_integer().null())
                    .col(ColumnDef::new(LimitRequests::GrantedMonthly).big_integer().null())
                    .col(ColumnDef::new(LimitRequests::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(LimitRequests::DecidedAt).big_integer().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_limit_requests_pending")
                    .table(LimitRequests::Table)
                    .col(LimitRequests::AccountId)
                    .col(LimitRequests::PendingSlot)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_limit_requests_status")
                    .table(LimitRequests::Table)
                    .col(LimitRequests::Status)
                    .col(LimitRequests::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RefusalStats::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(RefusalStats::AccountId).big_integer().not_null())
                    .col(ColumnDef::new(RefusalStats::HourStart).big_integer().not_null())
                    .col(ColumnDef::new(RefusalStats::Code).string_len(64).not_null())
                    .col(ColumnDef::new(RefusalStats::N).big_integer().not_null().default(0))
                    .primary_key(
                        Index::create()
                            .col(RefusalStats::AccountId)
                            .col(RefusalStats::HourStart)
                            .col(RefusalStats::Code),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Instances::Table)
                    .add_column(ColumnDef::new(Instances::ReviewNote).string_len(1000).null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Instances::Table)
                    .add_column(ColumnDef::new(Instances::ReviewNoteAt).big_integer().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Instances::ReviewNote, Instances::ReviewNoteAt] {
            manager.alter_table(Table::alter().table(Instances::Table).drop_column(column).to_owned()).await?;
        }
        manager.drop_table(Table::drop().table(RefusalStats::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(LimitRequests::Table).to_owned()).await
    }
}
