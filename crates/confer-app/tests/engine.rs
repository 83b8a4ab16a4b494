//! The engine on both real stores: the seed removal, a repeated removal, races between removers,
//! Idempotency-Key replays, and listing.

use std::sync::Arc;

use confer_app::{
    App,
    config::ServeArgs,
    engine::{EngineError, IdempotencyKey},
};
use confer_core::{
    Command, ConferenceId, DomainError,
    demo::{self, demo_actor},
    view::call_view,
};
use confer_store::Store;

async fn app_on(store: Arc<dyn Store>) -> Arc<App> {
    let config = ServeArgs::default().resolve().unwrap();
    confer_app::demo::load(store.as_ref()).await.unwrap();
    App::on_store(config, store).await.unwrap()
}

fn remove_15001() -> Command {
    Command::RemoveParticipantFromCall {
        call: ConferenceId::new(demo::VOICE_CALL_ID),
        participant: "15001".into(),
    }
}

/// Runs `case` on SQLite and on PostgreSQL (skipped only off CI without a database).
macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let db = confer_store::testing::SqliteTest::new().await;
                    super::$case(super::app_on(db.store()).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let Some(db) = confer_store::testing::PgTest::new().await else { return };
                    super::$case(super::app_on(db.store()).await).await;
                    db.finish().await;
                }
            )*
        }
    };
}

on_both_backends!(
    the_seed_removal_commits_and_a_repeat_is_refused,
    racing_removers_exactly_one_wins,
    idempotency_key_replays_the_first_success,
    listing_shows_each_user_their_own,
);

async fn the_seed_removal_commits_and_a_repeat_is_refused(app: Arc<App>) {
    let owner = demo_actor("agent15000").unwrap();
    let done = app
        .engine
        .execute(&owner, remove_15001(), None)
        .await
        .unwrap();
    assert!(!done.replayed);
    assert!(!done.seqs.is_empty(), "the removal is in the event log");
    let stored = app.engine.load(demo::VOICE_CALL_ID).await.unwrap().unwrap();
    assert_eq!(
        stored, done.conference,
        "what was answered is what was committed"
    );
    let view = call_view(
        &stored,
        &owner.user_id,
        confer_core::Timestamp::from_millis(0),
    )
    .unwrap();
    let others: Vec<String> = view
        .participants
        .iter()
        .map(|p| p.phone_number.to_string())
        .collect();
    assert_eq!(others, ["15002"]);

    let again = app
        .engine
        .execute(&owner, remove_15001(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            again,
            EngineError::Domain(DomainError::NotInConference { .. })
        ),
        "{again:?}"
    );
    let events = app.store.read_events(0, 1000).await.unwrap();
    assert_eq!(
        events.last().unwrap().seq,
        *done.seqs.end(),
        "the refused repeat wrote nothing"
    );
}

async fn racing_removers_exactly_one_wins(app: Arc<App>) {
    let owner = demo_actor("agent15000").unwrap();
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let (app, owner) = (app.clone(), owner.clone());
        tasks.push(tokio::spawn(async move {
            app.engine.execute(&owner, remove_15001(), None).await
        }));
    }
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => won += 1,
            Err(EngineError::Domain(DomainError::NotInConference { .. })) => {}
            Err(other) => panic!("a loser must get 'not in the conference', got {other:?}"),
        }
    }
    assert_eq!(won, 1, "exactly one removal succeeds");
    let removals = app
        .store
        .conference_history(demo::VOICE_CALL_ID, u64::MAX)
        .await
        .unwrap()
        .events
        .into_iter()
        .filter(|e| e.kind.contains("Removed"))
        .count();
    assert_eq!(removals, 1, "one removal event in the log");
}

async fn idempotency_key_replays_the_first_success(app: Arc<App>) {
    let owner = demo_actor("agent15000").unwrap();
    let key = IdempotencyKey {
        key: "k-1".into(),
        fingerprint: "POST /calls/x remove 15001".into(),
    };
    let first = app
        .engine
        .execute(&owner, remove_15001(), Some(key.clone()))
        .await
        .unwrap();
    let head = app.store.head_seq().await.unwrap();
    let second = app
        .engine
        .execute(&owner, remove_15001(), Some(key.clone()))
        .await
        .unwrap();
    assert!(second.replayed);
    assert_eq!(
        second.conference, first.conference,
        "the original success, answered again"
    );
    assert_eq!(app.store.head_seq().await.unwrap(), head, "nothing changed");

    let other_request = IdempotencyKey {
        key: "k-1".into(),
        fingerprint: "something else".into(),
    };
    let err = app
        .engine
        .execute(&owner, remove_15001(), Some(other_request))
        .await
        .unwrap_err();
    assert!(matches!(err, EngineError::IdempotencyKeyReused), "{err:?}");

    // Concurrent first uses of one key: one commits, the others replay it.
    let key = IdempotencyKey {
        key: "k-2".into(),
        fingerprint: "POST /calls/x remove 15002".into(),
    };
    let command = Command::RemoveParticipantFromCall {
        call: ConferenceId::new(demo::VOICE_CALL_ID),
        participant: "15002".into(),
    };
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (app, owner, key, command) = (app.clone(), owner.clone(), key.clone(), command.clone());
        tasks.push(tokio::spawn(async move {
            app.engine.execute(&owner, command, Some(key)).await
        }));
    }
    let mut fresh = 0;
    for task in tasks {
        let done = task
            .await
            .unwrap()
            .expect("every request with the key succeeds");
        fresh += usize::from(!done.replayed);
    }
    assert_eq!(
        fresh, 1,
        "one request did the work; the rest were answered from it"
    );
}

async fn listing_shows_each_user_their_own(app: Arc<App>) {
    let ids = |list: Vec<confer_core::Conference>| -> Vec<String> {
        list.into_iter().map(|c| c.id.to_string()).collect()
    };
    let agent = demo_actor("agent15000").unwrap();
    assert_eq!(
        ids(app.engine.listed_for(&agent).await.unwrap()),
        [demo::VOICE_CALL_ID]
    );
    let chat_agent = demo_actor("test_consult").unwrap();
    assert_eq!(
        ids(app.engine.listed_for(&chat_agent).await.unwrap()),
        [demo::CHAT_ID]
    );
    let evo = demo_actor("evo-user").unwrap();
    assert_eq!(
        ids(app.engine.listed_for(&evo).await.unwrap()),
        [demo::SESSION_ID]
    );
    let supervisor = demo_actor("supervisor").unwrap();
    assert!(
        app.engine.listed_for(&supervisor).await.unwrap().is_empty(),
        "monitors nobody yet"
    );
}
