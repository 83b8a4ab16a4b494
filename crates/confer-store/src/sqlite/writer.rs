//! Group commit: the one thread that writes to the SQLite file.
//!
//! Every write of [`SqliteStore`](super::SqliteStore) (commits, users, settings, CometD
//! sessions) is a *job* sent to one writer thread, which owns the only write connection. The
//! thread takes every job that is waiting (at most [`MAX_BATCH`]) and runs them in **one**
//! `BEGIN IMMEDIATE … COMMIT` transaction, each job inside its own `SAVEPOINT`, so the whole
//! batch costs one WAL fsync (`synchronous=FULL`) instead of one per write. A job alone in its
//! batch runs without a savepoint (the transaction is its savepoint). Nothing waits for company:
//! a job that arrives while the writer is idle is written at once; batches form by themselves
//! while the previous batch's fsync runs, so there is no added latency at low load and
//! throughput grows with concurrency.
//!
//! # Why this is safe
//! * **Each caller gets exactly its own answer.** A job that fails (an optimistic-version
//!   `Conflict`, an `IdempotencyKeyInUse`, a taken username, any SQL error) is rolled back to its
//!   savepoint: its writes, including its seq allocation, vanish, while the writes of the jobs
//!   before and after it stay. The error it reports is the one it would get in a transaction of
//!   its own, because the jobs before it are exactly the writes that would have committed before
//!   it without batching.
//! * **Nobody hears "success" before the write is durable.** Answers are sent only after the
//!   batch's `COMMIT` returned, i.e. after the fsync. Errors are answered then too, so a caller
//!   told `Conflict` re-reads a state that already contains the winner. If `BEGIN`, a savepoint
//!   or `COMMIT` fails, the batch is rolled back and every job that ran in it gets that failure:
//!   none is told success, and none is told anything that depended on rolled-back writes.
//! * **Seq order is commit order, gap-free.** One thread, one connection: batches run one after
//!   the other, and the jobs of a batch run one after the other in arrival order. Each commit
//!   takes its seqs from `event_head` inside its savepoint, so a rolled-back job gives its seqs
//!   back before the next job takes them. The batch becomes visible to readers atomically at
//!   `COMMIT` (WAL snapshots are prefixes of the commit sequence), so a reader sees the whole
//!   batch — a contiguous run of seqs after everything committed earlier — or none of it. The
//!   wake-up watch is raised after `COMMIT`, batch after batch, so it never runs ahead of the
//!   log.
//! * **Idempotency records stay atomic with their change**: both are written in the same job,
//!   inside the same savepoint.
//! * **SQLite's automatic rollbacks are caught.** On some errors (disk full, I/O errors) SQLite
//!   rolls back the whole transaction, not just the statement. The savepoint is then gone, so
//!   `ROLLBACK TO`/`RELEASE` fails: the writer treats that as a failed batch (the jobs before
//!   fail, the failing job gets its own error, the jobs not yet run move to the next batch), and
//!   never lets later jobs run outside a transaction. Job code must therefore return every SQL
//!   error it meets (none swallows one), which the store's write functions do.
//! * **A write that panics (a bug) fails alone.** The panic is caught where the job runs and
//!   reported to its caller as [`StoreError::Invalid`]; the job is rolled back like any failed
//!   one, and the writer thread, which every later write needs, keeps running.
//! * **Bulk loads keep the order too.** A bulk load (borrowed data, too big to copy into a job)
//!   borrows the connection *between* batches for a transaction of its own; batches wait until
//!   it hands the connection back, so it is one more link in the same single-writer chain.
//!
//! # Why rusqlite on a plain thread
//! The writer thread runs the SQL itself, on a `rusqlite` connection it owns, with prepared
//! statements cached on it: a batch costs one hand-off in (the queue) and one out (each job's
//! answer), whatever it holds. sqlx's SQLite driver runs every statement on a connection thread
//! of its own, behind a channel, so each statement was a round trip between two threads (two
//! wake-ups), which on a small machine cost more CPU than the statements. No async runtime runs
//! here either: the thread blocks on the queue, so it keeps working whatever the callers'
//! runtimes do, and ends once the store is dropped or closed and the queue is drained.

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot, watch};

use crate::error::{BoxError, StoreError, by_availability, classify_sqlite};
use crate::records::GroupCommitStats;
use crate::store::StoreResult;

/// The most jobs one transaction takes. Bounds the time a batch holds the write lock (and so
/// the latency of the jobs queued behind it); far above what the server's concurrency gives.
pub(super) const MAX_BATCH: usize = 64;

/// Jobs waiting for the writer. Beyond this, callers wait to enqueue: back-pressure instead of
/// an unbounded queue.
const QUEUE_CAPACITY: usize = 1024;

/// State the writer thread shares with the store.
struct Shared {
    wakeups: watch::Sender<u64>,
    transactions: AtomicU64,
    writes: AtomicU64,
}

impl Shared {
    /// Raises the wake-up value; never lowers it (a watch that went backwards would confuse a
    /// reader).
    fn wake(&self, seq: u64) {
        self.wakeups.send_if_modified(|v| {
            let newer = seq > *v;
            if newer {
                *v = seq;
            }
            newer
        });
    }
}

enum Request {
    Write(Box<dyn Job>),
    /// Hand the connection out for a caller's own transaction (bulk loads).
    Lend(oneshot::Sender<LentConnection>),
}

/// The handle the store holds: the queue to the writer thread.
pub(super) struct Writer {
    requests: mpsc::Sender<Request>,
    finished: oneshot::Receiver<StoreResult<()>>,
    shared: Arc<Shared>,
}

impl Writer {
    /// Starts the writer thread on `conn`, which must not be in a transaction. `head` is the
    /// log head, the wake-up watch's first value.
    pub(super) fn spawn(conn: Connection, head: u64, path: &Path) -> StoreResult<Writer> {
        let (wakeups, _) = watch::channel(head);
        let shared = Arc::new(Shared {
            wakeups,
            transactions: AtomicU64::new(0),
            writes: AtomicU64::new(0),
        });
        let (requests, queue) = mpsc::channel(QUEUE_CAPACITY);
        let (done, finished) = oneshot::channel();
        let thread_shared = shared.clone();
        std::thread::Builder::new()
            .name("confer-sqlite-writer".into())
            .spawn(move || {
                let result = run(conn, queue, &thread_shared);
                // Nobody waits when the store was dropped without `close`.
                let _ = done.send(result);
            })
            .map_err(|source| StoreError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Writer {
            requests,
            finished,
            shared,
        })
    }

    /// Runs `work` on the write connection, inside a transaction shared with other writes, and
    /// answers once that transaction is durable (see the module docs). `head_of` says which log
    /// head a successful result reaches, for the wake-ups.
    pub(super) async fn write<T, F>(
        &self,
        op: &'static str,
        head_of: fn(&T) -> Option<u64>,
        work: F,
    ) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let answer = self.enqueue(op, head_of, work).await?;
        answer.await.map_err(|_| writer_gone(op))?
    }

    /// Queues a job; the receiver gets its answer.
    async fn enqueue<T, F>(
        &self,
        op: &'static str,
        head_of: fn(&T) -> Option<u64>,
        work: F,
    ) -> StoreResult<oneshot::Receiver<StoreResult<T>>>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(WorkJob {
            op,
            work: Some(work),
            head_of,
            result: None,
            reply,
        });
        self.requests
            .send(Request::Write(job))
            .await
            .map_err(|_| writer_gone(op))?;
        Ok(answer)
    }

    /// The write connection, for a transaction of the caller's own (bulk loads, whose data is
    /// borrowed and too big to copy into a job). Writes wait until it is dropped, which hands
    /// the connection back; the borrower must use a `rusqlite::Transaction` (whose drop rolls
    /// back an unfinished transaction) and answer its caller only after its own `COMMIT`.
    pub(super) async fn lend(&self, op: &'static str) -> StoreResult<LentConnection> {
        let (to, lent) = oneshot::channel();
        self.requests
            .send(Request::Lend(to))
            .await
            .map_err(|_| writer_gone(op))?;
        lent.await.map_err(|_| writer_gone(op))
    }

    pub(super) fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.wakeups.subscribe()
    }

    /// For writes made on a lent connection.
    pub(super) fn wake(&self, seq: u64) {
        self.shared.wake(seq);
    }

    pub(super) fn stats(&self) -> GroupCommitStats {
        GroupCommitStats {
            transactions: self.shared.transactions.load(Ordering::Relaxed),
            writes: self.shared.writes.load(Ordering::Relaxed),
        }
    }

    /// Lets the writer finish the queued jobs, then closes the connection.
    pub(super) async fn close(self) -> StoreResult<()> {
        let Writer {
            requests, finished, ..
        } = self;
        drop(requests);
        finished.await.map_err(|_| writer_gone("close"))?
    }
}

/// The writer thread is gone (it panicked, or its connection was lost while lent).
fn writer_gone(op: &'static str) -> StoreError {
    StoreError::Unavailable {
        op,
        source: "the SQLite writer thread has stopped".into(),
    }
}

/// The write connection while a caller holds it; dropping it gives it back to the writer.
pub(super) struct LentConnection {
    conn: Option<Connection>,
    back: Option<oneshot::Sender<Connection>>,
}

impl LentConnection {
    pub(super) fn get(&mut self) -> &mut Connection {
        // Only `drop` takes it out.
        self.conn
            .as_mut()
            .expect("lent connection present until dropped")
    }
}

impl Drop for LentConnection {
    fn drop(&mut self) {
        if let (Some(conn), Some(back)) = (self.conn.take(), self.back.take()) {
            // If the writer is gone the connection is simply dropped (closed).
            let _ = back.send(conn);
        }
    }
}

/// One queued write, its result type erased so that different writes share the queue.
trait Job: Send {
    /// Runs the work on the connection and keeps its result; `true` when it succeeded (its
    /// writes are kept), `false` when they must be rolled back.
    fn run(&mut self, conn: &Connection) -> bool;
    /// The log head a successful run reached, if it wrote events.
    fn head(&self) -> Option<u64>;
    /// Sends the kept result (after the batch's `COMMIT`).
    fn answer(self: Box<Self>);
    /// Sends the batch's failure instead.
    fn fail(self: Box<Self>, failure: &BatchFailure);
}

struct WorkJob<T, F> {
    op: &'static str,
    work: Option<F>,
    head_of: fn(&T) -> Option<u64>,
    result: Option<StoreResult<T>>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> Job for WorkJob<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let result = match self.work.take() {
            // A bug in one write must fail that write (rolled back like any failed job), not
            // end the writer thread and every write after it. Unwind safety: the connection is
            // rolled back to before the job by the caller, and the job is never run again.
            Some(work) => std::panic::catch_unwind(AssertUnwindSafe(|| work(conn)))
                .unwrap_or_else(|p| panicked(self.op, &*p)),
            // A job runs once; a second run would be a writer bug, not worth a panic.
            None => Err(StoreError::Invalid(format!("{} ran twice", self.op))),
        };
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn head(&self) -> Option<u64> {
        match &self.result {
            Some(Ok(value)) => (self.head_of)(value),
            _ => None,
        }
    }

    fn answer(self: Box<Self>) {
        let result = self
            .result
            .unwrap_or_else(|| Err(StoreError::Invalid(format!("{} never ran", self.op))));
        // The caller may have gone away (its request was cancelled): nothing to tell then.
        let _ = self.reply.send(result);
    }

    fn fail(self: Box<Self>, failure: &BatchFailure) {
        let _ = self.reply.send(Err(failure.error(self.op)));
    }
}

/// The error a panicked job reports (the panic itself went to the panic hook, i.e. the log).
fn panicked<T>(op: &'static str, payload: &(dyn std::any::Any + Send)) -> StoreResult<T> {
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a non-string payload");
    Err(StoreError::Invalid(format!(
        "{op} panicked ({message}); its writes were rolled back"
    )))
}

/// Why a whole batch failed, shared by all its jobs (a driver error cannot be cloned).
struct BatchFailure {
    unavailable: bool,
    cause: Arc<BoxError>,
    writes: usize,
}

impl BatchFailure {
    fn new(e: rusqlite::Error, writes: usize) -> Self {
        let (unavailable, cause) = match classify_sqlite("group commit", e) {
            StoreError::Unavailable { source, .. } => (true, source),
            StoreError::Backend { source, .. } => (false, source),
            // classify_sqlite returns only those two.
            other => (false, other.into()),
        };
        BatchFailure {
            unavailable,
            cause: Arc::new(cause),
            writes,
        }
    }

    /// The error one job of the batch reports: unavailable or not as the cause was, with the
    /// cause as its source.
    fn error(&self, op: &'static str) -> StoreError {
        let source = Box::new(GroupCommitFailed {
            cause: self.cause.clone(),
            writes: self.writes,
        });
        by_availability(op, self.unavailable, source)
    }
}

/// The source of every error a failed batch reports.
#[derive(Debug)]
struct GroupCommitFailed {
    cause: Arc<BoxError>,
    writes: usize,
}

impl std::fmt::Display for GroupCommitFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the transaction of {} writes was rolled back: {}",
            self.writes, self.cause
        )
    }
}

impl std::error::Error for GroupCommitFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&**self.cause)
    }
}

/// The writer thread's loop.
fn run(
    mut conn: Connection,
    mut queue: mpsc::Receiver<Request>,
    shared: &Shared,
) -> StoreResult<()> {
    // A lend request met while filling a batch waits until that batch is done.
    let mut held: Option<Request> = None;
    // Jobs a failed batch did not get to run; they go first into the next one.
    let mut carried: Vec<Box<dyn Job>> = Vec::new();
    loop {
        let mut batch = std::mem::take(&mut carried);
        if batch.is_empty() {
            let request = match held.take() {
                Some(request) => request,
                None => match queue.blocking_recv() {
                    Some(request) => request,
                    // The store is gone and the queue is drained.
                    None => break,
                },
            };
            match request {
                Request::Write(job) => batch.push(job),
                Request::Lend(to) => {
                    conn = lend(conn, to)?;
                    continue;
                }
            }
        }
        // Everything already waiting joins, without waiting for more: no timer, so a lone
        // write is not delayed.
        while held.is_none() && batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(Request::Write(job)) => batch.push(job),
                Ok(lend) => held = Some(lend),
                Err(_) => break,
            }
        }
        carried = run_batch(&conn, batch, shared);
    }
    conn.close().map_err(|(_, e)| classify_sqlite("close", e))
}

/// Hands the connection to a borrower and waits for it to come back.
fn lend(conn: Connection, to: oneshot::Sender<LentConnection>) -> StoreResult<Connection> {
    let (back, returned) = oneshot::channel();
    let lent = LentConnection {
        conn: Some(conn),
        back: Some(back),
    };
    // If the borrower stopped waiting, dropping the refused loan gives the connection back.
    drop(to.send(lent));
    returned.blocking_recv().map_err(|_| writer_gone("lend"))
}

/// Runs transaction-control statements (one or several, `;`-separated); stops at the first
/// that fails.
fn execute(conn: &Connection, sql: &'static str) -> Result<(), rusqlite::Error> {
    conn.execute_batch(sql)
}

fn fail_all(jobs: Vec<Box<dyn Job>>, failure: &BatchFailure) {
    for job in jobs {
        job.fail(failure);
    }
}

/// Runs one batch in one transaction (see the module docs); returns the jobs it did not run.
fn run_batch(conn: &Connection, batch: Vec<Box<dyn Job>>, shared: &Shared) -> Vec<Box<dyn Job>> {
    let size = batch.len();
    // Alone, the transaction is the job's savepoint: no SAVEPOINT/RELEASE needed.
    let lone = size == 1;
    // IMMEDIATE takes the write lock now, so no statement inside can meet SQLITE_BUSY halfway
    // (only another process can hold the lock; busy_timeout makes us wait for it here).
    let begin = if lone {
        "BEGIN IMMEDIATE"
    } else {
        "BEGIN IMMEDIATE; SAVEPOINT write"
    };
    if let Err(e) = execute(conn, begin) {
        // In case BEGIN went through and only the SAVEPOINT failed.
        let _ = execute(conn, "ROLLBACK");
        fail_all(batch, &BatchFailure::new(e, size));
        return Vec::new();
    }
    shared.transactions.fetch_add(1, Ordering::Relaxed);

    let mut ran: Vec<Box<dyn Job>> = Vec::with_capacity(size);
    let mut pending = batch.into_iter().peekable();
    while let Some(mut job) = pending.next() {
        shared.writes.fetch_add(1, Ordering::Relaxed);
        let ok = job.run(conn);
        if lone {
            if !ok {
                // After an error SQLite may have rolled back already; this ROLLBACK then fails
                // with "no transaction is active", which is the state we want anyway.
                let _ = execute(conn, "ROLLBACK");
                job.answer();
                return Vec::new();
            }
            ran.push(job);
            break;
        }
        // Close this job's savepoint (keeping or dropping its writes) and open the next one's.
        let more = pending.peek().is_some();
        let close = match (ok, more) {
            (true, true) => "RELEASE write; SAVEPOINT write",
            (true, false) => "RELEASE write",
            (false, true) => "ROLLBACK TO write; RELEASE write; SAVEPOINT write",
            (false, false) => "ROLLBACK TO write; RELEASE write",
        };
        if let Err(e) = execute(conn, close) {
            // The savepoint is gone: SQLite rolled back the whole transaction (or cannot keep
            // it). Nothing of this batch may be reported as written, and the jobs not yet run
            // must not run outside a transaction: they go to the next batch.
            let _ = execute(conn, "ROLLBACK");
            let failure = BatchFailure::new(e, size);
            if ok {
                job.fail(&failure);
            } else {
                // Its own error is the cause, and it was not written either way.
                job.answer();
            }
            fail_all(ran, &failure);
            return pending.collect();
        }
        ran.push(job);
    }
    commit(conn, ran, shared)
}

/// Commits the open transaction, then answers its jobs.
fn commit(conn: &Connection, ran: Vec<Box<dyn Job>>, shared: &Shared) -> Vec<Box<dyn Job>> {
    match execute(conn, "COMMIT") {
        Ok(()) => {
            // Before the answers: a caller that hears success and then waits for a wake-up of
            // its own seq must not miss it.
            if let Some(head) = ran.iter().filter_map(|job| job.head()).max() {
                shared.wake(head);
            }
            for job in ran {
                job.answer();
            }
        }
        Err(e) => {
            // A failed COMMIT may leave the transaction open (SQLITE_BUSY, a deferred foreign
            // key): roll it back so that nothing of it is committed later by accident.
            let _ = execute(conn, "ROLLBACK");
            let size = ran.len();
            fail_all(ran, &BatchFailure::new(e, size));
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer on a scratch database with two tables: `t` (one text column) and `child`,
    /// whose foreign key to `t` is checked only at COMMIT.
    async fn scratch() -> (tempfile::TempDir, Writer) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("w.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
             CREATE TABLE t (v TEXT PRIMARY KEY) STRICT; \
             CREATE TABLE child (v TEXT REFERENCES t (v) DEFERRABLE INITIALLY DEFERRED) STRICT;",
        )
        .unwrap();
        let writer = Writer::spawn(conn, 0, &path).unwrap();
        (dir, writer)
    }

    fn no_head(_: &()) -> Option<u64> {
        None
    }

    /// Inserts `v` into `t`, then fails with a conflict if `fail`.
    fn insert(
        v: &'static str,
        fail: bool,
    ) -> impl FnOnce(&Connection) -> StoreResult<()> + Send + 'static {
        move |conn| {
            conn.execute("INSERT INTO t (v) VALUES (?1)", [v])
                .map_err(|e| classify_sqlite("insert", e))?;
            if fail {
                return Err(StoreError::Conflict {
                    id: v.into(),
                    expected: Some(1),
                    actual: Some(2),
                });
            }
            Ok(())
        }
    }

    async fn rows(writer: &Writer) -> Vec<String> {
        writer
            .write(
                "read",
                |_| None,
                |conn| {
                    let mut stmt = conn
                        .prepare("SELECT v FROM t ORDER BY v")
                        .map_err(|e| classify_sqlite("read", e))?;
                    stmt.query_map([], |row| row.get::<_, String>(0))
                        .and_then(Iterator::collect)
                        .map_err(|e| classify_sqlite("read", e))
                },
            )
            .await
            .unwrap()
    }

    /// Holds the writer inside a job until the returned sender fires, so that the jobs queued
    /// meanwhile form one batch.
    async fn block(writer: &Writer) -> (oneshot::Sender<()>, oneshot::Receiver<StoreResult<()>>) {
        let (release, released) = oneshot::channel::<()>();
        let (started_tx, started) = oneshot::channel::<()>();
        let answer = writer
            .enqueue("block", no_head, move |_conn| {
                let _ = started_tx.send(());
                let _ = released.blocking_recv();
                Ok(())
            })
            .await
            .unwrap();
        started.await.unwrap();
        (release, answer)
    }

    #[tokio::test]
    async fn a_failing_write_rolls_back_alone_and_the_batch_commits_once() {
        let (_dir, writer) = scratch().await;
        let (release, blocker) = block(&writer).await;
        let a = writer
            .enqueue("a", no_head, insert("a", false))
            .await
            .unwrap();
        let b = writer
            .enqueue("b", no_head, insert("b", true))
            .await
            .unwrap();
        let c = writer
            .enqueue("c", no_head, insert("c", false))
            .await
            .unwrap();
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();

        a.await.unwrap().unwrap();
        let b = b.await.unwrap();
        assert!(
            matches!(&b, Err(StoreError::Conflict { id, .. }) if id == "b"),
            "b gets its own error: {b:?}"
        );
        c.await.unwrap().unwrap();
        assert_eq!(
            rows(&writer).await,
            ["a", "c"],
            "b's insert was rolled back"
        );
        // blocker, [a b c], the read: three transactions.
        assert_eq!(
            writer.stats(),
            GroupCommitStats {
                transactions: 3,
                writes: 5
            }
        );
        writer.close().await.unwrap();
    }

    /// Inserts `v` into `t`, then panics.
    fn insert_then_panic(
        v: &'static str,
    ) -> impl FnOnce(&Connection) -> StoreResult<()> + Send + 'static {
        move |conn| {
            insert(v, false)(conn)?;
            panic!("a bug in the write of {v}");
        }
    }

    #[tokio::test]
    async fn a_panicking_write_fails_alone_and_the_writer_keeps_writing() {
        let (_dir, writer) = scratch().await;
        // In a batch: its neighbours commit, its insert is rolled back.
        let (release, blocker) = block(&writer).await;
        let a = writer
            .enqueue("a", no_head, insert("a", false))
            .await
            .unwrap();
        let b = writer
            .enqueue("b", no_head, insert_then_panic("b"))
            .await
            .unwrap();
        let c = writer
            .enqueue("c", no_head, insert("c", false))
            .await
            .unwrap();
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        a.await.unwrap().unwrap();
        let b = b.await.unwrap();
        assert!(
            matches!(&b, Err(StoreError::Invalid(m)) if m.contains("a bug in the write of b")),
            "b reports its panic: {b:?}"
        );
        c.await.unwrap().unwrap();
        // Alone in its transaction.
        let d = writer.write("d", no_head, insert_then_panic("d")).await;
        assert!(
            matches!(&d, Err(StoreError::Invalid(m)) if m.contains("a bug in the write of d")),
            "{d:?}"
        );
        writer
            .write("f", no_head, insert("f", false))
            .await
            .unwrap();
        assert_eq!(rows(&writer).await, ["a", "c", "f"]);
        writer.close().await.unwrap();
    }

    #[tokio::test]
    async fn a_failed_commit_fails_every_write_of_the_batch() {
        let (_dir, writer) = scratch().await;
        let (release, blocker) = block(&writer).await;
        let a = writer
            .enqueue("a", no_head, insert("a", false))
            .await
            .unwrap();
        // Violates the deferred foreign key: the statement succeeds, the COMMIT fails.
        let orphan = writer
            .enqueue("orphan", no_head, |conn| {
                conn.execute("INSERT INTO child (v) VALUES ('nobody')", [])
                    .map(drop)
                    .map_err(|e| classify_sqlite("orphan", e))
            })
            .await
            .unwrap();
        let conflict = writer
            .enqueue("b", no_head, insert("b", true))
            .await
            .unwrap();
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();

        for (name, answer) in [("a", a), ("orphan", orphan), ("b", conflict)] {
            let answer = answer.await.unwrap();
            let Err(e) = answer else {
                panic!("{name} must not hear success from a failed COMMIT");
            };
            assert!(matches!(e, StoreError::Backend { .. }), "{name}: {e:?}");
            let chain =
                std::iter::successors(Some(&e as &(dyn std::error::Error + 'static)), |e| {
                    e.source()
                })
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(": ");
            assert!(chain.contains("FOREIGN KEY"), "{name}: {chain}");
        }
        // Nothing of the batch stayed, and the writer works on (the failed transaction was
        // closed).
        assert!(rows(&writer).await.is_empty());
        writer
            .write("x", no_head, insert("x", false))
            .await
            .unwrap();
        assert_eq!(rows(&writer).await, ["x"]);
        writer.close().await.unwrap();
    }

    #[tokio::test]
    async fn a_transaction_rolled_back_under_the_batch_fails_it_and_later_writes_move_on() {
        let (_dir, writer) = scratch().await;
        let (release, blocker) = block(&writer).await;
        let a = writer
            .enqueue("a", no_head, insert("a", false))
            .await
            .unwrap();
        // What SQLite does on a full disk: the whole transaction is rolled back under us.
        let rolled_back = writer
            .enqueue("rollback", no_head, |conn| {
                conn.execute_batch("ROLLBACK")
                    .map_err(|e| classify_sqlite("rollback", e))?;
                Err(StoreError::Invalid("disk full (simulated)".into()))
            })
            .await
            .unwrap();
        let c = writer
            .enqueue("c", no_head, insert("c", false))
            .await
            .unwrap();
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();

        assert!(
            a.await.unwrap().is_err(),
            "a was rolled back with the batch"
        );
        let own = rolled_back.await.unwrap();
        assert!(matches!(own, Err(StoreError::Invalid(_))), "{own:?}");
        c.await.unwrap().expect("c ran in the next transaction");
        assert_eq!(rows(&writer).await, ["c"]);
        writer.close().await.unwrap();
    }

    #[tokio::test]
    async fn a_lent_connection_comes_back_and_writes_wait_for_it() {
        let (_dir, writer) = scratch().await;
        let mut lent = writer.lend("bulk").await.unwrap();
        let queued = writer
            .enqueue("b", no_head, insert("b", false))
            .await
            .unwrap();
        let tx = lent
            .get()
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        tx.execute("INSERT INTO t (v) VALUES ('a')", []).unwrap();
        tx.commit().unwrap();
        // An unfinished transaction is rolled back when it is dropped.
        let tx = lent
            .get()
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        tx.execute("INSERT INTO t (v) VALUES ('never')", [])
            .unwrap();
        drop(tx);
        drop(lent);
        queued.await.unwrap().unwrap();
        assert_eq!(rows(&writer).await, ["a", "b"]);
        writer.close().await.unwrap();
    }
}
