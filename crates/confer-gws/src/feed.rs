//! The notification feed: the [`bayeux::MessageLog`] GWS notifications are delivered from,
//! derived from the store's event log.
//!
//! Every notification comes from a committed event, so none is lost between a commit and a
//! subscriber, and each user receives them in commit order. For each stored event (in seq
//! order) the feed rebuilds the conference as it was right after that event, asks
//! [`confer_core::recipients`] who must be told what, and renders each change with that user's
//! own view into the `confer_model` GWS types, on `/v2/me/calls` or `/v2/me/chats`, for that
//! user only ([`Audience::Principal`] = the user id).
//!
//! # Deterministic sequence numbers
//! The `i`-th notification rendered for the event with store seq `s` has bayeux seq
//! `s * SLOTS_PER_EVENT + i` ([`entry_seq`]), and the feed's head is `h * SLOTS_PER_EVENT +
//! SLOTS_PER_EVENT - 1` for the store head `h` ([`head_seq`]). Rendering is deterministic too:
//! it uses the event's own time (for `duration`), never the wall clock, and the configured
//! public URL. So any node renders the same entries with the same seqs from the shared store,
//! and a session's cursor (its ack batch id) means the same thing on every node; a node that
//! no longer holds an old entry in memory renders it again from the store ([`Feed`]'s cold
//! path) instead of answering `402::messages_lost`. With `SLOTS_PER_EVENT = 1024`, seqs stay
//! below 2^53 (what JavaScript clients echo exactly) for store seqs up to [`MAX_STORE_SEQ`]
//! (about 8.8 * 10^12 events); an event telling more than 1024 notifications (a conference of
//! over a thousand users) loses the excess, logged as an error.
//!
//! # Where entries come from
//! A tailer task follows the store (`read_events` from its cursor, woken by
//! `subscribe_wakeups` and every second regardless) and keeps the entries of the most recent
//! events in a ring ([`RING_CAPACITY`]); it moves the head only once an event's entries are in
//! the ring. `read_after` serves from the ring, or renders older events from the store.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use bayeux::{Audience, ChannelName, LogEntry, LogError, MAX_SEQ, MessageLog, NewMessage};
use confer_app::cache::ConferenceCache;
use confer_app::history::{self, HistoryError};
use confer_core::{
    Change, Conference, DomainError, Event, EventKind, UserId, apply, recipients,
    view::{ChatViewer, call_view, chat_messages, chat_view},
};
use confer_model::{gws_chat::ChatNotificationType, gws_voice::CallNotificationType};
use confer_store::{Store, StoreError, StoredEvent};
use serde_json::Value;
use tokio::{sync::watch, task::JoinHandle};

use crate::{
    directory::Directory,
    render::{self, Urls},
};

/// Notification slots per stored event (see the module docs).
pub const SLOTS_PER_EVENT: u64 = 1024;
/// The largest store seq whose notifications get seqs below 2^53.
pub const MAX_STORE_SEQ: u64 = (MAX_SEQ + 1) / SLOTS_PER_EVENT - 1;
/// Entries the tailer keeps in memory.
pub const RING_CAPACITY: usize = 4096;
/// Conference states a reader keeps to render the next event without replaying its log.
const STATE_CACHE: usize = 4096;
/// Events read per store round trip.
const PAGE: u32 = 256;

/// The channel of call notifications.
pub const CALLS_CHANNEL: &str = "/v2/me/calls";
/// The channel of chat notifications.
pub const CHATS_CHANNEL: &str = "/v2/me/chats";

/// The bayeux seq of the `index`-th notification of the event with store seq `store_seq`.
pub fn entry_seq(store_seq: u64, index: u64) -> u64 {
    store_seq * SLOTS_PER_EVENT + index
}

/// The feed head for the store head `store_head`: above every entry of events up to it.
pub fn head_seq(store_head: u64) -> u64 {
    if store_head == 0 {
        0
    } else {
        store_head * SLOTS_PER_EVENT + (SLOTS_PER_EVENT - 1)
    }
}

/// The first store seq that may have entries with a bayeux seq above `after`.
fn first_store_seq_after(after: u64) -> u64 {
    after.saturating_add(1) / SLOTS_PER_EVENT
}

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("the store failed")]
    Store(#[from] StoreError),
    #[error("event {seq} does not read back as a domain event")]
    Corrupt {
        seq: u64,
        #[source]
        source: serde_json::Error,
    },
    #[error("event {seq} does not apply to its conference")]
    Replay {
        seq: u64,
        #[source]
        source: DomainError,
    },
    #[error("the state before event {seq} cannot be rebuilt")]
    History {
        seq: u64,
        #[source]
        source: HistoryError,
    },
    #[error("event {seq} is beyond the largest store seq notifications can number")]
    SeqExhausted { seq: u64 },
}

/// Conference states by id, as of the last event a reader rendered for each.
struct States {
    map: HashMap<String, Conference>,
}

impl States {
    fn new() -> Self {
        Self {
            map: HashMap::new(),
        }
    }

    fn put(&mut self, key: &str, conference: Conference) {
        if self.map.len() >= STATE_CACHE && !self.map.contains_key(key) {
            // Dropping everything is crude but bounded and correct: a miss replays from the store.
            self.map.clear();
        }
        self.map.insert(key.to_owned(), conference);
    }
}

/// Turns stored events into notifications.
pub struct Renderer {
    store: Arc<dyn Store>,
    directory: Arc<Directory>,
    urls: Urls,
    /// The states this node's engine committed: the state an event applies to, found without
    /// replaying its conference from the store.
    committed: Option<Arc<ConferenceCache>>,
}

impl Renderer {
    pub fn new(store: Arc<dyn Store>, directory: Arc<Directory>, urls: Urls) -> Self {
        Self {
            store,
            directory,
            urls,
            committed: None,
        }
    }

    /// Renders from the states in `cache` when it holds the one an event applies to.
    pub fn with_cache(mut self, cache: Arc<ConferenceCache>) -> Self {
        self.committed = Some(cache);
        self
    }

    /// The conference right after `event`, stored under `key`, from the cache or the store.
    async fn state_after(
        &self,
        states: &mut States,
        key: &str,
        seq: u64,
        commit_version: u64,
        event: &Event,
    ) -> Result<Conference, FeedError> {
        // By store key: sessions of two accounts may share an id.
        let id = key;
        let cached = states
            .map
            .remove(id)
            .filter(|state| state.version.checked_add(1) == Some(event.version))
            .or_else(|| self.committed.as_ref()?.state_before(key, event.version));
        let after = if cached.is_some() || event.version == 1 {
            apply(cached, event).map_err(|source| FeedError::Replay { seq, source })?
        } else {
            history::state_after(self.store.as_ref(), key, commit_version, event)
                .await
                .map_err(|source| match source {
                    HistoryError::Store(error) => FeedError::Store(error),
                    source => FeedError::History { seq, source },
                })?
        };
        states.put(key, after.clone());
        Ok(after)
    }

    /// Every notification of one stored event, numbered from `entry_seq(seq, 0)`.
    async fn entries(
        &self,
        states: &mut States,
        stored: &StoredEvent,
    ) -> Result<Vec<Arc<LogEntry>>, FeedError> {
        let seq = stored.seq;
        if seq > MAX_STORE_SEQ {
            return Err(FeedError::SeqExhausted { seq });
        }
        let event: Event = serde_json::from_value(stored.payload.clone())
            .map_err(|source| FeedError::Corrupt { seq, source })?;
        let after = self
            .state_after(
                states,
                &stored.conference_id,
                seq,
                stored.conference_version,
                &event,
            )
            .await?;
        let appended_at_ms = u64::try_from(stored.committed_at_ms).unwrap_or(0);
        let mut out = Vec::new();
        for recipient in recipients(&event, &after) {
            // Customers and Evo accounts are not GWS users with a CometD session here.
            let confer_core::Audience::User(user) = &recipient.audience else {
                continue;
            };
            let Some(viewer) = self.directory.user(user).await? else {
                continue;
            };
            for change in &recipient.changes {
                let Some((channel, data)) = self.render(change, &event, &after, &viewer) else {
                    continue;
                };
                let index = out.len() as u64;
                if index >= SLOTS_PER_EVENT {
                    tracing::error!(
                        seq,
                        "an event tells more users than notification slots; the rest are dropped"
                    );
                    return Ok(out);
                }
                out.push(Arc::new(LogEntry::new(
                    entry_seq(seq, index),
                    channel,
                    data,
                    Audience::principal(user.as_str()),
                    appended_at_ms,
                )));
            }
        }
        Ok(out)
    }

    /// One change for one user, rendered with that user's view at the event's time.
    fn render(
        &self,
        change: &Change,
        event: &Event,
        after: &Conference,
        viewer: &confer_core::Actor,
    ) -> Option<(ChannelName, Value)> {
        let user = &viewer.user_id;
        let reference_id = reference_id(event, user);
        let (channel, data) = match change {
            Change::CallStatusChanged | Change::CallParticipantsUpdated => {
                let view = call_view(after, user, event.occurred_at)?;
                let kind = if *change == Change::CallStatusChanged {
                    CallNotificationType::StatusChange
                } else {
                    CallNotificationType::ParticipantsUpdated
                };
                let message = render::call_message(kind, &view, viewer, &self.urls, reference_id);
                (CALLS_CHANNEL, serde_json::to_value(message).ok()?)
            }
            Change::ChatStatusChanged | Change::ChatParticipantsUpdated => {
                let view = chat_view(after, user)?;
                let kind = if *change == Change::ChatStatusChanged {
                    ChatNotificationType::StatusChange
                } else {
                    ChatNotificationType::ParticipantsUpdated
                };
                let message = render::chat_message(kind, &view, &self.urls, reference_id);
                (CHATS_CHANNEL, serde_json::to_value(message).ok()?)
            }
            Change::ChatNewMessages { indices } => {
                let messages = chat_messages(after, ChatViewer::Agent(user), Some(indices));
                if messages.is_empty() {
                    return None;
                }
                let message =
                    render::new_messages(after.id.as_str(), &messages, &self.urls, reference_id);
                (CHATS_CHANNEL, serde_json::to_value(message).ok()?)
            }
            Change::SessionUpdated => return None,
        };
        Some((ChannelName::parse(channel).ok()?, data))
    }
}

/// The `referenceId` a notification carries: GWS ties a notification to the request that
/// caused it. Confer gives one where GWS shows one: the invitation an `Invite`/`Consult` reply
/// announces (its reply carries the same id), and the completion of a removed agent's chat,
/// which the server performs on that agent's behalf (seed 003, Agent2's fourth notification).
/// The id is the event's conference version: deterministic, and recoverable when an idempotent
/// request is replayed.
pub fn reference_id(event: &Event, user: &UserId) -> Option<i64> {
    let applies = match &event.kind {
        EventKind::AgentInvited { agent, .. } => agent == user,
        EventKind::AgentChatStateChanged { agent, .. } => agent == user && &event.by != agent,
        _ => false,
    };
    applies.then(|| i64::try_from(event.version).unwrap_or(i64::MAX))
}

/// The entries of the most recent events.
struct Ring {
    entries: VecDeque<Arc<LogEntry>>,
    /// Every entry of the store seqs `first..=last` is here (`first == last + 1`: none).
    first: u64,
    last: u64,
}

impl Ring {
    fn push(&mut self, store_seq: u64, entries: Vec<Arc<LogEntry>>) {
        self.entries.extend(entries);
        self.last = store_seq;
        while self.entries.len() > RING_CAPACITY {
            let Some(oldest) = self.entries.pop_front() else {
                break;
            };
            // Evict whole events: the ring holds all of an event's entries or none.
            let evicted = oldest.seq / SLOTS_PER_EVENT;
            while self
                .entries
                .front()
                .is_some_and(|entry| entry.seq / SLOTS_PER_EVENT == evicted)
            {
                self.entries.pop_front();
            }
            self.first = evicted + 1;
        }
    }

    fn after(&self, after: u64, limit: usize) -> Vec<Arc<LogEntry>> {
        let start = self.entries.partition_point(|entry| entry.seq <= after);
        self.entries.range(start..).take(limit).cloned().collect()
    }
}

struct Inner {
    renderer: Renderer,
    ring: Mutex<Ring>,
    head: watch::Sender<u64>,
}

impl Inner {
    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        // Every change to the ring is a push or pop; nothing is left half done by a panic.
        self.ring.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The GWS notification log; cheap to clone.
#[derive(Clone)]
pub struct Feed {
    inner: Arc<Inner>,
}

impl Feed {
    /// Starts following the store from its current head: sessions start at the head, so
    /// nothing older is needed in memory.
    pub async fn start(renderer: Renderer) -> Result<(Self, JoinHandle<()>), StoreError> {
        let store_head = renderer.store.head_seq().await?;
        let (head, _) = watch::channel(head_seq(store_head));
        let feed = Self {
            inner: Arc::new(Inner {
                renderer,
                ring: Mutex::new(Ring {
                    entries: VecDeque::new(),
                    first: store_head + 1,
                    last: store_head,
                }),
                head,
            }),
        };
        let tailer = tokio::spawn(tail(feed.inner.clone(), store_head));
        Ok((feed, tailer))
    }

    /// The store seq the feed has rendered up to.
    pub fn rendered_up_to(&self) -> u64 {
        self.inner.ring().last
    }

    /// Renders events from the store (those no longer in the ring): entries above `after`,
    /// from store seq `from` up to (not including) `until`, at most `limit`.
    async fn cold_read(
        &self,
        after: u64,
        from: u64,
        until: u64,
        limit: usize,
    ) -> Result<Vec<Arc<LogEntry>>, LogError> {
        let unavailable = |error: StoreError| LogError::Unavailable(error.to_string());
        let mut states = States::new();
        let mut out = Vec::new();
        let mut cursor = from.saturating_sub(1);
        'pages: while out.len() < limit && cursor.saturating_add(1) < until {
            let events = self
                .inner
                .renderer
                .store
                .read_events(cursor, PAGE)
                .await
                .map_err(unavailable)?;
            // The log's only gaps are the events retention pruned, all older than its window: a missing seq means this
            // reader is older than what is kept (the session then starts over).
            let truncated = |oldest: u64| LogError::Truncated {
                after,
                oldest: entry_seq(oldest, 0),
            };
            if events.is_empty() {
                return Err(truncated(until));
            }
            for stored in events {
                if stored.seq > cursor + 1 {
                    return Err(truncated(stored.seq.min(until)));
                }
                if stored.seq >= until {
                    break 'pages;
                }
                match self.inner.renderer.entries(&mut states, &stored).await {
                    Ok(entries) => out.extend(entries.into_iter().filter(|e| e.seq > after)),
                    Err(FeedError::Store(error)) => return Err(unavailable(error)),
                    Err(error) => {
                        tracing::error!(seq = stored.seq, %error, "event skipped by the GWS feed");
                    }
                }
                cursor = stored.seq;
                if out.len() >= limit {
                    break 'pages;
                }
            }
        }
        out.truncate(limit);
        Ok(out)
    }
}

impl MessageLog for Feed {
    /// GWS clients do not publish and the server publishes nothing outside the event log, so
    /// nothing may be appended: the feed's seqs belong to the store's events.
    async fn append(&self, _msg: NewMessage) -> Result<u64, LogError> {
        Err(LogError::Unavailable(
            "GWS notifications come only from the event log".into(),
        ))
    }

    async fn read_after(&self, after: u64, limit: usize) -> Result<Vec<Arc<LogEntry>>, LogError> {
        let from = first_store_seq_after(after);
        loop {
            let ring_first = {
                let ring = self.inner.ring();
                if from >= ring.first {
                    return Ok(ring.after(after, limit));
                }
                ring.first
            };
            let mut out = self.cold_read(after, from, ring_first, limit).await?;
            if out.len() >= limit {
                return Ok(out);
            }
            let ring = self.inner.ring();
            if ring.first != ring_first {
                // The ring moved on while the store was read: what was read is complete up to
                // `ring_first`, so answer with it (or, if it is nothing, read again).
                if out.is_empty() {
                    continue;
                }
                return Ok(out);
            }
            let last = out.last().map_or(after, |entry| entry.seq);
            out.extend(ring.after(last, limit - out.len()));
            return Ok(out);
        }
    }

    fn head(&self) -> watch::Receiver<u64> {
        self.inner.head.subscribe()
    }
}

/// Follows the store: renders each new event into the ring, then moves the head.
async fn tail(inner: Arc<Inner>, mut cursor: u64) {
    let store = inner.renderer.store.clone();
    let mut wakeups = store.subscribe_wakeups();
    let mut states = States::new();
    let mut backoff = Duration::from_millis(100);
    loop {
        wakeups.borrow_and_update();
        let events = match store.read_events(cursor, PAGE).await {
            Ok(events) => events,
            Err(error) => {
                tracing::warn!(%error, "the GWS feed cannot read the event log; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        if events.is_empty() {
            // Wake-ups are hints: look again after a second in any case.
            let _ = tokio::time::timeout(Duration::from_secs(1), wakeups.changed()).await;
            continue;
        }
        let mut failed = false;
        for stored in events {
            let entries = match inner.renderer.entries(&mut states, &stored).await {
                Ok(entries) => entries,
                Err(FeedError::Store(error)) => {
                    tracing::warn!(%error, seq = stored.seq, "the GWS feed cannot render an event yet; retrying");
                    failed = true;
                    break;
                }
                Err(error) => {
                    // A stored event that cannot be rendered never will be; holding the feed
                    // back for it would stop every later notification.
                    tracing::error!(seq = stored.seq, %error, "event skipped by the GWS feed");
                    Vec::new()
                }
            };
            inner.ring().push(stored.seq, entries);
            cursor = stored.seq;
        }
        inner.head.send_replace(head_seq(cursor));
        if failed {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        } else {
            backoff = Duration::from_millis(100);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seqs_are_numbered_per_event_and_below_the_head() {
        assert_eq!(entry_seq(7, 0), 7168);
        assert_eq!(entry_seq(7, 3), 7171);
        assert_eq!(head_seq(0), 0);
        assert_eq!(head_seq(7), 8191);
        assert!(entry_seq(7, SLOTS_PER_EVENT - 1) <= head_seq(7));
        assert!(head_seq(7) < entry_seq(8, 0));
        assert_eq!(first_store_seq_after(head_seq(7)), 8);
        assert_eq!(first_store_seq_after(entry_seq(7, 2)), 7);
        assert_eq!(first_store_seq_after(0), 0);
        assert!(head_seq(MAX_STORE_SEQ) <= MAX_SEQ);
        assert!(head_seq(MAX_STORE_SEQ + 1) > MAX_SEQ);
    }

    fn entry(seq: u64) -> Arc<LogEntry> {
        Arc::new(LogEntry::new(
            seq,
            ChannelName::parse(CALLS_CHANNEL).unwrap(),
            Value::Null,
            Audience::All,
            0,
        ))
    }

    #[test]
    fn the_ring_evicts_whole_events() {
        let mut ring = Ring {
            entries: VecDeque::new(),
            first: 1,
            last: 0,
        };
        let per_event = 3;
        let events = (RING_CAPACITY as u64) / per_event + 2;
        for s in 1..=events {
            ring.push(s, (0..per_event).map(|i| entry(entry_seq(s, i))).collect());
        }
        assert!(ring.entries.len() <= RING_CAPACITY);
        let first = ring.entries.front().unwrap().seq;
        assert_eq!(first % SLOTS_PER_EVENT, 0, "an event is never cut");
        assert_eq!(ring.first, first / SLOTS_PER_EVENT);
        assert_eq!(ring.last, events);
        let got = ring.after(entry_seq(events, 0), 10);
        assert_eq!(
            got.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [entry_seq(events, 1), entry_seq(events, 2)]
        );
    }
}
