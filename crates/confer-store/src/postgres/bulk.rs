//! [`PgStore::bulk_load`]: see [`crate::bulk`].

use super::{PgStore, raise};
use crate::bulk::{BulkLoad, BulkOutcome, check_load};
use crate::codec::{from_sql_int, json_text, to_sql_int};
use crate::error::classify;
use crate::records::CommitOutcome;
use crate::store::StoreResult;

/// Rows per statement: arrays this long keep each statement's parse and plan cost negligible
/// without building huge messages.
const ROWS_PER_INSERT: usize = 5000;

impl PgStore {
    /// Stores `load` in one transaction (see [`crate::bulk`]); returns once PostgreSQL has
    /// acknowledged the COMMIT.
    pub async fn bulk_load(&self, load: &BulkLoad) -> StoreResult<BulkOutcome> {
        check_load(load)?;
        let op = "bulk_load";
        let mut tx = self.pool.begin().await.map_err(|e| classify(op, e))?;

        for chunk in load.users.chunks(ROWS_PER_INSERT) {
            let ids: Vec<&str> = chunk.iter().map(|u| u.id.as_str()).collect();
            let names: Vec<&str> = chunk.iter().map(|u| u.username.as_str()).collect();
            let hashes: Vec<&str> = chunk.iter().map(|u| u.password_hash.as_str()).collect();
            let profiles: Vec<String> = chunk.iter().map(|u| json_text(&u.profile)).collect();
            sqlx::query(
                "INSERT INTO users (id, username, password_hash, profile) \
                 SELECT i, n, h, p::jsonb FROM unnest($1::text[], $2::text[], $3::text[], \
                 $4::text[]) AS u(i, n, h, p)",
            )
            .bind(&ids)
            .bind(&names)
            .bind(&hashes)
            .bind(&profiles)
            .execute(&mut *tx)
            .await
            .map_err(|e| classify(op, e))?;
        }

        for chunk in load.conferences.chunks(ROWS_PER_INSERT) {
            let ids: Vec<&str> = chunk.iter().map(|c| c.conference.id.as_str()).collect();
            let kinds: Vec<&str> = chunk.iter().map(|c| c.conference.kind.as_str()).collect();
            let mut versions = Vec::with_capacity(chunk.len());
            for c in chunk {
                versions.push(to_sql_int("version", c.conference.version)?);
            }
            let states: Vec<String> = chunk
                .iter()
                .map(|c| json_text(&c.conference.state))
                .collect();
            // A text[] column cannot come from a ragged 2-D array: pass each list as JSON.
            let keys: Vec<String> = chunk
                .iter()
                .map(|c| json_text(&serde_json::Value::from(c.conference.index_keys.clone())))
                .collect();
            let live: Vec<bool> = chunk.iter().map(|c| c.conference.live).collect();
            let updated: Vec<i64> = chunk.iter().map(|c| c.conference.updated_at_ms).collect();
            sqlx::query(
                "WITH rows AS ( \
                     SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], \
                         $5::text[], $6::bool[], $7::bigint[]) \
                     AS r(id, kind, version, state, keys, live, updated_at_ms) \
                 ), conf AS ( \
                     INSERT INTO conferences \
                         (id, kind, version, state, index_keys, live, updated_at_ms) \
                     SELECT id, kind, version, state::jsonb, \
                         ARRAY(SELECT jsonb_array_elements_text(keys::jsonb)), live, \
                         updated_at_ms FROM rows \
                     RETURNING id \
                 ) \
                 INSERT INTO conference_index (key, conference_id) \
                 SELECT DISTINCT k.key, rows.id FROM rows \
                     JOIN conf ON conf.id = rows.id, \
                     jsonb_array_elements_text(rows.keys::jsonb) AS k(key)",
            )
            .bind(&ids)
            .bind(&kinds)
            .bind(&versions)
            .bind(&states)
            .bind(&keys)
            .bind(&live)
            .bind(&updated)
            .execute(&mut *tx)
            .await
            .map_err(|e| classify(op, e))?;
        }

        // Seqs: the head row lock is held until COMMIT, as in `commit` (see the module docs).
        let n_events: usize = load.conferences.iter().map(|c| c.events.len()).sum();
        let n_events = to_sql_int("event count", n_events as u64)?;
        let (head, committed_at): (i64, i64) = sqlx::query_as(
            "UPDATE event_head SET seq = seq + $1 WHERE id = 1 \
             RETURNING seq, floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint",
        )
        .bind(n_events)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| classify(op, e))?;
        let first = head - n_events + 1;
        let events: Vec<_> = load
            .conferences
            .iter()
            .flat_map(|c| c.events.iter().map(move |e| (c, e)))
            .collect();
        let mut seq = first;
        for chunk in events.chunks(ROWS_PER_INSERT) {
            let seqs: Vec<i64> = (seq..).take(chunk.len()).collect();
            seq += chunk.len() as i64;
            let ids: Vec<&str> = chunk
                .iter()
                .map(|(c, _)| c.conference.id.as_str())
                .collect();
            let mut versions = Vec::with_capacity(chunk.len());
            for (c, _) in chunk {
                versions.push(to_sql_int("version", c.conference.version)?);
            }
            let kinds: Vec<&str> = chunk.iter().map(|(_, e)| e.kind.as_str()).collect();
            let payloads: Vec<String> = chunk.iter().map(|(_, e)| json_text(&e.payload)).collect();
            sqlx::query(
                "INSERT INTO events \
                     (seq, conference_id, conference_version, kind, payload, committed_at_ms) \
                 SELECT s, i, v, k, p::jsonb, $6 FROM unnest($1::bigint[], $2::text[], \
                     $3::bigint[], $4::text[], $5::text[]) AS e(s, i, v, k, p)",
            )
            .bind(&seqs)
            .bind(&ids)
            .bind(&versions)
            .bind(&kinds)
            .bind(&payloads)
            .bind(committed_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| classify(op, e))?;
        }
        if n_events > 0 {
            // Delivered only if the transaction commits, like a commit's own wake-up.
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(&self.channel)
                .bind(head.to_string())
                .execute(&mut *tx)
                .await
                .map_err(|e| classify(op, e))?;
        }

        tx.commit().await.map_err(|e| classify(op, e))?;
        let outcome = CommitOutcome {
            first_seq: from_sql_int("event seq", first)?,
            last_seq: from_sql_int("event seq", head)?,
        };
        raise(&self.wakeups, outcome.last_seq);
        Ok(BulkOutcome {
            users: load.users.len() as u64,
            conferences: load.conferences.len() as u64,
            events: outcome,
        })
    }
}
