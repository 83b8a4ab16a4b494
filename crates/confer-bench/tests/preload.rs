//! The preload on both backends: what it stores is what the engine would have stored, and every
//! preloaded call is removable through the real engine by its owner, with the owner's password.

use std::sync::Arc;

use confer_app::{
    auth::{
        Authenticator, DEFAULT_SESSION_TTL,
        tokens::{KeyRing, SigningKey},
    },
    engine::Engine,
    metrics::Metrics,
    users::actor_of,
};
use confer_bench::preload::{
    PreloadSpec, Preloaded, StoreTarget, agent_username, create_call_command, preload,
};
use confer_core::{Command, Conference, ConferenceId};
use confer_store::{SqliteStore, Store, testing::PgTest};
use serde_json::Value;

const AGENTS: usize = 3;
const CALLS: usize = 7;

/// Replaces every number equal to `millis` (the conference's creation time) with 0.
fn without_time(value: &Value, millis: i64) -> Value {
    match value {
        Value::Number(n) if n.as_i64() == Some(millis) => Value::from(0),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| without_time(v, millis)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), without_time(v, millis)))
                .collect(),
        ),
        other => other.clone(),
    }
}

async fn check(store: Arc<dyn Store>, preloaded: &Preloaded, parties: usize) {
    assert_eq!(preloaded.conferences, (AGENTS * CALLS) as u64);
    assert_eq!(preloaded.agents.len(), AGENTS);
    // One ConferenceCreated event per call, in the log every notification reads.
    assert_eq!(preloaded.events, preloaded.conferences);
    assert_eq!(store.head_seq().await.unwrap(), preloaded.events);
    let events = store.read_events(0, 1000).await.unwrap();
    assert_eq!(events.len() as u64, preloaded.events);
    assert!(
        events.iter().all(|e| e.kind == "ConferenceCreated"),
        "{events:?}"
    );
    assert!(events.windows(2).all(|w| w[1].seq == w[0].seq + 1));

    // The stored record is the one the engine stores for the same CreateCall.
    let scratch_dir = tempfile::tempdir().unwrap();
    let scratch: Arc<dyn Store> = Arc::new(SqliteStore::open(scratch_dir.path()).await.unwrap());
    let first = &preloaded.agents[0];
    let owner = actor_of(
        &store
            .get_user_by_username(&first.username)
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    Engine::new(scratch.clone(), Metrics::new())
        .execute(&owner, create_call_command(0, 0, parties), None)
        .await
        .unwrap();
    let by_engine = scratch
        .get_conference(&first.calls[0].call_id)
        .await
        .unwrap()
        .unwrap();
    let preloaded_record = store
        .get_conference(&first.calls[0].call_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(preloaded_record.kind, by_engine.kind);
    assert_eq!(preloaded_record.version, by_engine.version);
    assert_eq!(preloaded_record.index_keys, by_engine.index_keys);
    assert_eq!(preloaded_record.live, by_engine.live);
    assert_eq!(
        without_time(&preloaded_record.state, preloaded_record.updated_at_ms),
        without_time(&by_engine.state, by_engine.updated_at_ms)
    );
    // Listed for its owner, as GET /api/v2/me/calls needs.
    let listed = store
        .list_conferences(&format!("user:{}", first.user_id), true, None, 100)
        .await
        .unwrap();
    assert_eq!(listed.len(), CALLS);

    // Every call is removable by its owner, who logs in with the preloaded password.
    let auth = Authenticator::new(
        store.clone(),
        KeyRing::single(SigningKey::random()),
        DEFAULT_SESSION_TTL,
    );
    let engine = Engine::new(store.clone(), Metrics::new());
    for agent in &preloaded.agents {
        let actor = auth
            .verify_password(&agent.username, &agent.password)
            .await
            .unwrap();
        assert!(
            auth.verify_password(&agent.username, "wrong")
                .await
                .is_err()
        );
        for call in &agent.calls {
            let executed = engine
                .execute(
                    &actor,
                    Command::RemoveParticipantFromCall {
                        call: ConferenceId::new(call.call_id.clone()),
                        participant: call.participant.clone(),
                    },
                    None,
                )
                .await
                .unwrap_or_else(|e| panic!("removing from {}: {e}", call.call_id));
            assert!(!executed.events.is_empty());
            let after: Conference = engine.load(&call.call_id).await.unwrap().unwrap();
            let present = after
                .as_call()
                .unwrap()
                .parties
                .iter()
                .filter(|p| p.is_present())
                .count();
            assert_eq!(present, parties - 1, "{after:?}");
        }
    }
    // The same removal again is refused: the party is gone.
    let actor = auth
        .verify_password(&first.username, &first.password)
        .await
        .unwrap();
    assert!(
        engine
            .execute(
                &actor,
                Command::RemoveParticipantFromCall {
                    call: ConferenceId::new(first.calls[0].call_id.clone()),
                    participant: first.calls[0].participant.clone(),
                },
                None,
            )
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_preload_is_removable_through_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = PreloadSpec::new(
        StoreTarget::Sqlite {
            data_dir: dir.path().to_path_buf(),
        },
        AGENTS,
        CALLS,
    );
    spec.parties = 4;
    let preloaded = preload(&spec).await.unwrap();
    assert_eq!(preloaded.agents[2].username, agent_username(2));
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).await.unwrap());
    check(store, &preloaded, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_preload_is_removable_through_the_engine() {
    let Some(db) = PgTest::new().await else {
        return;
    };
    let spec = PreloadSpec::new(
        StoreTarget::Postgres {
            url: db.url.clone(),
            schema: db.schema.clone(),
        },
        AGENTS,
        CALLS,
    );
    let preloaded = preload(&spec).await.unwrap();
    check(db.store(), &preloaded, 3).await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_preload_with_the_same_agents_fails_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let spec = PreloadSpec::new(
        StoreTarget::Sqlite {
            data_dir: dir.path().to_path_buf(),
        },
        2,
        3,
    );
    preload(&spec).await.unwrap();
    assert!(preload(&spec).await.is_err());
    let mut disjoint = spec.clone();
    disjoint.first_agent = 2;
    let more = preload(&disjoint).await.unwrap();
    assert_eq!(more.agents[0].username, agent_username(2));
    let store = SqliteStore::open(dir.path()).await.unwrap();
    assert_eq!(store.head_seq().await.unwrap(), 12);
}
