//! The reads on the hot path (a conference before a command, the event log a feed tails, an
//! idempotency record), run by the calling task on its own thread, on a few `rusqlite`
//! connections kept for it.
//!
//! Why on the caller's thread: each is a point lookup or a short range scan in WAL mode,
//! which never waits for the writer (a reader sees the last committed snapshot), and takes
//! microseconds from the page cache; handing it to a connection thread and back (sqlx's
//! SQLite driver) cost more CPU than the read itself. Reads that can be long (listing pages,
//! users, CometD sessions) stay on sqlx's pool, off the runtime's threads.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension as _, params};

use crate::codec::{from_sql_int, parse_json};
use crate::error::{StoreError, classify_sqlite};
use crate::records::{ConferenceHistory, HistoryBase, StoredEvent};
use crate::store::StoreResult;

/// Connections kept between reads; more are opened when more reads run at once, and closed
/// after.
const KEPT: usize = 4;

pub(super) struct HotReads {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl HotReads {
    pub(super) fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
        }
    }

    fn open(&self, op: &'static str) -> StoreResult<Connection> {
        let err = |e| classify_sqlite(op, e);
        // Read-only: a write through a reader is an error instead of a second writer.
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(err)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(err)?;
        conn.set_prepared_statement_cache_capacity(16);
        Ok(conn)
    }

    /// Runs `read` on an idle connection (or a new one).
    pub(super) fn read<T>(
        &self,
        op: &'static str,
        read: impl FnOnce(&Connection) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.open(op)?,
        };
        let result = read(&conn);
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < KEPT {
            idle.push(conn);
        }
        result
    }

    /// Events selected by `sql` (its columns in `StoredEvent` order).
    pub(super) fn events(
        &self,
        op: &'static str,
        sql: &'static str,
        params: impl rusqlite::Params,
    ) -> StoreResult<Vec<StoredEvent>> {
        self.read(op, |conn| events_on(conn, op, sql, params))
    }

    /// A conference's base (once its history was pruned) and its events up to `up_to_version`,
    /// in one read transaction: a prune committed between two separate reads would leave
    /// events that the base already includes, or a base without the events after it.
    pub(super) fn history(
        &self,
        conference_id: &str,
        up_to_version: i64,
    ) -> StoreResult<ConferenceHistory> {
        let op = "conference_history";
        self.read(op, |conn| {
            let err = |e| classify_sqlite(op, e);
            let snapshot = conn.unchecked_transaction().map_err(err)?;
            let start: Option<(i64, Option<String>)> = snapshot
                .prepare_cached(
                    "SELECT s.version, CASE WHEN s.version = c.version THEN c.state \
                     ELSE s.base_state END FROM conference_log_starts s \
                     JOIN conferences c ON c.id = s.conference_id WHERE s.conference_id = ?1",
                )
                .and_then(|mut s| {
                    s.query_row([conference_id], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()
                })
                .map_err(err)?;
            let base = match start {
                None => None,
                Some((version, Some(state))) => Some(HistoryBase {
                    version: from_sql_int("conference log start", version)?,
                    state: parse_json("conference base state", &state)?,
                }),
                Some((version, None)) => {
                    return Err(StoreError::Corrupt {
                        what: format!(
                            "conference {conference_id} starts its log after version {version} \
                             but has no state for it"
                        ),
                        source: None,
                    });
                }
            };
            let events = events_on(
                &snapshot,
                op,
                "SELECT seq, conference_id, conference_version, kind, payload, committed_at_ms \
                 FROM events WHERE conference_id = ?1 AND conference_version <= ?2 \
                 ORDER BY conference_version, seq",
                params![conference_id, up_to_version],
            )?;
            Ok(ConferenceHistory { base, events })
        })
    }
}

/// Events selected by `sql` (its columns in `StoredEvent` order) on `conn`.
fn events_on(
    conn: &Connection,
    op: &'static str,
    sql: &'static str,
    params: impl rusqlite::Params,
) -> StoreResult<Vec<StoredEvent>> {
    let rows: Vec<(i64, String, i64, String, String, i64)> = conn
        .prepare_cached(sql)
        .and_then(|mut s| {
            s.query_map(params, |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })?
            .collect()
        })
        .map_err(|e| classify_sqlite(op, e))?;
    rows.into_iter()
        .map(
            |(seq, conference_id, version, kind, payload, committed_at_ms)| {
                Ok(StoredEvent {
                    seq: from_sql_int("event seq", seq)?,
                    conference_id,
                    conference_version: from_sql_int("event conference_version", version)?,
                    kind,
                    payload: parse_json("event payload", &payload)?,
                    committed_at_ms,
                })
            },
        )
        .collect::<Result<_, StoreError>>()
}
