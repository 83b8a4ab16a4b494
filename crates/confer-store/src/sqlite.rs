//! The embedded backend: one SQLite file in a data directory.
//!
//! # Durability
//! * `journal_mode=WAL`: readers do not block the writer and the writer does not block readers.
//! * `synchronous=FULL`: in WAL mode this syncs the WAL file at every commit, so a commit that
//!   returned `Ok` survives a process kill *and* a power loss. (`NORMAL` would survive a process
//!   kill but could lose the last commits on power loss; the server answers success only after a
//!   durable commit, so it must not use it.)
//! * `busy_timeout=5s`: another process holding the file (a backup, a second server by mistake)
//!   makes us wait instead of failing at once.
//! * `foreign_keys=ON`.
//!
//! # Ordering and group commit
//! All writes go through one connection owned by one writer thread (`writer.rs`). Writes that
//! wait for it together are committed together: one `BEGIN IMMEDIATE … COMMIT` transaction
//! (one fsync) with a `SAVEPOINT` per write, so a write that fails (a version conflict, an
//! idempotency key in use) is rolled back alone and answered with its own error, and every write
//! is answered only after the `COMMIT` is durable. Seq allocation (`event_head`) happens inside
//! each write's savepoint, in the order the writes run, on the only writing connection: commits
//! are totally ordered and each one's seqs follow the previous one's, so commit order equals seq
//! order and the log stays gap-free. `writer.rs` explains why this is safe and why the writer
//! runs its SQL on a `rusqlite` connection of its own (no thread hand-off per statement);
//! `commit.rs` is a commit's statements. The hot reads run on the caller's thread on
//! read-only rusqlite connections (`reads.rs` says why), the others on a small pool of sqlx
//! `query_only` connections; in WAL mode each read sees a snapshot that is a prefix of the
//! commit sequence.

use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions as _, Connection as _, Row as _, SqliteConnection};
use tokio::sync::watch;

use crate::codec::{
    check_cometd_session, check_user, from_sql_int, json_text, parse_cometd_subscriptions,
    parse_json, sql_limit, to_sql_int,
};
use rusqlite::{OptionalExtension as _, params};

use crate::error::{StoreError, classify, classify_sqlite, is_sqlite_unique_violation};
use crate::migrations;
use crate::records::{
    CometdConnect, CometdSessionRecord, Commit, CommitOutcome, ConferenceHistory, ConferenceRecord,
    IdempotencyRecord, PruneProgress, StoredEvent, UserRecord,
};
use crate::store::{Store, StoreResult};

/// Bulk loading (`SqliteStore::bulk_load`), in its own file.
mod bulk;
/// `commit`: its statements, run by the writer thread.
mod commit;
/// The hot reads, on rusqlite connections of their own.
mod reads;
/// Retention: the prunes, run by the writer thread.
mod retention;
/// Group commit: the writer thread.
mod writer;

pub use crate::records::GroupCommitStats;
use commit::PreparedCommit;
use writer::Writer;

/// File name of the database inside the data directory.
pub const DB_FILE_NAME: &str = "confer.db";

/// Number of read connections. Reads are short; a few connections let list, read_events and
/// get run side by side without starving the writer's CPU on a small machine.
const READERS: u32 = 4;

/// The SQLite store. Open with [`SqliteStore::open`].
pub struct SqliteStore {
    /// The queue to the writer thread, which owns the only connection that writes.
    writer: Writer,
    /// The reads on every command's and notification's path, run on the caller's thread.
    hot_reads: reads::HotReads,
    readers: SqlitePool,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) `dir/confer.db`, creating `dir` too, and applies migrations.
    pub async fn open(dir: impl AsRef<Path>) -> StoreResult<Self> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(DB_FILE_NAME);

        let base = SqliteConnectOptions::from_str("sqlite:")
            .map_err(|e| classify("open", e))?
            .filename(&path)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);

        // A setup connection creates the file, switches it to WAL (a persistent property of
        // the file, so the readers need not set it and must not: it needs an exclusive lock)
        // and migrates the schema; then the writer thread's own connection takes over.
        let mut setup = base
            .clone()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .connect()
            .await
            .map_err(|e| classify("open", e))?;
        migrations::run_sqlite(&mut setup).await?;
        let head = head_seq_on(&mut setup).await?;
        setup.close().await.map_err(|e| classify("open", e))?;
        let writer = open_writer(&path)?;

        // query_only makes a write through a reader an error instead of a second writer.
        let readers = SqlitePoolOptions::new()
            .max_connections(READERS)
            .min_connections(1)
            .connect_with(base.pragma("query_only", "ON"))
            .await
            .map_err(|e| classify("open", e))?;

        let writer = Writer::spawn(writer, head, &path)?;
        Ok(SqliteStore {
            writer,
            hot_reads: reads::HotReads::new(&path),
            readers,
            path,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the read pool and the writer connection, waiting for running operations (the
    /// writes already queued are still written and answered).
    pub async fn close(self) -> StoreResult<()> {
        self.readers.close().await;
        self.writer.close().await
    }

    /// How many write transactions group commit has run and how many writes they carried
    /// (`writes / transactions` is the average batch size).
    pub fn group_commit_stats(&self) -> GroupCommitStats {
        self.writer.stats()
    }

    /// Raises the wake-up value after a write made outside the writer's batches (a bulk load on
    /// a lent connection); never lowers it.
    fn wake(&self, seq: u64) {
        self.writer.wake(seq);
    }
}

/// The writer thread's connection: `synchronous=FULL` (a per-connection setting), foreign
/// keys, the busy timeout, and room for every statement the writes prepare.
fn open_writer(path: &Path) -> StoreResult<rusqlite::Connection> {
    let open = |e| classify_sqlite("open", e);
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open)?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(open)?;
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
        .map_err(open)?;
    conn.set_prepared_statement_cache_capacity(64);
    verify_durability(&conn)?;
    Ok(conn)
}

/// SQLite answers a pragma it cannot honour by keeping the old value (WAL is refused on file
/// systems without shared memory, for instance): check that the settings durability relies on
/// really are in force rather than trusting that they were requested.
fn verify_durability(conn: &rusqlite::Connection) -> StoreResult<()> {
    let pragma = |name: &str| -> StoreResult<rusqlite::types::Value> {
        conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
            .map_err(|e| classify_sqlite("open", e))
    };
    let journal = match pragma("journal_mode")? {
        rusqlite::types::Value::Text(mode) => mode,
        other => format!("{other:?}"),
    };
    let synchronous = match pragma("synchronous")? {
        rusqlite::types::Value::Integer(level) => level,
        _ => -1,
    };
    // synchronous: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA.
    if !journal.eq_ignore_ascii_case("wal") || synchronous < 2 {
        return Err(StoreError::Setup(format!(
            "SQLite runs with journal_mode={journal}, synchronous={synchronous}; \
             the store needs journal_mode=wal and synchronous=FULL (2) or more"
        )));
    }
    Ok(())
}

async fn head_seq_on(conn: &mut SqliteConnection) -> StoreResult<u64> {
    let seq: i64 = sqlx::query("SELECT seq FROM event_head WHERE id = 1")
        .fetch_one(&mut *conn)
        .await
        .and_then(|r| r.try_get(0))
        .map_err(|e| classify("head_seq", e))?;
    from_sql_int("event_head.seq", seq)
}

/// A conference row as read, before decoding (shared by the sqlx and rusqlite readers).
struct ConferenceRow {
    id: String,
    kind: String,
    version: i64,
    state: String,
    index_keys: String,
    live: bool,
    updated_at_ms: i64,
}

impl ConferenceRow {
    fn into_record(self) -> StoreResult<ConferenceRecord> {
        let index_keys = serde_json::from_str(&self.index_keys)
            .map_err(|e| StoreError::corrupt(format!("index_keys of conference {}", self.id), e))?;
        Ok(ConferenceRecord {
            kind: self.kind,
            version: from_sql_int("conference version", self.version)?,
            state: parse_json("conference state", &self.state)?,
            index_keys,
            live: self.live,
            updated_at_ms: self.updated_at_ms,
            id: self.id,
        })
    }
}

fn conference_from_row(row: &SqliteRow) -> StoreResult<ConferenceRecord> {
    let get = |e| classify("decode conference", e);
    ConferenceRow {
        id: row.try_get("id").map_err(get)?,
        kind: row.try_get("kind").map_err(get)?,
        version: row.try_get("version").map_err(get)?,
        state: row.try_get("state").map_err(get)?,
        index_keys: row.try_get("index_keys").map_err(get)?,
        live: row.try_get("live").map_err(get)?,
        updated_at_ms: row.try_get("updated_at_ms").map_err(get)?,
    }
    .into_record()
}

fn user_from_row(row: &SqliteRow) -> StoreResult<UserRecord> {
    let get = |e| classify("decode user", e);
    Ok(UserRecord {
        id: row.try_get("id").map_err(get)?,
        username: row.try_get("username").map_err(get)?,
        password_hash: row.try_get("password_hash").map_err(get)?,
        profile: parse_json(
            "user profile",
            &row.try_get::<String, _>("profile").map_err(get)?,
        )?,
    })
}

/// A CometD session with its subscriptions in one statement (one snapshot).
/// One page of expired idempotency records (SQLite has no `DELETE ... LIMIT` by default).
const PURGE_EXPIRED_IDEMPOTENCY: &str = "DELETE FROM idempotency WHERE (user_id, key) IN \
     (SELECT user_id, key FROM idempotency WHERE expires_at_ms <= ? ORDER BY expires_at_ms LIMIT ?)";

const COMETD_SESSION_SELECT: &str = "SELECT client_id, principal, principal_key, ack, cursor_seq, \
     connected, last_connect_ms, expires_at_ms, \
     (SELECT json_group_array(json_array(pattern, since)) FROM \
        (SELECT pattern, since FROM cometd_subscriptions s \
         WHERE s.client_id = cometd_sessions.client_id ORDER BY since, pattern)) AS subscriptions \
     FROM cometd_sessions WHERE client_id = ?1";

fn cometd_session_from_row(row: &SqliteRow) -> StoreResult<CometdSessionRecord> {
    let get = |e| classify("decode CometD session", e);
    CometdRow {
        client_id: row.try_get("client_id").map_err(get)?,
        principal: row.try_get("principal").map_err(get)?,
        principal_key: row.try_get("principal_key").map_err(get)?,
        ack: row.try_get("ack").map_err(get)?,
        cursor_seq: row.try_get("cursor_seq").map_err(get)?,
        connected: row.try_get("connected").map_err(get)?,
        last_connect_ms: row.try_get("last_connect_ms").map_err(get)?,
        expires_at_ms: row.try_get("expires_at_ms").map_err(get)?,
        subscriptions: row.try_get("subscriptions").map_err(get)?,
    }
    .into_record()
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.readers)
            .await
            .map(drop)
            .map_err(|e| classify("ping", e))
    }

    async fn get_conference(&self, id: &str) -> StoreResult<Option<ConferenceRecord>> {
        let op = "get_conference";
        self.hot_reads.read(op, |conn| {
            conn.prepare_cached(
                "SELECT id, kind, version, state, index_keys, live, updated_at_ms \
                 FROM conferences WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.query_row([id], |r| {
                    Ok(ConferenceRow {
                        id: r.get(0)?,
                        kind: r.get(1)?,
                        version: r.get(2)?,
                        state: r.get(3)?,
                        index_keys: r.get(4)?,
                        live: r.get(5)?,
                        updated_at_ms: r.get(6)?,
                    })
                })
                .optional()
            })
            .map_err(|e| classify_sqlite(op, e))?
            .map(ConferenceRow::into_record)
            .transpose()
        })
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
             WHERE i.key = ?1 AND i.conference_id > ?2 AND (c.live = 1 OR ?3 = 0) \
             ORDER BY i.conference_id LIMIT ?4",
        )
        .bind(index_key)
        .bind(after_id.unwrap_or(""))
        .bind(live_only)
        .bind(sql_limit(limit))
        .fetch_all(&self.readers)
        .await
        .map_err(|e| classify("list_conferences", e))?;
        rows.iter().map(conference_from_row).collect()
    }

    async fn commit(&self, commit: Commit) -> StoreResult<CommitOutcome> {
        // Checked and serialized in the caller's task: the writer thread is the bottleneck.
        let prepared = PreparedCommit::new(commit)?;
        self.writer
            .write(
                "commit",
                |outcome: &CommitOutcome| Some(outcome.last_seq),
                move |conn| prepared.run(conn),
            )
            .await
    }

    async fn read_events(&self, after_seq: u64, limit: u32) -> StoreResult<Vec<StoredEvent>> {
        let after = to_sql_int("after_seq", after_seq)?;
        self.hot_reads.events(
            "read_events",
            "SELECT seq, conference_id, conference_version, kind, payload, committed_at_ms \
             FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            params![after, sql_limit(limit)],
        )
    }

    async fn conference_history(
        &self,
        conference_id: &str,
        up_to_version: u64,
    ) -> StoreResult<ConferenceHistory> {
        // "Up to any version" (u64::MAX) is every event: clamp to the column's range.
        self.hot_reads.history(
            conference_id,
            i64::try_from(up_to_version).unwrap_or(i64::MAX),
        )
    }

    async fn prune_history(
        &self,
        unchanged_before_ms: i64,
        after_seq: u64,
        limit: u32,
    ) -> StoreResult<PruneProgress> {
        let after = to_sql_int("after_seq", after_seq)?;
        self.writer
            .write("prune_history", no_head, move |conn| {
                retention::prune_history(conn, unchanged_before_ms, after, limit)
            })
            .await
    }

    async fn prune_ended(&self, ended_before_ms: i64, limit: u32) -> StoreResult<u64> {
        self.writer
            .write("prune_ended", no_head, move |conn| {
                retention::prune_ended(conn, ended_before_ms, limit)
            })
            .await
    }

    async fn get_or_insert_setting(&self, key: &str, value: &str) -> StoreResult<String> {
        let op = "get_or_insert_setting";
        let (key, value) = (key.to_owned(), value.to_owned());
        self.writer
            .write(op, no_head, move |conn| {
                let err = |e| classify_sqlite(op, e);
                conn.prepare_cached(
                    "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                )
                .and_then(|mut s| s.execute(params![key, value]))
                .map_err(err)?;
                conn.prepare_cached("SELECT value FROM settings WHERE key = ?1")
                    .and_then(|mut s| s.query_row([&key], |r| r.get(0)))
                    .map_err(err)
            })
            .await
    }

    async fn delete_setting(&self, key: &str) -> StoreResult<bool> {
        let op = "delete_setting";
        let key = key.to_owned();
        self.writer
            .write(op, no_head, move |conn| {
                changed(
                    conn,
                    op,
                    "DELETE FROM settings WHERE key = ?1",
                    params![key],
                )
                .map(|n| n > 0)
            })
            .await
    }

    async fn head_seq(&self) -> StoreResult<u64> {
        let seq: i64 = sqlx::query_scalar("SELECT seq FROM event_head WHERE id = 1")
            .fetch_one(&self.readers)
            .await
            .map_err(|e| classify("head_seq", e))?;
        from_sql_int("event_head.seq", seq)
    }

    fn subscribe_wakeups(&self) -> watch::Receiver<u64> {
        self.writer.subscribe()
    }

    async fn get_idempotency(
        &self,
        user_id: &str,
        key: &str,
        now_ms: i64,
    ) -> StoreResult<Option<IdempotencyRecord>> {
        let op = "get_idempotency";
        self.hot_reads.read(op, |conn| {
            let row = conn
                .prepare_cached(
                    "SELECT user_id, key, request_fingerprint, response, expires_at_ms \
                     FROM idempotency WHERE user_id = ?1 AND key = ?2 AND expires_at_ms > ?3",
                )
                .and_then(|mut s| {
                    s.query_row(params![user_id, key, now_ms], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, i64>(4)?,
                        ))
                    })
                    .optional()
                })
                .map_err(|e| classify_sqlite(op, e))?;
            let Some((user_id, key, request_fingerprint, response, expires_at_ms)) = row else {
                return Ok(None);
            };
            Ok(Some(IdempotencyRecord {
                user_id,
                key,
                request_fingerprint,
                response: parse_json("idempotency response", &response)?,
                expires_at_ms,
            }))
        })
    }

    async fn purge_expired(&self, now_ms: i64, limit: u32) -> StoreResult<u64> {
        let op = "purge_expired";
        self.writer
            .write(op, no_head, move |conn| {
                changed(
                    conn,
                    op,
                    PURGE_EXPIRED_IDEMPOTENCY,
                    params![now_ms, i64::from(limit)],
                )
                .map(|n| n as u64)
            })
            .await
    }

    async fn put_user(&self, user: UserRecord) -> StoreResult<()> {
        check_user(&user)?;
        self.writer
            .write("put_user", no_head, move |conn| put_user_on(conn, user))
            .await
    }

    async fn update_user(&self, user: UserRecord) -> StoreResult<()> {
        check_user(&user)?;
        self.writer
            .write("update_user", no_head, move |conn| {
                update_user_on(conn, user)
            })
            .await
    }

    async fn delete_user(&self, id: &str) -> StoreResult<bool> {
        let op = "delete_user";
        let id = id.to_owned();
        self.writer
            .write(op, no_head, move |conn| {
                changed(conn, op, "DELETE FROM users WHERE id = ?1", params![id]).map(|n| n > 0)
            })
            .await
    }

    async fn get_user(&self, id: &str) -> StoreResult<Option<UserRecord>> {
        sqlx::query("SELECT id, username, password_hash, profile FROM users WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.readers)
            .await
            .map_err(|e| classify("get_user", e))?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn get_user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        sqlx::query("SELECT id, username, password_hash, profile FROM users WHERE username = ?")
            .bind(username)
            .fetch_optional(&self.readers)
            .await
            .map_err(|e| classify("get_user_by_username", e))?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn list_users(&self, after_id: Option<&str>, limit: u32) -> StoreResult<Vec<UserRecord>> {
        let rows = sqlx::query(
            "SELECT id, username, password_hash, profile FROM users WHERE id > ? \
             ORDER BY id LIMIT ?",
        )
        .bind(after_id.unwrap_or(""))
        .bind(sql_limit(limit))
        .fetch_all(&self.readers)
        .await
        .map_err(|e| classify("list_users", e))?;
        rows.iter().map(user_from_row).collect()
    }

    async fn create_cometd_session(&self, session: CometdSessionRecord) -> StoreResult<bool> {
        check_cometd_session(&session)?;
        self.writer
            .write("create_cometd_session", no_head, move |conn| {
                create_cometd_session_on(conn, session)
            })
            .await
    }

    async fn load_cometd_session(
        &self,
        client_id: &str,
    ) -> StoreResult<Option<CometdSessionRecord>> {
        sqlx::query(COMETD_SESSION_SELECT)
            .bind(client_id)
            .fetch_optional(&self.readers)
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
        let op = "add_cometd_subscription";
        let since = to_sql_int("since", since)?;
        let (client_id, pattern) = (client_id.to_owned(), pattern.to_owned());
        self.writer
            .write(op, no_head, move |conn| {
                // One writer: the existence check and the insert cannot be split by a delete.
                let added = changed(
                    conn,
                    op,
                    "INSERT INTO cometd_subscriptions (client_id, pattern, since) \
                     SELECT client_id, ?1, ?2 FROM cometd_sessions WHERE client_id = ?3 \
                     ON CONFLICT DO NOTHING",
                    params![pattern, since, client_id],
                )?;
                if added == 1 {
                    return Ok(true);
                }
                session_exists(conn, &client_id, op)
            })
            .await
    }

    async fn remove_cometd_subscription(
        &self,
        client_id: &str,
        pattern: &str,
    ) -> StoreResult<bool> {
        let op = "remove_cometd_subscription";
        let (client_id, pattern) = (client_id.to_owned(), pattern.to_owned());
        self.writer
            .write(op, no_head, move |conn| {
                changed(
                    conn,
                    op,
                    "DELETE FROM cometd_subscriptions WHERE client_id = ?1 AND pattern = ?2",
                    params![client_id, pattern],
                )?;
                session_exists(conn, &client_id, op)
            })
            .await
    }

    async fn record_cometd_connect(
        &self,
        client_id: &str,
        update: CometdConnect,
    ) -> StoreResult<Option<CometdSessionRecord>> {
        let op = "record_cometd_connect";
        let cursor = update
            .cursor_at_least
            .map(|c| to_sql_int("cursor", c))
            .transpose()?;
        let now = to_sql_int("now_ms", update.now_ms)?;
        let expires = to_sql_int("expires_at_ms", update.expires_at_ms)?;
        let client_id = client_id.to_owned();
        self.writer
            .write(op, no_head, move |conn| {
                let updated = changed(
                    conn,
                    op,
                    "UPDATE cometd_sessions SET \
                     cursor_seq = max(cursor_seq, coalesce(?1, cursor_seq)), \
                     connected = 1, last_connect_ms = ?2, expires_at_ms = ?3 \
                     WHERE client_id = ?4",
                    params![cursor, now, expires, client_id],
                )?;
                if updated == 0 {
                    return Ok(None);
                }
                // Still the writer: nothing can change the session between the update and
                // this read.
                let row = conn
                    .prepare_cached(COMETD_SESSION_SELECT)
                    .and_then(|mut s| {
                        s.query_row([&client_id], |r| {
                            Ok(CometdRow {
                                client_id: r.get("client_id")?,
                                principal: r.get("principal")?,
                                principal_key: r.get("principal_key")?,
                                ack: r.get("ack")?,
                                cursor_seq: r.get("cursor_seq")?,
                                connected: r.get("connected")?,
                                last_connect_ms: r.get("last_connect_ms")?,
                                expires_at_ms: r.get("expires_at_ms")?,
                                subscriptions: r.get("subscriptions")?,
                            })
                        })
                        .optional()
                    })
                    .map_err(|e| classify_sqlite(op, e))?;
                row.map(CometdRow::into_record).transpose()
            })
            .await
    }

    async fn delete_cometd_session(&self, client_id: &str) -> StoreResult<bool> {
        let op = "delete_cometd_session";
        let client_id = client_id.to_owned();
        self.writer
            .write(op, no_head, move |conn| {
                // Subscriptions go with it (ON DELETE CASCADE; foreign keys are on).
                changed(
                    conn,
                    op,
                    "DELETE FROM cometd_sessions WHERE client_id = ?1",
                    params![client_id],
                )
                .map(|n| n == 1)
            })
            .await
    }

    async fn expired_cometd_sessions(&self, now_ms: u64, limit: u32) -> StoreResult<Vec<String>> {
        sqlx::query_scalar(
            "SELECT client_id FROM cometd_sessions WHERE expires_at_ms < ? \
             ORDER BY expires_at_ms LIMIT ?",
        )
        .bind(to_sql_int("now_ms", now_ms)?)
        .bind(sql_limit(limit))
        .fetch_all(&self.readers)
        .await
        .map_err(|e| classify("expired_cometd_sessions", e))
    }

    async fn cometd_sessions_of(&self, principal_key: &str) -> StoreResult<Vec<(String, u64)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT client_id, expires_at_ms FROM cometd_sessions WHERE principal_key = ? \
             ORDER BY expires_at_ms, client_id",
        )
        .bind(principal_key)
        .fetch_all(&self.readers)
        .await
        .map_err(|e| classify("cometd_sessions_of", e))?;
        rows.into_iter()
            .map(|(id, expires)| Ok((id, from_sql_int("expires_at_ms", expires)?)))
            .collect()
    }

    async fn count_cometd_sessions(&self) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM cometd_sessions")
            .fetch_one(&self.readers)
            .await
            .map_err(|e| classify("count_cometd_sessions", e))?;
        from_sql_int("CometD session count", n)
    }
}

/// Runs one write statement on the writer's connection; the number of rows it changed.
fn changed(
    conn: &rusqlite::Connection,
    op: &'static str,
    sql: &str,
    params: impl rusqlite::Params,
) -> StoreResult<usize> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.execute(params))
        .map_err(|e| classify_sqlite(op, e))
}

/// `put_user` on the writer's connection.
fn put_user_on(conn: &rusqlite::Connection, user: UserRecord) -> StoreResult<()> {
    let op = "put_user";
    let inserted = changed(
        conn,
        op,
        "INSERT INTO users (id, username, password_hash, profile) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT DO NOTHING",
        params![
            user.id,
            user.username,
            user.password_hash,
            json_text(&user.profile)
        ],
    )?;
    if inserted == 1 {
        return Ok(());
    }
    let username_taken = conn
        .prepare_cached("SELECT 1 FROM users WHERE username = ?1")
        .and_then(|mut s| s.exists([&user.username]))
        .map_err(|e| classify_sqlite(op, e))?;
    Err(if username_taken {
        StoreError::UsernameTaken {
            username: user.username,
        }
    } else {
        StoreError::UserExists { id: user.id }
    })
}

/// `update_user` on the writer's connection. A taken username is an error the writer rolls
/// back like any other (a failed statement leaves the transaction usable in SQLite).
fn update_user_on(conn: &rusqlite::Connection, user: UserRecord) -> StoreResult<()> {
    let result = conn
        .prepare_cached(
            "UPDATE users SET username = ?1, password_hash = ?2, profile = ?3 WHERE id = ?4",
        )
        .and_then(|mut s| {
            s.execute(params![
                user.username,
                user.password_hash,
                json_text(&user.profile),
                user.id
            ])
        });
    match result {
        Ok(0) => Err(StoreError::NotFound {
            what: "user",
            id: user.id,
        }),
        Ok(_) => Ok(()),
        Err(e) if is_sqlite_unique_violation(&e) => Err(StoreError::UsernameTaken {
            username: user.username,
        }),
        Err(e) => Err(classify_sqlite("update_user", e)),
    }
}

/// `create_cometd_session` on the writer's connection: the session and its subscriptions in
/// the writer's transaction.
fn create_cometd_session_on(
    conn: &rusqlite::Connection,
    session: CometdSessionRecord,
) -> StoreResult<bool> {
    let op = "create_cometd_session";
    let inserted = changed(
        conn,
        op,
        "INSERT INTO cometd_sessions (client_id, principal, principal_key, ack, cursor_seq, \
         connected, last_connect_ms, expires_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
         ON CONFLICT DO NOTHING",
        params![
            session.client_id,
            json_text(&session.principal),
            session.principal_key,
            session.ack,
            to_sql_int("cursor", session.cursor)?,
            session.connected,
            to_sql_int("last_connect_ms", session.last_connect_ms)?,
            to_sql_int("expires_at_ms", session.expires_at_ms)?
        ],
    )? == 1;
    if !inserted {
        return Ok(false);
    }
    for sub in &session.subscriptions {
        changed(
            conn,
            op,
            "INSERT INTO cometd_subscriptions (client_id, pattern, since) VALUES (?1, ?2, ?3) \
             ON CONFLICT DO NOTHING",
            params![
                session.client_id,
                sub.pattern,
                to_sql_int("since", sub.since)?
            ],
        )?;
    }
    Ok(true)
}

/// A CometD session row as read, before decoding (shared by the sqlx readers and the writer).
struct CometdRow {
    client_id: String,
    principal: String,
    principal_key: String,
    ack: bool,
    cursor_seq: i64,
    connected: bool,
    last_connect_ms: i64,
    expires_at_ms: i64,
    subscriptions: String,
}

impl CometdRow {
    fn into_record(self) -> StoreResult<CometdSessionRecord> {
        Ok(CometdSessionRecord {
            client_id: self.client_id,
            principal: parse_json("CometD principal", &self.principal)?,
            principal_key: self.principal_key,
            subscriptions: parse_cometd_subscriptions(&parse_json(
                "CometD subscriptions",
                &self.subscriptions,
            )?)?,
            ack: self.ack,
            cursor: from_sql_int("cursor_seq", self.cursor_seq)?,
            connected: self.connected,
            last_connect_ms: from_sql_int("last_connect_ms", self.last_connect_ms)?,
            expires_at_ms: from_sql_int("expires_at_ms", self.expires_at_ms)?,
        })
    }
}

/// For writes that add no events: nothing to wake readers for.
fn no_head<T>(_: &T) -> Option<u64> {
    None
}

fn session_exists(
    conn: &rusqlite::Connection,
    client_id: &str,
    op: &'static str,
) -> StoreResult<bool> {
    conn.prepare_cached("SELECT 1 FROM cometd_sessions WHERE client_id = ?1")
        .and_then(|mut s| s.exists([client_id]))
        .map_err(|e| classify_sqlite(op, e))
}
