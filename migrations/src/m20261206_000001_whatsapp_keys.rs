//! WhatsApp Web device keys and session state in the shared database, so an instance that moves
//! to another server keeps its link. One row per item the client stores (identity, signal
//! session, pre-key, sender key, app-state key, ...), its value encrypted with a key derived
//! from the master key. `grp` groups rows the client clears together (a group's sender-key
//! devices, a collection's MACs); `ts` is the time the client prunes by.
//!
//! Also `instances.banned_until`: the end of a temporary ban WhatsApp announced, so that neither
//! a restarted server nor an instance's next owner reconnects before it.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WhatsappKeys {
    Table,
    InstanceId,
    Ns,
    Grp,
    K,
    V,
    Ts,
}

#[derive(DeriveIden)]
enum Instances {
    Table,
    BannedUntil,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WhatsappKeys::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(WhatsappKeys::InstanceId).string_len(40).not_null())
                    .col(ColumnDef::new(WhatsappKeys::Ns).string_len(16).not_null())
                    .col(ColumnDef::new(WhatsappKeys::Grp).string_len(255).not_null())
                    .col(ColumnDef::new(WhatsappKeys::K).string_len(255).not_null())
                    .col(ColumnDef::new(WhatsappKeys::V).blob().not_null())
                    .col(ColumnDef::new(WhatsappKeys::Ts).big_integer().not_null())
                    .primary_key(
                        Index::create()
                            .col(WhatsappKeys::InstanceId)
                            .col(WhatsappKeys::Ns)
                            .col(WhatsappKeys::Grp)
                            .col(WhatsappKeys::K),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Instances::Table)
                    .add_column(ColumnDef::new(Instances::BannedUntil).big_integer().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(Instances::Table).drop_column(Instances::BannedUntil).to_owned())
            .await?;
        manager.drop_table(Table::drop().table(WhatsappKeys::Table).to_owned()).await
    }
}
