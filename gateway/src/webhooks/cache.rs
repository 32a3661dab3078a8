//! Destinations as the worker needs them, with their signing secrets decrypted once instead of
//! per attempt. An entry is trusted for a second; a change made in this process (through
//! `destinations`) empties the cache at once, and one made by another process is seen within
//! that second. A destination seen disabled or gone is read again before a delivery is
//! cancelled for it, so re-enabling it elsewhere never loses the deliveries queued after.
use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use super::signing::Signer;
use crate::{
    config::MasterKey,
    entities::webhook_destination,
    error::{Error, Result},
    secrets,
};

const FRESH: Duration = Duration::from_secs(1);
/// A "disabled" or "gone" answer is only acted on when this recent.
const NEGATIVE_FRESH: Duration = Duration::from_millis(100);
const MAX_ENTRIES: usize = 4096;

static VERSION: AtomicU64 = AtomicU64::new(0);

/// A destination row changed in this process: cached copies are stale.
pub(crate) fn destinations_changed() {
    VERSION.fetch_add(1, Ordering::Relaxed);
}

#[derive(Clone)]
pub(super) struct Target {
    /// `None` when the stored URL does not parse (an attempt then fails with that reason).
    pub url: Option<reqwest::Url>,
    pub enabled: bool,
    pub failing_since: Option<i64>,
    current: Signer,
    previous: Option<(Signer, i64)>,
}

impl Target {
    fn from_row(key: &MasterKey, row: webhook_destination::Model) -> Result<Target> {
        let current = Signer::new(&secrets::decrypt(key, &row.secret)?);
        let previous = match (&row.previous_secret, row.previous_secret_expires_at) {
            (Some(stored), Some(until)) => Some((Signer::new(&secrets::decrypt(key, stored)?), until)),
            _ => None,
        };
        Ok(Target {
            url: reqwest::Url::parse(&row.url).ok(),
            enabled: row.enabled,
            failing_since: row.failing_since,
            current,
            previous,
        })
    }

    /// The `webhook-signature` value: the current secret's, and the previous one's during its
    /// grace period.
    pub fn signature(&self, id: &str, timestamp: i64, body: &str, now: i64) -> String {
        let mut header = self.current.sign(id, timestamp, body);
        if let Some((previous, until)) = &self.previous {
            if *until > now {
                header.push(' ');
                header.push_str(&previous.sign(id, timestamp, body));
            }
        }
        header
    }
}

struct Entry {
    /// `None`: the destination is gone.
    target: Option<Arc<Target>>,
    fetched: Instant,
    version: u64,
}

impl Entry {
    fn usable(&self, version: u64) -> bool {
        let fresh_for = match &self.target {
            Some(t) if t.enabled => FRESH,
            _ => NEGATIVE_FRESH,
        };
        self.version == version && self.fetched.elapsed() < fresh_for
    }
}

pub(super) struct Cache {
    key: MasterKey,
    entries: Mutex<HashMap<String, Entry>>,
}

impl Cache {
    pub fn new(key: MasterKey) -> Cache {
        Cache { key, entries: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the lock leaves only a map of copies behind: keep using it.
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes sure these destinations are cached and fresh, reading the stale ones in one query.
    pub async fn load(&self, db: &DatabaseConnection, ids: &[String]) -> Result<()> {
        let version = VERSION.load(Ordering::Relaxed);
        let stale: Vec<String> = {
            let entries = self.lock();
            let mut stale: Vec<String> =
                ids.iter().filter(|id| !entries.get(*id).is_some_and(|e| e.usable(version))).cloned().collect();
            stale.sort();
            stale.dedup();
            stale
        };
        if stale.is_empty() {
            return Ok(());
        }
        let rows = webhook_destination::Entity::find()
            .filter(webhook_destination::Column::Id.is_in(stale.clone()))
            .all(db)
            .await?;
        let fetched = Instant::now();
        let mut found: HashMap<String, Result<Target>> =
            rows.into_iter().map(|row| (row.id.clone(), Target::from_row(&self.key, row))).collect();
        let mut entries = self.lock();
        if entries.len() > MAX_ENTRIES {
            entries.retain(|_, e| e.fetched.elapsed() < Duration::from_secs(60));
        }
        for id in stale {
            let target = match found.remove(&id) {
                None => None,
                Some(Ok(target)) => Some(Arc::new(target)),
                Some(Err(e)) => {
                    tracing::error!(destination_id = %id, error = %e, "a webhook destination's secret cannot be read");
                    entries.remove(&id);
                    continue;
                }
            };
            entries.insert(id, Entry { target, fetched, version });
        }
        Ok(())
    }

    /// The destination, `None` when it is gone.
    pub async fn get(&self, db: &DatabaseConnection, id: &str) -> Result<Option<Arc<Target>>> {
        let version = VERSION.load(Ordering::Relaxed);
        if let Some(entry) = self.lock().get(id).filter(|e| e.usable(version)) {
            return Ok(entry.target.clone());
        }
        self.load(db, &[id.to_string()]).await?;
        match self.lock().get(id) {
            Some(entry) => Ok(entry.target.clone()),
            None => Err(Error::Internal("a webhook destination's secret cannot be read".into())),
        }
    }

    /// This worker changed the destination: read it again next time.
    pub fn forget(&self, id: &str) {
        self.lock().remove(id);
    }

    /// This worker is about to disable the destination: treat it as disabled from now on (until
    /// it is read again, shortly after the change is written).
    pub fn disable(&self, id: &str) {
        let mut entries = self.lock();
        if let Some(entry) = entries.get_mut(id) {
            if let Some(target) = &entry.target {
                entry.target = Some(Arc::new(Target { enabled: false, ..Target::clone(target) }));
                entry.fetched = Instant::now();
            }
        }
    }
}
