//! Database schema, one file per change. A migration that has landed is never edited:
//! add a new one instead.
pub use sea_orm_migration::prelude::*;

mod m20261124_000001_foundation;
mod m20261124_000002_send_path;
mod m20261124_000003_events_and_inbound;
mod m20261124_000004_webhooks;
mod m20261124_000005_threecx;
mod m20261124_000006_connection_alerts;
mod m20261128_000001_send_engine;
mod m20261128_000002_webhook_engine;
mod m20261130_000001_log_storage;
mod m20261201_000001_send_batches;
mod m20261202_000001_lookup_keys;
mod m20261203_000001_fewer_index_writes;
mod m20261204_000001_threecx_replays;
mod m20261205_000001_cluster;
mod m20261206_000001_whatsapp_keys;
mod m20261207_000001_audit_log;
mod m20261207_000002_disabled_accounts;
mod m20261207_000003_password_resets;
mod m20261208_000001_operator_console;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_foundation::Migration),
            Box::new(m20261124_000002_send_path::Migration),
            Box::new(m20261124_000003_events_and_inbound::Migration),
            Box::new(m20261124_000004_webhooks::Migration),
            Box::new(m20261124_000005_threecx::Migration),
            Box::new(m20261124_000006_connection_alerts::Migration),
            Box::new(m20261128_000001_send_engine::Migration),
            Box::new(m20261128_000002_webhook_engine::Migration),
            Box::new(m20261130_000001_log_storage::Migration),
            Box::new(m20261201_000001_send_batches::Migration),
            Box::new(m20261202_000001_lookup_keys::Migration),
            Box::new(m20261203_000001_fewer_index_writes::Migration),
            Box::new(m20261204_000001_threecx_replays::Migration),
            Box::new(m20261205_000001_cluster::Migration),
            Box::new(m20261206_000001_whatsapp_keys::Migration),
            Box::new(m20261207_000001_audit_log::Migration),
            Box::new(m20261207_000002_disabled_accounts::Migration),
            Box::new(m20261207_000003_password_resets::Migration),
            Box::new(m20261208_000001_operator_console::Migration),
        ]
    }
}
