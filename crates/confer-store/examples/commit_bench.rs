//! Commits per second for each backend.
//!
//! ```text
//! cargo run --release -p confer-store --example commit_bench -- [sqlite|postgres|all] [COMMITS_PER_WRITER]
//! ```
//!
//! Each commit updates one conference (expected version = previous) and appends 2 events, the
//! shape of a typical participant change. Runs with 1 writer and with 8 concurrent writers,
//! each writer on its own conference. A last row per backend runs 8 writers with commits
//! *without* events, which do not allocate seqs: the difference shows what the serialized seq
//! allocation costs.
//!
//! SQLite uses a temporary directory under `CONFER_BENCH_DIR` (default: the system temp dir;
//! point it at a disk if that is a tmpfs, where fsync is free). PostgreSQL uses
//! `CONFER_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`) and a
//! temporary schema that is dropped afterwards.

use std::error::Error;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use confer_store::{
    Commit, ConferenceRecord, NewEvent, PgStore, PgStoreOptions, SqliteStore, Store,
};
use serde_json::json;
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions as _, Connection as _};

type BoxError = Box<dyn Error + Send + Sync>;

/// (writers, events per commit)
const SCENARIOS: [(usize, usize); 3] = [(1, 2), (8, 2), (8, 0)];

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "all".to_owned());
    let commits: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(500);
    println!(
        "each commit = 1 conditional conference update + `events` events; {commits} commits per writer"
    );
    println!(
        "{:<10} {:>7} {:>7} {:>8} {:>10} {:>8} {:>8}",
        "backend", "writers", "events", "commits", "commits/s", "p50 ms", "p99 ms"
    );

    if which == "sqlite" || which == "all" {
        for (writers, events) in SCENARIOS {
            let base = std::env::var_os("CONFER_BENCH_DIR")
                .map_or_else(std::env::temp_dir, std::path::PathBuf::from);
            let dir = tempfile::Builder::new()
                .prefix("confer-bench-")
                .tempdir_in(base)?;
            let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).await?);
            run("sqlite", store, writers, events, commits).await?;
        }
    }
    if which == "postgres" || which == "all" {
        let url = std::env::var("CONFER_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        for (writers, events) in SCENARIOS {
            let secs = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
            let schema = format!(
                "confer_bench_{secs}_{}_{writers}_{events}",
                std::process::id()
            );
            let options = PgStoreOptions::new(&url)
                .schema(&schema)
                .max_connections(10);
            let store = Arc::new(PgStore::connect_with(options).await?);
            let result = run("postgres", store.clone(), writers, events, commits).await;
            store.close().await;
            drop_schema(&url, &schema).await?;
            result?;
        }
    }
    Ok(())
}

fn conference(id: &str, version: u64) -> ConferenceRecord {
    ConferenceRecord {
        id: id.to_owned(),
        kind: "voice".to_owned(),
        version,
        state: json!({
            "id": id,
            "state": "Established",
            "participants": [
                {"id": "agent15000", "role": "RoleOrigination", "muted": false},
                {"id": "+15551234567", "role": "RoleDestination", "muted": false},
            ],
            "version": version,
        }),
        index_keys: vec![
            "user:agent15000".to_owned(),
            "account:demo-account".to_owned(),
        ],
        live: true,
        updated_at_ms: 1_700_000_000_000,
    }
}

fn events(id: &str, version: u64, count: usize) -> Vec<NewEvent> {
    ["ParticipantStateChanged", "ConferenceUpdated"]
        .iter()
        .cycle()
        .take(count)
        .map(|kind| NewEvent {
            conference_id: id.to_owned(),
            kind: (*kind).to_owned(),
            payload: json!({"conferenceId": id, "version": version, "participant": "agent15000"}),
        })
        .collect()
}

async fn run(
    backend: &str,
    store: Arc<dyn Store>,
    writers: usize,
    events_per_commit: usize,
    commits: usize,
) -> Result<(), BoxError> {
    for w in 0..writers {
        let id = format!("bench-{w}");
        store
            .commit(Commit {
                conference: conference(&id, 1),
                expected_version: None,
                events: vec![],
                idempotency: None,
            })
            .await?;
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let id = format!("bench-{w}");
            let mut latencies = Vec::with_capacity(commits);
            for v in 2..(commits as u64 + 2) {
                let t = Instant::now();
                store
                    .commit(Commit {
                        conference: conference(&id, v),
                        expected_version: Some(v - 1),
                        events: events(&id, v, events_per_commit),
                        idempotency: None,
                    })
                    .await?;
                latencies.push(t.elapsed());
            }
            Ok::<_, confer_store::StoreError>(latencies)
        }));
    }
    let mut latencies: Vec<Duration> = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let total = latencies.len();
    println!(
        "{backend:<10} {writers:>7} {events_per_commit:>7} {total:>8} {:>10.0} {:>8.2} {:>8.2}",
        total as f64 / elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.99)
    );
    let head = store.head_seq().await?;
    let expected = (events_per_commit * total) as u64;
    if head != expected {
        return Err(format!("expected {expected} events in the log, found {head}").into());
    }
    Ok(())
}

async fn drop_schema(url: &str, schema: &str) -> Result<(), BoxError> {
    let mut conn = PgConnectOptions::from_str(url)?.connect().await?;
    sqlx::raw_sql(AssertSqlSafe(format!(
        r#"DROP SCHEMA IF EXISTS "{schema}" CASCADE"#
    )))
    .execute(&mut conn)
    .await?;
    conn.close().await?;
    Ok(())
}
