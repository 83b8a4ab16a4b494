//! Counters the embedding server can read (and export to its own metrics system).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// Live counters; read them with [`Metrics::snapshot`].
#[derive(Debug, Default)]
pub struct Metrics {
    pub(crate) sessions_created: AtomicU64,
    pub(crate) sessions_removed: AtomicU64,
    pub(crate) sessions_expired: AtomicU64,
    pub(crate) sessions_lost_messages: AtomicU64,
    pub(crate) connects_held: AtomicI64,
    pub(crate) messages_published: AtomicU64,
    pub(crate) messages_delivered: AtomicU64,
    pub(crate) replies_with_messages: AtomicU64,
    pub(crate) lag_ms_sum: AtomicU64,
    pub(crate) lag_ms_max: AtomicU64,
    pub(crate) sessions_evicted: AtomicU64,
    pub(crate) foreign_session_refusals: AtomicU64,
}

/// A copy of the counters at one moment. Counters are for this node
/// (sessions may live in a shared store: see [`crate::Server::active_sessions`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Handshakes that created a session here.
    pub sessions_created: u64,
    /// Sessions ended here by disconnect, expiry or lost messages.
    pub sessions_removed: u64,
    /// Of those, by expiry.
    pub sessions_expired: u64,
    /// Of those, because their cursor fell out of the log's retention.
    pub sessions_lost_messages: u64,
    /// `/meta/connect`s currently held here.
    pub connects_held: i64,
    /// Messages appended (by the server API or by clients).
    pub messages_published: u64,
    /// Messages written into connect replies (resends included).
    pub messages_delivered: u64,
    /// Connect replies that carried at least one message.
    pub replies_with_messages: u64,
    /// Sum over delivered messages of (delivery time - append time), ms.
    pub delivery_lag_ms_sum: u64,
    /// Largest such lag seen, ms.
    pub delivery_lag_ms_max: u64,
    /// Sessions ended to make room for a principal's new one
    /// ([`crate::Config::max_sessions_per_principal`]).
    pub sessions_evicted: u64,
    /// Messages refused because they named a session of another principal than their
    /// request's (see [`crate::Hooks::identify`]).
    pub foreign_session_refusals: u64,
}

impl MetricsSnapshot {
    /// Mean delivery lag in ms, if anything was delivered.
    pub fn mean_delivery_lag_ms(&self) -> Option<f64> {
        (self.messages_delivered > 0)
            .then(|| self.delivery_lag_ms_sum as f64 / self.messages_delivered as f64)
    }
}

impl Metrics {
    /// Reads every counter.
    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            sessions_created: self.sessions_created.load(Relaxed),
            sessions_removed: self.sessions_removed.load(Relaxed),
            sessions_expired: self.sessions_expired.load(Relaxed),
            sessions_lost_messages: self.sessions_lost_messages.load(Relaxed),
            connects_held: self.connects_held.load(Relaxed),
            messages_published: self.messages_published.load(Relaxed),
            messages_delivered: self.messages_delivered.load(Relaxed),
            replies_with_messages: self.replies_with_messages.load(Relaxed),
            delivery_lag_ms_sum: self.lag_ms_sum.load(Relaxed),
            delivery_lag_ms_max: self.lag_ms_max.load(Relaxed),
            sessions_evicted: self.sessions_evicted.load(Relaxed),
            foreign_session_refusals: self.foreign_session_refusals.load(Relaxed),
        }
    }

    pub(crate) fn delivered(&self, count: u64, lag_sum_ms: u64, lag_max_ms: u64) {
        self.messages_delivered.fetch_add(count, Relaxed);
        self.replies_with_messages.fetch_add(1, Relaxed);
        self.lag_ms_sum.fetch_add(lag_sum_ms, Relaxed);
        self.lag_ms_max.fetch_max(lag_max_ms, Relaxed);
    }
}
