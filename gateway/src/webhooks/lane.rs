//! SQLite has one writer at a time, and a connection that finds the write lock taken sleeps in
//! growing steps (up to 100 ms) before trying again. The worker's own writes (leasing a claim,
//! settling a batch) therefore queue up here, in this process, instead of colliding in SQLite.
//! Other databases lock rows, not the database: there the lane is open.
use std::sync::Arc;

use sea_orm::{DatabaseBackend, DatabaseConnection};
use tokio::sync::{Mutex, MutexGuard};

#[derive(Clone, Default)]
pub(super) struct WriteLane(Option<Arc<Mutex<()>>>);

impl WriteLane {
    pub fn for_database(db: &DatabaseConnection) -> WriteLane {
        match db.get_database_backend() {
            DatabaseBackend::Sqlite => WriteLane(Some(Arc::new(Mutex::new(())))),
            _ => WriteLane(None),
        }
    }

    /// Held while writing.
    pub async fn enter(&self) -> Option<MutexGuard<'_, ()>> {
        match &self.0 {
            Some(lane) => Some(lane.lock().await),
            None => None,
        }
    }
}
