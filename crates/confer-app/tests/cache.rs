//! The engine's conference cache against another node: two `App`s on one store, each with its
//! own cache, as two server nodes are. A state cached on one node and changed by the other
//! must never decide a command on its own: a stale success conflicts at commit, a stale refusal
//! is decided again on the store.

use std::sync::Arc;

use confer_app::{App, config::ServeArgs, engine::EngineError};
use confer_core::{
    Command, ConferenceId, DomainError,
    demo::{self, demo_actor},
};
use confer_store::Store;

/// Two nodes on `store`, which holds the seeds' world.
async fn two_nodes(store: Arc<dyn Store>) -> (Arc<App>, Arc<App>) {
    confer_app::demo::load(store.as_ref()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let node = || async {
        let config = ServeArgs {
            data_dir: Some(dir.path().to_path_buf()),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap();
        App::on_store(config, store.clone()).await.unwrap()
    };
    (node().await, node().await)
}

fn remove(participant: &str) -> Command {
    Command::RemoveParticipantFromCall {
        call: ConferenceId::new(demo::VOICE_CALL_ID),
        participant: participant.into(),
    }
}

/// Node A holds the call in its cache; node B adds a line; A removes that line. Decided on A's
/// cached state alone, the removal would be refused ("not in the conference").
async fn a_refusal_on_a_stale_cached_state_is_decided_again_on_the_store(store: Arc<dyn Store>) {
    let (a, b) = two_nodes(store).await;
    let owner = demo_actor("agent15000").unwrap();
    a.engine.load(demo::VOICE_CALL_ID).await.unwrap().unwrap();
    assert!(
        a.engine.cache().get(demo::VOICE_CALL_ID).is_some(),
        "A caches what it read"
    );
    b.engine
        .execute(
            &owner,
            Command::SingleStepConference {
                call: ConferenceId::new(demo::VOICE_CALL_ID),
                destination: "15077".into(),
                destination_user: None,
            },
            None,
        )
        .await
        .unwrap();
    let done = a
        .engine
        .execute(&owner, remove("15077"), None)
        .await
        .expect("the line B added is removable through A");
    assert!(!done.seqs.is_empty());
}

/// Node A holds the call; node B removes 15001; A is asked to remove 15001 too. Decided on A's
/// cached state it would succeed; the commit's version check makes it a refusal.
async fn a_success_on_a_stale_cached_state_conflicts_and_is_refused(store: Arc<dyn Store>) {
    let (a, b) = two_nodes(store.clone()).await;
    let owner = demo_actor("agent15000").unwrap();
    a.engine.load(demo::VOICE_CALL_ID).await.unwrap().unwrap();
    b.engine
        .execute(&owner, remove("15001"), None)
        .await
        .unwrap();
    let again = a.engine.execute(&owner, remove("15001"), None).await;
    assert!(
        matches!(
            again,
            Err(EngineError::Domain(DomainError::NotInConference { .. }))
        ),
        "{again:?}"
    );
    let removals = store
        .conference_history(demo::VOICE_CALL_ID, u64::MAX)
        .await
        .unwrap()
        .events
        .into_iter()
        .filter(|e| e.kind.contains("Removed"))
        .count();
    assert_eq!(removals, 1, "one removal in the log");
    assert_eq!(
        a.metrics.store_commit_conflicts.get(),
        1,
        "A's stale decision reached the store and was refused there"
    );
}

macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let db = confer_store::testing::SqliteTest::new().await;
                    super::$case(db.store()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(db) = confer_store::testing::PgTest::new().await else { return };
                    super::$case(db.store()).await;
                    db.finish().await;
                }
            )*
        }
    };
}

on_both_backends!(
    a_refusal_on_a_stale_cached_state_is_decided_again_on_the_store,
    a_success_on_a_stale_cached_state_conflicts_and_is_refused,
);
