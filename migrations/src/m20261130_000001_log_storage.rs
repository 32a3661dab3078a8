//! Log storage that stays fast at millions of rows: indexes that let every log page be one
//! short index range (messages by instance and by exact recipient; inbound messages ordered by
//! their receipt time; blocked and flagged policy decisions), and hourly policy-decision counts
//! per account (filled from the decisions already there) so the 7-day summary never counts
//! the decisions table.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Messages {
    Table,
    Id,
    AccountId,
    InstanceId,
    Recipient,
}

#[derive(DeriveIden, Clone, Copy)]
enum InboundMessages {
    Table,
    Id,
    AccountId,
    InstanceId,
    FromPhone,
    ReceivedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum PolicyDecisions {
    Table,
    Id,
    AccountId,
    Decision,
}

#[derive(DeriveIden)]
enum PolicyStats {
    Table,
    AccountId,
    HourStart,
    Allowed,
    Flagged,
    Blocked,
}

fn index<T: IntoIden + Copy>(name: &str, table: T, cols: &[T]) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(name).table(table);
    for col in cols {
        index.col(*col);
    }
    index.to_owned()
}

/// The inbound indexes the log used before it was ordered by receipt time.
fn old_inbound_indexes() -> Vec<IndexCreateStatement> {
    use InboundMessages::*;
    vec![
        index("idx_inbound_instance", Table, &[AccountId, InstanceId, Id]),
        index("idx_inbound_phone", Table, &[AccountId, FromPhone, Id]),
    ]
}

fn new_indexes() -> Vec<IndexCreateStatement> {
    vec![
        index("idx_messages_instance", Messages::Table, &[Messages::AccountId, Messages::InstanceId, Messages::Id]),
        index("idx_messages_recipient", Messages::Table, &[Messages::AccountId, Messages::Recipient, Messages::Id]),
        index(
            "idx_inbound_received",
            InboundMessages::Table,
            &[InboundMessages::AccountId, InboundMessages::ReceivedAt, InboundMessages::Id],
        ),
        index(
            "idx_inbound_instance_received",
            InboundMessages::Table,
            &[
                InboundMessages::AccountId,
                InboundMessages::InstanceId,
                InboundMessages::ReceivedAt,
                InboundMessages::Id,
            ],
        ),
        index(
            "idx_inbound_phone_received",
            InboundMessages::Table,
            &[InboundMessages::AccountId, InboundMessages::FromPhone, InboundMessages::ReceivedAt, InboundMessages::Id],
        ),
        index(
            "idx_policy_decision",
            PolicyDecisions::Table,
            &[PolicyDecisions::AccountId, PolicyDecisions::Decision, PolicyDecisions::Id],
        ),
    ]
}

const NEW_INDEXES: &[(&str, &str)] = &[
    ("idx_messages_instance", "messages"),
    ("idx_messages_recipient", "messages"),
    ("idx_inbound_received", "inbound_messages"),
    ("idx_inbound_instance_received", "inbound_messages"),
    ("idx_inbound_phone_received", "inbound_messages"),
    ("idx_policy_decision", "policy_decisions"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for statement in new_indexes() {
            manager.create_index(statement).await?;
        }
        // The time-ordered indexes serve every query the id-ordered ones did.
        for name in ["idx_inbound_instance", "idx_inbound_phone"] {
            manager.drop_index(Index::drop().name(name).table(InboundMessages::Table).to_owned()).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(PolicyStats::Table)
                    .col(ColumnDef::new(PolicyStats::AccountId).big_integer().not_null())
                    .col(ColumnDef::new(PolicyStats::HourStart).big_integer().not_null())
                    .col(ColumnDef::new(PolicyStats::Allowed).integer().not_null().default(0))
                    .col(ColumnDef::new(PolicyStats::Flagged).integer().not_null().default(0))
                    .col(ColumnDef::new(PolicyStats::Blocked).integer().not_null().default(0))
                    .primary_key(Index::create().col(PolicyStats::AccountId).col(PolicyStats::HourStart))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO policy_stats (account_id, hour_start, allowed, flagged, blocked) \
                 SELECT account_id, created_at - (created_at % 3600), \
                 SUM(CASE WHEN decision = 'allow' THEN 1 ELSE 0 END), \
                 SUM(CASE WHEN decision = 'flag' THEN 1 ELSE 0 END), \
                 SUM(CASE WHEN decision = 'block' THEN 1 ELSE 0 END) \
                 FROM policy_decisions GROUP BY account_id, created_at - (created_at % 3600)",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(PolicyStats::Table).to_owned()).await?;
        for statement in old_inbound_indexes() {
            manager.create_index(statement).await?;
        }
        for (name, table) in NEW_INDEXES {
            manager.drop_index(Index::drop().name(*name).table(Alias::new(*table)).to_owned()).await?;
        }
        Ok(())
    }
}
