//! A bounded, expiring cache of verified credentials, so that argon2 (tens of milliseconds by
//! design) runs once per user per few minutes instead of on every Basic-authenticated request.
//!
//! The cache never holds a password: it keeps an HMAC of it under a key that lives only in this
//! process's memory, compared in constant time.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

pub struct CredentialCache<V> {
    key: [u8; 32],
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<String, Entry<V>>>,
}

struct Entry<V> {
    tag: Vec<u8>,
    value: V,
    expires: Instant,
}

impl<V: Clone> CredentialCache<V> {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).unwrap_or_else(|e| panic!("no OS randomness: {e}"));
        Self {
            key,
            ttl,
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn mac(&self, username: &str, password: &str) -> HmacSha256 {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(username.as_bytes());
        mac.update(b"\0");
        mac.update(password.as_bytes());
        mac
    }

    /// The cached value for these exact credentials, if verified recently.
    pub fn get(&self, username: &str, password: &str) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = entries.get(username)?;
        if entry.expires <= Instant::now() {
            return None;
        }
        self.mac(username, password).verify_slice(&entry.tag).ok()?;
        Some(entry.value.clone())
    }

    /// Remembers credentials that were just verified.
    pub fn insert(&self, username: &str, password: &str, value: V) {
        let tag = self
            .mac(username, password)
            .finalize()
            .into_bytes()
            .to_vec();
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(username) {
            entries.retain(|_, e| e.expires > now);
            if entries.len() >= self.capacity {
                // Still full of live entries: drop an arbitrary one rather than grow unbounded.
                if let Some(victim) = entries.keys().next().cloned() {
                    entries.remove(&victim);
                }
            }
        }
        entries.insert(
            username.to_owned(),
            Entry {
                tag,
                value,
                expires: now + self.ttl,
            },
        );
    }

    /// Forgets a user (password changed, user removed).
    pub fn forget(&self, username: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(username);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_password_hits_and_entries_expire() {
        let cache = CredentialCache::new(Duration::from_millis(50), 10);
        cache.insert("agent", "demo", 7);
        assert_eq!(cache.get("agent", "demo"), Some(7));
        assert_eq!(cache.get("agent", "Demo"), None);
        assert_eq!(cache.get("other", "demo"), None);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get("agent", "demo"), None);
    }

    #[test]
    fn capacity_is_bounded() {
        let cache = CredentialCache::new(Duration::from_secs(60), 3);
        for i in 0..10 {
            cache.insert(&format!("u{i}"), "p", i);
        }
        assert!(cache.entries.lock().unwrap().len() <= 3);
        assert_eq!(cache.get("u9", "p"), Some(9), "the newest entry is kept");
        cache.forget("u9");
        assert_eq!(cache.get("u9", "p"), None);
    }
}

/// A bounded map whose entries expire: what a node remembers of a user for a few seconds, so
/// that checking a session costs no store read, and a change made on another node is seen
/// within the time to live.
pub struct TtlMap<V> {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<String, (Instant, V)>>,
}

impl<V: Clone> TtlMap<V> {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, V)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The value, if set less than the time to live ago.
    pub fn get(&self, key: &str) -> Option<V> {
        let entries = self.lock();
        let (expires, value) = entries.get(key)?;
        (*expires > Instant::now()).then(|| value.clone())
    }

    pub fn insert(&self, key: &str, value: V) {
        let now = Instant::now();
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(key) {
            entries.retain(|_, (expires, _)| *expires > now);
            if entries.len() >= self.capacity
                && let Some(victim) = entries.keys().next().cloned()
            {
                entries.remove(&victim);
            }
        }
        entries.insert(key.to_owned(), (now + self.ttl, value));
    }

    pub fn remove(&self, key: &str) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
mod ttl_tests {
    use super::*;

    #[test]
    fn entries_expire_and_the_map_is_bounded() {
        let map = TtlMap::new(Duration::from_millis(30), 2);
        map.insert("a", 1);
        assert_eq!(map.get("a"), Some(1));
        map.insert("b", 2);
        map.insert("c", 3);
        assert!(map.lock().len() <= 2);
        assert_eq!(map.get("c"), Some(3));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(map.get("c"), None);
        map.insert("d", 4);
        map.remove("d");
        assert_eq!(map.get("d"), None);
    }
}
