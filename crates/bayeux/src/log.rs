//! The ordered message log that every delivery reads from.
//!
//! Nothing is queued per session. A published message becomes one
//! [`LogEntry`] with a global, strictly increasing `seq`; a session only
//! remembers its *cursor* (the highest seq it has been served or has
//! acknowledged). Delivering to a session means reading the log after its
//! cursor and keeping the entries it may see. Because the log and the cursor
//! are shared state (a database in a cluster), any node can continue any
//! session.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio::sync::watch;

use crate::channel::ChannelName;
use crate::error::LogError;
use crate::session::ClientId;

/// Sequence numbers are sent to JavaScript clients as ack batch ids, so they
/// must stay exactly representable as a double.
pub const MAX_SEQ: u64 = (1 << 53) - 1;

/// Who may receive an entry (besides having a matching subscription).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Audience {
    /// Every session subscribed to the channel.
    All,
    /// Only sessions whose principal has this key (see
    /// [`crate::Hooks::principal_key`]) and that subscribed to the channel:
    /// one channel such as `/v2/me/calls` carrying each user's own events.
    Principal(Arc<str>),
    /// One session, whether or not it subscribed (replies to `/service/**`).
    Session(ClientId),
}

impl Audience {
    /// `Audience::Principal` from anything string-like.
    pub fn principal(key: impl Into<Arc<str>>) -> Self {
        Self::Principal(key.into())
    }
}

/// A message to append.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// Where it is published.
    pub channel: ChannelName,
    /// The payload (`data` on the wire).
    pub data: Value,
    /// Who may receive it.
    pub audience: Audience,
}

/// One published message, as stored and as delivered.
#[derive(Debug)]
pub struct LogEntry {
    /// Global position; strictly increasing, at most [`MAX_SEQ`].
    pub seq: u64,
    /// The channel.
    pub channel: ChannelName,
    /// The payload.
    pub data: Value,
    /// Who may receive it.
    pub audience: Audience,
    /// When it was appended (Unix milliseconds), for the delivery-lag metric.
    pub appended_at_ms: u64,
    /// `{"channel":...,"data":...}` serialized once, spliced into every
    /// reply that delivers it.
    encoded: Arc<str>,
}

impl LogEntry {
    /// Builds an entry and serializes its wire form once.
    pub fn new(
        seq: u64,
        channel: ChannelName,
        data: Value,
        audience: Audience,
        appended_at_ms: u64,
    ) -> Self {
        #[derive(serde::Serialize)]
        struct Wire<'a> {
            channel: &'a str,
            data: &'a Value,
        }
        // Serializing a `Value` with string keys cannot fail; fall back to
        // `null` data rather than panicking should it ever.
        let encoded = serde_json::to_string(&Wire {
            channel: channel.as_str(),
            data: &data,
        })
        .unwrap_or_else(|_| format!(r#"{{"channel":"{}","data":null}}"#, channel.as_str()));
        Self {
            seq,
            channel,
            data,
            audience,
            appended_at_ms,
            encoded: Arc::from(encoded),
        }
    }

    /// The wire form of the message.
    pub fn encoded(&self) -> &Arc<str> {
        &self.encoded
    }
}

/// The source of deliverable messages.
///
/// Implementations: [`InMemoryLog`] here; a database-backed one in the
/// embedding server. The engine reads the log once per waiting connect that
/// was woken, so `read_after` of recent entries should be cheap (a cache of
/// the tail in a database implementation).
pub trait MessageLog: Send + Sync + 'static {
    /// Appends a message and returns its seq.
    fn append(&self, msg: NewMessage) -> impl Future<Output = Result<u64, LogError>> + Send;

    /// Up to `limit` entries with `seq > after`, in seq order. Entries a
    /// session cannot see are included too: filtering is the engine's job.
    /// Must return [`LogError::Truncated`] if an entry after `after` is no
    /// longer retained, rather than silently skipping it.
    fn read_after(
        &self,
        after: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Arc<LogEntry>>, LogError>> + Send;

    /// A watch of the head seq (the highest appended; 0 when empty). It must
    /// change whenever entries are appended, also by other nodes: that is
    /// what wakes held connects.
    fn head(&self) -> watch::Receiver<u64>;
}

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A bounded in-memory log (ring buffer): for a single node, tests and demos.
///
/// Retention: the newest `capacity` entries. A session whose cursor falls
/// behind the retained window gets [`LogError::Truncated`], which the engine
/// answers with `402::messages_lost` and `advice.reconnect = "handshake"`:
/// the client starts a new session instead of silently missing messages.
#[derive(Debug)]
pub struct InMemoryLog {
    inner: Mutex<Ring>,
    head_tx: watch::Sender<u64>,
}

#[derive(Debug)]
struct Ring {
    entries: VecDeque<Arc<LogEntry>>,
    capacity: usize,
    next_seq: u64,
    /// Highest seq that was evicted (0 if none).
    evicted_up_to: u64,
}

impl InMemoryLog {
    /// A log retaining at most `capacity` entries (at least 1).
    pub fn new(capacity: usize) -> Self {
        let (head_tx, _) = watch::channel(0);
        Self {
            inner: Mutex::new(Ring {
                entries: VecDeque::with_capacity(capacity.clamp(1, 4096)),
                capacity: capacity.max(1),
                next_seq: 1,
                evicted_up_to: 0,
            }),
            head_tx,
        }
    }

    /// A log whose first seq will be `first_seq` (tests of the 2^53 bound).
    pub fn starting_at(capacity: usize, first_seq: u64) -> Self {
        let log = Self::new(capacity);
        let head = first_seq.saturating_sub(1);
        {
            let mut ring = log.lock();
            ring.next_seq = first_seq.max(1);
            ring.evicted_up_to = head;
        }
        log.head_tx.send_replace(head);
        log
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        // A panic while holding this lock cannot leave the ring inconsistent
        // (every mutation is a single push/pop), so poisoning is ignored.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends synchronously (the trait method just wraps this).
    pub fn append_now(&self, msg: NewMessage) -> Result<u64, LogError> {
        let seq = {
            let mut ring = self.lock();
            let seq = ring.next_seq;
            if seq > MAX_SEQ {
                return Err(LogError::Exhausted);
            }
            ring.next_seq += 1;
            if ring.entries.len() == ring.capacity
                && let Some(old) = ring.entries.pop_front()
            {
                ring.evicted_up_to = old.seq;
            }
            ring.entries.push_back(Arc::new(LogEntry::new(
                seq,
                msg.channel,
                msg.data,
                msg.audience,
                now_ms(),
            )));
            seq
        };
        self.head_tx.send_replace(seq);
        Ok(seq)
    }

    /// Reads synchronously (the trait method just wraps this).
    pub fn read_now(&self, after: u64, limit: usize) -> Result<Vec<Arc<LogEntry>>, LogError> {
        let ring = self.lock();
        if after < ring.evicted_up_to {
            let oldest = ring.entries.front().map_or(ring.next_seq, |e| e.seq);
            return Err(LogError::Truncated { after, oldest });
        }
        // Entries are contiguous, so the position of `after + 1` is computed,
        // not searched.
        let first = ring.entries.front().map_or(ring.next_seq, |e| e.seq);
        let skip = usize::try_from((after + 1).saturating_sub(first)).unwrap_or(usize::MAX);
        Ok(ring
            .entries
            .iter()
            .skip(skip)
            .take(limit)
            .cloned()
            .collect())
    }
}

impl MessageLog for InMemoryLog {
    async fn append(&self, msg: NewMessage) -> Result<u64, LogError> {
        self.append_now(msg)
    }

    async fn read_after(&self, after: u64, limit: usize) -> Result<Vec<Arc<LogEntry>>, LogError> {
        self.read_now(after, limit)
    }

    fn head(&self) -> watch::Receiver<u64> {
        self.head_tx.subscribe()
    }
}

/// A shared log: several [`crate::Server`]s (as nodes of a cluster would)
/// can read one log.
impl<T: MessageLog> MessageLog for Arc<T> {
    fn append(&self, msg: NewMessage) -> impl Future<Output = Result<u64, LogError>> + Send {
        (**self).append(msg)
    }

    fn read_after(
        &self,
        after: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Arc<LogEntry>>, LogError>> + Send {
        (**self).read_after(after, limit)
    }

    fn head(&self) -> watch::Receiver<u64> {
        (**self).head()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(n: i64) -> NewMessage {
        NewMessage {
            channel: ChannelName::parse("/a").unwrap(),
            data: Value::from(n),
            audience: Audience::All,
        }
    }

    #[test]
    fn seqs_increase_and_reads_are_bounded() {
        let log = InMemoryLog::new(10);
        for i in 0..5 {
            assert_eq!(log.append_now(msg(i)).unwrap(), (i + 1) as u64);
        }
        assert_eq!(*log.head().borrow(), 5);
        let got: Vec<u64> = log.read_now(2, 2).unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(got, [3, 4]);
        assert!(log.read_now(5, 10).unwrap().is_empty());
        assert_eq!(
            &**log.read_now(0, 1).unwrap()[0].encoded(),
            r#"{"channel":"/a","data":0}"#
        );
    }

    #[test]
    fn a_cursor_behind_the_retained_window_is_truncated() {
        let log = InMemoryLog::new(3);
        for i in 0..5 {
            log.append_now(msg(i)).unwrap();
        }
        // Retained: 3, 4, 5. Cursor 2 still works (next wanted is 3), 1 does not.
        assert_eq!(log.read_now(2, 10).unwrap().len(), 3);
        assert!(matches!(
            log.read_now(1, 10),
            Err(LogError::Truncated {
                after: 1,
                oldest: 3
            })
        ));
    }

    #[test]
    fn seqs_stay_below_two_to_the_53() {
        let log = InMemoryLog::starting_at(4, MAX_SEQ);
        assert_eq!(log.append_now(msg(1)).unwrap(), MAX_SEQ);
        assert!(matches!(log.append_now(msg(2)), Err(LogError::Exhausted)));
    }
}
