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
