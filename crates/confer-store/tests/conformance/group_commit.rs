//! Group commit seen from outside, on both stores: many concurrent committers, some racing on
//! the same conference or the same idempotency key, each get their own answer; the log stays
//! gap-free and in commit order; and (SQLite) a SIGKILL loses no acknowledged commit of any of
//! them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use confer_store::testing::{PgTest, SqliteTest};
use confer_store::{
    CommitOutcome, GroupCommitStats, IdempotencyRecord, SqliteStore, Store, StoreError, StoredEvent,
};
use serde_json::json;

use crate::cases::{conference, create, event, update};

/// Tasks committing at once; tasks `t` and `t ^ 1` share their idempotency keys, and every
/// fourth task commits to the same hot conference.
const TASKS: usize = 24;
const HOT: usize = 4;
const ROUNDS: u64 = 8;

/// A commit that succeeded: which conference, the version it stored, its seqs and event kinds.
struct Success {
    conference: String,
    version: u64,
    outcome: CommitOutcome,
    kinds: Vec<String>,
}

#[derive(Default)]
struct TaskReport {
    successes: Vec<Success>,
    /// Rounds in which this task's idempotent commit won the key.
    keys_won: Vec<u64>,
    /// Wrong answers. Collected rather than asserted in the task: a task that panicked would
    /// leave the others waiting at the barrier forever.
    wrong: Vec<String>,
}

fn hot(t: usize) -> String {
    format!("hot-{}", t % HOT)
}

fn own(t: usize) -> String {
    format!("own-{t}")
}

fn pair_key(t: usize, round: u64) -> String {
    format!("pair-{}-round-{round}", t / 2)
}

/// Each round, every task commits twice at once: to its hot conference, expecting the version
/// every racer of that round expects (exactly one wins, the others must get `Conflict` naming
/// the winner's version), and to its own conference with an idempotency key its partner uses
/// too (exactly one of the two wins, the other must get `IdempotencyKeyInUse` and store
/// nothing). Rounds are separated by a barrier, so every answer is known in advance.
async fn task(store: Arc<dyn Store>, barrier: Arc<tokio::sync::Barrier>, t: usize) -> TaskReport {
    let mut report = TaskReport::default();
    let mut own_version = 1;
    for round in 0..ROUNDS {
        barrier.wait().await;
        let hot_expected = 1 + round;
        let mut hot_state = conference(&hot(t), hot_expected + 1, &["k:hot"], true);
        hot_state.state = json!({"writer": t, "round": round});
        let hot_commit = update(
            hot_state,
            hot_expected,
            vec![event(&hot(t), &format!("hot-by-{t}"), round)],
        );

        let mut own_commit = update(
            conference(&own(t), own_version + 1, &[&format!("k:own-{t}")], true),
            own_version,
            vec![
                event(&own(t), &format!("own-{t}-a"), round),
                event(&own(t), &format!("own-{t}-b"), round),
            ],
        );
        own_commit.idempotency = Some(IdempotencyRecord {
            user_id: "pair-user".into(),
            key: pair_key(t, round),
            request_fingerprint: format!("fingerprint-{t}"),
            response: json!({"winner": t}),
            expires_at_ms: i64::MAX,
        });
        let own_kinds: Vec<String> = own_commit.events.iter().map(|e| e.kind.clone()).collect();

        let (hot_result, own_result) =
            tokio::join!(store.commit(hot_commit), store.commit(own_commit));

        match hot_result {
            Ok(outcome) => report.successes.push(Success {
                conference: hot(t),
                version: hot_expected + 1,
                outcome,
                kinds: vec![format!("hot-by-{t}")],
            }),
            // The conflict names the version every racer expected and the winner's.
            Err(StoreError::Conflict {
                id,
                expected,
                actual,
            }) if id == hot(t)
                && expected == Some(hot_expected)
                && actual == Some(hot_expected + 1) => {}
            Err(e) => report
                .wrong
                .push(format!("task {t} round {round}: hot commit: {e:?}")),
        }
        match own_result {
            Ok(outcome) => {
                own_version += 1;
                report.keys_won.push(round);
                report.successes.push(Success {
                    conference: own(t),
                    version: own_version,
                    outcome,
                    kinds: own_kinds,
                });
            }
            Err(StoreError::IdempotencyKeyInUse { user_id, key })
                if user_id == "pair-user" && key == pair_key(t, round) => {}
            Err(e) => report
                .wrong
                .push(format!("task {t} round {round}: own commit: {e:?}")),
        }
    }
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_committers_each_get_their_answer_and_the_log_stays_in_order_on_sqlite() {
    let db = SqliteTest::new().await;
    let sqlite = db.store.clone();
    concurrent_committers_each_get_their_answer(db.store(), move || sqlite.group_commit_stats())
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_committers_each_get_their_answer_and_the_log_stays_in_order_on_postgres() {
    let Some(db) = PgTest::new().await else {
        return;
    };
    let pg = db.store.clone();
    let stats =
        concurrent_committers_each_get_their_answer(db.store(), move || pg.group_commit_stats())
            .await;
    // PostgreSQL commits a batch of one alone; 48 commits released at once each round must
    // have shared transactions (this fails with batching turned off).
    assert!(
        stats.transactions < stats.writes,
        "commits were grouped: {stats:?}"
    );
    db.finish().await;
}

async fn concurrent_committers_each_get_their_answer(
    store: Arc<dyn Store>,
    group_commit_stats: impl Fn() -> GroupCommitStats,
) -> GroupCommitStats {
    for id in (0..HOT).map(hot).chain((0..TASKS).map(own)) {
        store
            .commit(create(conference(&id, 1, &[], true), vec![]))
            .await
            .expect("create");
    }
    let before = group_commit_stats();

    let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| tokio::spawn(task(store.clone(), barrier.clone(), t)))
        .collect();
    let mut reports = Vec::new();
    for handle in tasks {
        reports.push(handle.await.expect("committer task"));
    }

    let wrong: Vec<&String> = reports.iter().flat_map(|r| &r.wrong).collect();
    assert!(wrong.is_empty(), "wrong answers: {wrong:#?}");

    // Exactly one winner per hot conference per round, exactly one per key.
    let successes: Vec<&Success> = reports.iter().flat_map(|r| &r.successes).collect();
    for h in 0..HOT {
        let wins = successes.iter().filter(|s| s.conference == hot(h)).count();
        assert_eq!(wins, ROUNDS as usize, "one winner per round on {}", hot(h));
    }
    for pair in 0..TASKS / 2 {
        for round in 0..ROUNDS {
            let winners: Vec<usize> = [2 * pair, 2 * pair + 1]
                .into_iter()
                .filter(|t| reports[*t].keys_won.contains(&round))
                .collect();
            assert_eq!(winners.len(), 1, "pair {pair} round {round}: {winners:?}");
            let record = store
                .get_idempotency("pair-user", &pair_key(2 * pair, round), 0)
                .await
                .unwrap()
                .expect("the winner's idempotency record");
            assert_eq!(
                record.response,
                json!({"winner": winners[0]}),
                "the record is the winner's, committed with its change"
            );
        }
    }

    // The successes' seqs tile the log: contiguous, no gap, no overlap, ending at the head.
    let mut by_seq: Vec<&Success> = successes.clone();
    by_seq.sort_by_key(|s| s.outcome.first_seq);
    let mut next = 1;
    for s in &by_seq {
        assert_eq!(
            s.outcome.first_seq, next,
            "{} v{}: seqs follow the previous commit's",
            s.conference, s.version
        );
        assert_eq!(s.outcome.event_count(), s.kinds.len() as u64);
        next = s.outcome.last_seq + 1;
    }
    let head = store.head_seq().await.unwrap();
    assert_eq!(head, next - 1, "the last commit's seqs end at the head");

    // The log holds exactly the successes' events, at the seqs they were told.
    let events: Vec<StoredEvent> = store.read_events(0, 100_000).await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=head).collect::<Vec<_>>()
    );
    for s in &by_seq {
        let stored = &events[(s.outcome.first_seq - 1) as usize..s.outcome.last_seq as usize];
        for (e, kind) in stored.iter().zip(&s.kinds) {
            assert_eq!(
                (
                    e.conference_id.as_str(),
                    e.conference_version,
                    e.kind.as_str()
                ),
                (s.conference.as_str(), s.version, kind.as_str())
            );
        }
    }

    // Commit order = seq order per conference: versions 2, 3, … along the log, and the stored
    // state is the last success's.
    let mut per_conference: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for s in &by_seq {
        per_conference
            .entry(s.conference.as_str())
            .or_default()
            .push(s.version);
    }
    let last_hot_writer: HashMap<&str, &Success> = by_seq
        .iter()
        .filter(|s| s.conference.starts_with("hot-"))
        .map(|s| (s.conference.as_str(), *s))
        .collect();
    for (id, versions) in &per_conference {
        assert_eq!(
            *versions,
            (2..2 + versions.len() as u64).collect::<Vec<_>>(),
            "{id}"
        );
        let stored = store.get_conference(id).await.unwrap().expect("conference");
        assert_eq!(stored.version, 1 + versions.len() as u64, "{id}");
        if let Some(last) = last_hot_writer.get(id) {
            let round = last.version - 2;
            assert_eq!(stored.state["round"], json!(round), "{id}");
            assert!(
                last.kinds[0].ends_with(&format!("-{}", stored.state["writer"])),
                "{id}: the stored state is the last winner's"
            );
        }
    }

    let after = group_commit_stats();
    let (transactions, writes) = (
        after.transactions - before.transactions,
        after.writes - before.writes,
    );
    assert_eq!(
        writes,
        TASKS as u64 * ROUNDS * 2,
        "every commit went through the writer"
    );
    // Shows that the commits were grouped (asserted only where it cannot depend on timing).
    println!("{writes} commits in {transactions} transactions");
    GroupCommitStats {
        transactions,
        writes,
    }
}

const CRASH_DIR_ENV: &str = "CONFER_STORE_GROUP_CRASH_DIR";
const CRASH_WRITERS: usize = 8;

/// The writer half of `sigkill_during_group_commits_loses_nothing_acknowledged`, run in a child
/// process: 8 tasks commit to their own conferences as fast as they can and print each
/// acknowledged commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of sigkill_during_group_commits_loses_nothing_acknowledged"]
async fn crash_child_concurrent_writers() {
    let Some(dir) = std::env::var_os(CRASH_DIR_ENV) else {
        return;
    };
    let store = Arc::new(SqliteStore::open(dir).await.expect("open"));
    let mut tasks = Vec::new();
    for w in 0..CRASH_WRITERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let id = format!("w{w}");
            store
                .commit(create(conference(&id, 1, &[], true), vec![]))
                .await
                .expect("create");
            for v in 2..100_000u64 {
                let events = vec![event(&id, "a", v), event(&id, "b", v)];
                let out = store
                    .commit(update(conference(&id, v, &[], true), v - 1, events))
                    .await
                    .expect("commit");
                // println! writes a whole line at a time; the parent sees it only after the
                // commit was acknowledged.
                println!("ACK {id} {v} {}", out.last_seq);
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer task");
    }
}

/// SIGKILLs a process in the middle of grouped commits from 8 writers, reopens the file and
/// finds every acknowledged commit at the seqs it was told, and a gap-free log whose events
/// match the conference rows (each commit's events and row stored together or not at all).
#[test]
fn sigkill_during_group_commits_loses_nothing_acknowledged() {
    use std::io::BufRead as _;
    use std::process::{Command, Stdio};

    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "group_commit::crash_child_concurrent_writers",
            "--ignored",
            "--nocapture",
        ])
        .env(CRASH_DIR_ENV, tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the child writer");
    let stdout = child.stdout.take().expect("child stdout");
    // conference -> (highest acknowledged version, its last seq); every ack, to check seqs.
    let mut acked: HashMap<String, u64> = HashMap::new();
    let mut acks: Vec<(String, u64, u64)> = Vec::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.expect("read child output");
        let Some(rest) = line.strip_prefix("ACK ") else {
            continue;
        };
        let mut parts = rest.split(' ');
        let id = parts.next().expect("id").to_owned();
        let version: u64 = parts.next().expect("version").parse().expect("number");
        let seq: u64 = parts.next().expect("seq").parse().expect("number");
        let best = acked.entry(id.clone()).or_default();
        *best = (*best).max(version);
        acks.push((id, version, seq));
        if acks.len() == 400 {
            // Child::kill sends SIGKILL: no destructor, no close, no checkpoint.
            child.kill().expect("kill the child");
            break;
        }
    }
    let status = child.wait().expect("wait for the child");
    assert!(
        !status.success(),
        "the child was killed, not finished: {status:?}"
    );
    assert_eq!(acks.len(), 400, "the child acknowledged commits");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = SqliteStore::open(tmp.path())
            .await
            .expect("reopen after SIGKILL");
        let head = store.head_seq().await.unwrap();
        let events = store.read_events(0, 1_000_000).await.unwrap();
        assert_eq!(
            events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            (1..=head).collect::<Vec<_>>(),
            "the log is gap-free"
        );
        for (id, version, seq) in &acks {
            let e = &events[(*seq - 1) as usize];
            assert_eq!(
                (
                    e.conference_id.as_str(),
                    e.conference_version,
                    e.kind.as_str()
                ),
                (id.as_str(), *version, "b"),
                "acknowledged seq {seq} holds {id} v{version}'s last event"
            );
        }
        let mut total = 0;
        for w in 0..CRASH_WRITERS {
            let id = format!("w{w}");
            let Some(stored) = store.get_conference(&id).await.unwrap() else {
                assert!(!acked.contains_key(&id), "{id} was acknowledged");
                continue;
            };
            if let Some(version) = acked.get(&id) {
                assert!(
                    stored.version >= *version,
                    "{id}: acknowledged v{version}, found v{}",
                    stored.version
                );
            }
            let versions: Vec<u64> = events
                .iter()
                .filter(|e| e.conference_id == id)
                .map(|e| e.conference_version)
                .collect();
            let expected: Vec<u64> = (2..=stored.version).flat_map(|v| [v, v]).collect();
            assert_eq!(
                versions, expected,
                "{id}: events and row committed together"
            );
            total += versions.len() as u64;
        }
        assert_eq!(total, head, "every event belongs to a stored commit");
    });
}

/// A commit's events travel to SQLite as one JSON parameter (`src/sqlite/commit.rs`): kinds
/// and payloads with quotes, backslashes, control characters, non-ASCII text and numbers
/// beyond i64 come back exactly, in order.
#[tokio::test]
async fn awkward_event_payloads_come_back_exactly() {
    let db = SqliteTest::new().await;
    let store = db.store();
    let payloads = [
        json!({"quote": "say \"hi\"", "backslash": "C:\\dir\\", "newline": "a\nb\tc\u{0}d"}),
        json!({"text": "Grüße 😀 \u{2028}", "big": u64::MAX, "neg": i64::MIN, "float": 1.5e300}),
        json!([null, true, {"nested": [[], {}]}, "[\"not\", \"an\", \"array\"]"]),
        json!("just a string with a ' single quote"),
    ];
    let kinds = ["Kind \"one\"", "kind'two", "κ3", "$[0]"];
    let events: Vec<_> = kinds
        .iter()
        .zip(&payloads)
        .map(|(kind, payload)| confer_store::NewEvent {
            conference_id: "awkward".into(),
            kind: (*kind).into(),
            payload: payload.clone(),
        })
        .collect();
    let out = store
        .commit(create(conference("awkward", 1, &[], true), events))
        .await
        .unwrap();
    assert_eq!((out.first_seq, out.last_seq), (1, 4));
    let stored = store.read_events(0, 10).await.unwrap();
    let got: Vec<_> = stored
        .iter()
        .map(|e| (e.seq, e.kind.as_str(), &e.payload))
        .collect();
    let want: Vec<_> = (1..)
        .zip(kinds)
        .zip(&payloads)
        .map(|((seq, kind), payload)| (seq, kind, payload))
        .collect();
    assert_eq!(got, want);
}

/// Keyed commits that conflict, committed at once with keyed commits that win: the winners'
/// records are stored, the losers' keys stay free (their record goes with the commit that did
/// not happen, even when it shared a transaction with winners).
async fn a_conflicting_keyed_commit_leaves_no_record(store: Arc<dyn Store>) {
    const N: usize = 16;
    for i in 0..N {
        store
            .commit(create(conference(&format!("k{i}"), 1, &[], true), vec![]))
            .await
            .expect("create");
    }
    for attempt in 0..4 {
        let commits = (0..N).map(|i| {
            let id = format!("k{i}");
            // Odd ones expect a version the conference never had.
            let expected = if i % 2 == 0 { 1 + attempt } else { 100 };
            let mut commit = update(
                conference(&id, expected + 1, &[], true),
                expected,
                vec![event(&id, "e", attempt)],
            );
            commit.idempotency = Some(IdempotencyRecord {
                user_id: "u".into(),
                key: format!("{id}-{attempt}"),
                request_fingerprint: "f".into(),
                response: json!({"i": i}),
                expires_at_ms: i64::MAX,
            });
            let store = store.clone();
            tokio::spawn(async move { store.commit(commit).await })
        });
        let results: Vec<_> = futures_join(commits).await;
        for (i, result) in results.into_iter().enumerate() {
            let record = store
                .get_idempotency("u", &format!("k{i}-{attempt}"), 0)
                .await
                .unwrap();
            if i % 2 == 0 {
                assert!(result.is_ok(), "k{i}: {result:?}");
                assert_eq!(record.map(|r| r.response), Some(json!({"i": i})));
            } else {
                assert!(
                    matches!(result, Err(StoreError::Conflict { .. })),
                    "k{i}: {result:?}"
                );
                assert!(record.is_none(), "k{i}: the loser's key stays free");
            }
        }
    }
}

async fn futures_join<T: Send + 'static>(
    tasks: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut out = Vec::new();
    for task in tasks.collect::<Vec<_>>() {
        out.push(task.await.expect("task"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_conflicting_keyed_commit_leaves_no_record_on_sqlite() {
    let db = SqliteTest::new().await;
    a_conflicting_keyed_commit_leaves_no_record(db.store()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_conflicting_keyed_commit_leaves_no_record_on_postgres() {
    let Some(db) = PgTest::new().await else {
        return;
    };
    let before = db.store.group_commit_stats();
    a_conflicting_keyed_commit_leaves_no_record(db.store()).await;
    let after = db.store.group_commit_stats();
    assert!(
        after.transactions - before.transactions < after.writes - before.writes,
        "some of the keyed commits shared a transaction"
    );
    db.finish().await;
}

/// The first commits after a prune, committed at once: each keeps the state it replaces as its
/// conference's base, also when they share a transaction.
async fn commits_after_a_prune_keep_their_bases(store: Arc<dyn Store>) {
    const N: u64 = 16;
    for i in 0..N {
        let id = format!("p{i}");
        store
            .commit(create(
                conference(&id, 1, &[], true),
                vec![event(&id, "one", i)],
            ))
            .await
            .expect("create");
    }
    let cutoff = i64::MAX;
    let mut cursor = 0;
    while let Some(seq) = store
        .prune_history(cutoff, cursor, 100)
        .await
        .expect("prune")
        .scanned_to
    {
        cursor = seq;
    }
    let tasks = (0..N).map(|i| {
        let id = format!("p{i}");
        let store = store.clone();
        tokio::spawn(async move {
            store
                .commit(update(
                    conference(&id, 2, &[], true),
                    1,
                    vec![event(&id, "two", i)],
                ))
                .await
        })
    });
    for result in futures_join(tasks).await {
        result.expect("commit after the prune");
    }
    for i in 0..N {
        let history = store
            .conference_history(&format!("p{i}"), u64::MAX)
            .await
            .unwrap();
        let base = history.base.expect("a base");
        assert_eq!(
            (base.version, base.state),
            (1, conference(&format!("p{i}"), 1, &[], true).state)
        );
        assert_eq!(history.events.len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commits_after_a_prune_keep_their_bases_on_sqlite() {
    let db = SqliteTest::new().await;
    commits_after_a_prune_keep_their_bases(db.store()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commits_after_a_prune_keep_their_bases_on_postgres() {
    let Some(db) = PgTest::new().await else {
        return;
    };
    let before = db.store.group_commit_stats();
    commits_after_a_prune_keep_their_bases(db.store()).await;
    let after = db.store.group_commit_stats();
    assert!(
        after.transactions - before.transactions < after.writes - before.writes,
        "some of the commits shared a transaction"
    );
    db.finish().await;
}
