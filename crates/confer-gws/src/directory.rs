//! Users as the dialect needs to find them: by id (to render a recipient's own device and line),
//! by phone number (who is on a line a call reaches) and by device (a supervisor's
//! `targetDeviceUri`).
//!
//! Lookups by id are cached per user; lookups by line or device read the whole user list (the
//! store has no index for them) and keep the result, reading it again on a miss at most every
//! [`RESCAN_AFTER`]. Users are few and change rarely (`confer users add`), so a new user is found
//! within that time.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use confer_app::users::actor_of;
use confer_core::{Actor, UserId};
use confer_store::{Store, StoreError};

/// How soon a miss may trigger another scan of the user list.
pub const RESCAN_AFTER: Duration = Duration::from_secs(2);
/// Users read per page while scanning.
const PAGE: u32 = 500;

pub struct Directory {
    store: Arc<dyn Store>,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    by_id: HashMap<UserId, Actor>,
    by_line: HashMap<String, UserId>,
    by_device: HashMap<String, UserId>,
    scanned_at: Option<Instant>,
}

impl Directory {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            cache: Mutex::new(Cache::default()),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        // Every update is a plain insert; a panic elsewhere cannot leave it half-written.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The user with this id.
    pub async fn user(&self, id: &UserId) -> Result<Option<Actor>, StoreError> {
        if let Some(actor) = self.cache().by_id.get(id) {
            return Ok(Some(actor.clone()));
        }
        let Some(record) = self.store.get_user(id.as_str()).await? else {
            return Ok(None);
        };
        // A user whose profile does not read back is treated as unknown (and logged).
        let actor = match actor_of(&record) {
            Ok(actor) => actor,
            Err(error) => {
                tracing::warn!(user = %id, %error, "unreadable user profile");
                return Ok(None);
            }
        };
        self.cache().by_id.insert(id.clone(), actor.clone());
        Ok(Some(actor))
    }

    /// The user whose line is `number` (compared by digits).
    pub async fn by_line(&self, number: &str) -> Result<Option<Actor>, StoreError> {
        let digits: String = number.chars().filter(char::is_ascii_digit).collect();
        if digits.is_empty() {
            return Ok(None);
        }
        self.find(|cache| cache.by_line.get(&digits).cloned()).await
    }

    /// The user whose device is `device`.
    pub async fn by_device(&self, device: &str) -> Result<Option<Actor>, StoreError> {
        self.find(|cache| cache.by_device.get(device).cloned())
            .await
    }

    async fn find(
        &self,
        lookup: impl Fn(&Cache) -> Option<UserId>,
    ) -> Result<Option<Actor>, StoreError> {
        let (found, may_rescan) = {
            let cache = self.cache();
            let found = lookup(&cache).and_then(|id| cache.by_id.get(&id).cloned());
            let may_rescan = cache
                .scanned_at
                .is_none_or(|at| at.elapsed() >= RESCAN_AFTER);
            (found, may_rescan)
        };
        if found.is_some() || !may_rescan {
            return Ok(found);
        }
        self.scan().await?;
        let cache = self.cache();
        Ok(lookup(&cache).and_then(|id| cache.by_id.get(&id).cloned()))
    }

    /// Every user, read afresh from the store (`GET /api/v2/users`), ordered by id; the caches
    /// are refreshed on the way. Users whose profile does not read back are left out.
    pub async fn all(&self) -> Result<Vec<Actor>, StoreError> {
        self.scan().await
    }

    /// Reads every user and rebuilds the line and device indexes; returns the users.
    async fn scan(&self) -> Result<Vec<Actor>, StoreError> {
        let mut actors = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.store.list_users(after.as_deref(), PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            let full = page.len() == PAGE as usize;
            actors.extend(page.iter().filter_map(|record| actor_of(record).ok()));
            if !full {
                break;
            }
        }
        let mut cache = self.cache();
        cache.by_line.clear();
        cache.by_device.clear();
        for actor in &actors {
            if let Some(line) = &actor.phone_number {
                let digits = line.digits();
                if !digits.is_empty() {
                    cache.by_line.insert(digits, actor.user_id.clone());
                }
            }
            if let Some(device) = device_of(actor) {
                cache.by_device.insert(device, actor.user_id.clone());
            }
            cache.by_id.insert(actor.user_id.clone(), actor.clone());
        }
        cache.scanned_at = Some(Instant::now());
        Ok(actors)
    }
}

pub use confer_render::gws::device_of;
