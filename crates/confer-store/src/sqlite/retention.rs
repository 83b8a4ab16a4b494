//! Retention on SQLite: [`Store::prune_history`](crate::Store::prune_history) and
//! [`Store::prune_ended`](crate::Store::prune_ended), each page run by the writer thread as one
//! job (inside its group transaction, like any write), so a page is small: it holds the
//! commits queued behind it for as long as it runs.

use rusqlite::{Connection, OptionalExtension as _, params};

use crate::codec::old_part_of_page;
use crate::error::classify_sqlite;
use crate::records::PruneProgress;
use crate::store::StoreResult;

pub(super) fn prune_history(
    conn: &Connection,
    unchanged_before_ms: i64,
    after_seq: i64,
    limit: u32,
) -> StoreResult<PruneProgress> {
    let op = "prune_history";
    let err = |e| classify_sqlite(op, e);
    // The log is in commit order, so its old events come first: read a page from the cursor
    // and stop at the first recent one.
    let page: Vec<(i64, String, i64)> = conn
        .prepare_cached(
            "SELECT seq, conference_id, committed_at_ms FROM events WHERE seq > ?1 \
             ORDER BY seq LIMIT ?2",
        )
        .and_then(|mut s| {
            s.query_map(params![after_seq, i64::from(limit)], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect()
        })
        .map_err(err)?;
    let (scanned_to, conferences) = old_part_of_page(page, unchanged_before_ms)?;
    let mut progress = PruneProgress {
        scanned_to,
        ..PruneProgress::default()
    };
    for id in conferences {
        // Only a conference unchanged since the cutoff: its every event is older. Its current
        // state becomes the base its next events apply to.
        let unchanged: Option<i64> = conn
            .prepare_cached("SELECT version FROM conferences WHERE id = ?1 AND updated_at_ms < ?2")
            .and_then(|mut s| {
                s.query_row(params![id, unchanged_before_ms], |r| r.get(0))
                    .optional()
            })
            .map_err(err)?;
        let Some(version) = unchanged else { continue };
        let deleted = conn
            .prepare_cached(
                "DELETE FROM events WHERE conference_id = ?1 AND conference_version <= ?2",
            )
            .and_then(|mut s| s.execute(params![id, version]))
            .map_err(err)? as u64;
        if deleted > 0 {
            conn.prepare_cached(
                "INSERT INTO conference_log_starts (conference_id, version, base_state) \
                 VALUES (?1, ?2, NULL) ON CONFLICT (conference_id) DO UPDATE SET \
                 version = excluded.version, base_state = NULL",
            )
            .and_then(|mut s| s.execute(params![id, version]))
            .map_err(err)?;
            progress.conferences += 1;
            progress.events += deleted;
        }
    }
    Ok(progress)
}

pub(super) fn prune_ended(conn: &Connection, ended_before_ms: i64, limit: u32) -> StoreResult<u64> {
    let op = "prune_ended";
    let err = |e| classify_sqlite(op, e);
    let ids: Vec<String> = conn
        .prepare_cached(
            "SELECT id FROM conferences WHERE live = 0 AND updated_at_ms < ?1 \
             ORDER BY updated_at_ms LIMIT ?2",
        )
        .and_then(|mut s| {
            s.query_map(params![ended_before_ms, i64::from(limit)], |r| r.get(0))?
                .collect()
        })
        .map_err(err)?;
    for id in &ids {
        for sql in [
            "DELETE FROM events WHERE conference_id = ?1",
            "DELETE FROM conference_index WHERE conference_id = ?1",
            "DELETE FROM conferences WHERE id = ?1",
        ] {
            conn.prepare_cached(sql)
                .and_then(|mut s| s.execute([id]))
                .map_err(err)?;
        }
    }
    Ok(ids.len() as u64)
}
