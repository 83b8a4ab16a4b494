//! The [`Store`] trait: everything the server needs from durable storage.

use async_trait::async_trait;
use tokio::sync::{broadcast, watch};

use crate::error::StoreError;
use crate::records::{
    CometdConnect, CometdSessionRecord, Commit, CommitOutcome, ConferenceHistory, ConferenceRecord,
    IdempotencyRecord, PruneProgress, StoredEvent, UserRecord,
};

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

/// Durable storage for conferences, the event log, idempotency records and users.
///
/// Object safe (the server holds an `Arc<dyn Store>`). Every method is a single transaction or
/// a single consistent read.
///
/// # Guarantees
/// * [`commit`](Store::commit) is atomic: the conference row, its index keys, its events and the
///   idempotency record are all stored or none is; it returns only after the commit is durable.
/// * Event seqs are global, strictly increasing and gap-free, and **commit order equals seq
///   order**: once any reader can see seq `n`, every seq below `n` is visible too. A reader that
///   tails [`read_events`](Store::read_events) with a cursor therefore never misses an event.
/// * [`subscribe_wakeups`](Store::subscribe_wakeups) is only a hint: the log is the source of
///   truth, and a missed wake-up loses nothing as long as the reader reads from its cursor.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Readiness: succeeds when the database answers a trivial query.
    async fn ping(&self) -> StoreResult<()>;

    /// The conference with this id, if any.
    async fn get_conference(&self, id: &str) -> StoreResult<Option<ConferenceRecord>>;

    /// Conferences listed under `index_key`, ordered by id, starting after `after_id` (for
    /// paging: pass the last id of the previous page), at most `limit` of them. With `live_only`
    /// ended conferences are left out.
    async fn list_conferences(
        &self,
        index_key: &str,
        live_only: bool,
        after_id: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<ConferenceRecord>>;

    /// Stores a new conference state with its events and idempotency record, atomically.
    ///
    /// Fails with [`StoreError::Conflict`] when the stored version is not
    /// `commit.expected_version` (or, for a create, when the conference exists), with
    /// [`StoreError::IdempotencyKeyInUse`] when an unexpired record with the same user and key
    /// exists, and with [`StoreError::Invalid`] when `conference.version` is not greater than the
    /// expected version or an event names another conference. On any error nothing is stored.
    async fn commit(&self, commit: Commit) -> StoreResult<CommitOutcome>;

    /// Events with `seq > after_seq`, in seq order, at most `limit`.
    async fn read_events(&self, after_seq: u64, limit: u32) -> StoreResult<Vec<StoredEvent>>;

    /// What rebuilding one conference's state at `up_to_version` needs, read consistently: the
    /// base its retained log starts from (once pruned) and its events with
    /// `conference_version <= up_to_version`, in version order. Empty (no base, no events) for
    /// an unknown conference.
    async fn conference_history(
        &self,
        conference_id: &str,
        up_to_version: u64,
    ) -> StoreResult<ConferenceHistory>;

    /// Prunes the early history of conferences that have not changed since
    /// `unchanged_before_ms`: looks at up to `limit` events after seq `after_seq` that were
    /// committed before then, and for each of their conferences whose `updated_at_ms` is older
    /// too, deletes all its events and keeps its current state as the base later events apply
    /// to ([`ConferenceHistory::base`]). A conference changed since is left whole, so a
    /// conference's events are pruned only all at once, and never while a commit on it is in
    /// flight. Call again from [`PruneProgress::scanned_to`] until it is `None`.
    async fn prune_history(
        &self,
        unchanged_before_ms: i64,
        after_seq: u64,
        limit: u32,
    ) -> StoreResult<PruneProgress>;

    /// Deletes up to `limit` ended conferences (`live == false`) not changed since
    /// `ended_before_ms`, with their listing keys and events, oldest first; returns how many.
    async fn prune_ended(&self, ended_before_ms: i64, limit: u32) -> StoreResult<u64>;

    /// The seq of the last committed event (0 when the log is empty).
    async fn head_seq(&self) -> StoreResult<u64>;

    /// A watch whose value is a head seq that may be available: it changes after commits (on
    /// PostgreSQL also after other nodes' commits, through `LISTEN/NOTIFY`). Never decreases.
    /// Readers should still re-read from their cursor on their own now and then.
    fn subscribe_wakeups(&self) -> watch::Receiver<u64>;

    /// The unexpired idempotency record for this user and key (`expires_at_ms > now_ms`).
    async fn get_idempotency(
        &self,
        user_id: &str,
        key: &str,
        now_ms: i64,
    ) -> StoreResult<Option<IdempotencyRecord>>;

    /// Deletes up to `limit` idempotency records with `expires_at_ms <= now_ms`, soonest
    /// expired first; returns how many. A page at a time, so that a backlog never holds the
    /// writer (and every commit behind it) for long.
    async fn purge_expired(&self, now_ms: i64, limit: u32) -> StoreResult<u64>;

    /// Inserts a user. [`StoreError::UsernameTaken`] or [`StoreError::UserExists`] when the
    /// username or id is in use.
    async fn put_user(&self, user: UserRecord) -> StoreResult<()>;

    /// Replaces the user with this id. [`StoreError::NotFound`] when there is none,
    /// [`StoreError::UsernameTaken`] when renaming to another user's username.
    async fn update_user(&self, user: UserRecord) -> StoreResult<()>;

    /// Deletes the user with this id; `false` when there was none.
    async fn delete_user(&self, id: &str) -> StoreResult<bool>;

    async fn get_user(&self, id: &str) -> StoreResult<Option<UserRecord>>;

    async fn get_user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>>;

    /// Users ordered by id, starting after `after_id`, at most `limit`.
    async fn list_users(&self, after_id: Option<&str>, limit: u32) -> StoreResult<Vec<UserRecord>>;

    /// The value of a shared setting; when it has none yet, `value` is stored and returned. The
    /// first writer wins, so concurrent nodes all get the same value.
    async fn get_or_insert_setting(&self, key: &str, value: &str) -> StoreResult<String>;

    /// Deletes a shared setting; `false` when there was none.
    async fn delete_setting(&self, key: &str) -> StoreResult<bool>;

    // ---- CometD sessions ---------------------------------------------------------------------
    //
    // Kept here so that a session created on one node can be continued on any other. Each
    // method is one narrow change (a subscription, a connect), never "save the whole record":
    // two requests of one session may run at once on two nodes, and a whole-record write would
    // undo the other's change.

    /// Stores a new session with its subscriptions; `false` (nothing stored) if the client id
    /// is taken.
    async fn create_cometd_session(&self, session: CometdSessionRecord) -> StoreResult<bool>;

    /// The session with its subscriptions, read consistently.
    async fn load_cometd_session(
        &self,
        client_id: &str,
    ) -> StoreResult<Option<CometdSessionRecord>>;

    /// Adds a subscription, keeping an existing one for the same pattern (and its `since`).
    /// `false` if the session does not exist.
    async fn add_cometd_subscription(
        &self,
        client_id: &str,
        pattern: &str,
        since: u64,
    ) -> StoreResult<bool>;

    /// Removes a subscription. `false` if the session does not exist.
    async fn remove_cometd_subscription(&self, client_id: &str, pattern: &str)
    -> StoreResult<bool>;

    /// Records a connect: `cursor = max(cursor, cursor_at_least)` (never lowered), `connected`,
    /// the connect time and the expiry. The updated session, `None` if it does not exist.
    async fn record_cometd_connect(
        &self,
        client_id: &str,
        update: CometdConnect,
    ) -> StoreResult<Option<CometdSessionRecord>>;

    /// Deletes a session and its subscriptions; `false` if it did not exist.
    async fn delete_cometd_session(&self, client_id: &str) -> StoreResult<bool>;

    /// Up to `limit` sessions with `expires_at_ms < now_ms`, soonest expired first.
    async fn expired_cometd_sessions(&self, now_ms: u64, limit: u32) -> StoreResult<Vec<String>>;

    /// The sessions of one principal (every node's), least recently active (soonest to expire)
    /// first, with their expiry.
    async fn cometd_sessions_of(&self, principal_key: &str) -> StoreResult<Vec<(String, u64)>>;

    /// Number of sessions (of every node).
    async fn count_cometd_sessions(&self) -> StoreResult<u64>;

    /// Changes other nodes made to CometD sessions (a subscription added or removed, a session
    /// deleted), so that a node holding a `/meta/connect` for one of them re-reads it at once
    /// instead of when the connect returns. `None` when sessions are not shared (the embedded
    /// store: one node). Like the event wake-ups, only a hint: the session row stays the truth.
    fn cometd_session_changes(&self) -> Option<broadcast::Receiver<CometdSessionChange>> {
        None
    }
}

/// What [`Store::cometd_session_changes`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CometdSessionChange {
    /// Another node changed this session (by client id).
    Changed(String),
    /// Announcements may have been lost (the listening connection was re-established): every
    /// session this node holds a connect for should be re-read.
    Missed,
}
