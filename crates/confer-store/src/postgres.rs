//! The shared backend: PostgreSQL, which several server nodes can use at once.
//!
//! # Ordering: why not BIGSERIAL
//! A sequence hands out numbers when a transaction *asks*, not when it *commits*: T1 takes 10,
//! T2 takes 11, T2 commits, a reader sees 11 and moves its cursor past 10, then T1 commits 10
//! and the reader never sees it. So seqs come from a one-row counter, `event_head`, updated by
//! the **last statement before COMMIT** of every commit that has events:
//!
//! ```sql
//! WITH head AS (UPDATE event_head SET seq = seq + $n WHERE id = 1 RETURNING seq, <now>)
//! , ins AS (INSERT INTO events ... SELECT head.seq - $n + ord, ... FROM head, unnest(...))
//! SELECT head.seq, pg_notify($channel, head.seq::text) FROM head
//! ```
//!
//! The UPDATE takes the row lock, which is held until the transaction ends. PostgreSQL makes a
//! committing transaction visible to new snapshots *before* it releases its locks, so when the
//! next writer gets the row (and its seqs), every lower seq is already visible. Hence: any
//! snapshot that sees seq `n` sees every seq below `n`, and a rolled-back transaction rolls its
//! allocation back (no gaps). Everything that can fail or conflict (the conditional conference
//! UPDATE, the index keys, the idempotency record) runs *before* the allocation, so the lock is
//! held for one statement plus the COMMIT.
//!
//! **Cost, and group commit:** transactions that append events are serialized on that row for
//! one statement plus COMMIT, including its WAL flush: roughly `1 / (statement + commit
//! latency)` transactions per second, whatever the pool size or the number of nodes. So commits
//! do not get a transaction each: the store's commit task (`postgres/group.rs`) sends every
//! commit waiting on this node as one transaction of a few set-based statements, and the row's
//! cost is paid per batch. Two nodes take turns on it per batch.
//!
//! # Wake-ups
//! The same statement queues `pg_notify(channel, last_seq)`, which PostgreSQL delivers only if
//! and when the transaction commits. Every [`PgStore`] keeps one extra connection that LISTENs
//! and raises its watch; after a lost listener connection it re-reads the head, since
//! notifications sent meanwhile are gone. The channel is `confer_events`, or
//! `confer_events_<schema>` with a schema, so isolated schemas do not wake each other.
//!
//! The same connection LISTENs on `confer_cometd[_<schema>]`, where the statements that add or
//! remove a CometD subscription or delete a session announce the client id (again delivered
//! only on commit): a node holding that session's `/meta/connect` re-reads it at once
//! ([`Store::cometd_session_changes`]). The payload is `<origin>:<client id>`, `origin` being
//! a random id of the announcing store, so a node skips its own announcements (it has applied
//! the change to its own held connects already). After the listener reconnects, subscribers
//! are told that announcements may have been missed.
//!
//! # Durability
//! A commit returns after PostgreSQL acknowledged COMMIT, which with the default
//! `synchronous_commit = on` means the WAL is flushed. The server's `fsync`/`synchronous_commit`
//! settings are the operator's; the store does not weaken them.

use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, ConnectOptions as _, Connection as _, Row as _};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use crate::codec::{
    check_cometd_session, check_user, from_sql_int, old_part_of_page, parse_cometd_subscriptions,
    sql_limit, to_sql_int,
};
use crate::error::{StoreError, classify, is_unique_violation};
use crate::migrations;
use crate::records::{
    CometdConnect, CometdSessionRecord, Commit, CommitOutcome, ConferenceHistory, ConferenceRecord,
    HistoryBase, IdempotencyRecord, PruneProgress, StoredEvent, UserRecord,
};
use crate::store::{CometdSessionChange, Store, StoreResult};

/// Bulk loading (`PgStore::bulk_load`), in its own file.
mod bulk;
/// Commits: group commit and the single commit it falls back to.
mod group;

/// How to connect. `PgStoreOptions::new(url)` gives the defaults.
#[derive(Clone)]
pub struct PgStoreOptions {
    /// `postgres://user@host:port/database`.
    pub url: String,
    /// Schema to use (created if missing) instead of the connection's default search_path:
    /// lowercase ASCII letters, digits and `_`, starting with a letter or `_`, at most 48
    /// characters (the NOTIFY channel name embeds it and is limited to 63).
    pub schema: Option<String>,
    /// Pool size (the LISTEN connection comes on top).
    pub max_connections: u32,
    /// How long an operation waits for a pooled connection before [`StoreError::Unavailable`].
    pub acquire_timeout: Duration,
}

impl std::fmt::Debug for PgStoreOptions {
    // The URL may carry a password: leave it out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStoreOptions")
            .field("schema", &self.schema)
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .finish_non_exhaustive()
    }
}

impl PgStoreOptions {
    pub fn new(url: impl Into<String>) -> Self {
        PgStoreOptions {
            url: url.into(),
            schema: None,
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
        }
    }

    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n;
        self
    }
}

/// The PostgreSQL store. Connect with [`PgStore::connect`] or [`PgStore::connect_with`].
pub struct PgStore {
    pool: PgPool,
    group: group::GroupCommit,
    wakeups: Arc<watch::Sender<u64>>,
    channel: String,
    sessions: Arc<SessionAnnouncements>,
    listener: JoinHandle<()>,
}

/// The CometD session announcements between nodes (see the module docs).
struct SessionAnnouncements {
    /// `confer_cometd[_<schema>]`.
    channel: String,
    /// `<random id>:`, the prefix of this store's payloads.
    origin: String,
    changes: broadcast::Sender<CometdSessionChange>,
}

impl SessionAnnouncements {
    fn new(channel: String) -> Self {
        use std::hash::{BuildHasher as _, Hasher as _};
        // std's RandomState is seeded from the OS per process (and varies per instance): enough
        // to tell apart the stores of a cluster without a dependency on a random crate.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        Self {
            channel,
            origin: format!("{:016x}:", hasher.finish()),
            // Announcements are rare (subscribes, unsubscribes, deletions); a receiver that
            // falls this far behind is told it lagged and re-reads everything it holds.
            changes: broadcast::channel(1024).0,
        }
    }

    fn received(&self, payload: &str) {
        if payload.starts_with(&self.origin) {
            // Our own: this node applied the change to its held connects when it made it.
            return;
        }
        match payload.split_once(':') {
            Some((_, client_id)) if !client_id.is_empty() => {
                // No receiver (yet) is not an error: nobody holds a connect to refresh.
                let _ = self
                    .changes
                    .send(CometdSessionChange::Changed(client_id.to_owned()));
            }
            _ => tracing::warn!(
                payload,
                "ignoring a CometD announcement without a client id"
            ),
        }
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// `true` for names we accept as a schema (and may therefore quote into SQL).
pub fn is_valid_schema_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && name.len() <= 48
}

impl PgStore {
    /// Connects with default options (no schema: the connection's default search_path).
    pub async fn connect(url: &str) -> StoreResult<Self> {
        Self::connect_with(PgStoreOptions::new(url)).await
    }

    /// Connects, creates the schema if one is configured and missing, applies migrations and
    /// starts listening for other nodes' commits. Must be called inside a Tokio runtime.
    pub async fn connect_with(options: PgStoreOptions) -> StoreResult<Self> {
        let mut connect = PgConnectOptions::from_str(&options.url)
            .map_err(|e| StoreError::Invalid(format!("bad PostgreSQL URL: {e}")))?
            .application_name("confer");
        let (channel, sessions_channel) = match &options.schema {
            None => ("confer_events".to_owned(), "confer_cometd".to_owned()),
            Some(schema) => {
                if !is_valid_schema_name(schema) {
                    return Err(StoreError::Invalid(format!(
                        "schema name {schema:?}: use [a-z_][a-z0-9_]*, at most 48 characters"
                    )));
                }
                create_schema(&connect, schema).await?;
                // A startup parameter rather than a SET after connecting: every connection,
                // including the LISTEN one and reconnections, gets it before its first query.
                connect = connect.options([("search_path", schema.as_str())]);
                (
                    format!("confer_events_{schema}"),
                    format!("confer_cometd_{schema}"),
                )
            }
        };

        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect.clone())
            .await
            .map_err(|e| classify("connect", e))?;
        {
            let mut conn = pool.acquire().await.map_err(|e| classify("connect", e))?;
            migrations::run_postgres(&mut conn).await?;
        }

        // LISTEN before reading the head: a commit between the two then shows up in one or the
        // other, never in neither.
        let listener_pool = PgPoolOptions::new()
            .max_connections(1)
            .max_lifetime(None)
            .idle_timeout(None)
            .acquire_timeout(options.acquire_timeout)
            .connect_lazy_with(connect);
        let channels = [channel.clone(), sessions_channel.clone()];
        let listener = listen_on(&listener_pool, &channels)
            .await
            .map_err(|e| classify("listen", e))?;
        let head = head_seq_on(&pool).await?;
        let wakeups = Arc::new(watch::channel(head).0);
        let sessions = Arc::new(SessionAnnouncements::new(sessions_channel));
        let task = tokio::spawn(listen_loop(
            Listening {
                listener_pool,
                channels,
                pool: pool.clone(),
                wakeups: Arc::clone(&wakeups),
                sessions: Arc::clone(&sessions),
            },
            listener,
        ));

        Ok(PgStore {
            group: group::GroupCommit::start(pool.clone(), channel.clone()),
            pool,
            wakeups,
            channel,
            sessions,
            listener: task,
        })
    }

    /// Stops listening and closes the pool, waiting for running operations.
    pub async fn close(&self) {
        self.listener.abort();
        self.group.stop();
        self.pool.close().await;
    }

    /// How much group commit has grouped so far (a batch of one counts as a transaction).
    pub fn group_commit_stats(&self) -> crate::records::GroupCommitStats {
        self.group.stats()
    }

    /// The NOTIFY channel this store uses.
    pub fn channel(&self) -> &str {
        &self.channel
    }
}

async fn create_schema(connect: &PgConnectOptions, schema: &str) -> StoreResult<()> {
    let mut conn = connect
        .connect()
        .await
        .map_err(|e| classify("create schema", e))?;
    // The name was validated by is_valid_schema_name, so quoting it is enough.
    let sql = format!(r#"CREATE SCHEMA IF NOT EXISTS "{schema}""#);
    let result = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut conn).await;
    // Two nodes creating it at the same moment: IF NOT EXISTS is not atomic, the loser gets a
    // unique violation (23505) or duplicate_schema (42P06); the schema exists either way.
    let result = match result {
        Err(sqlx::Error::Database(db))
            if matches!(db.code().as_deref(), Some("23505" | "42P06")) =>
        {
            Ok(())
        }
        other => other.map(drop),
    };
    let closed = conn.close().await;
    result.map_err(|e| classify("create schema", e))?;
    closed.map_err(|e| classify("create schema", e))
}

async fn head_seq_on(pool: &PgPool) -> StoreResult<u64> {
    let seq: i64 = sqlx::query_scalar("SELECT seq FROM event_head WHERE id = 1")
        .fetch_one(pool)
        .await
        .map_err(|e| classify("head_seq", e))?;
    from_sql_int("event_head.seq", seq)
}

fn raise(wakeups: &watch::Sender<u64>, seq: u64) {
    wakeups.send_if_modified(|v| {
        let newer = seq > *v;
        if newer {
            *v = seq;
        }
        newer
    });
}

/// A LISTEN connection on `channels`.
async fn listen_on(pool: &PgPool, channels: &[String]) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener
        .listen_all(channels.iter().map(String::as_str))
        .await?;
    Ok(listener)
}

/// What the listener task needs.
struct Listening {
    /// The one-connection pool of the LISTEN connection.
    listener_pool: PgPool,
    /// The events channel, then the CometD sessions channel.
    channels: [String; 2],
    /// For reading the head after a reconnection.
    pool: PgPool,
    wakeups: Arc<watch::Sender<u64>>,
    sessions: Arc<SessionAnnouncements>,
}

impl Listening {
    /// After the listener reconnected: whatever was notified meanwhile is gone, so catch up from
    /// the log's head and tell the session subscribers they may have missed announcements.
    async fn catch_up(&self) {
        if let Ok(head) = head_seq_on(&self.pool).await {
            raise(&self.wakeups, head);
        }
        let _ = self.sessions.changes.send(CometdSessionChange::Missed);
    }
}

/// Turns notifications into watch updates and session announcements until the store is dropped
/// (the task is aborted).
async fn listen_loop(listening: Listening, listener: PgListener) {
    const MAX_BACKOFF: Duration = Duration::from_secs(5);
    let mut backoff = Duration::from_millis(100);
    let mut listener = Some(listener);
    loop {
        let Some(current) = listener.as_mut() else {
            // The listener failed: connect a new one (the old one, and its connection, are
            // gone), then catch up, since what was notified in between is lost.
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            match listen_on(&listening.listener_pool, &listening.channels).await {
                Ok(fresh) => {
                    listener = Some(fresh);
                    listening.catch_up().await;
                }
                Err(error) => tracing::warn!(%error, "wake-up listener cannot reconnect yet"),
            }
            continue;
        };
        match current.try_recv().await {
            Ok(Some(notification)) => {
                backoff = Duration::from_millis(100);
                if notification.channel() == listening.sessions.channel {
                    listening.sessions.received(notification.payload());
                    continue;
                }
                match notification.payload().parse::<u64>() {
                    Ok(seq) => raise(&listening.wakeups, seq),
                    Err(_) => tracing::warn!(
                        payload = notification.payload(),
                        "ignoring a notification that is not a seq"
                    ),
                }
            }
            // The connection was lost and re-established (sqlx reconnects before returning).
            Ok(None) => listening.catch_up().await,
            Err(error) => {
                tracing::warn!(%error, "wake-up listener failed; reconnecting");
                // Dropping it returns its connection to the one-connection pool.
                listener = None;
            }
        }
    }
}

fn conference_from_row(row: &PgRow) -> StoreResult<ConferenceRecord> {
    let get = |e| classify("decode conference", e);
    Ok(ConferenceRecord {
        id: row.try_get("id").map_err(get)?,
        kind: row.try_get("kind").map_err(get)?,
        version: from_sql_int("conference version", row.try_get("version").map_err(get)?)?,
        state: row.try_get::<Json<Value>, _>("state").map_err(get)?.0,
        index_keys: row.try_get("index_keys").map_err(get)?,
        live: row.try_get("live").map_err(get)?,
        updated_at_ms: row.try_get("updated_at_ms").map_err(get)?,
    })
}

fn event_from_row(row: &PgRow) -> StoreResult<StoredEvent> {
    let get = |e| classify("decode event", e);
    Ok(StoredEvent {
        seq: from_sql_int("event seq", row.try_get("seq").map_err(get)?)?,
        conference_id: row.try_get("conference_id").map_err(get)?,
        conference_version: from_sql_int(
            "event conference_version",
            row.try_get("conference_version").map_err(get)?,
        )?,
        kind: row.try_get("kind").map_err(get)?,
        payload: row.try_get::<Json<Value>, _>("payload").map_err(get)?.0,
        committed_at_ms: row.try_get("committed_at_ms").map_err(get)?,
    })
}

fn user_from_row(row: &PgRow) -> StoreResult<UserRecord> {
    let get = |e| classify("decode user", e);
    Ok(UserRecord {
        id: row.try_get("id").map_err(get)?,
        username: row.try_get("username").map_err(get)?,
        password_hash: row.try_get("password_hash").map_err(get)?,
        profile: row.try_get::<Json<Value>, _>("profile").map_err(get)?.0,
    })
}

/// The columns of a CometD session plus its subscriptions, aggregated in the same statement
/// (one snapshot). `s` is the session row's alias.
const COMETD_SESSION_COLUMNS: &str = "s.client_id, s.principal, s.principal_key, s.ack, \
     s.cursor_seq, s.connected, s.last_connect_ms, s.expires_at_ms, \
     COALESCE((SELECT jsonb_agg(jsonb_build_array(x.pattern, x.since) ORDER BY x.since, x.pattern) \
               FROM cometd_subscriptions x WHERE x.client_id = s.client_id), '[]'::jsonb) \
     AS subscriptions";

fn cometd_session_from_row(row: &PgRow) -> StoreResult<CometdSessionRecord> {
    let get = |e| classify("decode CometD session", e);
    let int = |name: &'static str| -> StoreResult<u64> {
        from_sql_int(name, row.try_get::<i64, _>(name).map_err(get)?)
    };
    Ok(CometdSessionRecord {
        client_id: row.try_get("client_id").map_err(get)?,
        principal: row.try_get::<Json<Value>, _>("principal").map_err(get)?.0,
        principal_key: row.try_get("principal_key").map_err(get)?,
        subscriptions: parse_cometd_subscriptions(
            &row.try_get::<Json<Value>, _>("subscriptions")
                .map_err(get)?
                .0,
        )?,
        ack: row.try_get("ack").map_err(get)?,
        cursor: int("cursor_seq")?,
        connected: row.try_get("connected").map_err(get)?,
        last_connect_ms: int("last_connect_ms")?,
        expires_at_ms: int("expires_at_ms")?,
    })
}

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(|e| classify("ping", e))
    }

    async fn get_conference(&self, id: &str) -> StoreResult<Option<ConferenceRecord>> {
        sqlx::query(
            "SELECT id, kind, version, state, index_keys, live, updated_at_ms \
             FROM conferences WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| classify("get_conference", e))?
        .as_ref()
        .map(conference_from_row)
        .transpose()
    }

    async fn list_conferences(
        &self,
        index_key: &str,
        live_only: bool,
        after_id: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<ConferenceRecord>> {
        // Ids are never empty, so "> ''" means "from the start"; a plain range predicate keeps
        // the (key, conference_id) primary key usable for the scan.
        let rows = sqlx::query(
            "SELECT c.id, c.kind, c.version, c.state, c.index_keys, c.live, c.updated_at_ms \
             FROM conference_index i JOIN conferences c ON c.id = i.conference_id \
             WHERE i.key = $1 AND i.conference_id > $2 AND (c.live OR NOT $3) \
             ORDER BY i.conference_id LIMIT $4",
        )
        .bind(index_key)
        .bind(after_id.unwrap_or(""))
        .bind(live_only)
        .bind(sql_limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| classify("list_conferences", e))?;
        rows.iter().map(conference_from_row).collect()
    }

    async fn commit(&self, commit: Commit) -> StoreResult<CommitOutcome> {
        let outcome = self.group.commit(commit).await?;
        // Our own commits wake local readers without the NOTIFY round trip.
        raise(&self.wakeups, outcome.last_seq);
        Ok(outcome)
    }

    async fn read_events(&self, after_seq: u64, limit: u32) -> StoreResult<Vec<StoredEvent>> {
        let rows = sqlx::query(
            "SELECT seq, conference_id, conference_version, kind, payload, committed_at_ms \
             FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(to_sql_int("after_seq", after_seq)?)
        .bind(sql_limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| classify("read_events", e))?;
        rows.iter().map(event_from_row).collect()
    }

    async fn conference_history(
        &self,
        conference_id: &str,
        up_to_version: u64,
    ) -> StoreResult<ConferenceHistory> {
        let op = "conference_history";
        // One statement, so one snapshot for the base and the events (a prune committed
        // between two reads would leave events the base already includes, or a base without
        // the events after it), and one round trip: the base's row first (`part` 0, its version
        // in `seq`, its state in `payload`), then the events.
        let rows = sqlx::query(
            "SELECT 0 AS part, s.version AS seq, NULL::text AS conference_id, \
                 NULL::bigint AS conference_version, NULL::text AS kind, \
                 CASE WHEN s.version = c.version THEN c.state ELSE s.base_state END AS payload, \
                 NULL::bigint AS committed_at_ms \
             FROM conference_log_starts s JOIN conferences c ON c.id = s.conference_id \
             WHERE s.conference_id = $1 \
             UNION ALL \
             SELECT 1, seq, conference_id, conference_version, kind, payload, committed_at_ms \
             FROM events WHERE conference_id = $1 AND conference_version <= $2 \
             ORDER BY part, conference_version, seq",
        )
        .bind(conference_id)
        // "Up to any version" (u64::MAX) is every event: clamp to the column's range.
        .bind(i64::try_from(up_to_version).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| classify(op, e))?;
        let get = |e| classify("decode conference history", e);
        let mut history = ConferenceHistory::default();
        for row in &rows {
            let part: i32 = row.try_get("part").map_err(get)?;
            if part == 1 {
                history.events.push(event_from_row(row)?);
                continue;
            }
            let version: i64 = row.try_get("seq").map_err(get)?;
            let state: Option<Json<Value>> = row.try_get("payload").map_err(get)?;
            let Some(Json(state)) = state else {
                return Err(StoreError::Corrupt {
                    what: format!(
                        "conference {conference_id} starts its log after version {version} but \
                         has no state for it"
                    ),
                    source: None,
                });
            };
            history.base = Some(HistoryBase {
                version: from_sql_int("conference log start", version)?,
                state,
            });
        }
        Ok(history)
    }

    async fn prune_history(
        &self,
        unchanged_before_ms: i64,
        after_seq: u64,
        limit: u32,
    ) -> StoreResult<PruneProgress> {
        let op = "prune_history";
        // The log is in commit order, so its old events come first: read a page from the
        // cursor and stop at the first recent one.
        let page: Vec<(i64, String, i64)> = sqlx::query_as(
            "SELECT seq, conference_id, committed_at_ms FROM events WHERE seq > $1 \
             ORDER BY seq LIMIT $2",
        )
        .bind(to_sql_int("after_seq", after_seq)?)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| classify(op, e))?;
        let (scanned_to, mut ids) = old_part_of_page(page, unchanged_before_ms)?;
        let mut progress = PruneProgress {
            scanned_to,
            ..PruneProgress::default()
        };
        if ids.is_empty() {
            return Ok(progress);
        }
        ids.sort_unstable();
        // One statement: lock the conferences still unchanged since the cutoff (in id order,
        // so that two nodes pruning at once cannot deadlock; a commit on one of them waits, or
        // went first and moved `updated_at_ms`, which the lock re-checks), delete their events
        // and make each one's current state the base later events apply to.
        let (conferences, events): (i64, i64) = sqlx::query_as(
            "WITH locked AS ( \
                 SELECT id, version FROM conferences WHERE id = ANY($1) AND updated_at_ms < $2 \
                 ORDER BY id FOR UPDATE \
             ), gone AS ( \
                 DELETE FROM events e USING locked l \
                 WHERE e.conference_id = ANY($1) AND e.conference_id = l.id \
                     AND e.conference_version <= l.version \
                 RETURNING e.conference_id \
             ), starts AS ( \
                 INSERT INTO conference_log_starts (conference_id, version, base_state) \
                 SELECT id, version, NULL FROM locked WHERE id IN (SELECT conference_id FROM gone) \
                 ON CONFLICT (conference_id) DO UPDATE SET version = EXCLUDED.version, \
                     base_state = NULL \
             ) \
             SELECT (SELECT count(DISTINCT conference_id) FROM gone), (SELECT count(*) FROM gone)",
        )
        .bind(&ids)
        .bind(unchanged_before_ms)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| classify(op, e))?;
        progress.conferences = from_sql_int("pruned conferences", conferences)?;
        progress.events = from_sql_int("pruned events", events)?;
        Ok(progress)
    }

    async fn prune_ended(&self, ended_before_ms: i64, limit: u32) -> StoreResult<u64> {
        // Listing keys go by the foreign key's cascade; events have no foreign key (the log
        // outlives nothing else), so they go explicitly.
        let deleted: i64 = sqlx::query_scalar(
            "WITH doomed AS ( \
                 SELECT id FROM conferences WHERE NOT live AND updated_at_ms < $1 \
                 ORDER BY updated_at_ms LIMIT $2 FOR UPDATE SKIP LOCKED \
             ), events_gone AS ( \
                 DELETE FROM events WHERE conference_id = ANY(ARRAY(SELECT id FROM doomed)) \
             ), gone AS ( \
                 DELETE FROM conferences WHERE id = ANY(ARRAY(SELECT id FROM doomed)) \
                 RETURNING 1 \
             ) \
             SELECT count(*) FROM gone",
        )
        .bind(ended_before_ms)
        .bind(i64::from(limit))
        .fetch_one(&self.pool)
        .await
        .map_err(|e| classify("prune_ended", e))?;
        from_sql_int("pruned conferences", deleted)
    }

    async fn get_or_insert_setting(&self, key: &str, value: &str) -> StoreResult<String> {
        sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(|e| classify("get_or_insert_setting", e))?;
        sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| classify("get_or_insert_setting", e))
    }

    async fn delete_setting(&self, key: &str) -> StoreResult<bool> {
        sqlx::query("DELETE FROM settings WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected() > 0)
            .map_err(|e| classify("delete_setting", e))
    }

    async fn head_seq(&self) -> StoreResult<u64> {
        head_seq_on(&self.pool).await
    }

    fn subscribe_wakeups(&self) -> watch::Receiver<u64> {
        self.wakeups.subscribe()
    }

    async fn get_idempotency(
        &self,
        user_id: &str,
        key: &str,
        now_ms: i64,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        let row = sqlx::query(
            "SELECT user_id, key, request_fingerprint, response, expires_at_ms FROM idempotency \
             WHERE user_id = $1 AND key = $2 AND expires_at_ms > $3",
        )
        .bind(user_id)
        .bind(key)
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| classify("get_idempotency", e))?;
        let Some(row) = row else { return Ok(None) };
        let get = |e| classify("decode idempotency record", e);
        Ok(Some(IdempotencyRecord {
            user_id: row.try_get("user_id").map_err(get)?,
            key: row.try_get("key").map_err(get)?,
            request_fingerprint: row.try_get("request_fingerprint").map_err(get)?,
            response: row.try_get::<Json<Value>, _>("response").map_err(get)?.0,
            expires_at_ms: row.try_get("expires_at_ms").map_err(get)?,
        }))
    }

    async fn purge_expired(&self, now_ms: i64, limit: u32) -> StoreResult<u64> {
        sqlx::query(
            "DELETE FROM idempotency WHERE (user_id, key) IN \
             (SELECT user_id, key FROM idempotency WHERE expires_at_ms <= $1 \
              ORDER BY expires_at_ms LIMIT $2)",
        )
        .bind(now_ms)
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await
        .map(|r| r.rows_affected())
        .map_err(|e| classify("purge_expired", e))
    }

    async fn put_user(&self, user: UserRecord) -> StoreResult<()> {
        check_user(&user)?;
        let inserted = sqlx::query(
            "INSERT INTO users (id, username, password_hash, profile) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&user.id)
        .bind(&user.username)
        .bind(&user.password_hash)
        .bind(Json(&user.profile))
        .execute(&self.pool)
        .await
        .map_err(|e| classify("put_user", e))?
        .rows_affected();
        if inserted == 1 {
            return Ok(());
        }
        let username_taken = sqlx::query("SELECT 1 FROM users WHERE username = $1")
            .bind(&user.username)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| classify("put_user", e))?
            .is_some();
        Err(if username_taken {
            StoreError::UsernameTaken {
                username: user.username,
            }
        } else {
            StoreError::UserExists { id: user.id }
        })
    }

    async fn update_user(&self, user: UserRecord) -> StoreResult<()> {
        check_user(&user)?;
        let result = sqlx::query(
            "UPDATE users SET username = $1, password_hash = $2, profile = $3 WHERE id = $4",
        )
        .bind(&user.username)
        .bind(&user.password_hash)
        .bind(Json(&user.profile))
        .bind(&user.id)
        .execute(&self.pool)
        .await;
        match result {
            Ok(r) if r.rows_affected() == 0 => Err(StoreError::NotFound {
                what: "user",
                id: user.id,
            }),
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(StoreError::UsernameTaken {
                username: user.username,
            }),
            Err(e) => Err(classify("update_user", e)),
        }
    }

    async fn delete_user(&self, id: &str) -> StoreResult<bool> {
        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected() > 0)
            .map_err(|e| classify("delete_user", e))
    }

    async fn get_user(&self, id: &str) -> StoreResult<Option<UserRecord>> {
        sqlx::query("SELECT id, username, password_hash, profile FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| classify("get_user", e))?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn get_user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        sqlx::query("SELECT id, username, password_hash, profile FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| classify("get_user_by_username", e))?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn list_users(&self, after_id: Option<&str>, limit: u32) -> StoreResult<Vec<UserRecord>> {
        let rows = sqlx::query(
            "SELECT id, username, password_hash, profile FROM users WHERE id > $1 \
             ORDER BY id LIMIT $2",
        )
        .bind(after_id.unwrap_or(""))
        .bind(sql_limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| classify("list_users", e))?;
        rows.iter().map(user_from_row).collect()
    }

    async fn create_cometd_session(&self, session: CometdSessionRecord) -> StoreResult<bool> {
        check_cometd_session(&session)?;
        let op = "create_cometd_session";
        let mut tx = self.pool.begin().await.map_err(|e| classify(op, e))?;
        let inserted = sqlx::query(
            "INSERT INTO cometd_sessions (client_id, principal, principal_key, ack, cursor_seq, \
             connected, last_connect_ms, expires_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&session.client_id)
        .bind(Json(&session.principal))
        .bind(&session.principal_key)
        .bind(session.ack)
        .bind(to_sql_int("cursor", session.cursor)?)
        .bind(session.connected)
        .bind(to_sql_int("last_connect_ms", session.last_connect_ms)?)
        .bind(to_sql_int("expires_at_ms", session.expires_at_ms)?)
        .execute(&mut *tx)
        .await
        .map_err(|e| classify(op, e))?
        .rows_affected()
            == 1;
        if !inserted {
            return Ok(false);
        }
        for sub in &session.subscriptions {
            sqlx::query(
                "INSERT INTO cometd_subscriptions (client_id, pattern, since) \
                 VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(&session.client_id)
            .bind(&sub.pattern)
            .bind(to_sql_int("since", sub.since)?)
            .execute(&mut *tx)
            .await
            .map_err(|e| classify(op, e))?;
        }
        tx.commit().await.map_err(|e| classify(op, e))?;
        Ok(true)
    }

    async fn load_cometd_session(
        &self,
        client_id: &str,
    ) -> StoreResult<Option<CometdSessionRecord>> {
        sqlx::query(AssertSqlSafe(format!(
            "SELECT {COMETD_SESSION_COLUMNS} FROM cometd_sessions s WHERE s.client_id = $1"
        )))
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| classify("load_cometd_session", e))?
        .as_ref()
        .map(cometd_session_from_row)
        .transpose()
    }

    async fn add_cometd_subscription(
        &self,
        client_id: &str,
        pattern: &str,
        since: u64,
    ) -> StoreResult<bool> {
        // FOR KEY SHARE keeps the session from being deleted between the check and the insert
        // (a delete on another node waits for this statement's transaction), so the foreign
        // key cannot fail and the answer is exact. The announcement (delivered on commit)
        // lets the node holding this session's connect pick the subscription up at once.
        let found: i64 = sqlx::query_scalar(
            "WITH s AS (SELECT client_id FROM cometd_sessions WHERE client_id = $1 FOR KEY SHARE), \
                  ins AS (INSERT INTO cometd_subscriptions (client_id, pattern, since) \
                          SELECT client_id, $2, $3 FROM s ON CONFLICT DO NOTHING) \
             SELECT count(*) FROM s, pg_notify($4, $5 || s.client_id) AS n",
        )
        .bind(client_id)
        .bind(pattern)
        .bind(to_sql_int("since", since)?)
        .bind(&self.sessions.channel)
        .bind(&self.sessions.origin)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| classify("add_cometd_subscription", e))?;
        Ok(found > 0)
    }

    async fn remove_cometd_subscription(
        &self,
        client_id: &str,
        pattern: &str,
    ) -> StoreResult<bool> {
        let found: i64 = sqlx::query_scalar(
            "WITH del AS (DELETE FROM cometd_subscriptions WHERE client_id = $1 AND pattern = $2) \
             SELECT count(*) FROM cometd_sessions s, pg_notify($3, $4 || s.client_id) AS n \
             WHERE s.client_id = $1",
        )
        .bind(client_id)
        .bind(pattern)
        .bind(&self.sessions.channel)
        .bind(&self.sessions.origin)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| classify("remove_cometd_subscription", e))?;
        Ok(found > 0)
    }

    async fn record_cometd_connect(
        &self,
        client_id: &str,
        update: CometdConnect,
    ) -> StoreResult<Option<CometdSessionRecord>> {
        let cursor = update
            .cursor_at_least
            .map(|c| to_sql_int("cursor", c))
            .transpose()?;
        // One statement: the cursor only goes up (GREATEST), whichever node writes last, and
        // the reply is the row this update produced.
        sqlx::query(AssertSqlSafe(format!(
            "WITH s AS (UPDATE cometd_sessions \
                        SET cursor_seq = GREATEST(cursor_seq, COALESCE($2, cursor_seq)), \
                            connected = TRUE, last_connect_ms = $3, expires_at_ms = $4 \
                        WHERE client_id = $1 RETURNING *) \
             SELECT {COMETD_SESSION_COLUMNS} FROM s"
        )))
        .bind(client_id)
        .bind(cursor)
        .bind(to_sql_int("now_ms", update.now_ms)?)
        .bind(to_sql_int("expires_at_ms", update.expires_at_ms)?)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| classify("record_cometd_connect", e))?
        .as_ref()
        .map(cometd_session_from_row)
        .transpose()
    }

    async fn delete_cometd_session(&self, client_id: &str) -> StoreResult<bool> {
        // Announced, so that a connect held for it on another node ends now (session unknown)
        // rather than at its timeout.
        let deleted: i64 = sqlx::query_scalar(
            "WITH d AS (DELETE FROM cometd_sessions WHERE client_id = $1 RETURNING client_id) \
             SELECT count(*) FROM d, pg_notify($2, $3 || d.client_id) AS n",
        )
        .bind(client_id)
        .bind(&self.sessions.channel)
        .bind(&self.sessions.origin)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| classify("delete_cometd_session", e))?;
        Ok(deleted == 1)
    }

    async fn expired_cometd_sessions(&self, now_ms: u64, limit: u32) -> StoreResult<Vec<String>> {
        sqlx::query_scalar(
            "SELECT client_id FROM cometd_sessions WHERE expires_at_ms < $1 \
             ORDER BY expires_at_ms LIMIT $2",
        )
        .bind(to_sql_int("now_ms", now_ms)?)
        .bind(sql_limit(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| classify("expired_cometd_sessions", e))
    }

    async fn cometd_sessions_of(&self, principal_key: &str) -> StoreResult<Vec<(String, u64)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT client_id, expires_at_ms FROM cometd_sessions WHERE principal_key = $1 \
             ORDER BY expires_at_ms, client_id",
        )
        .bind(principal_key)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| classify("cometd_sessions_of", e))?;
        rows.into_iter()
            .map(|(id, expires)| Ok((id, from_sql_int("expires_at_ms", expires)?)))
            .collect()
    }

    async fn count_cometd_sessions(&self) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM cometd_sessions")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| classify("count_cometd_sessions", e))?;
        from_sql_int("CometD session count", n)
    }

    fn cometd_session_changes(&self) -> Option<broadcast::Receiver<CometdSessionChange>> {
        Some(self.sessions.changes.subscribe())
    }
}

async fn head_seq_on_tx(tx: &mut sqlx::PgConnection) -> StoreResult<u64> {
    let seq: i64 = sqlx::query_scalar("SELECT seq FROM event_head WHERE id = 1")
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| classify("head_seq", e))?;
    from_sql_int("event_head.seq", seq)
}
