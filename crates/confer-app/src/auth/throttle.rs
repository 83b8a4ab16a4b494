//! Failed sign-ins slow down: per username and per client address, exponential backoff.
//!
//! Each key (a username, exactly as typed, whether or not such a user exists; or a client
//! address) counts its consecutive failures. The first `free` failures cost nothing; after that
//! every failure locks the key for `base * 2^(failures - free - 1)`, up to `max`. While a key is
//! locked, sign-ins under it are refused without looking at the password (a correct password is
//! refused too: otherwise guessing would simply go on), with the time left as `Retry-After`.
//! A success clears the username's count (not the address's: one good account must not reset
//! an address that is guessing others). Counts are forgotten `forget_after` past their last
//! failure, and the table is bounded: when full, the entries closest to being forgotten go
//! first.
//!
//! Clients already signed in are not affected: their session cookies and cached credentials
//! never reach this code.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::Mutex,
    time::{Duration, Instant},
};

/// How a [`Throttle`] counts.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Failures allowed before the first lock.
    pub free: u32,
    /// The first lock; each further failure doubles it.
    pub base: Duration,
    /// The longest lock.
    pub max: Duration,
    /// A count is forgotten this long after its last failure.
    pub forget_after: Duration,
    /// Most keys remembered.
    pub capacity: usize,
}

/// Per-username policy: a handful of typos, then slower and slower.
pub const USERNAME_POLICY: Policy = Policy {
    free: 5,
    base: Duration::from_secs(1),
    max: Duration::from_secs(300),
    forget_after: Duration::from_secs(15 * 60),
    capacity: 100_000,
};

/// Per-address policy: more room, since one address may be a whole office behind NAT.
pub const ADDRESS_POLICY: Policy = Policy {
    free: 20,
    base: Duration::from_secs(1),
    max: Duration::from_secs(300),
    forget_after: Duration::from_secs(15 * 60),
    capacity: 100_000,
};

#[derive(Debug, Clone, Copy)]
struct Count {
    failures: u32,
    locked_until: Instant,
    last_failure: Instant,
}

/// Failure counts by key.
#[derive(Debug)]
pub struct Throttle<K> {
    policy: Policy,
    counts: Mutex<HashMap<K, Count>>,
}

impl<K: Hash + Eq + Clone> Throttle<K> {
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            counts: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Count>> {
        // Every critical section is a few map operations: a poisoned map is still consistent.
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How long `key` is still locked, if it is.
    pub fn locked_for(&self, key: &K, now: Instant) -> Option<Duration> {
        let counts = self.lock();
        let count = counts.get(key)?;
        (count.locked_until > now).then(|| count.locked_until - now)
    }

    /// Counts a failure; returns how long the key is now locked, if at all.
    pub fn failed(&self, key: &K, now: Instant) -> Option<Duration> {
        let policy = self.policy;
        let mut counts = self.lock();
        if counts.len() >= policy.capacity && !counts.contains_key(key) {
            counts.retain(|_, c| now.duration_since(c.last_failure) < policy.forget_after);
            if counts.len() >= policy.capacity {
                // Still full: drop the oldest eighth (a flood of new keys must not grow memory).
                let mut ages: Vec<Instant> = counts.values().map(|c| c.last_failure).collect();
                ages.sort_unstable();
                let cut = ages[ages.len() / 8];
                counts.retain(|_, c| c.last_failure > cut);
            }
        }
        let count = counts.entry(key.clone()).or_insert(Count {
            failures: 0,
            locked_until: now,
            last_failure: now,
        });
        if now.duration_since(count.last_failure) >= policy.forget_after {
            count.failures = 0;
        }
        count.failures = count.failures.saturating_add(1);
        count.last_failure = now;
        let over = count.failures.saturating_sub(policy.free);
        if over == 0 {
            return None;
        }
        let lock = policy
            .base
            .saturating_mul(1u32.checked_shl(over - 1).unwrap_or(u32::MAX))
            .min(policy.max);
        count.locked_until = now + lock;
        Some(lock)
    }

    /// Clears `key`'s count.
    pub fn succeeded(&self, key: &K) {
        self.lock().remove(key);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Policy = Policy {
        free: 2,
        base: Duration::from_secs(1),
        max: Duration::from_secs(8),
        forget_after: Duration::from_secs(60),
        capacity: 16,
    };

    #[test]
    fn locks_double_after_the_free_failures_and_a_success_clears_them() {
        let throttle = Throttle::new(POLICY);
        let t0 = Instant::now();
        let key = "alice".to_owned();
        assert_eq!(throttle.failed(&key, t0), None);
        assert_eq!(throttle.failed(&key, t0), None);
        assert_eq!(throttle.failed(&key, t0), Some(Duration::from_secs(1)));
        assert_eq!(throttle.failed(&key, t0), Some(Duration::from_secs(2)));
        assert_eq!(throttle.failed(&key, t0), Some(Duration::from_secs(4)));
        assert_eq!(throttle.failed(&key, t0), Some(Duration::from_secs(8)));
        assert_eq!(
            throttle.failed(&key, t0),
            Some(Duration::from_secs(8)),
            "capped"
        );
        for _ in 0..40 {
            throttle.failed(&key, t0);
        }
        assert_eq!(
            throttle.locked_for(&key, t0 + Duration::from_secs(3)),
            Some(Duration::from_secs(5))
        );
        assert_eq!(throttle.locked_for(&key, t0 + Duration::from_secs(9)), None);
        throttle.succeeded(&key);
        assert_eq!(throttle.failed(&key, t0), None, "counted from zero again");
    }

    #[test]
    fn counts_are_forgotten_and_the_table_is_bounded() {
        let throttle = Throttle::new(POLICY);
        let t0 = Instant::now();
        for _ in 0..3 {
            throttle.failed(&0u32, t0);
        }
        let later = t0 + Duration::from_secs(61);
        assert_eq!(throttle.failed(&0u32, later), None, "forgotten");
        for key in 1..1_000u32 {
            throttle.failed(&key, later + Duration::from_millis(u64::from(key)));
            assert!(throttle.len() <= POLICY.capacity);
        }
    }
}
