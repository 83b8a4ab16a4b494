//! CometD at `/api/v2/notifications`: the `bayeux` server with GWS's rules.
//!
//! * **Handshake authentication** (on the handshake request; for WebSocket, on the upgrade
//!   request): HTTP Basic credentials, or the `JSESSIONID` session cookie, exactly as REST
//!   authenticates ([`crate::auth`]). The session is bound to that user: its principal key is
//!   the user id, and every notification is addressed to one user id.
//! * **Every request is its user's** ([`GwsHooks::identify`]): each long-polling POST's own
//!   credentials (Basic, else the cookie) name a user, and every message but a handshake must
//!   name a session of that user; a WebSocket's upgrade names the user of every session it
//!   carries. A clientId sent by anyone else (another agent, or a request without credentials)
//!   is answered `402::unknown client` and the session is left exactly as it was: the clientId
//!   is not a bearer credential. Sessions of a user whose credentials are revoked end
//!   ([`spawn_revocation_watcher`]).
//! * **Origin**: a WebSocket upgrade that relies on the session cookie must come from this
//!   server's own origin (or send no `Origin`, as non-browser clients do): a page elsewhere on
//!   the same site cannot ride the cookie.
//! * **Caps** (`--cometd-max-subscriptions`, `--cometd-max-sessions-per-user`): a session's
//!   subscriptions are capped, and a user's handshake beyond the session cap ends that user's
//!   least recently active session.
//! * **CSRF** (when on): a handshake authenticated by the session cookie (no `Authorization`
//!   header) must carry the session's CSRF token, in the `X-CSRF-TOKEN` header or, for browser
//!   WebSockets that cannot send headers, as `ext["X-CSRF-TOKEN"]` of the handshake message.
//!   A long-polling request that carries the cookie must carry the header too (GWS clients send
//!   it on every CometD request); a WebSocket upgrade that sends the header must send the right
//!   one. Basic credentials are not ambient (Confer never asks a browser for them), so a
//!   handshake authenticated by them needs no token.
//! * **Channels**: a client may subscribe to `/v2/me/...` (exact or wildcard), `/v2/**` and
//!   `/**`; every notification on them is addressed to one user, so a client only ever receives
//!   its own user's. Clients may not publish at all (so not to `/v2/**`), and there is no
//!   `/service` channel.
//! * **Sessions** ([`GwsSessions`]): on PostgreSQL (`--database-url`) they live in the store
//!   ([`SharedSessions`], tables `cometd_sessions` / `cometd_subscriptions`), so a client whose
//!   next `/meta/connect` lands on another node (a load balancer that is not sticky, a node that
//!   died) continues its session there: its cursor (the ack batch id) means the same on every
//!   node, because every node numbers the feed the same way ([`crate::feed`]). On the embedded
//!   SQLite store there is one node per file, so sessions stay in memory: sharing them would
//!   buy nothing and would put two fsynced writes per `/meta/connect` on the single writer
//!   that commits removals.
//! * **Cross-node changes**: a subscribe, unsubscribe or disconnect may land on another node
//!   than the one holding the session's `/meta/connect` (a load balancer that is not sticky;
//!   the official client sends its subscribe while its connect is held). The store announces
//!   each such change (PostgreSQL `NOTIFY`), and [`spawn_session_refresher`] makes the node
//!   holding the connect re-read the session at once (`bayeux::Server::refresh_session`).
//! * **Metrics**: a sampler copies the node's CometD subscribers into the app's subscriber gauge
//!   and each delivered message's lag (commit to delivery) into the delivery-lag histogram. On
//!   the embedded store the subscribers are the node's sessions. On a shared store every node
//!   sees every node's sessions, so there a node counts the `/meta/connect`s it holds: a session
//!   counts on the node serving its current connect, summing the nodes' gauges gives the
//!   cluster's subscribers, and no node counts rows in the database to know it.

use std::{sync::Arc, time::Duration};

use axum::http::header;
use bayeux::{
    ChannelPattern, ClientId, Config, ConnectUpdate, Denial, HandshakeContext, Hooks,
    InMemorySessionStore, RequestContext, RequestPrincipal, Server, SessionRecord, SessionStore,
    Subscription, Transport,
};
use confer_app::App;
use confer_core::Actor;
use confer_store::{
    CometdConnect, CometdSessionChange, CometdSessionRecord, CometdSubscription, Store,
};
use serde_json::Value;
use tokio::{
    sync::{broadcast::error::RecvError, watch},
    task::JoinHandle,
};

use crate::{
    auth::{self, CSRF_TOKEN_HEADER, SESSION_COOKIE},
    error::GwsError,
    feed::Feed,
};

/// Where CometD is served.
pub const NOTIFICATIONS_PATH: &str = "/api/v2/notifications";

/// The GWS CometD server.
pub type GwsCometd = Server<GwsHooks, GwsSessions, Feed>;

/// GWS's authentication and channel rules for the bayeux engine.
pub struct GwsHooks {
    app: Arc<App>,
}

impl GwsHooks {
    pub fn new(app: Arc<App>) -> Self {
        Self { app }
    }
}

fn denial(error: &GwsError) -> Denial {
    match error {
        GwsError::NotAuthenticated => Denial::new("access_denied"),
        GwsError::Csrf => Denial::new("invalid_csrf_token"),
        GwsError::Unavailable(_) => Denial::transient("unavailable"),
        GwsError::Throttled { .. } => Denial::transient("too_many_failed_sign_ins"),
        GwsError::Busy { .. } => Denial::transient("busy"),
        _ => Denial::new("internal_error"),
    }
}

/// Whether a request's `Origin` is this server's own: its public URL's, or the origin of the
/// `Host` the request was sent to.
fn same_origin(app: &App, headers: &axum::http::HeaderMap, origin: &header::HeaderValue) -> bool {
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim_end_matches('/');
    if origin.eq_ignore_ascii_case(app.public_url().trim_end_matches('/')) {
        return true;
    }
    let authority = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
}

/// Whether `pattern` is one a GWS client may subscribe to.
pub fn subscribable(pattern: &str) -> bool {
    pattern.starts_with("/v2/me/") || pattern == "/v2/**" || pattern == "/**"
}

impl Hooks for GwsHooks {
    type Principal = Actor;

    async fn authenticate(&self, ctx: &HandshakeContext<'_>) -> Result<Actor, Denial> {
        let headers = ctx.request.headers;
        let authenticated = auth::authenticate(&self.app, headers)
            .await
            .map_err(|e| denial(&e))?;
        let by_cookie = !headers.contains_key(header::AUTHORIZATION);
        if self.app.config.csrf && by_cookie {
            let token = auth::csrf_header(headers).or_else(|| {
                ctx.message
                    .ext_field(CSRF_TOKEN_HEADER)
                    .and_then(Value::as_str)
            });
            if !auth::csrf_ok(&self.app, &authenticated, token) {
                return Err(denial(&GwsError::Csrf));
            }
        }
        Ok(authenticated.actor)
    }

    fn principal_key(&self, principal: &Actor) -> Arc<str> {
        Arc::from(principal.user_id.as_str())
    }

    async fn check_request(&self, ctx: &RequestContext<'_>) -> Result<(), Denial> {
        if ctx.headers.contains_key(header::AUTHORIZATION) {
            return Ok(());
        }
        // A browser sends the cookie with a WebSocket upgrade from any page of the same site,
        // and its Origin, which a page cannot forge: a cookie rides only on the server's own
        // origin's sockets (cross-site WebSocket hijacking). Non-browser clients send no Origin.
        if ctx.transport == Transport::WebSocket
            && auth::cookie(ctx.headers, SESSION_COOKIE).is_some()
            && let Some(origin) = ctx.headers.get(header::ORIGIN)
            && !same_origin(&self.app, ctx.headers, origin)
        {
            return Err(Denial::new("cross_origin_websocket"));
        }
        if !self.app.config.csrf {
            return Ok(());
        }
        // Only a genuine session is worth protecting: a forged or expired cookie
        // authenticates nothing, and the handshake refuses it as such.
        let now = confer_app::engine::now().millis() / 1000;
        let Some(session) = auth::cookie(ctx.headers, SESSION_COOKIE).filter(|token| {
            self.app
                .auth
                .signing_key()
                .verify_session(token, now)
                .is_some()
        }) else {
            return Ok(());
        };
        let token = auth::csrf_header(ctx.headers);
        let valid = token.is_some_and(|t| self.app.auth.signing_key().verify_csrf(session, t));
        match (ctx.transport, token) {
            (_, Some(_)) if valid => Ok(()),
            // A browser WebSocket cannot send the header: the handshake checks the token.
            (Transport::WebSocket, None) => Ok(()),
            _ => Err(denial(&GwsError::Csrf)),
        }
    }

    /// The request's own credentials, exactly as REST reads them (Basic first, else the
    /// session cookie): a session is usable only by requests that name its user. Credentials
    /// that do not verify name nobody; a store outage or a busy verifier refuses the request
    /// rather than guess.
    async fn identify(&self, ctx: &RequestContext<'_>) -> Result<RequestPrincipal, Denial> {
        let headers = ctx.headers;
        let verified = if let Some(authorization) = headers.get(header::AUTHORIZATION) {
            match authorization.to_str() {
                Ok(value) => self.app.auth.verify_basic(value).await,
                Err(_) => return Ok(RequestPrincipal::Anonymous),
            }
        } else if let Some(token) = auth::cookie(headers, SESSION_COOKIE) {
            self.app.auth.verify_session(token).await
        } else {
            return Ok(RequestPrincipal::Anonymous);
        };
        match verified.map_err(GwsError::from) {
            Ok(actor) => Ok(RequestPrincipal::Key(self.principal_key(&actor))),
            Err(GwsError::NotAuthenticated) => Ok(RequestPrincipal::Anonymous),
            Err(e) => Err(denial(&e)),
        }
    }

    async fn can_subscribe(
        &self,
        _principal: &Actor,
        pattern: &ChannelPattern,
    ) -> Result<(), Denial> {
        if subscribable(pattern.as_str()) {
            Ok(())
        } else {
            Err(Denial::new("forbidden_channel"))
        }
    }

    async fn can_publish(
        &self,
        _principal: &Actor,
        _channel: &bayeux::ChannelName,
        _data: &Value,
    ) -> Result<(), Denial> {
        Err(Denial::new("publish_denied"))
    }
}

/// The CometD server of one node: the notification feed as its log; sessions in the shared
/// store on PostgreSQL, in memory on SQLite (see the module docs).
pub fn server(app: Arc<App>, feed: Feed) -> GwsCometd {
    let sessions = if app.config.database_url.is_some() {
        GwsSessions::Shared(SharedSessions::new(app.store.clone()))
    } else {
        GwsSessions::Local(InMemorySessionStore::new())
    };
    let limits = app.config.notifications;
    let config = Config {
        max_subscriptions_per_session: limits.max_subscriptions_per_session,
        max_sessions_per_principal: limits.max_sessions_per_user,
        ..Config::default()
    };
    Server::new(config, GwsHooks::new(app), sessions, feed)
}

/// Where this node keeps CometD sessions.
pub enum GwsSessions {
    /// In this process: one node (the embedded SQLite store).
    Local(InMemorySessionStore<Actor>),
    /// In the shared store: any node continues any session.
    Shared(SharedSessions),
}

impl SessionStore for GwsSessions {
    type Principal = Actor;

    async fn create(&self, session: SessionRecord<Actor>) -> Result<(), bayeux::StoreError> {
        match self {
            Self::Local(s) => s.create(session).await,
            Self::Shared(s) => s.create(session).await,
        }
    }

    async fn load(
        &self,
        id: &ClientId,
    ) -> Result<Option<SessionRecord<Actor>>, bayeux::StoreError> {
        match self {
            Self::Local(s) => s.load(id).await,
            Self::Shared(s) => s.load(id).await,
        }
    }

    async fn add_subscription(
        &self,
        id: &ClientId,
        sub: Subscription,
    ) -> Result<bool, bayeux::StoreError> {
        match self {
            Self::Local(s) => s.add_subscription(id, sub).await,
            Self::Shared(s) => s.add_subscription(id, sub).await,
        }
    }

    async fn remove_subscription(
        &self,
        id: &ClientId,
        pattern: &ChannelPattern,
    ) -> Result<bool, bayeux::StoreError> {
        match self {
            Self::Local(s) => s.remove_subscription(id, pattern).await,
            Self::Shared(s) => s.remove_subscription(id, pattern).await,
        }
    }

    async fn record_connect(
        &self,
        id: &ClientId,
        update: ConnectUpdate,
    ) -> Result<Option<SessionRecord<Actor>>, bayeux::StoreError> {
        match self {
            Self::Local(s) => s.record_connect(id, update).await,
            Self::Shared(s) => s.record_connect(id, update).await,
        }
    }

    async fn delete(&self, id: &ClientId) -> Result<bool, bayeux::StoreError> {
        match self {
            Self::Local(s) => s.delete(id).await,
            Self::Shared(s) => s.delete(id).await,
        }
    }

    async fn expired(
        &self,
        now_ms: u64,
        limit: usize,
    ) -> Result<Vec<ClientId>, bayeux::StoreError> {
        match self {
            Self::Local(s) => s.expired(now_ms, limit).await,
            Self::Shared(s) => s.expired(now_ms, limit).await,
        }
    }

    async fn count(&self) -> Result<usize, bayeux::StoreError> {
        match self {
            Self::Local(s) => s.count().await,
            Self::Shared(s) => s.count().await,
        }
    }

    async fn sessions_of(
        &self,
        principal_key: &str,
    ) -> Result<Vec<(ClientId, u64)>, bayeux::StoreError> {
        match self {
            Self::Local(s) => s.sessions_of(principal_key).await,
            Self::Shared(s) => s.sessions_of(principal_key).await,
        }
    }
}

/// CometD sessions in the Confer store, shared by every node on the same database. Each bayeux
/// operation is one narrow store operation (see [`confer_store::Store::record_cometd_connect`]),
/// so a subscribe on one node and a held connect on another never undo each other, and the
/// cursor only goes up.
pub struct SharedSessions {
    store: Arc<dyn Store>,
}

impl SharedSessions {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }
}

fn unavailable(error: &confer_store::StoreError) -> bayeux::StoreError {
    bayeux::StoreError::Unavailable(error.to_string())
}

/// A stored session that does not read back as a bayeux session: the store holds something
/// this binary did not write. Reported as unavailable (bayeux has no "corrupt" kind), so the
/// client is told to retry rather than handed a half-read session.
fn corrupt(client_id: &str, what: impl std::fmt::Display) -> bayeux::StoreError {
    tracing::error!(client_id, %what, "a stored CometD session does not read back");
    bayeux::StoreError::Unavailable(format!("stored CometD session {client_id}: {what}"))
}

fn to_stored(session: SessionRecord<Actor>) -> Result<CometdSessionRecord, bayeux::StoreError> {
    let principal = serde_json::to_value(&session.principal)
        .map_err(|e| corrupt(session.client_id.as_str(), e))?;
    Ok(CometdSessionRecord {
        client_id: session.client_id.to_string(),
        principal,
        principal_key: session.principal_key.to_string(),
        subscriptions: session
            .subscriptions
            .into_iter()
            .map(|s| CometdSubscription {
                pattern: s.pattern.as_str().to_owned(),
                since: s.since,
            })
            .collect(),
        ack: session.ack,
        cursor: session.cursor,
        connected: session.connected,
        last_connect_ms: session.last_connect_ms,
        expires_at_ms: session.expires_at_ms,
    })
}

fn from_stored(stored: CometdSessionRecord) -> Result<SessionRecord<Actor>, bayeux::StoreError> {
    let id = stored.client_id.as_str();
    let principal: Actor = serde_json::from_value(stored.principal).map_err(|e| corrupt(id, e))?;
    let subscriptions = stored
        .subscriptions
        .into_iter()
        .map(|s| {
            ChannelPattern::parse(&s.pattern)
                .map(|pattern| Subscription {
                    pattern,
                    since: s.since,
                })
                .map_err(|e| corrupt(id, e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SessionRecord {
        client_id: ClientId::from_string(id),
        principal,
        principal_key: Arc::from(stored.principal_key),
        subscriptions,
        ack: stored.ack,
        cursor: stored.cursor,
        connected: stored.connected,
        last_connect_ms: stored.last_connect_ms,
        expires_at_ms: stored.expires_at_ms,
    })
}

impl SessionStore for SharedSessions {
    type Principal = Actor;

    async fn create(&self, session: SessionRecord<Actor>) -> Result<(), bayeux::StoreError> {
        let id = session.client_id.to_string();
        match self.store.create_cometd_session(to_stored(session)?).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(bayeux::StoreError::Duplicate(id)),
            Err(e) => Err(unavailable(&e)),
        }
    }

    async fn load(
        &self,
        id: &ClientId,
    ) -> Result<Option<SessionRecord<Actor>>, bayeux::StoreError> {
        self.store
            .load_cometd_session(id.as_str())
            .await
            .map_err(|e| unavailable(&e))?
            .map(from_stored)
            .transpose()
    }

    async fn add_subscription(
        &self,
        id: &ClientId,
        sub: Subscription,
    ) -> Result<bool, bayeux::StoreError> {
        self.store
            .add_cometd_subscription(id.as_str(), sub.pattern.as_str(), sub.since)
            .await
            .map_err(|e| unavailable(&e))
    }

    async fn remove_subscription(
        &self,
        id: &ClientId,
        pattern: &ChannelPattern,
    ) -> Result<bool, bayeux::StoreError> {
        self.store
            .remove_cometd_subscription(id.as_str(), pattern.as_str())
            .await
            .map_err(|e| unavailable(&e))
    }

    async fn record_connect(
        &self,
        id: &ClientId,
        update: ConnectUpdate,
    ) -> Result<Option<SessionRecord<Actor>>, bayeux::StoreError> {
        let update = CometdConnect {
            cursor_at_least: update.cursor_at_least,
            now_ms: update.now_ms,
            expires_at_ms: update.expires_at_ms,
        };
        self.store
            .record_cometd_connect(id.as_str(), update)
            .await
            .map_err(|e| unavailable(&e))?
            .map(from_stored)
            .transpose()
    }

    async fn delete(&self, id: &ClientId) -> Result<bool, bayeux::StoreError> {
        self.store
            .delete_cometd_session(id.as_str())
            .await
            .map_err(|e| unavailable(&e))
    }

    async fn expired(
        &self,
        now_ms: u64,
        limit: usize,
    ) -> Result<Vec<ClientId>, bayeux::StoreError> {
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        Ok(self
            .store
            .expired_cometd_sessions(now_ms, limit)
            .await
            .map_err(|e| unavailable(&e))?
            .iter()
            .map(|id| ClientId::from_string(id))
            .collect())
    }

    async fn count(&self) -> Result<usize, bayeux::StoreError> {
        let n = self
            .store
            .count_cometd_sessions()
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    async fn sessions_of(
        &self,
        principal_key: &str,
    ) -> Result<Vec<(ClientId, u64)>, bayeux::StoreError> {
        Ok(self
            .store
            .cometd_sessions_of(principal_key)
            .await
            .map_err(|e| unavailable(&e))?
            .into_iter()
            .map(|(id, expires_at_ms)| (ClientId::from_string(&id), expires_at_ms))
            .collect())
    }
}

/// How often the metrics sampler reads the CometD counters.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(250);

/// Copies the CometD server's counters into the app's metrics until `stop` turns true; then
/// takes this node's sessions back out of the subscriber gauge.
///
/// bayeux counts, per node, the delivered messages and the sum of their lags; each sample
/// records the messages delivered since the previous one at their mean lag, so the histogram's
/// count is exact and its buckets are right to within one sampling period's spread.
pub fn spawn_metrics_sampler(
    app: Arc<App>,
    server: GwsCometd,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut previous = server.metrics();
        let shared = matches!(server.store(), GwsSessions::Shared(_));
        // Only this dialect's sessions: other dialects move the same gauge by their own deltas.
        let mut sessions_counted: i64 = 0;
        let mut tick = tokio::time::interval(SAMPLE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|stop| *stop) => {
                    app.metrics.notification_subscribers.dec_by(sessions_counted);
                    return;
                }
            }
            let now = server.metrics();
            let delivered = now
                .messages_delivered
                .saturating_sub(previous.messages_delivered);
            if delivered > 0 {
                let lag_ms = now
                    .delivery_lag_ms_sum
                    .saturating_sub(previous.delivery_lag_ms_sum);
                let mean = Duration::from_secs_f64(lag_ms as f64 / delivered as f64 / 1000.0);
                for _ in 0..delivered {
                    app.metrics.observe_delivery_lag(mean);
                }
            }
            let subscribers = if shared {
                Ok(usize::try_from(now.connects_held).unwrap_or(0))
            } else {
                server.active_sessions().await
            };
            previous = now;
            if let Ok(sessions) = subscribers {
                let sessions = i64::try_from(sessions).unwrap_or(i64::MAX);
                let delta = sessions - sessions_counted;
                if delta > 0 {
                    app.metrics.notification_subscribers.inc_by(delta);
                } else if delta < 0 {
                    app.metrics.notification_subscribers.dec_by(-delta);
                }
                sessions_counted = sessions;
            }
        }
    })
}

/// How often the users of the connects held on this node are checked for revoked credentials.
pub const REVOCATION_CHECK_EVERY: Duration = Duration::from_secs(1);

/// Ends the CometD sessions of users whose credentials were revoked (removed, disabled, or
/// their password changed: [`confer_app::auth::Authenticator::current_revision`]) while they
/// hold a connect here, until `stop` turns true. A long-polling client's next request is refused
/// by its own credentials anyway; this ends the connects already held, and a WebSocket, whose
/// credentials were checked once at its upgrade. A change is seen within this check's period
/// plus the user cache's lifetime; the revision compared against is the one first seen here
/// for that user.
pub fn spawn_revocation_watcher(
    app: Arc<App>,
    server: GwsCometd,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut known: std::collections::HashMap<Arc<str>, u64> = Default::default();
        let mut tick = tokio::time::interval(REVOCATION_CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
            let held: std::collections::HashSet<Arc<str>> =
                server.held_principal_keys().into_iter().collect();
            let mut still_held = std::collections::HashMap::new();
            for user in held {
                let first = known.get(&user).copied();
                let revoked = match app.auth.current_revision(&user).await {
                    Ok(Some(revision)) => {
                        let first = first.unwrap_or(revision);
                        still_held.insert(user.clone(), first);
                        revision != first
                    }
                    Ok(None) => true,
                    // Not known to be revoked: look again at the next tick.
                    Err(error) => {
                        tracing::warn!(%error, "cannot check a CometD user's credentials");
                        if let Some(first) = first {
                            still_held.insert(user.clone(), first);
                        }
                        false
                    }
                };
                if !revoked {
                    continue;
                }
                still_held.remove(&user);
                match server.end_sessions_of(&user).await {
                    Ok(ended) => {
                        tracing::info!(user = %user, ended, "ended the CometD sessions of a user whose credentials were revoked");
                    }
                    Err(error) => {
                        tracing::warn!(%error, "cannot end a revoked user's CometD sessions");
                    }
                }
            }
            known = still_held;
        }
    })
}

/// On a shared store: makes the connects held on this node re-read their session when another
/// node announces a change to it (see the module docs), until `stop` turns true. `None` when
/// the store does not share sessions (nothing else can change them).
pub fn spawn_session_refresher(
    app: &App,
    server: GwsCometd,
    mut stop: watch::Receiver<bool>,
) -> Option<JoinHandle<()>> {
    let mut changes = app.store.cometd_session_changes()?;
    Some(tokio::spawn(async move {
        loop {
            let change = tokio::select! {
                change = changes.recv() => change,
                _ = stop.wait_for(|stop| *stop) => return,
            };
            match change {
                Ok(CometdSessionChange::Changed(client_id)) => {
                    server.refresh_session(&ClientId::from_string(&client_id));
                }
                // Announcements were lost (the listener reconnected) or skipped (this task fell
                // behind): re-read every session held here; a spurious re-read costs one query.
                Ok(CometdSessionChange::Missed) | Err(RecvError::Lagged(_)) => {
                    let held = server.refresh_all_sessions();
                    tracing::debug!(held, "re-reading every held CometD session");
                }
                Err(RecvError::Closed) => return,
            }
        }
    }))
}
