//! A server's part in the cluster: its heartbeat, its instances, and self-fencing. Every third
//! of the lease it renews its heartbeat, reads which instances it owns (the database is the
//! truth: another node may have taken some while this one was paused), and takes or gives back
//! instances to keep the shares fair. If it could not renew its heartbeat for two thirds of the
//! lease, it stops every client it runs before anyone else may take them.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use sea_orm::DatabaseConnection;
use tokio::{sync::watch, time::Instant};

use super::{membership, ownership};
use crate::config::ClusterSettings;

/// What a node runs for the instances it owns (the connector registry).
#[async_trait::async_trait]
pub trait Runner: Send + Sync + 'static {
    /// The instance is this node's now, at `epoch`: start its connection if it has one to run.
    async fn run(&self, instance_id: &str, epoch: i64);
    /// The instance is not this node's any more (or may not be): stop its connection.
    async fn stop(&self, instance_id: &str);
}

/// The instances this node owns and their epochs, for whoever must ask (the registry, before it
/// opens a connection).
#[derive(Default)]
pub struct Owned(Mutex<HashMap<String, i64>>);

impl Owned {
    pub fn epoch(&self, instance_id: &str) -> Option<i64> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).get(instance_id).copied()
    }

    pub(crate) fn set(&self, instance_id: &str, epoch: Option<i64>) {
        let mut owned = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match epoch {
            Some(epoch) => owned.insert(instance_id.to_string(), epoch),
            None => owned.remove(instance_id),
        };
    }

    /// How many instances this node runs.
    pub fn count(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    fn snapshot(&self) -> HashMap<String, i64> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

pub struct Node {
    pub db: DatabaseConnection,
    pub id: String,
    pub settings: ClusterSettings,
    pub owned: Arc<Owned>,
    pub runner: Arc<dyn Runner>,
}

/// How long after a peer's lease should have run out a node looks again: the database's clock
/// and ours tick apart by a few milliseconds.
const EXPIRY_SLACK: Duration = Duration::from_millis(100);

impl Node {
    pub fn new(db: DatabaseConnection, settings: ClusterSettings, runner: Arc<dyn Runner>) -> Node {
        Node { db, id: crate::ids::new_id("node"), settings, owned: Arc::new(Owned::default()), runner }
    }

    fn lease_ms(&self) -> i64 {
        self.settings.lease.as_millis() as i64
    }

    /// Registers, then keeps the node's share until `shutdown`; then stops its clients and
    /// leaves, so the others take its instances at once.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let tick = self.settings.lease / 3;
        let fence_after = self.settings.lease * 2 / 3;
        while let Err(e) = membership::register(&self.db, &self.id, &self.settings.address).await {
            tracing::error!(node = %self.id, error = %e, "registering this node failed; trying again");
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = shutdown.changed() => return,
            }
        }
        tracing::info!(node = %self.id, address = %self.settings.address, "joined the cluster");
        let mut renewed_at = Instant::now();
        loop {
            // Judged before anything else: after a pause (a stopped process, a stalled machine)
            // the others may already run these instances.
            if renewed_at.elapsed() > fence_after {
                self.fence().await;
            }
            let asked_at = Instant::now();
            match tokio::time::timeout(tick, membership::heartbeat(&self.db, &self.id)).await {
                Ok(Ok(true)) => {
                    renewed_at = asked_at;
                    if let Err(e) = self.keep_share().await {
                        tracing::warn!(node = %self.id, error = %e, "balancing instances failed");
                    }
                }
                Ok(Ok(false)) => {
                    // Marked stopped (an operator, or a node that outlived its row): start over.
                    tracing::warn!(node = %self.id, "this node's row is gone; registering again");
                    self.fence().await;
                    let _ = membership::register(&self.db, &self.id, &self.settings.address).await;
                }
                Ok(Err(e)) => tracing::warn!(node = %self.id, error = %e, "renewing the heartbeat failed"),
                Err(_) => tracing::warn!(node = %self.id, "renewing the heartbeat timed out"),
            }
            let mut wait = tick.saturating_sub(asked_at.elapsed());
            if let Ok(Some(ms)) = membership::next_expiry_ms(&self.db, &self.id, self.lease_ms()).await {
                wait = wait.min(Duration::from_millis(ms.max(0) as u64) + EXPIRY_SLACK);
            }
            let wait = wait.max(Duration::from_millis(50));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => break,
            }
        }
        for instance_id in self.owned.snapshot().into_keys() {
            self.runner.stop(&instance_id).await;
            self.owned.set(&instance_id, None);
        }
        if let Err(e) = membership::leave(&self.db, &self.id).await {
            tracing::warn!(node = %self.id, error = %e, "leaving the cluster failed; the others wait out the lease");
        }
    }

    /// Stops every client this node runs: its lease may have run out.
    async fn fence(&self) {
        let running = self.owned.snapshot();
        if running.is_empty() {
            return;
        }
        tracing::warn!(node = %self.id, instances = running.len(), "lease not renewed in time: stopping every connection here");
        for instance_id in running.into_keys() {
            self.owned.set(&instance_id, None);
            self.runner.stop(&instance_id).await;
        }
    }

    /// Brings what runs here in line with the database, then takes or gives back instances.
    async fn keep_share(&self) -> crate::Result<()> {
        let truth: HashMap<String, i64> =
            ownership::owned_by(&self.db, &self.id).await?.into_iter().map(|o| (o.instance_id, o.epoch)).collect();
        for (instance_id, epoch) in self.owned.snapshot() {
            if truth.get(&instance_id) != Some(&epoch) {
                self.owned.set(&instance_id, None);
                self.runner.stop(&instance_id).await;
            }
        }
        for (instance_id, epoch) in &truth {
            if self.owned.epoch(instance_id) != Some(*epoch) {
                self.owned.set(instance_id, Some(*epoch));
                self.runner.run(instance_id, *epoch).await;
            }
        }
        let balance = ownership::balance(&self.db, &self.id, self.lease_ms()).await?;
        for gained in balance.gained {
            tracing::info!(node = %self.id, instance_id = %gained.instance_id, epoch = gained.epoch, "took an instance");
            self.owned.set(&gained.instance_id, Some(gained.epoch));
            self.runner.run(&gained.instance_id, gained.epoch).await;
        }
        if !balance.surplus.is_empty() {
            for instance_id in &balance.surplus {
                self.owned.set(instance_id, None);
                self.runner.stop(instance_id).await;
            }
            ownership::release(&self.db, &self.id, &balance.surplus).await?;
            tracing::info!(node = %self.id, instances = balance.surplus.len(), "gave instances back to balance the cluster");
        }
        Ok(())
    }
}
