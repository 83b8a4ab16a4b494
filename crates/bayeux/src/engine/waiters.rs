//! Node-local index of held `/meta/connect`s.
//!
//! When the log head moves, the engine must wake exactly the connects that
//! may have something to deliver, not all of them. Waiting sessions are
//! indexed by client id (for [`Audience::Session`]), by principal key (for
//! [`Audience::Principal`]) and by subscription pattern (for
//! [`Audience::All`]); an entry on `/a/b/c` looks up the patterns `/a/b/c`,
//! `/a/b/*`, `/a/b/**`, `/a/**` and `/**` only.
//!
//! A wake-up is a hint: the woken connect re-reads the log and may find
//! nothing for itself (e.g. an entry older than its subscription), in which
//! case it keeps waiting.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use tokio::sync::Notify;

use crate::channel::ChannelPattern;
use crate::log::{Audience, LogEntry};
use crate::session::{ClientId, Subscription};

/// Why a held connect was woken. Higher values win over lower ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub(crate) enum Wake {
    /// The log may hold something for it.
    Data = 0,
    /// A newer connect of the same client arrived: return at once, empty.
    Superseded = 1,
    /// The session was disconnected or expired.
    Removed = 2,
    /// The server is shutting down.
    Shutdown = 3,
}

/// What a held connect waits on.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    notify: Notify,
    reason: AtomicU8,
    /// Another node changed the session: re-read it from the store before
    /// the next scan. A flag beside the reason, not a reason: reasons only
    /// ever grow, and a refresh is a one-off request.
    refresh: AtomicBool,
}

impl Signal {
    fn wake(&self, why: Wake) {
        self.reason.fetch_max(why as u8, Ordering::AcqRel);
        // `notify_one` stores a permit if the connect is not waiting right
        // now (it is reading the log), so no wake-up is lost.
        self.notify.notify_one();
    }

    fn wake_to_refresh(&self) {
        // Set before the wake-up, so the woken connect sees it.
        self.refresh.store(true, Ordering::Release);
        self.wake(Wake::Data);
    }

    /// Whether a refresh was asked for since the last call.
    pub(crate) fn take_refresh(&self) -> bool {
        self.refresh.swap(false, Ordering::AcqRel)
    }

    /// Waits for the next wake-up.
    pub(crate) async fn notified(&self) {
        self.notify.notified().await;
    }

    /// The strongest reason received so far.
    pub(crate) fn reason(&self) -> Wake {
        match self.reason.load(Ordering::Acquire) {
            0 => Wake::Data,
            1 => Wake::Superseded,
            2 => Wake::Removed,
            _ => Wake::Shutdown,
        }
    }
}

#[derive(Debug)]
struct Slot {
    generation: u64,
    signal: Arc<Signal>,
    principal: Arc<str>,
    subs: Vec<Subscription>,
}

#[derive(Debug, Default)]
struct Index {
    by_client: HashMap<Arc<str>, Slot>,
    by_principal: HashMap<Arc<str>, HashSet<Arc<str>>>,
    by_pattern: HashMap<Arc<str>, HashSet<Arc<str>>>,
    next_generation: u64,
}

impl Index {
    fn unindex(&mut self, client: &Arc<str>, slot: &Slot) {
        remove_from(&mut self.by_principal, &slot.principal, client);
        for s in &slot.subs {
            remove_from(&mut self.by_pattern, &s.pattern.as_arc(), client);
        }
    }
}

fn remove_from(map: &mut HashMap<Arc<str>, HashSet<Arc<str>>>, key: &Arc<str>, client: &Arc<str>) {
    if let Some(set) = map.get_mut(key) {
        set.remove(client);
        if set.is_empty() {
            map.remove(key);
        }
    }
}

/// A registered held connect.
#[derive(Debug)]
pub(crate) struct Registration {
    pub(crate) generation: u64,
    pub(crate) signal: Arc<Signal>,
}

/// The index. Critical sections are short and never await.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    index: Mutex<Index>,
    /// Per-client turn: connects of one client run their scan-and-reply one
    /// after the other. Weak, so an idle client costs one dead entry until
    /// [`Waiters::prune_turns`].
    turns: Mutex<HashMap<Arc<str>, Weak<tokio::sync::Mutex<()>>>>,
}

impl Waiters {
    fn lock(&self) -> MutexGuard<'_, Index> {
        // Mutations keep the maps consistent at every step that could panic
        // (none allocate in the middle of a multi-map update without the
        // other maps being valid), so a poisoned lock is still usable.
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The turn of a client's connects (see the `turns` field).
    pub(crate) fn connect_turn(&self, client: &ClientId) -> Arc<tokio::sync::Mutex<()>> {
        let mut turns = self.turns.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(t) = turns.get(client.as_arc()).and_then(Weak::upgrade) {
            return t;
        }
        let t = Arc::new(tokio::sync::Mutex::new(()));
        turns.insert(client.as_arc().clone(), Arc::downgrade(&t));
        t
    }

    /// Forgets the turns no connect holds.
    pub(crate) fn prune_turns(&self) {
        self.turns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, t| t.strong_count() > 0);
    }

    /// Registers a held connect; a previous one of the same client is woken
    /// as superseded (one outstanding connect per client).
    pub(crate) fn register(
        &self,
        client: &ClientId,
        principal: Arc<str>,
        subs: Vec<Subscription>,
    ) -> Registration {
        let mut ix = self.lock();
        let key = client.as_arc().clone();
        if let Some(old) = ix.by_client.remove(&key) {
            old.signal.wake(Wake::Superseded);
            ix.unindex(&key, &old);
        }
        ix.next_generation += 1;
        let generation = ix.next_generation;
        let signal = Arc::new(Signal::default());
        ix.by_principal
            .entry(principal.clone())
            .or_default()
            .insert(key.clone());
        for s in &subs {
            ix.by_pattern
                .entry(s.pattern.as_arc())
                .or_default()
                .insert(key.clone());
        }
        ix.by_client.insert(
            key,
            Slot {
                generation,
                signal: signal.clone(),
                principal,
                subs,
            },
        );
        Registration { generation, signal }
    }

    /// Removes the registration if it is still the current one.
    pub(crate) fn unregister(&self, client: &ClientId, generation: u64) {
        let mut ix = self.lock();
        let key = client.as_arc();
        if ix
            .by_client
            .get(key)
            .is_some_and(|s| s.generation == generation)
            && let Some(slot) = ix.by_client.remove(key)
        {
            ix.unindex(key, &slot);
        }
    }

    /// The subscriptions a held connect should filter with now.
    pub(crate) fn subscriptions(&self, client: &ClientId) -> Vec<Subscription> {
        self.lock()
            .by_client
            .get(client.as_arc())
            .map(|s| s.subs.clone())
            .unwrap_or_default()
    }

    /// Replaces the subscriptions of a waiting client (after a subscribe or
    /// unsubscribe here, or a change announced by another node).
    /// `wake`: let the held connect re-scan at once (a subscription was added).
    pub(crate) fn set_subscriptions(&self, client: &ClientId, subs: Vec<Subscription>, wake: bool) {
        let mut ix = self.lock();
        let key = client.as_arc().clone();
        let Some(slot) = ix.by_client.get(&key) else {
            return;
        };
        let old: Vec<Arc<str>> = slot.subs.iter().map(|s| s.pattern.as_arc()).collect();
        for p in &old {
            remove_from(&mut ix.by_pattern, p, &key);
        }
        for s in &subs {
            ix.by_pattern
                .entry(s.pattern.as_arc())
                .or_default()
                .insert(key.clone());
        }
        if let Some(slot) = ix.by_client.get_mut(&key) {
            slot.subs = subs;
            if wake {
                slot.signal.wake(Wake::Data);
            }
        }
    }

    /// Adds one subscription to a waiting client.
    pub(crate) fn add_subscription(&self, client: &ClientId, sub: Subscription) {
        let mut subs = self.subscriptions(client);
        if !subs.iter().any(|s| s.pattern == sub.pattern) {
            subs.push(sub);
            self.set_subscriptions(client, subs, true);
        }
    }

    /// Removes one subscription of a waiting client.
    pub(crate) fn remove_subscription(&self, client: &ClientId, pattern: &ChannelPattern) {
        let mut subs = self.subscriptions(client);
        let before = subs.len();
        subs.retain(|s| s.pattern != *pattern);
        if subs.len() != before {
            self.set_subscriptions(client, subs, false);
        }
    }

    /// Wakes the held connects that may want `entry`.
    pub(crate) fn wake_for(&self, entry: &LogEntry) {
        let ix = self.lock();
        match &entry.audience {
            Audience::Session(id) => {
                if let Some(slot) = ix.by_client.get(id.as_arc()) {
                    slot.signal.wake(Wake::Data);
                }
            }
            Audience::Principal(key) => {
                for client in ix.by_principal.get(key).into_iter().flatten() {
                    if let Some(slot) = ix.by_client.get(client)
                        && slot.subs.iter().any(|s| s.pattern.matches(&entry.channel))
                    {
                        slot.signal.wake(Wake::Data);
                    }
                }
            }
            Audience::All => {
                for pattern in entry.channel.matching_patterns() {
                    for client in ix.by_pattern.get(pattern.as_str()).into_iter().flatten() {
                        if let Some(slot) = ix.by_client.get(client) {
                            slot.signal.wake(Wake::Data);
                        }
                    }
                }
            }
        }
    }

    /// Wakes one client's held connect.
    pub(crate) fn wake_client(&self, client: &ClientId, why: Wake) {
        if let Some(slot) = self.lock().by_client.get(client.as_arc()) {
            slot.signal.wake(why);
        }
    }

    /// Asks a client's held connect, if there is one here, to re-read its
    /// session; whether there was one.
    pub(crate) fn refresh(&self, client: &ClientId) -> bool {
        match self.lock().by_client.get(client.as_arc()) {
            Some(slot) => {
                slot.signal.wake_to_refresh();
                true
            }
            None => false,
        }
    }

    /// Asks every held connect to re-read its session; how many there were.
    pub(crate) fn refresh_all(&self) -> usize {
        let ix = self.lock();
        for slot in ix.by_client.values() {
            slot.signal.wake_to_refresh();
        }
        ix.by_client.len()
    }

    /// The distinct principal keys of the connects held here.
    pub(crate) fn principals(&self) -> Vec<Arc<str>> {
        self.lock().by_principal.keys().cloned().collect()
    }

    /// Wakes every held connect.
    pub(crate) fn wake_all(&self, why: Wake) {
        for slot in self.lock().by_client.values() {
            slot.signal.wake(why);
        }
    }

    /// Number of held connects.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().by_client.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::ChannelName;
    use serde_json::Value;

    fn sub(p: &str) -> Subscription {
        Subscription {
            pattern: ChannelPattern::parse(p).unwrap(),
            since: 0,
        }
    }

    fn entry(channel: &str, audience: Audience) -> LogEntry {
        LogEntry::new(
            1,
            ChannelName::parse(channel).unwrap(),
            Value::Null,
            audience,
            0,
        )
    }

    fn woken(r: &Registration) -> bool {
        // A stored permit makes `notified` complete at once.
        futures_util::FutureExt::now_or_never(r.signal.notified()).is_some()
    }

    #[test]
    fn only_matching_subscribers_are_woken() {
        let w = Waiters::default();
        let a = ClientId::from_string("a");
        let b = ClientId::from_string("b");
        let c = ClientId::from_string("c");
        let ra = w.register(&a, "alice".into(), vec![sub("/v2/me/*")]);
        let rb = w.register(&b, "bob".into(), vec![sub("/v2/me/calls")]);
        let rc = w.register(&c, "carol".into(), vec![sub("/other/**")]);

        w.wake_for(&entry("/v2/me/calls", Audience::All));
        assert!(woken(&ra) && woken(&rb) && !woken(&rc));

        w.wake_for(&entry("/v2/me/calls", Audience::principal("bob")));
        assert!(!woken(&ra) && woken(&rb) && !woken(&rc));

        w.wake_for(&entry("/service/x", Audience::Session(c.clone())));
        assert!(!woken(&ra) && !woken(&rb) && woken(&rc));

        w.wake_for(&entry("/other/deep/down", Audience::All));
        assert!(!woken(&ra) && !woken(&rb) && woken(&rc));
    }

    #[test]
    fn a_second_connect_supersedes_the_first() {
        let w = Waiters::default();
        let a = ClientId::from_string("a");
        let first = w.register(&a, "alice".into(), vec![sub("/x")]);
        let second = w.register(&a, "alice".into(), vec![sub("/x")]);
        assert!(woken(&first));
        assert_eq!(first.signal.reason(), Wake::Superseded);
        assert_eq!(second.signal.reason(), Wake::Data);
        // The stale registration cannot remove the current one.
        w.unregister(&a, first.generation);
        assert_eq!(w.len(), 1);
        w.unregister(&a, second.generation);
        assert_eq!(w.len(), 0);
        assert!(w.lock().by_pattern.is_empty() && w.lock().by_principal.is_empty());
    }

    #[test]
    fn turns_are_shared_while_held_and_pruned_after() {
        let w = Waiters::default();
        let a = ClientId::from_string("a");
        let t1 = w.connect_turn(&a);
        let t2 = w.connect_turn(&a);
        assert!(Arc::ptr_eq(&t1, &t2));
        drop((t1, t2));
        w.prune_turns();
        assert!(w.turns.lock().unwrap().is_empty());
    }

    #[test]
    fn a_refresh_wakes_only_that_client_once() {
        let w = Waiters::default();
        let a = ClientId::from_string("a");
        let b = ClientId::from_string("b");
        let ra = w.register(&a, "alice".into(), vec![]);
        let rb = w.register(&b, "bob".into(), vec![]);
        assert!(w.refresh(&a));
        assert!(!w.refresh(&ClientId::from_string("elsewhere")));
        assert!(woken(&ra) && !woken(&rb));
        assert_eq!(ra.signal.reason(), Wake::Data);
        assert!(ra.signal.take_refresh());
        assert!(!ra.signal.take_refresh(), "a refresh is taken once");
        assert!(!rb.signal.take_refresh());
        assert_eq!(w.refresh_all(), 2);
        assert!(woken(&ra) && woken(&rb));
        assert!(ra.signal.take_refresh() && rb.signal.take_refresh());
    }

    #[test]
    fn subscriptions_made_while_waiting_are_indexed() {
        let w = Waiters::default();
        let a = ClientId::from_string("a");
        let r = w.register(&a, "alice".into(), vec![]);
        w.add_subscription(&a, sub("/news/*"));
        assert!(woken(&r)); // re-scan with the new subscription
        w.wake_for(&entry("/news/today", Audience::All));
        assert!(woken(&r));
        w.remove_subscription(&a, &ChannelPattern::parse("/news/*").unwrap());
        w.wake_for(&entry("/news/today", Audience::All));
        assert!(!woken(&r));
    }
}
