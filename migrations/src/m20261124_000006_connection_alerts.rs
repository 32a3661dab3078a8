//! A loud note on an instance when WhatsApp itself ended or suspended its link (a temporary ban,
//! a forced logout), shown until the instance connects again.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Instances {
    Table,
    ConnectionAlert,
    ConnectionAlertAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(Instances::Table)
                    .add_column(ColumnDef::new(Instances::ConnectionAlert).string_len(500).null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Instances::Table)
                    .add_column(ColumnDef::new(Instances::ConnectionAlertAt).big_integer().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(Instances::Table).drop_column(Instances::ConnectionAlertAt).to_owned())
            .await?;
        manager
            .alter_table(Table::alter().table(Instances::Table).drop_column(Instances::ConnectionAlert).to_owned())
            .await
    }
}
