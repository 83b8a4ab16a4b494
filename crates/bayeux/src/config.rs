//! Server settings. Defaults are CometD's.

use std::time::Duration;

/// Server settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// How long a `/meta/connect` is held when there is nothing to send
    /// (`advice.timeout`). CometD: 30 s.
    pub timeout: Duration,
    /// `advice.interval`: how long a client waits between a connect reply and
    /// its next connect. CometD: 0.
    pub interval: Duration,
    /// A session without a connect for this long (counted from the end of
    /// its last connect) expires. CometD: 10 s.
    pub max_interval: Duration,
    /// Largest accepted long-polling body or WebSocket message, in bytes.
    pub max_request_bytes: usize,
    /// Most messages accepted in one request (array).
    pub max_messages_per_request: usize,
    /// Most delivered messages in one connect reply; the rest goes in the
    /// next reply, which the client asks for immediately.
    pub max_messages_per_reply: usize,
    /// How often expired sessions are looked for (each look deletes every expired session,
    /// a page at a time).
    pub sweep_interval: Duration,
    /// Most subscriptions one session may hold; a subscribe beyond it is refused whole
    /// (`403:<channel>:too_many_subscriptions`). Matching costs grow with their number.
    pub max_subscriptions_per_session: usize,
    /// Most sessions one principal may hold (on every node, with a shared store); a handshake
    /// beyond it ends that principal's least recently active session, so that a user whose
    /// closed tabs have not expired yet can still connect, and one user's flood of handshakes
    /// costs at most this many sessions.
    pub max_sessions_per_principal: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            timeout: Duration::from_millis(30_000),
            interval: Duration::ZERO,
            max_interval: Duration::from_millis(10_000),
            max_request_bytes: 256 * 1024,
            max_messages_per_request: 100,
            max_messages_per_reply: 500,
            sweep_interval: Duration::from_millis(1_000),
            max_subscriptions_per_session: 100,
            max_sessions_per_principal: 64,
        }
    }
}

pub(crate) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
