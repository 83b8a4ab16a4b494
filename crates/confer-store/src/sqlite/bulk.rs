//! [`SqliteStore::bulk_load`]: see [`crate::bulk`].

use sqlx::{Connection as _, QueryBuilder, Sqlite, SqliteConnection};

use super::SqliteStore;
use crate::bulk::{BulkLoad, BulkOutcome, check_load};
use crate::codec::{from_sql_int, json_text, now_ms, to_sql_int};
use crate::error::classify;
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

        // The writer's connection, lent: group commits wait until it is handed back.
        let mut writer = self.writer.lend(op).await?;
        let cache_size: i64 = sqlx::query_scalar("PRAGMA cache_size")
            .fetch_one(&mut *writer)
            .await
            .map_err(|e| classify(op, e))?;
        set_cache_size(&mut writer, -BULK_CACHE_KIB, op).await?;
        let result = insert_all(&mut writer, load, &profiles, &rows, &index, &events).await;
        // Restored whatever happened: the connection serves ordinary commits afterwards.
        let restored = set_cache_size(&mut writer, cache_size, op).await;
        drop(writer);
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

async fn set_cache_size(
    conn: &mut SqliteConnection,
    value: i64,
    op: &'static str,
) -> StoreResult<()> {
    // An integer we format ourselves: nothing to inject.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("PRAGMA cache_size = {value}")))
        .execute(conn)
        .await
        .map(drop)
        .map_err(|e| classify(op, e))
}

/// The whole load in one `BEGIN IMMEDIATE` transaction; a dropped transaction rolls back.
async fn insert_all(
    conn: &mut SqliteConnection,
    load: &BulkLoad,
    profiles: &[String],
    rows: &[ConferenceRow<'_>],
    index: &[(&str, &str)],
    events: &[(&str, i64, &str, String)],
) -> StoreResult<CommitOutcome> {
    let op = "bulk_load";
    let mut tx = conn
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(|e| classify(op, e))?;

    let users: Vec<_> = load.users.iter().zip(profiles).collect();
    for chunk in users.chunks(ROWS_PER_INSERT) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO users (id, username, password_hash, profile) ",
        );
        insert.push_values(chunk, |mut row, (user, profile)| {
            row.push_bind(&user.id)
                .push_bind(&user.username)
                .push_bind(&user.password_hash)
                .push_bind(profile.as_str());
        });
        insert
            .build()
            .execute(&mut *tx)
            .await
            .map_err(|e| classify(op, e))?;
    }

    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO conferences (id, kind, version, state, index_keys, live, updated_at_ms) ",
        );
        insert.push_values(chunk, |mut row, c| {
            row.push_bind(c.id)
                .push_bind(c.kind)
                .push_bind(c.version)
                .push_bind(c.state.as_str())
                .push_bind(c.keys.as_str())
                .push_bind(c.live)
                .push_bind(c.updated_at_ms);
        });
        insert
            .build()
            .execute(&mut *tx)
            .await
            .map_err(|e| classify(op, e))?;
    }

    for chunk in index.chunks(ROWS_PER_INSERT) {
        let mut insert =
            QueryBuilder::<Sqlite>::new("INSERT INTO conference_index (key, conference_id) ");
        insert.push_values(chunk, |mut row, (key, id)| {
            row.push_bind(*key).push_bind(*id);
        });
        insert
            .build()
            .execute(&mut *tx)
            .await
            .map_err(|e| classify(op, e))?;
    }

    // Seqs: only the writer's connection writes, so this is ordered with every commit, as in
    // `commit`.
    let n_events = to_sql_int("event count", events.len() as u64)?;
    let head: i64 =
        sqlx::query_scalar("UPDATE event_head SET seq = seq + ?1 WHERE id = 1 RETURNING seq")
            .bind(n_events)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| classify(op, e))?;
    let first = head - n_events + 1;
    let committed_at = now_ms();
    let numbered: Vec<_> = events.iter().zip(first..).collect();
    for chunk in numbered.chunks(ROWS_PER_INSERT) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO events (seq, conference_id, conference_version, kind, payload, \
             committed_at_ms) ",
        );
        insert.push_values(chunk, |mut row, ((id, version, kind, payload), seq)| {
            row.push_bind(*seq)
                .push_bind(*id)
                .push_bind(*version)
                .push_bind(*kind)
                .push_bind(payload.as_str())
                .push_bind(committed_at);
        });
        insert
            .build()
            .execute(&mut *tx)
            .await
            .map_err(|e| classify(op, e))?;
    }

    tx.commit().await.map_err(|e| classify(op, e))?;
    Ok(CommitOutcome {
        first_seq: from_sql_int("event seq", first)?,
        last_seq: from_sql_int("event seq", head)?,
    })
}
