//! What every request handler and server function needs, built once at start.
use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::{
    cache::HotCache,
    config::Config,
    connectors::registry::Registry,
    send::{inflight::InFlight, Queues, StoredAnswers},
};

#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub config: Arc<Config>,
    pub registry: Arc<Registry>,
    /// API keys, accounts and instances as the API path reads them.
    pub cache: Arc<HotCache>,
    /// Sends past admission, running in tasks of their own.
    pub sends: InFlight,
    /// The group-commit queues of the send path (admission, settling).
    pub queues: Arc<Queues>,
    pub answers: Arc<dyn StoredAnswers>,
    /// Media downloads of send requests: how many at once, how many bytes held.
    pub media_fetches: Arc<crate::send::fetch::FetchBudget>,
    /// What `GET /metrics` reports.
    pub metrics: Arc<crate::metrics::Metrics>,
}
