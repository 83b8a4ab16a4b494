//! Typed errors of the crate.
//!
//! Protocol-level failures that a client must see are [`BayeuxError`]s and end
//! up in a reply's `error` field as `code:args:message`; everything else (a
//! store or log that fails, a bad request body) has its own type so that the
//! transports can map it to an HTTP status instead of panicking.

use std::fmt;

use crate::channel::ChannelError;

/// A Bayeux protocol error, rendered on the wire as `code:arg1,arg2:message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BayeuxError {
    /// Numeric code; CometD uses 4xx codes modelled on HTTP (402 unknown session, 403 denied, ...).
    pub code: u16,
    /// Arguments, comma-separated on the wire (usually the channel concerned).
    pub args: Vec<String>,
    /// Human readable, short, without `:`.
    pub message: String,
}

impl BayeuxError {
    /// Builds an error without arguments.
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            args: Vec::new(),
            message: message.into(),
        }
    }

    /// Builds an error with one argument (typically a channel name).
    pub fn with_arg(code: u16, arg: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code,
            args: vec![arg.into()],
            message: message.into(),
        }
    }

    /// `402::session_unknown`, what CometD answers for an unknown or expired clientId.
    pub fn session_unknown() -> Self {
        Self::new(402, "session_unknown")
    }
}

impl fmt::Display for BayeuxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.code, self.args.join(","), self.message)
    }
}

impl std::error::Error for BayeuxError {}

/// Failure of a [`crate::SessionStore`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backing store could not be reached or answered with an error.
    #[error("session store unavailable: {0}")]
    Unavailable(String),
    /// A session with this clientId already exists (random ids should never collide).
    #[error("session {0} already exists")]
    Duplicate(String),
}

/// Failure of a [`crate::MessageLog`].
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Entries after `after` are no longer retained: the oldest retained
    /// entry is `oldest`. A session whose cursor is `after` cannot be served.
    #[error("log truncated: entries after {after} are gone, oldest retained is {oldest}")]
    Truncated {
        /// The position that was asked for.
        after: u64,
        /// The oldest sequence number still retained.
        oldest: u64,
    },
    /// Sequence numbers must stay below 2^53 so JavaScript clients can echo them exactly.
    #[error("log sequence numbers exhausted (must stay below 2^53)")]
    Exhausted,
    /// The backing log could not be reached or answered with an error.
    #[error("message log unavailable: {0}")]
    Unavailable(String),
}

/// Failure of [`crate::Server::publish`].
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The channel name is not a valid concrete channel.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// `/meta/**` can never be published to, `/service/**` only to one session.
    #[error("channel {0} cannot carry broadcast messages")]
    NotBroadcastable(String),
    /// The log refused the append.
    #[error(transparent)]
    Log(#[from] LogError),
}

/// Failure to accept a transport request as a whole (before any message is processed).
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The body is not JSON, or not an object or array of objects.
    #[error("request body is not a Bayeux message or message array: {0}")]
    InvalidJson(String),
    /// More messages in one request than [`crate::Config::max_messages_per_request`].
    #[error("too many messages in one request: {count} > {max}")]
    TooManyMessages {
        /// Messages in the request.
        count: usize,
        /// The configured limit.
        max: usize,
    },
    /// An empty array.
    #[error("request carries no message")]
    Empty,
}
