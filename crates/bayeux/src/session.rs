//! Session state and where it is kept.
//!
//! A session is small: who it belongs to, what it subscribed to, whether it
//! uses the acknowledge extension, its cursor in the [`crate::MessageLog`]
//! and when it expires. Held connects and wake-ups are node-local and live
//! in the engine, not here, so the record can be kept in a shared database.
//!
//! The store is updated with narrow operations (add a subscription, record a
//! connect) rather than "save the whole record": two requests of one session
//! may run at the same time, even on two nodes (a held connect on one, a
//! subscribe on another), and a whole-record write from the first would undo
//! the second. Each operation maps to one `UPDATE` in a database.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use crate::channel::ChannelPattern;
use crate::error::StoreError;

/// A session id: at least 128 random bits, hex-encoded. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(Arc<str>);

impl ClientId {
    /// 160 random bits from the OS, as 40 hex digits.
    pub fn random() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 20];
        getrandom::fill(&mut bytes)?;
        let mut s = String::with_capacity(40);
        for b in bytes {
            s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            s.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        Ok(Self(Arc::from(s)))
    }

    /// Wraps an id received from a client or read from a store.
    pub fn from_string(s: &str) -> Self {
        Self(Arc::from(s))
    }

    /// The id as sent on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The shared string, for index keys.
    pub fn as_arc(&self) -> &Arc<str> {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One subscription of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// What was subscribed to.
    pub pattern: ChannelPattern,
    /// Log head when the subscription was made: only entries after it are
    /// delivered through this subscription (a subscriber does not get what
    /// was published before it subscribed, even if its cursor is older).
    pub since: u64,
}

/// The persistent state of one session.
#[derive(Debug, Clone)]
pub struct SessionRecord<P> {
    /// The session id.
    pub client_id: ClientId,
    /// Who authenticated the handshake.
    pub principal: P,
    /// The principal's key, matched against [`crate::Audience::Principal`].
    pub principal_key: Arc<str>,
    /// Current subscriptions (one per pattern).
    pub subscriptions: Vec<Subscription>,
    /// Whether the client negotiated the acknowledge extension.
    pub ack: bool,
    /// Everything with `seq <= cursor` has been delivered (without the ack
    /// extension) or acknowledged (with it).
    pub cursor: u64,
    /// Whether a connect has been received yet (the first is answered at once).
    pub connected: bool,
    /// Unix ms of the last connect (0 = none yet).
    pub last_connect_ms: u64,
    /// Unix ms after which the session is expired.
    pub expires_at_ms: u64,
}

/// What a connect changes in a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectUpdate {
    /// Raise the cursor to at least this (never lowers it).
    pub cursor_at_least: Option<u64>,
    /// Unix ms of this connect.
    pub now_ms: u64,
    /// New expiry time.
    pub expires_at_ms: u64,
}

/// Where sessions are kept. [`InMemorySessionStore`] here; a database-backed
/// one in a cluster, which is what lets any node continue any session.
pub trait SessionStore: Send + Sync + 'static {
    /// The authenticated identity stored with each session.
    type Principal: Clone + Send + Sync + 'static;

    /// Stores a new session.
    fn create(
        &self,
        session: SessionRecord<Self::Principal>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Loads a session.
    fn load(
        &self,
        id: &ClientId,
    ) -> impl Future<Output = Result<Option<SessionRecord<Self::Principal>>, StoreError>> + Send;

    /// Adds a subscription (keeping the existing one, and its `since`, if the
    /// pattern is already subscribed). `false` if the session does not exist.
    fn add_subscription(
        &self,
        id: &ClientId,
        sub: Subscription,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Removes a subscription. `false` if the session does not exist.
    fn remove_subscription(
        &self,
        id: &ClientId,
        pattern: &ChannelPattern,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Records a connect: raises the cursor, sets `connected`, the connect
    /// time and the expiry. Returns the updated session, `None` if it does
    /// not exist.
    fn record_connect(
        &self,
        id: &ClientId,
        update: ConnectUpdate,
    ) -> impl Future<Output = Result<Option<SessionRecord<Self::Principal>>, StoreError>> + Send;

    /// Deletes a session; `false` if it did not exist.
    fn delete(&self, id: &ClientId) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Up to `limit` sessions with `expires_at_ms < now_ms`.
    fn expired(
        &self,
        now_ms: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ClientId>, StoreError>> + Send;

    /// Number of sessions.
    fn count(&self) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// The sessions of the principal with this key, least recently active (soonest to expire)
    /// first, with their expiry (unix ms).
    fn sessions_of(
        &self,
        principal_key: &str,
    ) -> impl Future<Output = Result<Vec<(ClientId, u64)>, StoreError>> + Send;
}

/// Sessions in a `HashMap`: one node, tests, demos.
#[derive(Debug)]
pub struct InMemorySessionStore<P> {
    sessions: Mutex<Sessions<P>>,
}

#[derive(Debug)]
struct Sessions<P> {
    by_id: HashMap<ClientId, SessionRecord<P>>,
    /// Client ids by principal key: counting one principal's sessions must not scan them all.
    by_principal: HashMap<Arc<str>, std::collections::HashSet<ClientId>>,
}

impl<P> Sessions<P> {
    fn remove(&mut self, id: &ClientId) -> Option<SessionRecord<P>> {
        let removed = self.by_id.remove(id)?;
        if let Some(ids) = self.by_principal.get_mut(&removed.principal_key) {
            ids.remove(id);
            if ids.is_empty() {
                self.by_principal.remove(&removed.principal_key);
            }
        }
        Some(removed)
    }
}

impl<P> Default for InMemorySessionStore<P> {
    fn default() -> Self {
        Self {
            sessions: Mutex::new(Sessions {
                by_id: HashMap::new(),
                by_principal: HashMap::new(),
            }),
        }
    }
}

impl<P> InMemorySessionStore<P> {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sessions<P>> {
        // Every mutation is a single map operation, so a poisoned lock still
        // guards consistent data.
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<P: Clone + Send + Sync + 'static> SessionStore for InMemorySessionStore<P> {
    type Principal = P;

    async fn create(&self, session: SessionRecord<P>) -> Result<(), StoreError> {
        let mut map = self.lock();
        if map.by_id.contains_key(&session.client_id) {
            return Err(StoreError::Duplicate(session.client_id.to_string()));
        }
        map.by_principal
            .entry(session.principal_key.clone())
            .or_default()
            .insert(session.client_id.clone());
        map.by_id.insert(session.client_id.clone(), session);
        Ok(())
    }

    async fn load(&self, id: &ClientId) -> Result<Option<SessionRecord<P>>, StoreError> {
        Ok(self.lock().by_id.get(id).cloned())
    }

    async fn add_subscription(&self, id: &ClientId, sub: Subscription) -> Result<bool, StoreError> {
        let mut map = self.lock();
        let Some(s) = map.by_id.get_mut(id) else {
            return Ok(false);
        };
        if !s.subscriptions.iter().any(|x| x.pattern == sub.pattern) {
            s.subscriptions.push(sub);
        }
        Ok(true)
    }

    async fn remove_subscription(
        &self,
        id: &ClientId,
        pattern: &ChannelPattern,
    ) -> Result<bool, StoreError> {
        let mut map = self.lock();
        let Some(s) = map.by_id.get_mut(id) else {
            return Ok(false);
        };
        s.subscriptions.retain(|x| x.pattern != *pattern);
        Ok(true)
    }

    async fn record_connect(
        &self,
        id: &ClientId,
        update: ConnectUpdate,
    ) -> Result<Option<SessionRecord<P>>, StoreError> {
        let mut map = self.lock();
        let Some(s) = map.by_id.get_mut(id) else {
            return Ok(None);
        };
        if let Some(c) = update.cursor_at_least {
            s.cursor = s.cursor.max(c);
        }
        s.connected = true;
        s.last_connect_ms = update.now_ms;
        s.expires_at_ms = update.expires_at_ms;
        Ok(Some(s.clone()))
    }

    async fn delete(&self, id: &ClientId) -> Result<bool, StoreError> {
        Ok(self.lock().remove(id).is_some())
    }

    async fn expired(&self, now_ms: u64, limit: usize) -> Result<Vec<ClientId>, StoreError> {
        Ok(self
            .lock()
            .by_id
            .values()
            .filter(|s| s.expires_at_ms < now_ms)
            .take(limit)
            .map(|s| s.client_id.clone())
            .collect())
    }

    async fn count(&self) -> Result<usize, StoreError> {
        Ok(self.lock().by_id.len())
    }

    async fn sessions_of(&self, principal_key: &str) -> Result<Vec<(ClientId, u64)>, StoreError> {
        let map = self.lock();
        let mut found: Vec<(ClientId, u64)> = map
            .by_principal
            .get(principal_key)
            .into_iter()
            .flatten()
            .filter_map(|id| map.by_id.get(id).map(|s| (id.clone(), s.expires_at_ms)))
            .collect();
        found.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
        Ok(found)
    }
}

/// A shared store: several [`crate::Server`]s (as nodes of a cluster would)
/// can use one store.
impl<T: SessionStore> SessionStore for Arc<T> {
    type Principal = T::Principal;

    fn create(
        &self,
        session: SessionRecord<Self::Principal>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).create(session)
    }

    fn load(
        &self,
        id: &ClientId,
    ) -> impl Future<Output = Result<Option<SessionRecord<Self::Principal>>, StoreError>> + Send
    {
        (**self).load(id)
    }

    fn add_subscription(
        &self,
        id: &ClientId,
        sub: Subscription,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).add_subscription(id, sub)
    }

    fn remove_subscription(
        &self,
        id: &ClientId,
        pattern: &ChannelPattern,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).remove_subscription(id, pattern)
    }

    fn record_connect(
        &self,
        id: &ClientId,
        update: ConnectUpdate,
    ) -> impl Future<Output = Result<Option<SessionRecord<Self::Principal>>, StoreError>> + Send
    {
        (**self).record_connect(id, update)
    }

    fn delete(&self, id: &ClientId) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).delete(id)
    }

    fn expired(
        &self,
        now_ms: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ClientId>, StoreError>> + Send {
        (**self).expired(now_ms, limit)
    }

    fn count(&self) -> impl Future<Output = Result<usize, StoreError>> + Send {
        (**self).count()
    }

    fn sessions_of(
        &self,
        principal_key: &str,
    ) -> impl Future<Output = Result<Vec<(ClientId, u64)>, StoreError>> + Send {
        (**self).sessions_of(principal_key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> SessionRecord<String> {
        SessionRecord {
            client_id: ClientId::from_string(id),
            principal: "alice".into(),
            principal_key: Arc::from("alice"),
            subscriptions: vec![],
            ack: false,
            cursor: 5,
            connected: false,
            last_connect_ms: 0,
            expires_at_ms: 100,
        }
    }

    #[test]
    fn client_ids_are_random_and_long() {
        let a = ClientId::random().unwrap();
        let b = ClientId::random().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 40);
        assert!(a.as_str().chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[tokio::test]
    async fn store_operations() {
        let store = InMemorySessionStore::new();
        let id = ClientId::from_string("c1");
        store.create(record("c1")).await.unwrap();
        assert!(store.create(record("c1")).await.is_err());
        let p = ChannelPattern::parse("/a/*").unwrap();
        let sub = Subscription {
            pattern: p.clone(),
            since: 7,
        };
        assert!(store.add_subscription(&id, sub.clone()).await.unwrap());
        // Re-subscribing keeps the original `since`.
        let again = Subscription {
            pattern: p.clone(),
            since: 9,
        };
        assert!(store.add_subscription(&id, again).await.unwrap());
        let s = store.load(&id).await.unwrap().unwrap();
        assert_eq!(s.subscriptions, vec![sub]);

        // The cursor never goes back.
        let up = |c| ConnectUpdate {
            cursor_at_least: Some(c),
            now_ms: 50,
            expires_at_ms: 200,
        };
        assert_eq!(
            store
                .record_connect(&id, up(9))
                .await
                .unwrap()
                .unwrap()
                .cursor,
            9
        );
        assert_eq!(
            store
                .record_connect(&id, up(3))
                .await
                .unwrap()
                .unwrap()
                .cursor,
            9
        );

        assert!(store.expired(150, 10).await.unwrap().is_empty());
        assert_eq!(store.expired(201, 10).await.unwrap(), vec![id.clone()]);
        assert!(store.remove_subscription(&id, &p).await.unwrap());
        let mut older = record("c0");
        older.expires_at_ms = 50;
        store.create(older).await.unwrap();
        let mut stranger = record("c9");
        stranger.principal_key = Arc::from("bob");
        store.create(stranger).await.unwrap();
        assert_eq!(
            store.sessions_of("alice").await.unwrap(),
            vec![(ClientId::from_string("c0"), 50), (id.clone(), 200)],
            "least recently active first, only alice's"
        );
        assert!(store.delete(&ClientId::from_string("c0")).await.unwrap());
        assert_eq!(store.sessions_of("alice").await.unwrap().len(), 1);
        assert!(store.sessions_of("nobody").await.unwrap().is_empty());
        assert!(store.delete(&id).await.unwrap());
        assert!(!store.delete(&id).await.unwrap());
        assert!(store.record_connect(&id, up(1)).await.unwrap().is_none());
        assert!(
            !store
                .add_subscription(
                    &id,
                    Subscription {
                        pattern: p,
                        since: 0
                    }
                )
                .await
                .unwrap()
        );
    }
}
