//! What the embedding server decides: who a client is, and what it may do.

use std::future::Future;
use std::sync::Arc;

use axum::http::HeaderMap;
use serde_json::Value;

use crate::channel::{ChannelName, ChannelPattern};
use crate::message::Message;
use crate::session::ClientId;

/// The transport a request arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// HTTP POST of a message array.
    LongPolling,
    /// Text frames on a WebSocket.
    WebSocket,
}

impl Transport {
    /// The Bayeux `connectionType` name.
    pub fn name(self) -> &'static str {
        match self {
            Self::LongPolling => "long-polling",
            Self::WebSocket => "websocket",
        }
    }
}

/// One transport request: an HTTP POST, or a WebSocket (whose headers are
/// those of the upgrade request).
#[derive(Debug, Clone, Copy)]
pub struct RequestContext<'a> {
    /// Request headers (cookies, `Authorization`, CSRF headers, ...).
    pub headers: &'a HeaderMap,
    /// Transport.
    pub transport: Transport,
}

/// Whom a transport request's own credentials name (see [`Hooks::identify`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestPrincipal {
    /// Sessions are not bound to requests: whoever has a clientId may use it (the Bayeux
    /// default; only for servers whose clients are all trusted).
    Unchecked,
    /// The request names nobody (no credentials, or ones that do not verify): it may only
    /// handshake, which then fails.
    Anonymous,
    /// The principal with this key ([`Hooks::principal_key`]): the request may use that
    /// principal's sessions only.
    Key(Arc<str>),
}

/// What [`Hooks::authenticate`] sees.
#[derive(Debug, Clone, Copy)]
pub struct HandshakeContext<'a> {
    /// The transport request carrying the handshake.
    pub request: RequestContext<'a>,
    /// The handshake message (its `ext` may carry credentials).
    pub message: &'a Message,
}

/// What [`Hooks::on_service_message`] sees.
#[derive(Debug, Clone, Copy)]
pub struct ServiceContext<'a, P> {
    /// The sending session.
    pub client_id: &'a ClientId,
    /// Its principal.
    pub principal: &'a P,
    /// The `/service/...` channel.
    pub channel: &'a ChannelName,
    /// The message (with `data`, `id`, `ext`).
    pub message: &'a Message,
}

/// A refusal; sent as `403::<reason>` (or `403:<channel>:<reason>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// Short reason, e.g. `unauthorized` or `forbidden_channel`.
    pub reason: String,
    /// The refusal is transient (a busy verifier, a store outage): clients are told to try
    /// again (advice `retry`; a WebSocket upgrade gets HTTP 503) instead of to give up.
    pub transient: bool,
}

impl Denial {
    /// A denial with this reason. `:` is replaced, it separates error fields.
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into().replace(':', " "),
            transient: false,
        }
    }

    /// A transient denial: the same request may succeed later.
    pub fn transient(reason: impl Into<String>) -> Self {
        Self {
            transient: true,
            ..Self::new(reason)
        }
    }
}

/// The embedding server's decisions. Every method may be async (look up a
/// database, call an identity provider).
pub trait Hooks: Send + Sync + 'static {
    /// The authenticated identity bound to a session.
    type Principal: Clone + Send + Sync + 'static;

    /// Authenticates a handshake from its request headers (for WebSocket,
    /// the upgrade request's) and the handshake message. A denial is sent as
    /// an unsuccessful handshake with `403::<reason>` and
    /// `advice.reconnect = "none"`.
    fn authenticate(
        &self,
        ctx: &HandshakeContext<'_>,
    ) -> impl Future<Output = Result<Self::Principal, Denial>> + Send;

    /// The key matched against [`crate::Audience::Principal`]; stored with the session.
    fn principal_key(&self, principal: &Self::Principal) -> Arc<str>;

    /// Called for every long-polling POST and every WebSocket upgrade, before
    /// any message is processed (e.g. to require a CSRF header). A denial
    /// answers every message of the request with `403::<reason>`; a denied
    /// WebSocket upgrade gets HTTP 403. Which sessions the request may use is
    /// [`Hooks::identify`]'s.
    fn check_request(
        &self,
        _ctx: &RequestContext<'_>,
    ) -> impl Future<Output = Result<(), Denial>> + Send {
        async { Ok(()) }
    }

    /// Whom the request's own credentials name: called once for every long-polling POST and
    /// once per WebSocket (at the upgrade, for every message the socket carries), after
    /// [`Hooks::check_request`]. Every message but a handshake must then name a session of that
    /// principal; any other session is refused as unknown (`402`) and left as it was, so a
    /// clientId someone learns is worth nothing without its owner's credentials. A denial
    /// answers every message of the request with `403::<reason>` (a store outage, say).
    ///
    /// The default, [`RequestPrincipal::Unchecked`], makes the clientId a bearer credential, as
    /// in plain Bayeux: override it in any server that authenticates its clients.
    fn identify(
        &self,
        _ctx: &RequestContext<'_>,
    ) -> impl Future<Output = Result<RequestPrincipal, Denial>> + Send {
        async { Ok(RequestPrincipal::Unchecked) }
    }

    /// Whether `principal` may subscribe to `pattern` (wildcards included:
    /// allowing `/v2/**` allows everything below it).
    fn can_subscribe(
        &self,
        principal: &Self::Principal,
        pattern: &ChannelPattern,
    ) -> impl Future<Output = Result<(), Denial>> + Send;

    /// Whether `principal` may publish `data` to a broadcast channel.
    /// Denied unless overridden: clients of a notification service do not publish.
    fn can_publish(
        &self,
        _principal: &Self::Principal,
        _channel: &ChannelName,
        _data: &Value,
    ) -> impl Future<Output = Result<(), Denial>> + Send {
        async { Err(Denial::new("publish_denied")) }
    }

    /// A message to `/service/**`. It is never broadcast. `Ok(Some(data))`
    /// delivers `data` on the same channel to the sending session only (via
    /// the log, so it is acknowledged like anything else); `Err` answers the
    /// publish with `403`. Denied unless overridden.
    fn on_service_message(
        &self,
        _ctx: ServiceContext<'_, Self::Principal>,
    ) -> impl Future<Output = Result<Option<Value>, Denial>> + Send {
        async { Err(Denial::new("no_service")) }
    }
}
