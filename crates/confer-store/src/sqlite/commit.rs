//! [`Store::commit`](crate::Store::commit) on SQLite, run by the writer thread.
//!
//! The writer thread is the only connection that writes, and it runs commits one after the
//! other inside its transaction (`writer.rs`), so a commit may read, check and then write
//! without a conditional statement: nothing can change the row between the check and the
//! write. Each statement is prepared once and kept in the connection's statement cache. A
//! commit that finds a check failed returns its error before writing anything further; the
//! writer rolls back whatever it wrote (its savepoint).

use rusqlite::{Connection, OptionalExtension as _, params};

use crate::codec::{CheckedCommit, check_commit, from_sql_int, json_text, now_ms, to_sql_int};
use crate::error::{StoreError, classify_sqlite};
use crate::records::{Commit, CommitOutcome};
use crate::store::StoreResult;

const OP: &str = "commit";

/// A commit checked and serialized in the caller's task, before it is queued for the writer
/// (the writer thread is the bottleneck; the callers' threads are many).
pub(super) struct PreparedCommit {
    commit: Commit,
    checked: CheckedCommit,
    state: String,
    keys: String,
    /// Each event's kind and payload JSON text.
    events: Vec<(String, String)>,
    idempotency_response: Option<String>,
}

fn sql(e: rusqlite::Error) -> StoreError {
    classify_sqlite(OP, e)
}

impl PreparedCommit {
    pub(super) fn new(commit: Commit) -> StoreResult<Self> {
        let checked = check_commit(&commit)?;
        let c = &commit.conference;
        to_sql_int("event count", commit.events.len() as u64)?;
        Ok(PreparedCommit {
            checked,
            state: json_text(&c.state),
            keys: json_text(&serde_json::Value::from(c.index_keys.clone())),
            events: commit
                .events
                .iter()
                .map(|e| (e.kind.clone(), json_text(&e.payload)))
                .collect(),
            idempotency_response: commit.idempotency.as_ref().map(|i| json_text(&i.response)),
            commit,
        })
    }

    /// Writes the commit on the writer's connection, inside the writer's transaction (and the
    /// commit's savepoint when it shares the transaction). Returns every error it meets, and
    /// an error whenever a check failed: the writer then rolls the commit back.
    pub(super) fn run(self, conn: &Connection) -> StoreResult<CommitOutcome> {
        let c = &self.commit.conference;
        let version = self.checked.version;

        // 1. The conference row, on the expected version (or on absence), and where its log
        // starts if its early history was pruned.
        let found: Option<(i64, Option<i64>)> = conn
            .prepare_cached(
                "SELECT c.version, s.version FROM conferences c \
                 LEFT JOIN conference_log_starts s ON s.conference_id = c.id WHERE c.id = ?1",
            )
            .and_then(|mut s| {
                s.query_row([&c.id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(sql)?;
        let actual = found.map(|(version, _)| version);
        if actual != self.checked.expected {
            return Err(StoreError::Conflict {
                id: c.id.clone(),
                expected: self.commit.expected_version,
                actual: actual
                    .map(|v| from_sql_int("conference version", v))
                    .transpose()?,
            });
        }
        let row = params![
            c.id,
            c.kind,
            version,
            self.state,
            self.keys,
            c.live,
            c.updated_at_ms
        ];
        if actual.is_none() {
            conn.prepare_cached(
                "INSERT INTO conferences (id, kind, version, state, index_keys, live, \
                 updated_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut s| s.execute(row))
            .map_err(sql)?;
        } else {
            // The first commit after its history was pruned keeps the state it replaces: the
            // base the retained events apply to (see the migration).
            if let Some((current, Some(log_start))) = found
                && current == log_start
            {
                conn.prepare_cached(
                    "UPDATE conference_log_starts SET base_state = \
                     (SELECT state FROM conferences WHERE id = ?1) WHERE conference_id = ?1",
                )
                .and_then(|mut s| s.execute([&c.id]))
                .map_err(sql)?;
            }
            conn.prepare_cached(
                "UPDATE conferences SET kind = ?2, version = ?3, state = ?4, index_keys = ?5, \
                 live = ?6, updated_at_ms = ?7 WHERE id = ?1",
            )
            .and_then(|mut s| s.execute(row))
            .map_err(sql)?;
            // Index keys no longer listed go; unchanged ones are not rewritten.
            conn.prepare_cached(
                "DELETE FROM conference_index WHERE conference_id = ?1 \
                 AND key NOT IN (SELECT value FROM json_each(?2))",
            )
            .and_then(|mut s| s.execute(params![c.id, self.keys]))
            .map_err(sql)?;
        }
        conn.prepare_cached(
            "INSERT OR IGNORE INTO conference_index (key, conference_id) \
             SELECT value, ?1 FROM json_each(?2)",
        )
        .and_then(|mut s| s.execute(params![c.id, self.keys]))
        .map_err(sql)?;

        let now = now_ms();
        // 2. The idempotency record, replacing only an expired one.
        if let Some(idem) = &self.commit.idempotency {
            let stored = conn
                .prepare_cached(
                    "INSERT INTO idempotency (user_id, key, request_fingerprint, response, \
                     expires_at_ms) VALUES (?1, ?2, ?3, ?4, ?5) \
                     ON CONFLICT (user_id, key) DO UPDATE SET \
                     request_fingerprint = excluded.request_fingerprint, \
                     response = excluded.response, expires_at_ms = excluded.expires_at_ms \
                     WHERE idempotency.expires_at_ms <= ?6",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        idem.user_id,
                        idem.key,
                        idem.request_fingerprint,
                        self.idempotency_response,
                        idem.expires_at_ms,
                        now
                    ])
                })
                .map_err(sql)?;
            if stored == 0 {
                return Err(StoreError::IdempotencyKeyInUse {
                    user_id: idem.user_id.clone(),
                    key: idem.key.clone(),
                });
            }
        }

        // 3. Seq allocation and the events, last. The writer thread already orders commits; the
        // head row is what makes the allocation survive restarts and stay gap-free (a commit
        // rolled back to its savepoint rolls its allocation back too).
        let n_events = self.events.len() as i64;
        let head: i64 = if n_events == 0 {
            conn.prepare_cached("SELECT seq FROM event_head WHERE id = 1")
                .and_then(|mut s| s.query_row([], |r| r.get(0)).optional())
        } else {
            conn.prepare_cached("UPDATE event_head SET seq = seq + ?1 WHERE id = 1 RETURNING seq")
                .and_then(|mut s| s.query_row([n_events], |r| r.get(0)).optional())
        }
        .map_err(sql)?
        .ok_or_else(|| StoreError::Corrupt {
            what: "event_head has no row".into(),
            source: None,
        })?;
        if n_events > 0 {
            let mut insert = conn
                .prepare_cached(
                    "INSERT INTO events (seq, conference_id, conference_version, kind, payload, \
                     committed_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(sql)?;
            for (seq, (kind, payload)) in (head - n_events + 1..).zip(&self.events) {
                insert
                    .execute(params![seq, c.id, version, kind, payload, now])
                    .map_err(sql)?;
            }
        }
        let head = from_sql_int("event_head.seq", head)?;
        Ok(CommitOutcome {
            first_seq: (head + 1).saturating_sub(n_events.unsigned_abs()),
            last_seq: head,
        })
    }
}
