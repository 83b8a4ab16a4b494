//! CometD at `/api/v2/notifications`: the `bayeux` server with GWS's rules.
//!
//! * **Handshake authentication** (on the handshake request; for WebSocket, on the upgrade
//!   request): HTTP Basic credentials, or the `JSESSIONID` session cookie, exactly as REST
//!   authenticates ([`crate::auth`]). The session is bound to that user: its principal key is
//!   the user id, and every notification is addressed to one user id.
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
//! * **Metrics**: a sampler copies the node's session count into the app's subscriber gauge
//!   and each delivered message's lag (commit to delivery) into the delivery-lag histogram.

use std::{sync::Arc, time::Duration};

use axum::http::header;
use bayeux::{
    ChannelPattern, Config, Denial, HandshakeContext, Hooks, InMemorySessionStore, RequestContext,
    Server, Transport,
};
use confer_app::App;
use confer_core::Actor;
use serde_json::Value;
use tokio::{sync::watch, task::JoinHandle};

use crate::{
    auth::{self, CSRF_TOKEN_HEADER, SESSION_COOKIE},
    error::GwsError,
    feed::Feed,
};

/// Where CometD is served.
pub const NOTIFICATIONS_PATH: &str = "/api/v2/notifications";

/// The GWS CometD server.
pub type GwsCometd = Server<GwsHooks, InMemorySessionStore<Actor>, Feed>;

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
        GwsError::Unavailable(_) => Denial::new("unavailable"),
        _ => Denial::new("internal_error"),
    }
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
        if !self.app.config.csrf || ctx.headers.contains_key(header::AUTHORIZATION) {
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

/// The CometD server of one node: in-memory sessions, the notification feed as its log.
pub fn server(app: Arc<App>, feed: Feed) -> GwsCometd {
    Server::new(
        Config::default(),
        GwsHooks::new(app),
        InMemorySessionStore::new(),
        feed,
    )
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
            previous = now;
            if let Ok(sessions) = server.active_sessions().await {
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
