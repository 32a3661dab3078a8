//! Starting and stopping the server: database, migrations, connectors, background workers,
//! the listener, and a graceful shutdown on SIGTERM / Ctrl-C.
use std::{net::SocketAddr, sync::Arc, time::Duration};

use gateway::{config::Config, connectors::registry::Registry, session_store::DbSessionStore, state::AppState};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};
use tower_sessions::session_store::ExpiredDeletion;

pub async fn serve(config: Config) -> anyhow::Result<()> {
    crate::telemetry::init(config.log_format);
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    let running = start(config, listener).await?;
    tracing::info!(address = %running.addr, url = %running.state.config.public_base_url, "WA Gateway is listening");
    shutdown_signal().await;
    tracing::info!("shutting down: finishing in-flight requests");
    running.stop().await;
    Ok(())
}

/// A started server: what tests and `serve` hold to reach and stop it.
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
    workers: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops accepting, lets in-flight requests finish, then stops the workers and sessions.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        // In-flight requests get time to finish, but a stuck client cannot hold shutdown forever.
        if tokio::time::timeout(Duration::from_secs(30), &mut self.server).await.is_err() {
            tracing::warn!("requests still open after 30 s; stopping anyway");
            self.server.abort();
        }
        // Admitted sends run to their end (their connector calls are bounded by a timeout).
        let send_limit = Duration::from_secs(self.state.config.send.timeout_secs + 10);
        self.state.sends.close_and_wait(send_limit).await;
        // In-flight webhook attempts take at most their request timeout.
        let wait = Duration::from_secs(self.state.config.webhooks.timeout_secs + 5);
        for worker in self.workers {
            let _ = tokio::time::timeout(wait, worker).await;
        }
        // Last: the sessions close, then their lanes store what they reported.
        self.state.registry.shutdown().await;
    }
}

/// A send whose media URL finds the fetch budget taken waits this long for its turn.
const MEDIA_FETCH_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

pub async fn start(config: Config, listener: TcpListener) -> anyhow::Result<Running> {
    let db = gateway::db::connect(&config.database_url)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the database: {e}"))?;
    gateway::db::migrate(&db).await.map_err(|e| anyhow::anyhow!("database migration failed: {e}"))?;

    let registry =
        Registry::with_link_limits(db.clone(), gateway::connectors::from_config(&config, &db), config.caps.into());
    let node_address = config.cluster.as_ref().map(|c| c.address.clone());
    let metrics = Arc::new(gateway::metrics::Metrics::new(node_address.as_deref()));
    registry.count_with(metrics.clone());
    let cache = gateway::cache::HotCache::new(db.clone());
    let config_media_fetch = config.send.media_fetch;
    let state = AppState {
        db: db.clone(),
        config: Arc::new(config),
        registry: registry.clone(),
        cache: cache.clone(),
        sends: gateway::send::inflight::InFlight::new(),
        queues: Arc::new(gateway::send::Queues::new(db.clone())),
        answers: Arc::new(crate::api::send::StoredBodies),
        media_fetches: Arc::new(gateway::send::fetch::FetchBudget::new(config_media_fetch, MEDIA_FETCH_WAIT)),
        metrics: metrics.clone(),
    };

    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut workers = Vec::new();
    let webhook_worker = gateway::webhooks::worker::Worker::new(
        db.clone(),
        state.config.master_key.clone(),
        state.config.webhooks.clone(),
    )
    .map_err(|e| anyhow::anyhow!("cannot start the webhook worker: {e}"))?
    .counted_in(metrics);
    workers.push(tokio::spawn(Arc::new(webhook_worker).run(shutdown_rx.clone())));
    workers.push(tokio::spawn(expire_sessions(db, state.config.retention.clone(), shutdown_rx.clone())));
    workers.push(tokio::spawn(cache.follow(shutdown_rx.clone())));
    workers.push(tokio::spawn(gateway::send::reconcile::run(state.clone(), shutdown_rx.clone())));
    workers.push(tokio::spawn(gateway::event_sequencer::run(state.db.clone(), shutdown_rx.clone())));
    workers.push(tokio::spawn(gateway::db::checkpoint::run(state.db.clone(), shutdown_rx.clone())));
    workers.push(tokio::spawn(stop_idle_link_attempts(registry.clone(), shutdown_rx.clone())));
    match state.config.cluster.clone() {
        // One of several servers: this node runs the instances it owns, and only those.
        Some(cluster) => {
            let master = &state.config.master_key;
            let forwarder = gateway::cluster::forward::Forwarder::new(state.db.clone(), master, cluster.lease);
            let node = gateway::cluster::node::Node::new(state.db.clone(), cluster, registry.clone());
            registry.join_cluster(gateway::connectors::registry::ClusterLink {
                node_id: node.id.clone(),
                owned: node.owned.clone(),
                forwarder,
                taken: Default::default(),
                key: gateway::cluster::forward::ClusterKey::derive(master),
                placed: Default::default(),
            });
            workers.push(tokio::spawn(Arc::new(node).run(shutdown_rx.clone())));
        }
        None => {
            if let Err(e) = registry.start_linked().await {
                tracing::warn!(error = %e, "resuming linked instances failed");
            }
        }
    }

    if let Some(address) = state.config.metrics.listen {
        let listener = TcpListener::bind(address)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen for metrics on {address}: {e}"))?;
        let router = crate::metrics_api::router().with_state(state.clone());
        let mut stop = shutdown_rx.clone();
        let limits = state.config.http;
        workers.push(tokio::spawn(crate::http_server::serve(listener, router, limits, async move {
            let _ = stop.wait_for(|stopping| *stopping).await;
        })));
        tracing::info!(%address, "metrics are served at /metrics");
    }
    let addr = listener.local_addr()?;
    let router = crate::router::build(state.clone());
    let mut stop = shutdown_rx;
    let limits = state.config.http;
    let server = tokio::spawn(crate::http_server::serve(listener, router, limits, async move {
        let _ = stop.wait_for(|stopping| *stopping).await;
    }));
    Ok(Running { addr, state, shutdown, server, workers })
}

/// Hourly housekeeping: expired sessions and idempotency keys, log rows past their retention
/// (in small batches), spent call-event cooldowns, 3CX request signatures past their window and
/// old rate windows; done by one server at a time.
async fn expire_sessions(
    db: gateway::DatabaseConnection,
    retention: gateway::retention::Retention,
    mut shutdown: watch::Receiver<bool>,
) {
    let store = DbSessionStore::new(db.clone());
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.changed() => return,
        }
        // With several servers on one database, one of them does it each hour.
        let round = housekeeping_round(&db, &store, &retention, shutdown.clone());
        match gateway::db::alone(&db, HOUSEKEEPING_LOCK_ID, round).await {
            Ok(Some(Round::Stopping)) => return,
            Ok(Some(Round::Done)) => {}
            Ok(None) => tracing::debug!("another server is doing this hour's housekeeping"),
            Err(e) => tracing::warn!(error = %e, "taking the housekeeping lock failed"),
        }
    }
}

/// The advisory lock key of housekeeping ("waghouse" in ASCII).
const HOUSEKEEPING_LOCK_ID: i64 = 0x7761_6768_6f75_7365;

enum Round {
    Done,
    Stopping,
}

async fn housekeeping_round(
    db: &gateway::DatabaseConnection,
    store: &DbSessionStore,
    retention: &gateway::retention::Retention,
    mut shutdown: watch::Receiver<bool>,
) -> Round {
    if let Err(e) = store.delete_expired().await {
        tracing::warn!(error = %e, "deleting expired sessions failed");
    }
    if let Err(e) = gateway::send::idempotency::delete_expired(db).await {
        tracing::warn!(error = %e, "deleting expired idempotency keys failed");
    }
    let now = gateway::time::now();
    // A shutdown does not wait for a long backlog: the next start goes on from it.
    tokio::select! {
        result = gateway::retention::prune(db, retention, now) => {
            if let Err(e) = result {
                tracing::warn!(error = %e, "pruning rows past their retention failed");
            }
        }
        _ = shutdown.changed() => return Round::Stopping,
    }
    if let Err(e) = gateway::threecx::cooldown::delete_spent(db, now).await {
        tracing::warn!(error = %e, "deleting spent 3CX cooldowns failed");
    }
    if let Err(e) = gateway::threecx::replay::forget_old(db, now).await {
        tracing::warn!(error = %e, "deleting old 3CX request signatures failed");
    }
    if let Err(e) = gateway::send::throttle::delete_old_windows(db, now - 2 * 86_400).await {
        tracing::warn!(error = %e, "deleting old rate windows failed");
    }
    Round::Done
}

/// Link attempts (a WhatsApp Web client waiting for a phone) that nobody looks at any more are
/// stopped; the check is in memory and costs nothing when there are none.
async fn stop_idle_link_attempts(registry: Arc<Registry>, mut shutdown: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(Duration::from_secs(15));
    loop {
        tokio::select! {
            _ = every.tick() => registry.stop_idle_link_attempts().await,
            _ = shutdown.changed() => return,
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
