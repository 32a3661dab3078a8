//! Fewer index writes per message on PostgreSQL and MySQL.
//!
//! PostgreSQL writes a new version of a row for every UPDATE and, unless the update is "HOT"
//! (no indexed column changed and the new version fits in the same page), a new entry in every
//! index of the table. A sent message is updated three times (settled, delivered, read) and
//! `messages` has eight indexes; each event is inserted and then numbered by the sequencer.
//! Measured on the send path, index insertion was 30 % of the database's CPU.
//!
//! - `idx_messages_status_created` (status, created_at) served only the reconciler's search for
//!   messages left `accepted`, and made every receipt a non-HOT update. It becomes
//!   `idx_messages_unsettled` (created_at) for rows with neither a provider id nor an error —
//!   exactly the rows still `accepted` — which receipts never touch. PostgreSQL only: SQLite and
//!   MySQL update in place and touch only the indexes of changed columns.
//! - `messages` keeps a fifth of each page free (fillfactor 80) so the receipts' new versions
//!   fit beside the old ones (PostgreSQL only).
//! - `idx_events_account` (account_id, id) served paging by id, which only SQLite does; the
//!   other databases page by position (`idx_events_position`).
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let conn = manager.get_connection();
        match manager.get_database_backend() {
            DatabaseBackend::Postgres => {
                conn.execute_unprepared(
                    "CREATE INDEX idx_messages_unsettled ON messages (created_at) \
                     WHERE provider_message_id IS NULL AND error IS NULL",
                )
                .await?;
                conn.execute_unprepared("DROP INDEX idx_messages_status_created").await?;
                conn.execute_unprepared("ALTER TABLE messages SET (fillfactor = 80)").await?;
                conn.execute_unprepared("DROP INDEX idx_events_account").await?;
            }
            DatabaseBackend::MySql => {
                conn.execute_unprepared("DROP INDEX idx_events_account ON events").await?;
            }
            _ => {}
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let conn = manager.get_connection();
        match manager.get_database_backend() {
            DatabaseBackend::Postgres => {
                conn.execute_unprepared("CREATE INDEX idx_events_account ON events (account_id, id)").await?;
                conn.execute_unprepared("ALTER TABLE messages RESET (fillfactor)").await?;
                conn.execute_unprepared("CREATE INDEX idx_messages_status_created ON messages (status, created_at)")
                    .await?;
                conn.execute_unprepared("DROP INDEX idx_messages_unsettled").await?;
            }
            DatabaseBackend::MySql => {
                conn.execute_unprepared("CREATE INDEX idx_events_account ON events (account_id, id)").await?;
            }
            _ => {}
        }
        Ok(())
    }
}
