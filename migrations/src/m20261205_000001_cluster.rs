//! Several servers on one PostgreSQL database: each server's node row with its heartbeat (in
//! the database's clock, milliseconds), and which node runs each instance's live connection,
//! with an epoch that grows at every change of owner (writes only the owner may make carry it).
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ClusterNodes {
    Table,
    Id,
    Address,
    StartedAt,
    HeartbeatAt,
    StoppedAt,
}

#[derive(DeriveIden)]
enum InstanceOwners {
    Table,
    InstanceId,
    NodeId,
    Epoch,
    Since,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ClusterNodes::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(ClusterNodes::Id).string_len(40).not_null().primary_key())
                    .col(ColumnDef::new(ClusterNodes::Address).string_len(255).not_null())
                    .col(ColumnDef::new(ClusterNodes::StartedAt).big_integer().not_null())
                    .col(ColumnDef::new(ClusterNodes::HeartbeatAt).big_integer().not_null())
                    .col(ColumnDef::new(ClusterNodes::StoppedAt).big_integer().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(InstanceOwners::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(InstanceOwners::InstanceId).string_len(40).not_null().primary_key())
                    .col(ColumnDef::new(InstanceOwners::NodeId).string_len(40).null())
                    .col(ColumnDef::new(InstanceOwners::Epoch).big_integer().not_null())
                    .col(ColumnDef::new(InstanceOwners::Since).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_instance_owners_node")
                    .table(InstanceOwners::Table)
                    .col(InstanceOwners::NodeId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(InstanceOwners::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(ClusterNodes::Table).to_owned()).await
    }
}
