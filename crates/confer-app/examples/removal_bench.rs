//! How many removals per second the domain core and each store sustain.
//!
//! ```text
//! cargo run --release -p confer-app --example removal_bench -- [CONFERENCES] [CONCURRENCY]
//! ```
//!
//! 1. core: `confer_core::execute` of a voice removal on an in-memory call (no I/O at all);
//! 2. engine + SQLite: CONFERENCES calls of three parties preloaded, then one removal each, from
//!    CONCURRENCY tasks (load → decide → durable commit with its events);
//! 3. engine + PostgreSQL: the same on the local server (`CONFER_TEST_DATABASE_URL` or
//!    `postgres://postgres@127.0.0.1:5432/test`, on a scratch schema), skipped if unreachable.
//!
//! Every loop is bounded in count; nothing leaves the machine.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use confer_app::{App, config::ServeArgs};
use confer_core::{
    Actor, Command, ConferenceId, Role, Timestamp,
    command::{NewCall, NewParty},
    conference::voice::{CallState, CallType},
    user_data::UserData,
};
use confer_store::Store;

fn owner() -> Actor {
    Actor::new("bench-owner", "bench-owner")
        .with_role(Role::Agent)
        .with_phone_number("20000")
}

fn create(i: usize) -> Command {
    Command::CreateCall(NewCall {
        id: ConferenceId::new(format!("bench-call-{i:08}")),
        conn_id: format!("{i:016}"),
        call_uuid: format!("bench-call-{i:08}"),
        dnis: "20001".into(),
        call_type: CallType::Internal,
        state: CallState::Established,
        other_parties: vec![
            NewParty {
                phone_number: "20001".into(),
                user_id: None,
            },
            NewParty {
                phone_number: "20002".into(),
                user_id: None,
            },
        ],
        user_data: UserData::new(),
    })
}

fn remove(i: usize) -> Command {
    Command::RemoveParticipantFromCall {
        call: ConferenceId::new(format!("bench-call-{i:08}")),
        participant: "20001".into(),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn core_only(count: usize) {
    let actor = owner();
    let now = Timestamp::from_millis(1_700_000_000_000);
    let (call, _) = confer_core::execute(None, &actor, create(0), now).expect("create");
    let started = Instant::now();
    for _ in 0..count {
        let outcome = confer_core::execute(Some(&call), &actor, remove(0), now).expect("remove");
        std::hint::black_box(outcome);
    }
    let elapsed = started.elapsed();
    println!(
        "| core (decide + apply, no I/O) | 1 | {count} | {:.0} | - | - |",
        count as f64 / elapsed.as_secs_f64()
    );
}

async fn engine(name: &str, store: Arc<dyn Store>, conferences: usize, concurrency: usize) {
    let app = App::on_store(ServeArgs::default().resolve().expect("config"), store)
        .await
        .expect("app");
    let actor = owner();
    // Preload (not timed), in parallel batches.
    let mut next = 0;
    while next < conferences {
        let mut batch = Vec::new();
        for i in next..(next + 64).min(conferences) {
            let (app, actor) = (app.clone(), actor.clone());
            batch.push(tokio::spawn(async move {
                app.engine.execute(&actor, create(i), None).await
            }));
        }
        next += batch.len();
        for task in batch {
            task.await.expect("join").expect("create");
        }
    }
    let started = Instant::now();
    let per_task = conferences.div_ceil(concurrency);
    let mut tasks = Vec::new();
    for t in 0..concurrency {
        let (app, actor) = (app.clone(), actor.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_task);
            for i in (t * per_task)..((t + 1) * per_task).min(conferences) {
                let one = Instant::now();
                app.engine
                    .execute(&actor, remove(i), None)
                    .await
                    .expect("remove");
                latencies.push(one.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("join"));
    }
    let elapsed = started.elapsed();
    latencies.sort();
    println!(
        "| engine + {name} | {concurrency} | {} | {:.0} | {:.2} | {:.2} |",
        latencies.len(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 50.0).as_secs_f64() * 1e3,
        percentile(&latencies, 99.0).as_secs_f64() * 1e3,
    );
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let conferences: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5_000);
    let concurrency: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(8);
    println!("| what | concurrency | removals | removals/s | p50 ms | p99 ms |");
    println!("|---|---|---|---|---|---|");
    core_only(200_000);

    let sqlite = confer_store::testing::SqliteTest::new().await;
    engine(
        "SQLite (WAL, synchronous=FULL)",
        sqlite.store(),
        conferences,
        1,
    )
    .await;
    let sqlite = confer_store::testing::SqliteTest::new().await;
    engine(
        "SQLite (WAL, synchronous=FULL)",
        sqlite.store(),
        conferences,
        concurrency,
    )
    .await;

    if let Some(pg) = confer_store::testing::PgTest::new().await {
        engine("PostgreSQL 15 (local)", pg.store(), conferences, 1).await;
        pg.finish().await;
    }
    if let Some(pg) = confer_store::testing::PgTest::new().await {
        engine(
            "PostgreSQL 15 (local)",
            pg.store(),
            conferences,
            concurrency,
        )
        .await;
        pg.finish().await;
    }
}
