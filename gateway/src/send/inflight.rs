//! Sends past the pure checks, each running to its end in a task of its own: a client that hangs up
//! cannot stop one half-way, shutdown waits for them, and the reconciler leaves them alone.
use std::{
    collections::HashSet,
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio_util::task::TaskTracker;

#[derive(Clone, Default)]
pub struct InFlight {
    tracker: TaskTracker,
    log_ids: Arc<Mutex<HashSet<i64>>>,
}

impl InFlight {
    pub fn new() -> InFlight {
        InFlight::default()
    }

    /// Runs a send to its end, even if the caller stops waiting; shutdown waits for it.
    pub fn spawn<T, F>(&self, send: F) -> tokio::task::JoinHandle<T>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.tracker.spawn(send)
    }

    /// Marks message `log_id` as being sent by this process until the guard is dropped (the
    /// reconciler leaves it alone meanwhile).
    pub fn running(&self, log_id: i64) -> Running {
        self.ids().insert(log_id);
        Running { log_id, log_ids: self.log_ids.clone() }
    }

    /// Whether this process is still sending message `log_id`.
    pub fn is_running(&self, log_id: i64) -> bool {
        self.ids().contains(&log_id)
    }

    /// Shutdown: no new sends, and the running ones get up to `limit` to finish.
    pub async fn close_and_wait(&self, limit: Duration) {
        self.tracker.close();
        if tokio::time::timeout(limit, self.tracker.wait()).await.is_err() {
            tracing::warn!(
                open = self.tracker.len(),
                "sends still running at shutdown; the reconciler will settle them"
            );
        }
    }

    fn ids(&self) -> std::sync::MutexGuard<'_, HashSet<i64>> {
        self.log_ids.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct Running {
    log_id: i64,
    log_ids: Arc<Mutex<HashSet<i64>>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.log_ids.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.log_id);
    }
}
