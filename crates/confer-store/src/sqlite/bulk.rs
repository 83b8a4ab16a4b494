//! [`SqliteStore::bulk_load`]: see [`crate::bulk`].

use rusqlite::{Connection, ToSql, TransactionBehavior};

use super::SqliteStore;
use crate::bulk::{BulkLoad, BulkOutcome, check_load};
use crate::codec::{from_sql_int, json_text, now_ms, to_sql_int};
use crate::error::classify_sqlite;
use crate::records::CommitOutcome;
use crate::store::StoreResult;

/// Rows per multi-row INSERT: at most 7 parameters each, far below SQLite's 32766 limit, and
/// big enough that the per-statement cost disappears.
const ROWS_PER_INSERT: usize = 1000;

/// Page cache of the writer during a bulk load, in KiB (SQLite's negative `cache_size`): with
/// the default 2 MiB, every insert at a random key of a big B-tree reads and writes its pages
/// again; a bigger cache keeps the upper levels and recent leaves in memory. Restored after.
const BULK_CACHE_KIB: i64 = 256 * 1024;

/// One conference row, serialized.
struct ConferenceRow<'a> {
    id: &'a str,
    kind: &'a str,
    version: i64,
    state: String,
    keys: String,
    live: bool,
    updated_at_ms: i64,
}

impl SqliteStore {
    /// Stores `load` in one transaction (see [`crate::bulk`]); returns only once it is durable.
    pub async fn bulk_load(&self, load: &BulkLoad) -> StoreResult<BulkOutcome> {
        check_load(load)?;
        let op = "bulk_load";
        // Serialize before taking the writer: the writer is the throughput bottleneck.
        let mut rows = Vec::with_capacity(load.conferences.len());
        for item in &load.conferences {
            let c = &item.conference;
            rows.push(ConferenceRow {
                id: &c.id,
                kind: &c.kind,
                version: to_sql_int("version", c.version)?,
                state: json_text(&c.state),
                keys: json_text(&serde_json::Value::from(c.index_keys.clone())),
                live: c.live,
                updated_at_ms: c.updated_at_ms,
            });
        }
        // In id order: consecutive inserts then land in neighbouring B-tree pages.
        rows.sort_unstable_by(|a, b| a.id.cmp(b.id));
        // Distinct per conference, as `commit` stores them (its INSERT OR IGNORE).
        let mut index: Vec<(&str, &str)> = load
            .conferences
            .iter()
            .flat_map(|item| {
                let c = &item.conference;
                let mut keys: Vec<&str> = c.index_keys.iter().map(String::as_str).collect();
                keys.sort_unstable();
                keys.dedup();
                keys.into_iter().map(move |key| (key, c.id.as_str()))
            })
            .collect();
        index.sort_unstable();
        let mut events = Vec::new();
        for item in &load.conferences {
            let version = to_sql_int("version", item.conference.version)?;
            for event in &item.events {
                events.push((
                    item.conference.id.as_str(),
                    version,
                    event.kind.as_str(),
                    json_text(&event.payload),
                ));
            }
        }
        let profiles: Vec<String> = load.users.iter().map(|u| json_text(&u.profile)).collect();

        // The writer's connection, lent: group commits wait until it is handed back. The load
        // runs on this thread, blocking it: bulk loads fill a store before a server serves it.
        let mut lent = self.writer.lend(op).await?;
        let conn = lent.get();
        let cache_size: i64 = conn
            .query_row("PRAGMA cache_size", [], |r| r.get(0))
            .map_err(|e| classify_sqlite(op, e))?;
        set_cache_size(conn, -BULK_CACHE_KIB, op)?;
        let result = insert_all(conn, load, &profiles, &rows, &index, &events);
        // Restored whatever happened: the connection serves ordinary commits afterwards.
        let restored = set_cache_size(conn, cache_size, op);
        drop(lent);
        let outcome = result?;
        restored?;
        self.wake(outcome.last_seq);
        Ok(BulkOutcome {
            users: load.users.len() as u64,
            conferences: load.conferences.len() as u64,
            events: outcome,
        })
    }
}

fn set_cache_size(conn: &Connection, value: i64, op: &'static str) -> StoreResult<()> {
    // An integer we format ourselves: nothing to inject.
    conn.execute_batch(&format!("PRAGMA cache_size = {value}"))
        .map_err(|e| classify_sqlite(op, e))
}

/// One multi-row `INSERT` of `rows` (each a list of values) into `table (columns)`.
fn insert_rows<'a, R>(
    conn: &Connection,
    head: &str,
    columns: usize,
    rows: &'a [R],
    values: impl Fn(&'a R) -> Vec<&'a dyn ToSql>,
) -> StoreResult<()> {
    let op = "bulk_load";
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let row = format!("({})", vec!["?"; columns].join(", "));
        let sql = format!("{head} VALUES {}", vec![row; chunk.len()].join(", "));
        let params: Vec<&dyn ToSql> = chunk.iter().flat_map(&values).collect();
        conn.execute(&sql, params.as_slice())
            .map_err(|e| classify_sqlite(op, e))?;
    }
    Ok(())
}

/// The whole load in one `BEGIN IMMEDIATE` transaction; a dropped transaction rolls back.
fn insert_all(
    conn: &mut Connection,
    load: &BulkLoad,
    profiles: &[String],
    rows: &[ConferenceRow<'_>],
    index: &[(&str, &str)],
    events: &[(&str, i64, &str, String)],
) -> StoreResult<CommitOutcome> {
    let op = "bulk_load";
    let err = |e| classify_sqlite(op, e);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err)?;

    let users: Vec<_> = load.users.iter().zip(profiles).collect();
    insert_rows(
        &tx,
        "INSERT INTO users (id, username, password_hash, profile)",
        4,
        &users,
        |(user, profile)| vec![&user.id, &user.username, &user.password_hash, *profile],
    )?;
    insert_rows(
        &tx,
        "INSERT INTO conferences (id, kind, version, state, index_keys, live, updated_at_ms)",
        7,
        rows,
        |c| {
            vec![
                &c.id,
                &c.kind,
                &c.version,
                &c.state,
                &c.keys,
                &c.live,
                &c.updated_at_ms,
            ]
        },
    )?;
    insert_rows(
        &tx,
        "INSERT INTO conference_index (key, conference_id)",
        2,
        index,
        |(key, id)| vec![key, id],
    )?;

    // Seqs: only the writer's connection writes, so this is ordered with every commit, as in
    // `commit`.
    let n_events = to_sql_int("event count", events.len() as u64)?;
    let head: i64 = tx
        .query_row(
            "UPDATE event_head SET seq = seq + ?1 WHERE id = 1 RETURNING seq",
            [n_events],
            |r| r.get(0),
        )
        .map_err(err)?;
    let first = head - n_events + 1;
    let committed_at = now_ms();
    let numbered: Vec<_> = events.iter().zip(first..).collect();
    insert_rows(
        &tx,
        "INSERT INTO events (seq, conference_id, conference_version, kind, payload, \
         committed_at_ms)",
        6,
        &numbered,
        |((id, version, kind, payload), seq)| vec![seq, id, version, kind, payload, &committed_at],
    )?;

    tx.commit().map_err(err)?;
    Ok(CommitOutcome {
        first_seq: from_sql_int("event seq", first)?,
        last_seq: from_sql_int("event seq", head)?,
    })
}
