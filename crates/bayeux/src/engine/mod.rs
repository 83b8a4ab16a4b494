//! The protocol engine: handshake, connect, subscribe, publish, disconnect.
//!
//! Transport-independent: a transport hands it parsed messages with the
//! request's context and writes back the [`ReplyBuf`]s it returns.

mod waiters;

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::channel::{ChannelName, ChannelPattern};
use crate::config::{Config, ms};
use crate::error::{BayeuxError, LogError, PublishError, RequestError};
use crate::hooks::{
    Denial, HandshakeContext, Hooks, RequestContext, RequestPrincipal, ServiceContext,
};
use crate::log::{Audience, LogEntry, MessageLog, NewMessage, now_ms};
use crate::message::{
    Advice, BAYEUX_VERSION, Message, Parsed, Reconnect, Reply, ReplyBuf, meta, parse_messages,
};
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::session::{ClientId, ConnectUpdate, SessionRecord, SessionStore, Subscription};
use waiters::{Waiters, Wake};

/// Connection types this server offers, in the order it prefers them.
pub const SUPPORTED_CONNECTION_TYPES: [&str; 2] = ["websocket", "long-polling"];

/// Log entries read per page while scanning for a session.
const PAGE: usize = 256;

/// Expired sessions listed at once by the sweeper (it lists again until none is left).
const SWEEP_PAGE: usize = 1000;

/// Every message of a refused request answered with the refusal; `advice` for a transient one.
fn refuse_all(parsed: Vec<Parsed>, d: &Denial, transient: Advice) -> ReplyBuf {
    let e = BayeuxError::new(403, d.reason.clone());
    let advice = if d.transient {
        transient
    } else {
        Advice::none()
    };
    let mut out = ReplyBuf::new();
    for p in parsed {
        match p {
            Ok(m) => out.push_reply(&Reply::to(&m).failed(&e).with_advice(advice.clone())),
            Err(r) => out.push_reply(&r),
        }
    }
    out
}

/// How [`Server::shutdown`] treats sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownMode {
    /// Held connects return with `advice.reconnect = "retry"` and sessions
    /// stay in the store: with a shared store, the client's next connect is
    /// continued by another node, without losing anything (rolling restart).
    Handover,
    /// Held connects return with `advice.reconnect = "none"` and their
    /// sessions are deleted: clients stop.
    Close,
}

/// A Bayeux server: cheap to clone, share it between transports.
///
/// `H` decides authentication and authorization, `S` keeps sessions, `L` is
/// the message log.
pub struct Server<H, S, L>
where
    H: Hooks,
    S: SessionStore<Principal = H::Principal>,
    L: MessageLog,
{
    inner: Arc<Inner<H, S, L>>,
}

impl<H, S, L> Clone for Server<H, S, L>
where
    H: Hooks,
    S: SessionStore<Principal = H::Principal>,
    L: MessageLog,
{
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<H, S, L> {
    config: Config,
    hooks: H,
    store: S,
    log: L,
    waiters: Waiters,
    metrics: Metrics,
    shutdown: watch::Sender<Option<ShutdownMode>>,
    tasks: Mutex<Vec<AbortHandle>>,
    /// When this node last saw the session store fail (ms, 0: never). See
    /// [`Server::expiry_paused`].
    store_failed_at_ms: AtomicU64,
}

impl<H, S, L> Drop for Inner<H, S, L> {
    fn drop(&mut self) {
        for t in self
            .tasks
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            t.abort();
        }
    }
}

/// How a held connect ended.
enum End {
    /// Deliver what was found (possibly nothing after the timeout).
    Deliver,
    Superseded,
    Removed,
    /// Deleted by another node (found on a refresh): the client must
    /// handshake again, as for any unknown session.
    Gone,
    Shutdown(ShutdownMode),
}

/// Unregisters a held connect however the request ends (reply sent, client
/// gone and the future dropped, ...).
struct HeldGuard<'a> {
    waiters: &'a Waiters,
    metrics: &'a Metrics,
    client: ClientId,
    generation: u64,
}

impl Drop for HeldGuard<'_> {
    fn drop(&mut self) {
        self.waiters.unregister(&self.client, self.generation);
        self.metrics
            .connects_held
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

fn error_reply(msg: &Message, e: &BayeuxError) -> Reply {
    let r = Reply::to(msg).failed(e);
    if e.code == 402 {
        r.with_advice(Advice::handshake())
    } else {
        r
    }
}

fn store_error(e: impl std::fmt::Display) -> BayeuxError {
    tracing::warn!(error = %e, "bayeux session store failed");
    BayeuxError::new(500, "store_unavailable")
}

fn deliverable(entry: &LogEntry, client: &ClientId, key: &str, subs: &[Subscription]) -> bool {
    let subscribed = || {
        subs.iter()
            .any(|s| entry.seq > s.since && s.pattern.matches(&entry.channel))
    };
    match &entry.audience {
        Audience::Session(id) => id == client,
        Audience::Principal(p) => &**p == key && subscribed(),
        Audience::All => subscribed(),
    }
}

fn subscription_list(msg: &Message) -> Result<Vec<String>, BayeuxError> {
    let bad = || {
        BayeuxError::new(
            400,
            "subscription must be a channel or an array of channels",
        )
    };
    match &msg.subscription {
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(bad))
            .collect(),
        _ => Err(bad()),
    }
}

impl<H, S, L> Server<H, S, L>
where
    H: Hooks,
    S: SessionStore<Principal = H::Principal>,
    L: MessageLog,
{
    /// Builds the server and starts its background tasks (waking held
    /// connects when the log moves, expiring sessions). Must be called
    /// within a Tokio runtime; the tasks stop when the last clone is dropped.
    pub fn new(config: Config, hooks: H, store: S, log: L) -> Self {
        let (shutdown, _) = watch::channel(None);
        let inner = Arc::new(Inner {
            config,
            hooks,
            store,
            log,
            waiters: Waiters::default(),
            metrics: Metrics::default(),
            shutdown,
            tasks: Mutex::new(Vec::new()),
            store_failed_at_ms: AtomicU64::new(0),
        });
        let dispatcher = tokio::spawn(dispatch(Arc::downgrade(&inner), inner.log.head()));
        let sweeper = tokio::spawn(sweep(Arc::downgrade(&inner), inner.config.sweep_interval));
        inner
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend([dispatcher.abort_handle(), sweeper.abort_handle()]);
        Self { inner }
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The hooks.
    pub fn hooks(&self) -> &H {
        &self.inner.hooks
    }

    /// The session store.
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// The message log.
    pub fn log(&self) -> &L {
        &self.inner.log
    }

    /// Counters of this node.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.metrics.snapshot()
    }

    /// Sessions in the store (all nodes, if the store is shared).
    pub async fn active_sessions(&self) -> Result<usize, crate::StoreError> {
        self.inner.store.count().await
    }

    /// Publishes from the server side: appends to the log and returns the
    /// entry's seq. `/meta/**` is refused, and `/service/**` accepts only
    /// [`Audience::Session`] (service channels are never broadcast).
    pub async fn publish(
        &self,
        channel: &str,
        data: Value,
        audience: Audience,
    ) -> Result<u64, PublishError> {
        let channel = ChannelName::parse(channel)?;
        if channel.is_meta() || (channel.is_service() && !matches!(audience, Audience::Session(_)))
        {
            return Err(PublishError::NotBroadcastable(channel.to_string()));
        }
        let seq = self
            .inner
            .log
            .append(NewMessage {
                channel,
                data,
                audience,
            })
            .await?;
        self.inner
            .metrics
            .messages_published
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(seq)
    }

    /// Makes a connect held on this node for `id` re-read its session from
    /// the store now: its subscriptions (a subscribe or unsubscribe that
    /// landed on another node) or its deletion (a disconnect or expiry seen
    /// by another node). A cluster calls this when another node announces
    /// that the session changed, so the held connect delivers the new
    /// subscription's messages, or ends, at once instead of at its timeout.
    ///
    /// The held connect itself re-reads the session, after the read it made
    /// on arrival: an announcement that arrives while the connect is still
    /// reading cannot be overwritten by that older read. Returns whether a
    /// connect for `id` was held here (otherwise there is nothing to do: the
    /// next connect reads the session anyway).
    pub fn refresh_session(&self, id: &ClientId) -> bool {
        self.inner.waiters.refresh(id)
    }

    /// [`Server::refresh_session`] for every connect held on this node: when
    /// announcements may have been missed (e.g. the connection that carries
    /// them was re-established). Returns how many were held.
    pub fn refresh_all_sessions(&self) -> usize {
        self.inner.waiters.refresh_all()
    }

    /// The principal keys of the connects held on this node (for a server that checks, say,
    /// whether their credentials were revoked).
    pub fn held_principal_keys(&self) -> Vec<Arc<str>> {
        self.inner.waiters.principals()
    }

    /// Ends every session of a principal (on every node, with a shared store: they are deleted
    /// from it), for instance when its credentials were revoked. Their connects held here
    /// return at once, as for a removed session; elsewhere, the session's next message is
    /// refused. Returns how many were ended.
    pub async fn end_sessions_of(&self, principal_key: &str) -> Result<usize, crate::StoreError> {
        let sessions = self.inner.store.sessions_of(principal_key).await?;
        for (id, _) in &sessions {
            self.remove_session(id, Wake::Removed, false).await;
        }
        Ok(sessions.len())
    }

    /// Starts a graceful shutdown: every held connect returns now with the
    /// mode's advice, later connects and handshakes are answered the same
    /// way at once. Waits (up to 5 s) for the held connects to return.
    pub async fn shutdown(&self, mode: ShutdownMode) {
        self.inner.shutdown.send_replace(Some(mode));
        self.inner.waiters.wake_all(Wake::Shutdown);
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.metrics().connects_held > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Whether [`Server::shutdown`] was called, and how.
    pub fn shutdown_mode(&self) -> Option<ShutdownMode> {
        *self.inner.shutdown.borrow()
    }

    /// A watch that changes when shutdown starts (transports close sockets on it).
    pub fn shutdown_watch(&self) -> watch::Receiver<Option<ShutdownMode>> {
        self.inner.shutdown.subscribe()
    }

    /// Handles one long-polling request body: runs [`Hooks::check_request`],
    /// the messages in order, connects last, and returns the reply array.
    pub async fn handle_request(
        &self,
        ctx: &RequestContext<'_>,
        body: &[u8],
    ) -> Result<String, RequestError> {
        let parsed = parse_messages(body, self.inner.config.max_messages_per_request)?;
        let who = match Box::pin(self.admit(ctx)).await {
            Ok(who) => who,
            Err(d) => return Ok(refuse_all(parsed, &d, self.retry_advice()).to_json_array()),
        };
        // Boxed, like the branches of `handle_message`: only the held connects stay inline.
        let (mut out, connects) = Box::pin(self.handle_parsed(ctx, &who, parsed)).await;
        for c in connects {
            out.append(self.handle_message(ctx, &who, &c).await);
        }
        Ok(out.to_json_array())
    }

    /// What every transport request passes before its messages: [`Hooks::check_request`], then
    /// [`Hooks::identify`]. A WebSocket passes once, at its upgrade.
    pub async fn admit(&self, ctx: &RequestContext<'_>) -> Result<RequestPrincipal, Denial> {
        self.inner.hooks.check_request(ctx).await?;
        self.inner.hooks.identify(ctx).await
    }

    /// Handles everything but connects, which are returned to the caller
    /// (a WebSocket holds them concurrently with later frames).
    pub(crate) async fn handle_parsed(
        &self,
        ctx: &RequestContext<'_>,
        who: &RequestPrincipal,
        parsed: Vec<Parsed>,
    ) -> (ReplyBuf, Vec<Message>) {
        let mut out = ReplyBuf::new();
        let mut connects = Vec::new();
        for p in parsed {
            match p {
                Err(reply) => out.push_reply(&reply),
                Ok(m) if m.channel == meta::CONNECT => connects.push(m),
                Ok(m) => out.append(self.handle_message(ctx, who, &m).await),
            }
        }
        (out, connects)
    }

    /// Handles one message and returns what to send back: its reply, and
    /// for a connect the delivered messages before it. A connect may wait
    /// up to the configured timeout. `who` is what [`Server::admit`] said of the request that
    /// carried the message: every message but a handshake must name a session of that
    /// principal.
    pub async fn handle_message(
        &self,
        ctx: &RequestContext<'_>,
        who: &RequestPrincipal,
        msg: &Message,
    ) -> ReplyBuf {
        let mut out = ReplyBuf::new();
        // Every branch but the connect is boxed: a future is as large as the largest future it
        // awaits inline, and a held connect's future lives for the whole hold (see `connect`).
        match msg.channel.as_str() {
            meta::HANDSHAKE => out.push_reply(&Box::pin(self.handshake(ctx, who, msg)).await),
            meta::CONNECT => return self.connect(who, msg).await,
            meta::SUBSCRIBE => out.push_reply(&Box::pin(self.subscribe(who, msg, true)).await),
            meta::UNSUBSCRIBE => out.push_reply(&Box::pin(self.subscribe(who, msg, false)).await),
            meta::DISCONNECT => out.push_reply(&Box::pin(self.disconnect(who, msg)).await),
            c if c.starts_with("/meta/") => out.push_reply(&error_reply(
                msg,
                &BayeuxError::with_arg(400, c, "unknown meta channel"),
            )),
            _ => out.push_reply(&Box::pin(self.client_publish(who, msg)).await),
        }
        out
    }

    fn retry_advice(&self) -> Advice {
        Advice {
            reconnect: Reconnect::Retry,
            interval: Some(ms(self.inner.config.interval)),
            timeout: Some(ms(self.inner.config.timeout)),
        }
    }

    fn shutdown_advice(&self, mode: ShutdownMode) -> Advice {
        match mode {
            ShutdownMode::Close => Advice::none(),
            // Give the node time to go away before the client comes back.
            ShutdownMode::Handover => Advice {
                reconnect: Reconnect::Retry,
                interval: Some(ms(self.inner.config.interval).max(1000)),
                timeout: Some(ms(self.inner.config.timeout)),
            },
        }
    }

    async fn handshake(
        &self,
        ctx: &RequestContext<'_>,
        who: &RequestPrincipal,
        msg: &Message,
    ) -> Reply {
        let mut reply = Reply::to(msg);
        reply.client_id = None;
        reply.version = Some(BAYEUX_VERSION);
        reply.supported_connection_types = Some(SUPPORTED_CONNECTION_TYPES.to_vec());
        if let Some(mode) = self.shutdown_mode() {
            return reply
                .failed(&BayeuxError::new(503, "shutting_down"))
                .with_advice(self.shutdown_advice(mode));
        }
        if let Some(types) = &msg.supported_connection_types
            && !types
                .iter()
                .any(|t| SUPPORTED_CONNECTION_TYPES.contains(&t.as_str()))
        {
            return reply
                .failed(&BayeuxError::with_arg(
                    301,
                    SUPPORTED_CONNECTION_TYPES.join(","),
                    "connection types not supported",
                ))
                .with_advice(Advice::none());
        }
        let hs = HandshakeContext {
            request: *ctx,
            message: msg,
        };
        let principal = match self.inner.hooks.authenticate(&hs).await {
            Ok(p) => p,
            Err(d) => {
                let advice = if d.transient {
                    self.retry_advice()
                } else {
                    Advice::none()
                };
                return reply
                    .failed(&BayeuxError::new(403, d.reason))
                    .with_advice(advice);
            }
        };
        let principal_key = self.inner.hooks.principal_key(&principal);
        // A WebSocket carries one principal's sessions: the one its upgrade named.
        if let RequestPrincipal::Key(key) = who
            && *key != principal_key
        {
            return reply
                .failed(&BayeuxError::new(403, "credentials_mismatch"))
                .with_advice(Advice::none());
        }
        if let Err(e) = self.make_room_for(&principal_key).await {
            return reply.failed(&e).with_advice(self.retry_advice());
        }
        let client_id = match ClientId::random() {
            Ok(id) => id,
            Err(e) => {
                tracing::error!(error = %e, "no randomness for a clientId");
                return reply
                    .failed(&BayeuxError::new(500, "no_random"))
                    .with_advice(self.retry_advice());
            }
        };
        let ack = msg.ext_field("ack") == Some(&Value::Bool(true));
        let now = now_ms();
        let head = *self.inner.log.head().borrow();
        let record = SessionRecord {
            client_id: client_id.clone(),
            principal_key,
            principal,
            subscriptions: Vec::new(),
            ack,
            // A new session starts at the head: it gets what is published
            // from now on, not history.
            cursor: head,
            connected: false,
            last_connect_ms: 0,
            expires_at_ms: now.saturating_add(ms(self.inner.config.max_interval)),
        };
        if let Err(e) = self.inner.store.create(record).await {
            return reply
                .failed(&store_error(e))
                .with_advice(self.retry_advice());
        }
        self.inner
            .metrics
            .sessions_created
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::debug!(client_id = %client_id, transport = ctx.transport.name(), ack, "bayeux handshake");
        reply.client_id = Some(client_id.to_string());
        reply.advice = Some(self.retry_advice());
        if ack {
            reply.ext = Some(json!({ "ack": true }));
        }
        reply
    }

    /// Notes that the session store just failed (see [`Server::expiry_paused`]).
    fn store_failed(&self) {
        self.inner
            .store_failed_at_ms
            .store(now_ms(), std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether sessions must not be expired now: for `max_interval` after this
    /// node last saw the store fail. While a shared store is unreachable no
    /// client can connect, so no session's expiry moves; without this pause,
    /// every session whose expiry passed during an outage would be deleted the
    /// moment the store is back, before its client could reconnect, and its
    /// client would have to handshake again and miss what was published
    /// meanwhile. With it, clients get `max_interval` after the outage to come
    /// back, as they would after any reply.
    fn expiry_paused(&self, now: u64) -> bool {
        let failed = self
            .inner
            .store_failed_at_ms
            .load(std::sync::atomic::Ordering::Relaxed);
        failed != 0 && now < failed.saturating_add(ms(self.inner.config.max_interval))
    }

    /// Ends the least recently active sessions of `principal_key` until a new one fits under
    /// [`Config::max_sessions_per_principal`].
    async fn make_room_for(&self, principal_key: &str) -> Result<(), BayeuxError> {
        let max = self.inner.config.max_sessions_per_principal.max(1);
        let sessions = match self.inner.store.sessions_of(principal_key).await {
            Ok(sessions) => sessions,
            Err(e) => {
                self.store_failed();
                return Err(store_error(e));
            }
        };
        let excess = (sessions.len() + 1).saturating_sub(max);
        for (id, _) in sessions.into_iter().take(excess) {
            tracing::info!(client_id = %id, "ending a principal's least recently active session for a new one");
            self.inner
                .metrics
                .sessions_evicted
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.remove_session(&id, Wake::Removed, false).await;
        }
        Ok(())
    }

    /// Loads the session a message names, if the request may use it; 402 if unknown, expired,
    /// or another principal's (which is then left exactly as it was).
    async fn session(
        &self,
        who: &RequestPrincipal,
        msg: &Message,
    ) -> Result<SessionRecord<H::Principal>, BayeuxError> {
        let id = ClientId::from_string(
            msg.client_id
                .as_deref()
                .ok_or_else(BayeuxError::session_unknown)?,
        );
        let session = match self.inner.store.load(&id).await {
            Ok(found) => found.ok_or_else(BayeuxError::session_unknown)?,
            Err(e) => {
                self.store_failed();
                return Err(store_error(e));
            }
        };
        // Before anything else, even the expiry: a request must not touch another's session.
        let allowed = match who {
            RequestPrincipal::Unchecked => true,
            RequestPrincipal::Anonymous => false,
            RequestPrincipal::Key(key) => *key == session.principal_key,
        };
        if !allowed {
            self.inner
                .metrics
                .foreign_session_refusals
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Err(BayeuxError::session_unknown());
        }
        let now = now_ms();
        if session.expires_at_ms < now && !self.expiry_paused(now) {
            // The sweeper may not have run yet; an expired session is gone.
            self.remove_session(&id, Wake::Removed, true).await;
            return Err(BayeuxError::session_unknown());
        }
        Ok(session)
    }

    async fn remove_session(&self, id: &ClientId, why: Wake, expired: bool) {
        match self.inner.store.delete(id).await {
            Ok(true) => {
                let m = &self.inner.metrics;
                m.sessions_removed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if expired {
                    m.sessions_expired
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, client_id = %id, "could not delete session"),
        }
        self.inner.waiters.wake_client(id, why);
    }

    async fn subscribe(&self, who: &RequestPrincipal, msg: &Message, add: bool) -> Reply {
        let session = match self.session(who, msg).await {
            Ok(s) => s,
            Err(e) => return error_reply(msg, &e),
        };
        let raw = match subscription_list(msg) {
            Ok(r) => r,
            Err(e) => return error_reply(msg, &e),
        };
        // Validate and authorize everything first: a request is applied
        // entirely or not at all.
        let mut patterns = Vec::with_capacity(raw.len());
        for r in &raw {
            let pattern = match ChannelPattern::parse(r) {
                Ok(p) => p,
                Err(_) => {
                    return error_reply(msg, &BayeuxError::with_arg(400, r, "invalid_channel"));
                }
            };
            if add {
                if pattern.is_meta() {
                    return error_reply(msg, &BayeuxError::with_arg(403, r, "meta_channel"));
                }
                if let Err(d) = self
                    .inner
                    .hooks
                    .can_subscribe(&session.principal, &pattern)
                    .await
                {
                    return error_reply(msg, &BayeuxError::with_arg(403, r, d.reason));
                }
            }
            patterns.push(pattern);
        }
        if add {
            let mut after: Vec<&ChannelPattern> =
                session.subscriptions.iter().map(|s| &s.pattern).collect();
            for pattern in &patterns {
                if !after.contains(&pattern) {
                    after.push(pattern);
                }
            }
            if after.len() > self.inner.config.max_subscriptions_per_session {
                let channel = raw.first().map_or("", String::as_str);
                return error_reply(
                    msg,
                    &BayeuxError::with_arg(403, channel, "too_many_subscriptions"),
                );
            }
        }
        let head = *self.inner.log.head().borrow();
        let id = &session.client_id;
        for pattern in patterns {
            let result = if add {
                let sub = Subscription {
                    pattern,
                    since: head,
                };
                let r = self.inner.store.add_subscription(id, sub.clone()).await;
                self.inner.waiters.add_subscription(id, sub);
                r
            } else {
                let r = self.inner.store.remove_subscription(id, &pattern).await;
                self.inner.waiters.remove_subscription(id, &pattern);
                r
            };
            match result {
                Ok(true) => {}
                Ok(false) => return error_reply(msg, &BayeuxError::session_unknown()),
                Err(e) => return error_reply(msg, &store_error(e)),
            }
        }
        let mut reply = Reply::to(msg);
        reply.subscription = msg.subscription.clone();
        reply
    }

    async fn disconnect(&self, who: &RequestPrincipal, msg: &Message) -> Reply {
        let session = match self.session(who, msg).await {
            Ok(s) => s,
            Err(e) => return error_reply(msg, &e),
        };
        self.remove_session(&session.client_id, Wake::Removed, false)
            .await;
        Reply::to(msg)
    }

    async fn client_publish(&self, who: &RequestPrincipal, msg: &Message) -> Reply {
        let channel = match ChannelName::parse(&msg.channel) {
            Ok(c) => c,
            Err(_) => {
                return error_reply(
                    msg,
                    &BayeuxError::with_arg(400, &msg.channel, "invalid_channel"),
                );
            }
        };
        let session = match self.session(who, msg).await {
            Ok(s) => s,
            Err(e) => return error_reply(msg, &e),
        };
        let audience_and_data = if channel.is_service() {
            let ctx = ServiceContext {
                client_id: &session.client_id,
                principal: &session.principal,
                channel: &channel,
                message: msg,
            };
            match self.inner.hooks.on_service_message(ctx).await {
                Ok(Some(data)) => Some((Audience::Session(session.client_id.clone()), data)),
                Ok(None) => None,
                Err(d) => {
                    return error_reply(msg, &BayeuxError::with_arg(403, &msg.channel, d.reason));
                }
            }
        } else {
            let Some(data) = msg.data.clone() else {
                return error_reply(msg, &BayeuxError::with_arg(400, &msg.channel, "no_data"));
            };
            if let Err(d) = self
                .inner
                .hooks
                .can_publish(&session.principal, &channel, &data)
                .await
            {
                return error_reply(msg, &BayeuxError::with_arg(403, &msg.channel, d.reason));
            }
            Some((Audience::All, data))
        };
        if let Some((audience, data)) = audience_and_data
            && let Err(e) = self.publish(channel.as_str(), data, audience).await
        {
            tracing::warn!(error = %e, "client publish failed");
            return error_reply(
                msg,
                &BayeuxError::with_arg(500, &msg.channel, "publish_failed"),
            );
        }
        // A publish acknowledgement carries no `data`: that is how clients
        // tell it from a delivered message.
        let mut reply = Reply::to(msg);
        reply.client_id = None;
        reply
    }

    /// Scans the log after `scanned` for entries this session may receive,
    /// appending them to `found`. Returns the new scan position: every
    /// deliverable entry up to it is in `found` (the batch id of the reply).
    async fn scan(
        &self,
        client: &ClientId,
        key: &str,
        subs: &[Subscription],
        mut scanned: u64,
        found: &mut Vec<Arc<LogEntry>>,
    ) -> Result<u64, LogError> {
        let max = self.inner.config.max_messages_per_reply.max(1);
        loop {
            let page = self.inner.log.read_after(scanned, PAGE).await?;
            let n = page.len();
            for entry in page {
                scanned = entry.seq;
                if deliverable(&entry, client, key, subs) {
                    found.push(entry);
                    if found.len() >= max {
                        return Ok(scanned);
                    }
                }
            }
            if n < PAGE {
                return Ok(scanned);
            }
        }
    }

    /// A connect. Its future lives as long as the connect is held (a whole `timeout` for every
    /// idle session), and a future is as large as the largest future it awaits inline: the
    /// store and log calls are boxed so that a held connect keeps only what it waits with.
    /// With the GWS hooks and session store, a held WebSocket connect's task went from 3,472
    /// to 2,032 bytes, and each socket's own task from 5,088 to 832 (see `crate::axum`).
    async fn connect(&self, who: &RequestPrincipal, msg: &Message) -> ReplyBuf {
        let mut out = ReplyBuf::new();
        // The session is checked against the request before the connect is registered: a
        // foreign connect must not supersede the owner's held one.
        let session = match Box::pin(self.session(who, msg)).await {
            Ok(s) => s,
            Err(e) => {
                out.push_reply(&error_reply(msg, &e));
                return out;
            }
        };
        let id = session.client_id.clone();
        let mut reply = Reply::to(msg);
        if let Some(mode) = self.shutdown_mode() {
            if mode == ShutdownMode::Close {
                Box::pin(self.remove_session(&id, Wake::Shutdown, false)).await;
            }
            out.push_reply(&reply.with_advice(self.shutdown_advice(mode)));
            return out;
        }

        let cfg = &self.inner.config;
        let head = *self.inner.log.head().borrow();
        // With the ack extension the client tells which batch (= highest
        // seq) it received; that is what the cursor becomes. Clamped to the
        // head: acknowledging the future would only skip messages.
        let acked = if session.ack {
            msg.ext_field("ack")
                .and_then(Value::as_u64)
                .map(|n| n.min(head))
        } else {
            None
        };
        // The first connect after a handshake is answered at once; later
        // ones are held for the configured timeout, or less if the client asks.
        let hold_ms = if session.connected {
            msg.advice_timeout_ms()
                .map_or(ms(cfg.timeout), |t| t.min(ms(cfg.timeout)))
        } else {
            0
        };
        let now = now_ms();
        let arrival = ConnectUpdate {
            cursor_at_least: acked,
            now_ms: now,
            // Not expiring while held: the expiry counts from the reply.
            expires_at_ms: now
                .saturating_add(hold_ms)
                .saturating_add(ms(cfg.max_interval)),
        };
        // One outstanding connect per client: registering wakes the
        // previous one (superseded), and the per-client turn makes this one
        // wait until the previous one has finished, so it reads the cursor
        // the previous one left and the two never deliver the same entries.
        let turn = self.inner.waiters.connect_turn(&id);
        let registration = self.inner.waiters.register(
            &id,
            session.principal_key.clone(),
            session.subscriptions.clone(),
        );
        self.inner
            .metrics
            .connects_held
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let _guard = HeldGuard {
            waiters: &self.inner.waiters,
            metrics: &self.inner.metrics,
            client: id.clone(),
            generation: registration.generation,
        };
        let _turn = turn.lock().await;

        let session = match Box::pin(self.inner.store.record_connect(&id, arrival)).await {
            Ok(Some(s)) => s,
            Ok(None) => {
                out.push_reply(&error_reply(msg, &BayeuxError::session_unknown()));
                return out;
            }
            Err(e) => {
                self.store_failed();
                out.push_reply(&error_reply(msg, &store_error(e)).with_advice(self.retry_advice()));
                return out;
            }
        };
        // Subscriptions may have changed while waiting for the turn.
        self.inner
            .waiters
            .set_subscriptions(&id, session.subscriptions.clone(), false);
        let deadline = Instant::now() + Duration::from_millis(hold_ms);
        let mut scanned = session.cursor;
        let mut found = Vec::new();
        let end = loop {
            // Subscriptions are re-read each round: a subscribe may arrive
            // while the connect is held.
            let subs = self.inner.waiters.subscriptions(&id);
            match Box::pin(self.scan(&id, &session.principal_key, &subs, scanned, &mut found)).await
            {
                Ok(s) => scanned = s,
                Err(LogError::Truncated { after, oldest }) => {
                    tracing::info!(client_id = %id, after, oldest, "session fell behind the log");
                    self.inner
                        .metrics
                        .sessions_lost_messages
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    Box::pin(self.remove_session(&id, Wake::Removed, false)).await;
                    out.push_reply(&error_reply(msg, &BayeuxError::new(402, "messages_lost")));
                    return out;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "bayeux log read failed");
                    out.push_reply(
                        &error_reply(msg, &BayeuxError::new(500, "log_unavailable"))
                            .with_advice(self.retry_advice()),
                    );
                    return out;
                }
            }
            if !found.is_empty() || hold_ms == 0 {
                break End::Deliver;
            }
            tokio::select! {
                () = registration.signal.notified() => match registration.signal.reason() {
                    Wake::Data if registration.signal.take_refresh() => {
                        match Box::pin(self.inner.store.load(&id)).await {
                            Ok(Some(s)) => {
                                self.inner.waiters.set_subscriptions(&id, s.subscriptions, false);
                                continue;
                            }
                            Ok(None) => break End::Gone,
                            // Keep the subscriptions known so far; the next connect reads
                            // the session again.
                            Err(e) => {
                                tracing::warn!(error = %e, client_id = %id, "could not refresh a held session");
                                continue;
                            }
                        }
                    }
                    Wake::Data => continue,
                    Wake::Superseded => break End::Superseded,
                    Wake::Removed => break End::Removed,
                    Wake::Shutdown => break End::Shutdown(self.shutdown_mode().unwrap_or(ShutdownMode::Handover)),
                },
                () = tokio::time::sleep_until(deadline) => break End::Deliver,
            }
        };

        // Superseded after finding something: leave it to the newer connect,
        // which reads from the same cursor once this one has returned.
        let end = match end {
            End::Deliver if registration.signal.reason() == Wake::Superseded => End::Superseded,
            other => other,
        };
        match end {
            End::Deliver => {}
            End::Superseded => {
                // Nothing is delivered on a superseded connect: the newer one
                // reads from the same cursor, so nothing is lost or doubled.
                out.push_reply(&reply.with_advice(self.retry_advice()));
                return out;
            }
            End::Removed => {
                out.push_reply(
                    &reply
                        .failed(&BayeuxError::session_unknown())
                        .with_advice(Advice::none()),
                );
                return out;
            }
            End::Gone => {
                out.push_reply(&error_reply(msg, &BayeuxError::session_unknown()));
                return out;
            }
            End::Shutdown(mode) => {
                if mode == ShutdownMode::Close {
                    Box::pin(self.remove_session(&id, Wake::Shutdown, false)).await;
                }
                out.push_reply(&reply.with_advice(self.shutdown_advice(mode)));
                return out;
            }
        }

        let now = now_ms();
        let done = ConnectUpdate {
            // Without the ack extension, what is handed to the transport
            // counts as delivered. With it, only the client's next ack moves
            // the cursor, so whatever this reply carries is sent again if
            // the reply is lost.
            cursor_at_least: (!session.ack).then_some(scanned),
            now_ms: now,
            expires_at_ms: now.saturating_add(ms(cfg.max_interval)),
        };
        match Box::pin(self.inner.store.record_connect(&id, done)).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                out.push_reply(&error_reply(msg, &BayeuxError::session_unknown()));
                return out;
            }
            Err(e) => {
                self.store_failed();
                out.push_reply(&error_reply(msg, &store_error(e)).with_advice(self.retry_advice()));
                return out;
            }
        }
        if !found.is_empty() {
            let (mut sum, mut max) = (0u64, 0u64);
            for e in &found {
                let lag = now.saturating_sub(e.appended_at_ms);
                sum = sum.saturating_add(lag);
                max = max.max(lag);
                out.push_encoded(e.encoded().clone());
            }
            self.inner.metrics.delivered(found.len() as u64, sum, max);
        }
        if session.ack {
            reply.ext = Some(json!({ "ack": scanned }));
        }
        out.push_reply(&reply.with_advice(self.retry_advice()));
        out
    }

    /// Deletes every session expired at `now`, page after page until none is left: a flood
    /// of sessions must not outlive its expiry because one look handles only so many. Returns
    /// how many were deleted.
    async fn expire_sessions(&self, now: u64) -> usize {
        let mut deleted = 0;
        loop {
            match self.inner.store.expired(now, SWEEP_PAGE).await {
                Ok(ids) => {
                    let full = ids.len() == SWEEP_PAGE;
                    for id in ids {
                        tracing::debug!(client_id = %id, "bayeux session expired");
                        self.remove_session(&id, Wake::Removed, true).await;
                        deleted += 1;
                    }
                    if !full {
                        return deleted;
                    }
                    // Let requests run between pages.
                    tokio::task::yield_now().await;
                }
                Err(e) => {
                    self.store_failed();
                    tracing::warn!(error = %e, "bayeux sweeper could not list sessions");
                    return deleted;
                }
            }
        }
    }

    #[cfg(test)]
    pub(crate) async fn expire_sessions_now(&self, now: u64) -> usize {
        self.expire_sessions(now).await
    }

    #[cfg(test)]
    pub(crate) fn held_connects(&self) -> usize {
        self.inner.waiters.len()
    }
}

/// Wakes held connects when the log head moves. One reader per node: the
/// entries are read once here, and only the matching sessions are woken.
async fn dispatch<H, S, L>(inner: Weak<Inner<H, S, L>>, mut head: watch::Receiver<u64>)
where
    H: Hooks,
    S: SessionStore<Principal = H::Principal>,
    L: MessageLog,
{
    let mut dispatched = *head.borrow_and_update();
    while head.changed().await.is_ok() {
        let Some(inner) = inner.upgrade() else { return };
        let target = *head.borrow_and_update();
        while dispatched < target {
            match inner.log.read_after(dispatched, 1024).await {
                Ok(entries) if entries.is_empty() => break,
                Ok(entries) => {
                    for e in &entries {
                        inner.waiters.wake_for(e);
                        dispatched = e.seq;
                    }
                }
                Err(e) => {
                    // Fell behind the retention (or the log failed): wake
                    // everyone, each connect finds out for itself.
                    tracing::warn!(error = %e, "bayeux dispatcher could not read the log");
                    inner.waiters.wake_all(Wake::Data);
                    dispatched = target;
                }
            }
        }
    }
}

/// Deletes expired sessions.
async fn sweep<H, S, L>(inner: Weak<Inner<H, S, L>>, every: Duration)
where
    H: Hooks,
    S: SessionStore<Principal = H::Principal>,
    L: MessageLog,
{
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let server = Server { inner };
        let now = now_ms();
        if server.expiry_paused(now) {
            continue;
        }
        server.inner.waiters.prune_turns();
        server.expire_sessions(now).await;
    }
}

#[cfg(test)]
mod tests;
