//! The conferences this node is working on, in memory: the engine decides commands against
//! them, and the notification feeds render from them, instead of reading back from the store
//! what this node has just committed.
//!
//! # Why a stale entry is harmless
//! The store stays the authority. An entry is a conference *as this node last committed or
//! read it*; another node (or another writer) may have moved it on since. So:
//! * a command decided on an entry commits with the entry's version as the expected one, and
//!   the store refuses a stale version (`Conflict`): the engine then drops the entry, reloads
//!   from the store and decides again;
//! * a command *refused* on an entry is decided again on a fresh read before the refusal is
//!   answered (a refusal commits nothing, so no version check would catch a stale one);
//! * reads that answer clients (`GET` a call, list) never come from here: they read the store,
//!   so every node shows what was committed anywhere.
//!
//! # Bounds
//! Two generations of at most `capacity / 2` entries each: an entry used in the current
//! generation stays, one untouched for a whole generation is dropped when the next one starts.
//! So memory is bounded by `capacity` entries, idle conferences leave by themselves, and every
//! operation is O(1) under one short lock.
//!
//! Each entry also keeps the state before its last commit, so that a feed meeting the first
//! event of a commit finds the state that event applies to without replaying the conference's
//! events from the store.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use confer_core::Conference;

/// A cached conference: as last committed by this node (or read from the store), and as it was
/// before that commit.
struct Entry {
    current: Arc<Conference>,
    previous: Option<Arc<Conference>>,
}

struct Generations {
    young: HashMap<String, Entry>,
    old: HashMap<String, Entry>,
}

/// The node's working set of conferences, by store key. Cheap to share (`Arc`).
pub struct ConferenceCache {
    generations: Mutex<Generations>,
    /// Entries per generation.
    generation: usize,
}

impl ConferenceCache {
    /// A cache of at most `capacity` conferences (0: nothing is cached).
    pub fn new(capacity: usize) -> Self {
        Self {
            generations: Mutex::new(Generations {
                young: HashMap::new(),
                old: HashMap::new(),
            }),
            generation: capacity / 2,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Generations> {
        // The maps hold no invariant a panicking holder could break halfway.
        self.generations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The conference under `key` as this node last knew it.
    pub fn get(&self, key: &str) -> Option<Arc<Conference>> {
        let mut g = self.lock();
        if let Some(entry) = g.young.get(key) {
            return Some(entry.current.clone());
        }
        let entry = g.old.remove(key)?;
        let current = entry.current.clone();
        self.put_young(&mut g, key.to_owned(), entry);
        Some(current)
    }

    /// The conference under `key` at exactly `version`, if this node still holds that state
    /// (as the current one or the one before its last commit).
    pub fn at_version(&self, key: &str, version: u64) -> Option<Arc<Conference>> {
        let g = self.lock();
        let entry = g.young.get(key).or_else(|| g.old.get(key))?;
        [Some(&entry.current), entry.previous.as_ref()]
            .into_iter()
            .flatten()
            .find(|c| c.version == version)
            .cloned()
    }

    /// The state `event_version` applies to (the conference at the version before it), when
    /// this node still holds it: how a notification feed renders the first event of a commit
    /// this node made without replaying the conference from the store.
    pub fn state_before(&self, key: &str, event_version: u64) -> Option<Conference> {
        let before = event_version.checked_sub(1)?;
        self.at_version(key, before).map(Arc::unwrap_or_clone)
    }

    /// Remembers `conference`, read from the store, unless a newer state is known already.
    pub fn loaded(&self, key: &str, conference: Arc<Conference>) {
        self.put(key, conference, None);
    }

    /// Remembers `after`, which this node has just committed on top of `before`.
    pub fn committed(&self, key: &str, before: Option<Arc<Conference>>, after: Arc<Conference>) {
        self.put(key, after, before);
    }

    /// Forgets `key` (its entry turned out to be stale).
    pub fn forget(&self, key: &str) {
        let mut g = self.lock();
        g.young.remove(key);
        g.old.remove(key);
    }

    /// How many conferences are held.
    pub fn len(&self) -> usize {
        let g = self.lock();
        g.young.len() + g.old.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn put(&self, key: &str, current: Arc<Conference>, previous: Option<Arc<Conference>>) {
        if self.generation == 0 {
            return;
        }
        let mut g = self.lock();
        let known = g.young.remove(key).or_else(|| g.old.remove(key));
        let entry = match known {
            // Two commits of this node may report back out of order: keep the newest state.
            Some(known) if known.current.version > current.version => known,
            Some(known) if previous.is_none() && known.current.version == current.version => known,
            _ => Entry { current, previous },
        };
        self.put_young(&mut g, key.to_owned(), entry);
    }

    fn put_young(&self, g: &mut Generations, key: String, entry: Entry) {
        if g.young.len() >= self.generation {
            // A new generation: whatever nobody touched during the last one goes.
            g.old = std::mem::take(&mut g.young);
            g.young.reserve(self.generation);
        }
        g.young.insert(key, entry);
    }
}

#[cfg(test)]
mod tests {
    use confer_core::{
        Actor, Command, ConferenceId, Role, Timestamp,
        command::{NewCall, NewParty},
        conference::voice::{CallState, CallType},
        user_data::UserData,
    };

    use super::*;

    fn conference(id: &str, version: u64) -> Arc<Conference> {
        let actor = Actor::new("u", "u")
            .with_role(Role::Agent)
            .with_phone_number("20000");
        let command = Command::CreateCall(NewCall {
            id: ConferenceId::new(id),
            conn_id: "0001".into(),
            call_uuid: id.into(),
            dnis: "20001".into(),
            call_type: CallType::Internal,
            state: CallState::Established,
            other_parties: vec![NewParty {
                phone_number: "20001".into(),
                user_id: None,
            }],
            user_data: UserData::new(),
        });
        let (mut c, _) =
            confer_core::execute(None, &actor, command, Timestamp::from_millis(0)).unwrap();
        c.version = version;
        Arc::new(c)
    }

    #[test]
    fn newest_state_wins_and_the_previous_one_stays_findable() {
        let cache = ConferenceCache::new(10);
        cache.committed("a", Some(conference("a", 1)), conference("a", 2));
        // A late report of an older commit does not move the entry back.
        cache.committed("a", None, conference("a", 1));
        assert_eq!(cache.get("a").unwrap().version, 2);
        assert_eq!(cache.at_version("a", 1).unwrap().version, 1);
        assert!(cache.at_version("a", 3).is_none());
        cache.forget("a");
        assert!(cache.get("a").is_none());
    }

    #[test]
    fn idle_entries_leave_and_used_ones_stay() {
        let cache = ConferenceCache::new(4);
        cache.loaded("a", conference("a", 1));
        cache.loaded("b", conference("b", 1));
        // A new generation starts; "a" is used in it, "b" is not.
        cache.loaded("c", conference("c", 1));
        assert!(cache.get("a").is_some());
        // And another one: "b" was idle for a whole generation.
        cache.loaded("d", conference("d", 1));
        cache.loaded("e", conference("e", 1));
        assert!(cache.get("b").is_none());
        assert!(cache.get("a").is_some());
        assert!(cache.len() <= 4, "{}", cache.len());
    }

    #[test]
    fn a_zero_capacity_cache_holds_nothing() {
        let cache = ConferenceCache::new(0);
        cache.loaded("a", conference("a", 1));
        assert!(cache.get("a").is_none());
        assert!(cache.is_empty());
    }
}
