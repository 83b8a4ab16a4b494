//! Commits on PostgreSQL: group commit, and the single commit it falls back to.
//!
//! Every commit that appends events takes the `event_head` row lock as its last statement and
//! holds it through COMMIT and its WAL flush (`postgres.rs` says why the log needs that row), so
//! commits serialize on it for one statement plus a flush each, on one node or many. Group
//! commit makes that cost per batch instead of per commit: one task per store takes every
//! commit waiting on this node (up to [`MAX_BATCH`]) and sends them as one transaction of a few
//! set-based statements, whatever their number; while one batch runs, the next one gathers.
//! Two nodes then take turns on the row per batch, not per commit.
//!
//! Each commit's outcome stays its own. A batch holds at most one commit per conference and per
//! idempotency key (a second one waits for the next batch, where it conflicts or not as it
//! would have alone); a commit that conflicts or finds its idempotency key in use is answered
//! with that error and its writes are left out (or undone) inside the transaction; nobody is
//! answered before COMMIT is acknowledged. The statements take their locks in the order every
//! writer takes them (the batch's existing conference rows in id order, idempotency rows,
//! `event_head` last), so two nodes' batches cannot deadlock:
//!
//! 1. `SELECT … FOR UPDATE` the existing conference rows the batch updates, ordered by id;
//! 2. the idempotency records, replacing only expired ones (skipped when no commit has a key);
//! 3. the conference rows: updated on the expected version, or inserted when new;
//! 4. the idempotency records of keyed commits that lost in 3, deleted again;
//! 5. the winners' listing keys;
//! 6. seqs, events and the wake-up for the winners: the last statement before COMMIT.
//!
//! A statement that fails (an error, not a conflict) rolls the batch back, and its commits then
//! run one by one ([`commit_one`]), so a bad commit fails only itself. A failed COMMIT is not
//! retried: whether it took effect is unknown, so every commit of the batch gets its error.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::postgres::PgPool;
use sqlx::types::Json;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::head_seq_on_tx;
use crate::codec::{check_commit, from_sql_int, json_text, now_ms, to_sql_int};
use crate::error::{StoreError, classify};
use crate::records::{Commit, CommitOutcome, GroupCommitStats, NewEvent};
use crate::store::StoreResult;

/// Most commits in one transaction.
pub(super) const MAX_BATCH: usize = 256;
/// Commits queued for the task before callers wait to queue.
const QUEUE: usize = 4096;

struct Job {
    commit: Commit,
    reply: oneshot::Sender<StoreResult<CommitOutcome>>,
}

/// The task that commits for one store.
pub(super) struct GroupCommit {
    queue: mpsc::Sender<Job>,
    task: JoinHandle<()>,
    counts: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    transactions: AtomicU64,
    writes: AtomicU64,
}

fn stopped() -> StoreError {
    StoreError::Unavailable {
        op: "commit",
        source: "the store's commit task has stopped".into(),
    }
}

impl GroupCommit {
    pub(super) fn start(pool: PgPool, channel: String) -> Self {
        let (queue, jobs) = mpsc::channel(QUEUE);
        let counts = Arc::new(Counts::default());
        GroupCommit {
            queue,
            task: tokio::spawn(run(pool, channel, jobs, counts.clone())),
            counts,
        }
    }

    /// Commits with whatever else is waiting; returns once PostgreSQL acknowledged the COMMIT.
    pub(super) async fn commit(&self, commit: Commit) -> StoreResult<CommitOutcome> {
        // A commit that is a bug in the caller never reaches a batch.
        check_commit(&commit)?;
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job { commit, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    pub(super) fn stats(&self) -> GroupCommitStats {
        GroupCommitStats {
            transactions: self.counts.transactions.load(Ordering::Relaxed),
            writes: self.counts.writes.load(Ordering::Relaxed),
        }
    }

    pub(super) fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(pool: PgPool, channel: String, mut jobs: mpsc::Receiver<Job>, counts: Arc<Counts>) {
    let mut waiting: VecDeque<Job> = VecDeque::new();
    loop {
        if waiting.is_empty() {
            match jobs.recv().await {
                Some(job) => waiting.push_back(job),
                None => return,
            }
        }
        while waiting.len() < 4 * MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => waiting.push_back(job),
                Err(_) => break,
            }
        }
        // At most one commit per conference and per idempotency key, in arrival order; the
        // rest keep their order for the next batch.
        let mut batch = Vec::new();
        let mut later = VecDeque::new();
        let mut ids = HashSet::new();
        let mut keys = HashSet::new();
        while let Some(job) = waiting.pop_front() {
            let key = job
                .commit
                .idempotency
                .as_ref()
                .map(|i| (i.user_id.clone(), i.key.clone()));
            if batch.len() == MAX_BATCH
                || ids.contains(&job.commit.conference.id)
                || key.as_ref().is_some_and(|k| keys.contains(k))
            {
                later.push_back(job);
                continue;
            }
            ids.insert(job.commit.conference.id.clone());
            keys.extend(key);
            batch.push(job);
        }
        waiting = later;
        counts
            .writes
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        counts.transactions.fetch_add(1, Ordering::Relaxed);
        run_batch(&pool, &channel, batch).await;
    }
}

/// Why a batch did not commit.
enum BatchFailure {
    /// A statement failed: nothing was committed; the commits can run one by one.
    BeforeCommit(StoreError),
    /// COMMIT itself failed: its effect is unknown.
    AtCommit(StoreError),
}

async fn run_batch(pool: &PgPool, channel: &str, batch: Vec<Job>) {
    if batch.len() == 1 {
        for job in batch {
            let _ = job.reply.send(commit_one(pool, channel, job.commit).await);
        }
        return;
    }
    let (commits, replies): (Vec<Commit>, Vec<_>) =
        batch.into_iter().map(|job| (job.commit, job.reply)).unzip();
    match try_batch(pool, channel, &commits).await {
        Ok(outcomes) => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(outcome);
            }
        }
        Err(BatchFailure::BeforeCommit(error)) => {
            tracing::debug!(%error, commits = commits.len(), "batch rolled back; committing one by one");
            for (reply, commit) in replies.into_iter().zip(commits) {
                let _ = reply.send(commit_one(pool, channel, commit).await);
            }
        }
        Err(BatchFailure::AtCommit(error)) => {
            let text = error.to_string();
            let mut error = Some(error);
            for reply in replies {
                let _ = reply.send(Err(error.take().unwrap_or_else(|| {
                    StoreError::Unavailable {
                        op: "commit",
                        source: text.clone().into(),
                    }
                })));
            }
        }
    }
}

/// One commit in its own transaction: what a batch falls back to, and a batch of one.
pub(super) async fn commit_one(
    pool: &PgPool,
    channel: &str,
    commit: Commit,
) -> StoreResult<CommitOutcome> {
    let checked = check_commit(&commit)?;
    let c = &commit.conference;
    let op = "commit";

    let mut tx = pool.begin().await.map_err(|e| classify(op, e))?;

    // 1. The conference row, conditional on the expected version (or on absence). A
    // concurrent writer of the same row waits here for the first one's COMMIT, then finds
    // the version changed and gets 0 rows: exactly one of them wins.
    let row_query = match checked.expected {
        None => sqlx::query(
            "INSERT INTO conferences (id, kind, version, state, index_keys, live, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
        ),
        Some(_) => sqlx::query(
            // The first commit after its history was pruned keeps the state it replaces:
            // the base the retained events apply to (see the migration). Both in one
            // statement: if the conference's UPDATE finds the version changed, the commit is
            // refused and rolled back, base included.
            "WITH base AS ( \
                 UPDATE conference_log_starts s SET base_state = c.state FROM conferences c \
                 WHERE s.conference_id = $1 AND c.id = $1 AND s.version = c.version \
                 AND c.version = $8 \
             ) \
             UPDATE conferences SET kind = $2, version = $3, state = $4, index_keys = $5, \
             live = $6, updated_at_ms = $7 WHERE id = $1 AND version = $8",
        ),
    }
    .bind(&c.id)
    .bind(&c.kind)
    .bind(checked.version)
    .bind(Json(&c.state))
    .bind(&c.index_keys)
    .bind(c.live)
    .bind(c.updated_at_ms);
    let row_query = match checked.expected {
        Some(expected) => row_query.bind(expected),
        None => row_query,
    };
    let changed = row_query
        .execute(&mut *tx)
        .await
        .map_err(|e| classify(op, e))?
        .rows_affected();
    if changed == 0 {
        let actual: Option<i64> =
            sqlx::query_scalar("SELECT version FROM conferences WHERE id = $1")
                .bind(&c.id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| classify(op, e))?;
        // Dropping `tx` rolls back.
        return Err(StoreError::Conflict {
            id: c.id.clone(),
            expected: commit.expected_version,
            actual: actual
                .map(|v| from_sql_int("conference version", v))
                .transpose()?,
        });
    }

    // 2. Index keys: delete the ones no longer listed and add the new ones in one
    // statement (they touch disjoint rows); unchanged keys are not rewritten.
    sqlx::query(
        "WITH gone AS (DELETE FROM conference_index \
             WHERE conference_id = $1 AND NOT (key = ANY($2::text[]))) \
         INSERT INTO conference_index (key, conference_id) \
         SELECT DISTINCT k, $1 FROM unnest($2::text[]) AS k ON CONFLICT DO NOTHING",
    )
    .bind(&c.id)
    .bind(&c.index_keys)
    .execute(&mut *tx)
    .await
    .map_err(|e| classify(op, e))?;

    // 3. The idempotency record, replacing only an expired one. A concurrent insert of the
    // same key waits for the first transaction and then finds it unexpired: 0 rows.
    if let Some(idem) = &commit.idempotency {
        let stored = sqlx::query(
            "INSERT INTO idempotency (user_id, key, request_fingerprint, response, expires_at_ms) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (user_id, key) DO UPDATE SET \
             request_fingerprint = EXCLUDED.request_fingerprint, response = EXCLUDED.response, \
             expires_at_ms = EXCLUDED.expires_at_ms \
             WHERE idempotency.expires_at_ms <= $6",
        )
        .bind(&idem.user_id)
        .bind(&idem.key)
        .bind(&idem.request_fingerprint)
        .bind(Json(&idem.response))
        .bind(idem.expires_at_ms)
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .map_err(|e| classify(op, e))?
        .rows_affected();
        if stored == 0 {
            return Err(StoreError::IdempotencyKeyInUse {
                user_id: idem.user_id.clone(),
                key: idem.key.clone(),
            });
        }
    }

    // 4. Last statement before COMMIT: take the head row lock, allocate the seqs, insert the
    // events and queue the wake-up. See the module docs for why this order matters.
    let outcome = if commit.events.is_empty() {
        let head = head_seq_on_tx(&mut tx).await?;
        CommitOutcome {
            first_seq: head + 1,
            last_seq: head,
        }
    } else {
        let events: Vec<(&NewEvent, i64)> =
            commit.events.iter().map(|e| (e, checked.version)).collect();
        let last = append_events(&mut tx, channel, &events).await?;
        CommitOutcome {
            first_seq: last + 1 - commit.events.len() as u64,
            last_seq: last,
        }
    };

    tx.commit().await.map_err(|e| classify(op, e))?;
    Ok(outcome)
}

/// One batch as one transaction (the module docs list its statements). Every join with the
/// batch's rows (`unnest` of the bound arrays) also filters the table by `= ANY($ids)`: the
/// planner cannot see how few rows an `unnest` of parameters yields, and without the filter it
/// may hash-join against a scan of the whole table (it did: 40 ms per batch at 100,000
/// conferences). Returns each commit's own outcome, or why the batch as a whole failed.
async fn try_batch(
    pool: &PgPool,
    channel: &str,
    commits: &[Commit],
) -> Result<Vec<StoreResult<CommitOutcome>>, BatchFailure> {
    let op = "commit";
    let failed = |e: sqlx::Error| BatchFailure::BeforeCommit(classify(op, e));
    let checked = commits
        .iter()
        .map(check_commit)
        .collect::<StoreResult<Vec<_>>>()
        .map_err(BatchFailure::BeforeCommit)?;
    let mut outcomes: Vec<Option<StoreResult<CommitOutcome>>> =
        (0..commits.len()).map(|_| None).collect();
    let mut tx = pool.begin().await.map_err(failed)?;

    // 1. The rows to update, locked in id order.
    let mut updating: Vec<&str> = commits
        .iter()
        .filter(|c| c.expected_version.is_some())
        .map(|c| c.conference.id.as_str())
        .collect();
    if !updating.is_empty() {
        updating.sort_unstable();
        sqlx::query("SELECT id FROM conferences WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            .bind(&updating)
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
    }

    // 2. Idempotency records, in key order.
    let mut keyed: Vec<usize> = (0..commits.len())
        .filter(|&i| commits[i].idempotency.is_some())
        .collect();
    let key_of = |i: usize| {
        let idem = commits[i].idempotency.as_ref().expect("keyed");
        (idem.user_id.as_str(), idem.key.as_str())
    };
    keyed.sort_unstable_by(|&a, &b| key_of(a).cmp(&key_of(b)));
    if !keyed.is_empty() {
        let records = || {
            keyed
                .iter()
                .map(|&i| commits[i].idempotency.as_ref().expect("keyed"))
        };
        let users: Vec<&str> = records().map(|r| r.user_id.as_str()).collect();
        let keys: Vec<&str> = records().map(|r| r.key.as_str()).collect();
        let fingerprints: Vec<&str> = records().map(|r| r.request_fingerprint.as_str()).collect();
        let responses: Vec<String> = records().map(|r| json_text(&r.response)).collect();
        let expiries: Vec<i64> = records().map(|r| r.expires_at_ms).collect();
        let stored: Vec<(String, String)> = sqlx::query_as(
            "INSERT INTO idempotency (user_id, key, request_fingerprint, response, expires_at_ms) \
             SELECT u, k, f, r::jsonb, e \
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[]) \
                 AS t(u, k, f, r, e) \
             ON CONFLICT (user_id, key) DO UPDATE SET \
             request_fingerprint = EXCLUDED.request_fingerprint, response = EXCLUDED.response, \
             expires_at_ms = EXCLUDED.expires_at_ms \
             WHERE idempotency.expires_at_ms <= $6 \
             RETURNING user_id, key",
        )
        .bind(&users)
        .bind(&keys)
        .bind(&fingerprints)
        .bind(&responses)
        .bind(&expiries)
        .bind(now_ms())
        .fetch_all(&mut *tx)
        .await
        .map_err(failed)?;
        let stored: HashSet<(&str, &str)> = stored
            .iter()
            .map(|(u, k)| (u.as_str(), k.as_str()))
            .collect();
        for &i in &keyed {
            let (user_id, key) = key_of(i);
            if !stored.contains(&(user_id, key)) {
                outcomes[i] = Some(Err(StoreError::IdempotencyKeyInUse {
                    user_id: user_id.to_owned(),
                    key: key.to_owned(),
                }));
            }
        }
    }

    // 3. The conference rows of the commits still in the running.
    let candidates: Vec<usize> = (0..commits.len())
        .filter(|&i| outcomes[i].is_none())
        .collect();
    let index_keys = |i: usize| {
        json_text(&serde_json::Value::from(
            commits[i].conference.index_keys.clone(),
        ))
    };
    let won: HashSet<String> = if candidates.is_empty() {
        HashSet::new()
    } else {
        let rows = || candidates.iter().map(|&i| &commits[i].conference);
        let ids: Vec<&str> = rows().map(|c| c.id.as_str()).collect();
        let kinds: Vec<&str> = rows().map(|c| c.kind.as_str()).collect();
        let versions: Vec<i64> = candidates.iter().map(|&i| checked[i].version).collect();
        let states: Vec<Json<&serde_json::Value>> = rows().map(|c| Json(&c.state)).collect();
        let keys: Vec<String> = candidates.iter().map(|&i| index_keys(i)).collect();
        let lives: Vec<bool> = rows().map(|c| c.live).collect();
        let updated: Vec<i64> = rows().map(|c| c.updated_at_ms).collect();
        let expected: Vec<Option<i64>> = candidates.iter().map(|&i| checked[i].expected).collect();
        let won: Vec<String> = sqlx::query_scalar(
            "WITH input AS ( \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::jsonb[], \
                     $5::text[], $6::bool[], $7::bigint[], $8::bigint[]) \
                 AS t(id, kind, version, state, keys, live, updated_at_ms, expected) \
             ), base AS ( \
                 UPDATE conference_log_starts s SET base_state = c.state \
                 FROM conferences c JOIN input i ON i.id = c.id \
                 WHERE s.conference_id = ANY($1) AND c.id = ANY($1) \
                     AND s.conference_id = c.id AND s.version = c.version \
                     AND c.version = i.expected \
             ), upd AS ( \
                 UPDATE conferences c SET kind = i.kind, version = i.version, state = i.state, \
                     index_keys = ARRAY(SELECT jsonb_array_elements_text(i.keys::jsonb)), \
                     live = i.live, updated_at_ms = i.updated_at_ms \
                 FROM input i WHERE c.id = ANY($1) AND i.expected IS NOT NULL \
                     AND c.id = i.id AND c.version = i.expected \
                 RETURNING c.id \
             ), ins AS ( \
                 INSERT INTO conferences (id, kind, version, state, index_keys, live, updated_at_ms) \
                 SELECT id, kind, version, state, \
                     ARRAY(SELECT jsonb_array_elements_text(keys::jsonb)), live, updated_at_ms \
                 FROM input WHERE expected IS NULL ORDER BY id \
                 ON CONFLICT (id) DO NOTHING RETURNING id \
             ) \
             SELECT id FROM upd UNION ALL SELECT id FROM ins",
        )
        .bind(&ids)
        .bind(&kinds)
        .bind(&versions)
        .bind(&states)
        .bind(&keys)
        .bind(&lives)
        .bind(&updated)
        .bind(&expected)
        .fetch_all(&mut *tx)
        .await
        .map_err(failed)?;
        won.into_iter().collect()
    };
    let (winners, lost): (Vec<usize>, Vec<usize>) = candidates
        .iter()
        .partition(|&&i| won.contains(&commits[i].conference.id));
    if !lost.is_empty() {
        let ids: Vec<&str> = lost
            .iter()
            .map(|&i| commits[i].conference.id.as_str())
            .collect();
        let actual: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
            "SELECT id, version FROM conferences WHERE id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await
        .map_err(failed)?
        .into_iter()
        .collect();
        for &i in &lost {
            let id = &commits[i].conference.id;
            outcomes[i] = Some(Err(StoreError::Conflict {
                id: id.clone(),
                expected: commits[i].expected_version,
                actual: actual
                    .get(id)
                    .map(|&v| from_sql_int("conference version", v))
                    .transpose()
                    .map_err(BatchFailure::BeforeCommit)?,
            }));
        }
        // 4. Their idempotency records go again: the commit they belong to did not happen.
        let undo: Vec<usize> = lost
            .iter()
            .copied()
            .filter(|&i| commits[i].idempotency.is_some())
            .collect();
        if !undo.is_empty() {
            let users: Vec<&str> = undo.iter().map(|&i| key_of(i).0).collect();
            let keys: Vec<&str> = undo.iter().map(|&i| key_of(i).1).collect();
            sqlx::query(
                "DELETE FROM idempotency WHERE (user_id, key) IN \
                 (SELECT * FROM unnest($1::text[], $2::text[]))",
            )
            .bind(&users)
            .bind(&keys)
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        }
    }

    // 5. The winners' listing keys: the ones no longer listed go, new ones come (disjoint
    // rows); unchanged keys are not rewritten.
    if !winners.is_empty() {
        let ids: Vec<&str> = winners
            .iter()
            .map(|&i| commits[i].conference.id.as_str())
            .collect();
        let keys: Vec<String> = winners.iter().map(|&i| index_keys(i)).collect();
        sqlx::query(
            "WITH input AS (SELECT * FROM unnest($1::text[], $2::text[]) AS t(id, keys)), \
             gone AS ( \
                 DELETE FROM conference_index ci USING input i \
                 WHERE ci.conference_id = ANY($1) AND ci.conference_id = i.id \
                     AND NOT (ci.key = ANY(ARRAY(SELECT jsonb_array_elements_text(i.keys::jsonb)))) \
             ) \
             INSERT INTO conference_index (key, conference_id) \
             SELECT DISTINCT k, i.id FROM input i, jsonb_array_elements_text(i.keys::jsonb) AS k \
             ON CONFLICT DO NOTHING",
        )
        .bind(&ids)
        .bind(&keys)
        .execute(&mut *tx)
        .await
        .map_err(failed)?;
    }

    // 6. Last statement before COMMIT: seqs for every winner's events, in batch order.
    let events = || {
        winners.iter().flat_map(|&i| {
            let version = checked[i].version;
            commits[i].events.iter().map(move |e| (e, version))
        })
    };
    let total = events().count() as u64;
    let head = if total == 0 {
        head_seq_on_tx(&mut tx)
            .await
            .map_err(BatchFailure::BeforeCommit)?
    } else {
        let events: Vec<(&NewEvent, i64)> = events().collect();
        append_events(&mut tx, channel, &events)
            .await
            .map_err(BatchFailure::BeforeCommit)?
    };
    tx.commit()
        .await
        .map_err(|e| BatchFailure::AtCommit(classify(op, e)))?;

    let mut next = head + 1 - total;
    for &i in &winners {
        let n = commits[i].events.len() as u64;
        outcomes[i] = Some(Ok(CommitOutcome {
            first_seq: next,
            last_seq: next + n - 1,
        }));
        next += n;
    }
    Ok(outcomes
        .into_iter()
        .map(|outcome| {
            outcome.unwrap_or_else(|| {
                Err(StoreError::Invalid(
                    "a commit of the batch was not decided".into(),
                ))
            })
        })
        .collect())
}

/// The last statement before COMMIT of every transaction that appends events: takes the
/// `event_head` row lock, allocates the seqs, inserts the events (each with the version its
/// commit stored) and queues the wake-up. Returns the last seq allocated.
async fn append_events(
    tx: &mut sqlx::PgConnection,
    channel: &str,
    events: &[(&NewEvent, i64)],
) -> StoreResult<u64> {
    let op = "commit";
    let conference_ids: Vec<&str> = events
        .iter()
        .map(|(e, _)| e.conference_id.as_str())
        .collect();
    let versions: Vec<i64> = events.iter().map(|(_, v)| *v).collect();
    let kinds: Vec<&str> = events.iter().map(|(e, _)| e.kind.as_str()).collect();
    let payloads: Vec<String> = events.iter().map(|(e, _)| json_text(&e.payload)).collect();
    let n = to_sql_int("event count", kinds.len() as u64)?;
    let last: i64 = sqlx::query_scalar(
        "WITH head AS ( \
             UPDATE event_head SET seq = seq + $1 WHERE id = 1 \
             RETURNING seq, floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint AS at \
         ), ins AS ( \
             INSERT INTO events \
                 (seq, conference_id, conference_version, kind, payload, committed_at_ms) \
             SELECT head.seq - $1 + e.ord, e.cid, e.ver, e.kind, e.payload::jsonb, head.at \
             FROM head, unnest($2::text[], $3::bigint[], $4::text[], $5::text[]) \
                 WITH ORDINALITY AS e(cid, ver, kind, payload, ord) \
         ) \
         SELECT head.seq FROM head, pg_notify($6, head.seq::text) AS n",
    )
    .bind(n)
    .bind(&conference_ids)
    .bind(&versions)
    .bind(&kinds)
    .bind(&payloads)
    .bind(channel)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| classify(op, e))?;
    from_sql_int("event seq", last)
}
