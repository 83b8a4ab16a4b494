//! A CometD / Bayeux 1.0 server library, independent of any product.
//!
//! Transports: `long-polling` (JSON POST, also to `<base>/handshake`,
//! `<base>/connect`, ... as the official client sends) and `websocket`
//! (GET upgrade on the same path), both served by [`axum::router_at`].
//!
//! # Design: a log, a cursor per session, and acknowledgements
//!
//! * Every deliverable message is an entry of an ordered [`MessageLog`] with a
//!   global, strictly increasing `seq`, a channel, `data` and an
//!   [`Audience`] (every subscriber, or only the sessions of one principal,
//!   or one session). Its wire form is serialized once and spliced into
//!   every reply that carries it.
//! * A session ([`SessionRecord`], kept in a [`SessionStore`]) has no queue,
//!   only a *cursor*: the highest seq delivered to it or acknowledged by it.
//!   Delivering means reading the log after the cursor and keeping the
//!   entries whose channel matches a subscription (made before the entry)
//!   and whose audience admits the session.
//! * With the acknowledge extension the batch id of each connect reply is
//!   the highest seq scanned for it; the client sends it back on its next
//!   connect and only then does the cursor move. A reply that got lost is
//!   therefore sent again, in order, and nothing acknowledged is sent twice.
//!   Without the extension the cursor moves when the reply is handed to the
//!   transport.
//! * Because the log and the sessions can both live in a shared database,
//!   a connect may land on any node: nothing needed to continue a session is
//!   node-local. What is node-local is the index of held connects, which
//!   lets one dispatcher per node wake only the connects that may want a new
//!   entry (by channel pattern, principal and client id).
//!
//! # Embedding
//!
//! Implement [`Hooks`] (authentication from the handshake's HTTP headers and
//! `ext`, subscribe/publish authorization, `/service/**` handling), pick a
//! store and a log ([`InMemorySessionStore`], [`InMemoryLog`] here), build a
//! [`Server`] and mount [`axum::router_at`]. Publish with [`Server::publish`].
//! On SIGTERM call [`Server::shutdown`].
//!
//! See the crate's README.md for limits and tests.

pub mod axum;
pub mod channel;
pub mod config;
pub mod engine;
pub mod error;
pub mod hooks;
pub mod log;
pub mod message;
pub mod metrics;
pub mod session;

pub use channel::{ChannelError, ChannelName, ChannelPattern};
pub use config::Config;
pub use engine::{SUPPORTED_CONNECTION_TYPES, Server, ShutdownMode};
pub use error::{BayeuxError, LogError, PublishError, RequestError, StoreError};
pub use hooks::{
    Denial, HandshakeContext, Hooks, RequestContext, RequestPrincipal, ServiceContext, Transport,
};
pub use log::{Audience, InMemoryLog, LogEntry, MAX_SEQ, MessageLog, NewMessage};
pub use message::{Advice, Message, Reconnect, Reply};
pub use metrics::MetricsSnapshot;
pub use session::{
    ClientId, ConnectUpdate, InMemorySessionStore, SessionRecord, SessionStore, Subscription,
};
