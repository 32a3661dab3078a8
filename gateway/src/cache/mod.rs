//! Hot reads served from memory: API key → account, the account's plan and modules, and its
//! instances. Every entry belongs to a generation; a change anywhere (see [`epoch`]) starts a
//! new one and the old entries are dropped on the next access. Misses read the database and
//! fill the cache only if no change happened meanwhile, so a stale row is never kept.
pub mod epoch;

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicI64, AtomicU64, Ordering},
        Arc, RwLock,
    },
    time::Duration,
};

use sea_orm::DatabaseConnection;
use tokio::sync::watch;

use crate::{accounts::Account, api_keys::KeyCheck, error::Result, instances::Instance};

/// More entries than this and the cache starts afresh (bounded memory whatever callers send).
const MAX_ENTRIES: usize = 100_000;

#[derive(Clone)]
struct CachedKey {
    check: KeyCheck,
    /// When `last_used_at` was last written for this key, shared by every copy.
    last_used_written: Arc<AtomicI64>,
}

#[derive(Default)]
struct Maps {
    generation: u64,
    keys: HashMap<String, CachedKey>,
    accounts: HashMap<i64, Account>,
    instances: HashMap<String, Instance>,
}

impl Maps {
    fn len(&self) -> usize {
        self.keys.len() + self.accounts.len() + self.instances.len()
    }
}

pub struct HotCache {
    db: DatabaseConnection,
    /// The shared counter as this server last read it.
    shared: AtomicU64,
    maps: RwLock<Maps>,
}

impl HotCache {
    pub fn new(db: DatabaseConnection) -> Arc<HotCache> {
        Arc::new(HotCache { db, shared: AtomicU64::new(0), maps: RwLock::new(Maps::default()) })
    }

    /// Both counters only grow, so their sum changes whenever either does.
    fn generation(&self) -> u64 {
        epoch::local().wrapping_add(self.shared.load(Ordering::Acquire))
    }

    fn lookup<T>(&self, read: impl FnOnce(&Maps) -> Option<T>) -> Option<T> {
        let generation = self.generation();
        let maps = self.maps.read().unwrap_or_else(|p| p.into_inner());
        if maps.generation != generation {
            return None;
        }
        read(&maps)
    }

    /// Stores what was read from the database at `generation`, unless something changed since.
    fn fill(&self, generation: u64, write: impl FnOnce(&mut Maps)) {
        let mut maps = self.maps.write().unwrap_or_else(|p| p.into_inner());
        if self.generation() != generation {
            return;
        }
        if maps.generation != generation || maps.len() >= MAX_ENTRIES {
            *maps = Maps { generation, ..Maps::default() };
        }
        write(&mut maps);
    }

    /// Resolves a presented bearer key, as `api_keys::authenticate` does, from memory when it can.
    pub async fn authenticate(&self, presented: &str) -> Result<KeyCheck> {
        let presented = presented.trim();
        if !crate::api_keys::looks_like_key(presented) {
            return Ok(KeyCheck::Invalid);
        }
        let hash = crate::api_keys::hash_key(presented);
        if let Some(cached) = self.lookup(|m| m.keys.get(&hash).cloned()) {
            if let KeyCheck::Valid { key_id, .. } = &cached.check {
                self.note_use(key_id, &cached.last_used_written);
            }
            return Ok(cached.check);
        }
        let generation = self.generation();
        let Some(found) = crate::api_keys::find_by_hash(&self.db, &hash).await? else {
            // Unknown keys are not remembered: memory stays bounded by real keys.
            return Ok(KeyCheck::Invalid);
        };
        let cached = CachedKey { check: found.check, last_used_written: Arc::new(AtomicI64::new(0)) };
        if let KeyCheck::Valid { key_id, .. } = &cached.check {
            cached.last_used_written.store(found.last_used_at.unwrap_or(0), Ordering::Relaxed);
            self.note_use(key_id, &cached.last_used_written);
        }
        let check = cached.check.clone();
        self.fill(generation, |m| {
            m.keys.insert(hash, cached);
        });
        Ok(check)
    }

    /// `last_used_at` is refreshed at most once a minute per key, off the request's path.
    fn note_use(&self, key_id: &str, written: &AtomicI64) {
        let now = crate::time::now();
        let before = written.load(Ordering::Relaxed);
        if now - before < crate::api_keys::LAST_USED_RESOLUTION_SECS {
            return;
        }
        if written.compare_exchange(before, now, Ordering::AcqRel, Ordering::Relaxed).is_err() {
            return;
        }
        let db = self.db.clone();
        let key_id = key_id.to_string();
        tokio::spawn(async move {
            if let Err(e) = crate::api_keys::touch_last_used(&db, &key_id, now).await {
                tracing::warn!(error = %e, "recording an API key's last use failed");
            }
        });
    }

    pub async fn account(&self, id: i64) -> Result<Option<Account>> {
        if let Some(account) = self.lookup(|m| m.accounts.get(&id).cloned()) {
            return Ok(Some(account));
        }
        let generation = self.generation();
        let found = crate::accounts::find_by_id(&self.db, id).await?;
        if let Some(account) = &found {
            let account = account.clone();
            self.fill(generation, |m| {
                m.accounts.insert(id, account);
            });
        }
        Ok(found)
    }

    /// The account's instance, or `NotFound` (also for another account's instance).
    pub async fn instance(&self, account_id: i64, id: &str) -> Result<Instance> {
        if let Some(instance) = self.lookup(|m| m.instances.get(id).cloned()) {
            return if instance.account_id == account_id { Ok(instance) } else { Err(crate::Error::NotFound) };
        }
        let generation = self.generation();
        let instance = crate::instances::find(&self.db, account_id, id).await?;
        let copy = instance.clone();
        self.fill(generation, |m| {
            m.instances.insert(copy.id.clone(), copy);
        });
        Ok(instance)
    }

    /// Follows the shared counter until shutdown: changes made by other processes apply within
    /// [`epoch::POLL_MS`].
    pub async fn follow(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut every = tokio::time::interval(Duration::from_millis(epoch::POLL_MS));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => match epoch::read(&self.db).await {
                    Ok(version) => self.shared.store(version as u64, Ordering::Release),
                    Err(e) => tracing::warn!(error = %e, "reading the change counter failed"),
                },
                _ = shutdown.changed() => return,
            }
        }
    }
}
