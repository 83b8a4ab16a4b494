//! The records the store keeps. They are deliberately generic: the store does not know the
//! domain types (`confer-core` owns them); the server serializes snapshots and events to JSON.

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One conference as stored: the domain snapshot plus what the store needs to find it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConferenceRecord {
    /// Unique id; must not be empty.
    pub id: String,
    /// `"voice"`, `"chat"` or `"session"` (not interpreted by the store).
    pub kind: String,
    /// Optimistic-concurrency version. Every update must store a version greater than the one
    /// it expected (see [`Commit::expected_version`]).
    pub version: u64,
    /// The domain snapshot.
    pub state: Value,
    /// Keys under which the conference is listed, e.g. `"user:agent15000"`,
    /// `"account:demo-account"`. Replaced as a whole on every commit.
    pub index_keys: Vec<String>,
    /// `false` once the conference has ended.
    pub live: bool,
    /// Wall-clock time of the last change, in milliseconds since the Unix epoch (set by the caller).
    pub updated_at_ms: i64,
}

/// An event to append to the log with a commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    /// Must equal the id of the conference committed with it.
    pub conference_id: String,
    pub kind: String,
    pub payload: Value,
}

/// An event as read back from the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Global, strictly increasing position in the log; the first event is 1. Gap-free except
    /// where retention pruned events older than its window (see the crate docs).
    /// Commit order equals seq order (see the crate docs).
    pub seq: u64,
    pub conference_id: String,
    /// The conference version committed together with this event.
    pub conference_version: u64,
    pub kind: String,
    pub payload: Value,
    /// Wall-clock time of the commit, in milliseconds since the Unix epoch, taken by the store
    /// while it holds the seq allocation, so it does not decrease along the log unless the clock
    /// itself steps back.
    pub committed_at_ms: i64,
}

/// The response to an idempotent request, kept so that a retry with the same key gets the
/// same answer. Stored in the same transaction as the commit it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub user_id: String,
    pub key: String,
    /// What identifies the request (e.g. a hash of method, path and body), so that a reused key
    /// with a different request can be refused.
    pub request_fingerprint: String,
    pub response: Value,
    /// The record is ignored from this instant on and may be purged. Callers keep keys at
    /// least 24 h.
    pub expires_at_ms: i64,
}

/// A user account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: String,
    /// Unique (compared exactly, byte for byte).
    pub username: String,
    pub password_hash: String,
    pub profile: Value,
}

/// One atomic change: the new conference state, its events and the optional idempotency record,
/// all committed together or not at all.
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    /// The new state. Its `version` must be greater than `expected_version`.
    pub conference: ConferenceRecord,
    /// `None`: create; the conference must not exist. `Some(v)`: update; the stored version
    /// must be `v`. Anything else is [`StoreError::Conflict`](crate::StoreError::Conflict).
    pub expected_version: Option<u64>,
    /// Appended to the log in this order, with consecutive seqs.
    pub events: Vec<NewEvent>,
    pub idempotency: Option<IdempotencyRecord>,
}

/// The seqs the commit's events received: `first_seq..=last_seq`. A commit without events gets
/// the empty range `head + 1 ..= head`, where `head` is the log head it committed after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitOutcome {
    pub first_seq: u64,
    pub last_seq: u64,
}

impl CommitOutcome {
    /// The seqs of the committed events (empty when the commit had none).
    pub fn seqs(&self) -> RangeInclusive<u64> {
        self.first_seq..=self.last_seq
    }

    /// Number of events committed.
    pub fn event_count(&self) -> u64 {
        (self.last_seq + 1).saturating_sub(self.first_seq)
    }
}

/// What rebuilding a conference's state at a version needs: where its retained log starts and
/// its events from there ([`Store::conference_history`](crate::Store::conference_history)).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConferenceHistory {
    /// `None` while the conference's log is whole (replay from its first event). `Some` once its
    /// early events were pruned ([`Store::prune_history`](crate::Store::prune_history)): the
    /// state its retained events apply to.
    pub base: Option<HistoryBase>,
    /// The retained events up to the version asked for, in version order.
    pub events: Vec<StoredEvent>,
}

/// A conference's state at the version its retained log starts after.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryBase {
    pub version: u64,
    pub state: Value,
}

/// How far one [`Store::prune_history`](crate::Store::prune_history) call got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PruneProgress {
    /// The last seq it looked at (the next call starts after it); `None` when it found no event
    /// old enough after the cursor: the pass is over.
    pub scanned_to: Option<u64>,
    /// Conferences whose early history it pruned.
    pub conferences: u64,
    /// Events it deleted.
    pub events: u64,
}

/// How much group commit has grouped so far (`SqliteStore::group_commit_stats`,
/// `PgStore::group_commit_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupCommitStats {
    /// Write transactions run (each committed with one durable flush, or rolled back).
    pub transactions: u64,
    /// Writes run in those transactions (commits and other writes, including the ones that
    /// failed on their own and were rolled back).
    pub writes: u64,
}

/// One subscription of a CometD session: a channel pattern and the log position it was made at
/// (only entries after `since` are delivered through it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CometdSubscription {
    pub pattern: String,
    pub since: u64,
}

/// A CometD (Bayeux) session as stored, so that any node can continue a session another node
/// created. The store does not interpret the principal or the patterns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CometdSessionRecord {
    /// The Bayeux clientId; must not be empty.
    pub client_id: String,
    /// The authenticated identity, as the server serialized it.
    pub principal: Value,
    /// What notifications are addressed to (the user id).
    pub principal_key: String,
    /// One per pattern; loaded ordered by `since`, then pattern.
    pub subscriptions: Vec<CometdSubscription>,
    /// Whether the client negotiated the acknowledge extension.
    pub ack: bool,
    /// Position in the notification log up to which everything was delivered or acknowledged.
    /// Only ever raised ([`Store::record_cometd_connect`](crate::Store::record_cometd_connect)).
    pub cursor: u64,
    /// Whether a connect has been received yet.
    pub connected: bool,
    pub last_connect_ms: u64,
    pub expires_at_ms: u64,
}

/// What one `/meta/connect` changes in a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CometdConnect {
    /// Raise the cursor to at least this; a lower value leaves it as it is.
    pub cursor_at_least: Option<u64>,
    pub now_ms: u64,
    pub expires_at_ms: u64,
}
