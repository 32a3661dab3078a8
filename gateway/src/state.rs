//! What every request handler and server function needs, built once at start.
use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::{config::Config, connectors::registry::Registry};

#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub config: Arc<Config>,
    pub registry: Arc<Registry>,
}
