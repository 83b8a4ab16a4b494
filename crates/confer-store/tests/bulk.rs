//! `bulk_load` on both backends: it stores what commits would have stored, continues the log
//! after the existing head, and stores nothing when any row already exists.

use confer_store::{
    BulkConference, BulkLoad, Commit, ConferenceRecord, NewEvent, PgStore, SqliteStore, Store,
    StoreError, UserRecord,
    testing::{PgTest, SqliteTest},
};
use serde_json::json;

fn conference(id: &str, owner: &str) -> BulkConference {
    BulkConference {
        conference: ConferenceRecord {
            id: id.to_owned(),
            kind: "call".to_owned(),
            version: 1,
            state: json!({"id": id, "parties": [owner, "x"]}),
            index_keys: vec![format!("user:{owner}"), format!("user:{owner}")],
            live: true,
            updated_at_ms: 1_700_000_000_000,
        },
        events: vec![
            NewEvent {
                conference_id: id.to_owned(),
                kind: "ConferenceCreated".to_owned(),
                payload: json!({"conference": id}),
            },
            NewEvent {
                conference_id: id.to_owned(),
                kind: "Noted".to_owned(),
                payload: json!({"n": 2}),
            },
        ],
    }
}

fn user(id: &str) -> UserRecord {
    UserRecord {
        id: id.to_owned(),
        username: format!("name-{id}"),
        password_hash: "$argon2id$x".to_owned(),
        profile: json!({"roles": ["Agent"]}),
    }
}

/// The backend-independent checks; `load` is the backend's `bulk_load`.
async fn check<F, Fut>(store: &dyn Store, load: F)
where
    F: Fn(BulkLoad) -> Fut,
    Fut: std::future::Future<Output = Result<confer_store::BulkOutcome, StoreError>>,
{
    // One ordinary commit first: the bulk load continues the log after it.
    let existing = conference("c-existing", "u0");
    store
        .commit(Commit {
            conference: existing.conference.clone(),
            expected_version: None,
            events: existing.events[..1].to_vec(),
            idempotency: None,
        })
        .await
        .unwrap();

    let outcome = load(BulkLoad {
        users: vec![user("u1"), user("u2")],
        conferences: (0..2500)
            .map(|i| conference(&format!("c{i:05}"), if i % 2 == 0 { "u1" } else { "u2" }))
            .collect(),
    })
    .await
    .unwrap();
    assert_eq!(outcome.users, 2);
    assert_eq!(outcome.conferences, 2500);
    assert_eq!(outcome.events.first_seq, 2);
    assert_eq!(outcome.events.last_seq, 5001);
    assert_eq!(store.head_seq().await.unwrap(), 5001);

    let got = store.get_conference("c00007").await.unwrap().unwrap();
    assert_eq!(got, conference("c00007", "u2").conference);
    assert_eq!(
        store
            .get_user_by_username("name-u1")
            .await
            .unwrap()
            .unwrap(),
        user("u1")
    );
    // Index keys are stored once per conference, as a commit stores them.
    let listed = store
        .list_conferences("user:u1", true, None, 5000)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1250);
    let events = store
        .conference_history("c00007", u64::MAX)
        .await
        .unwrap()
        .events;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].kind, "ConferenceCreated");
    assert_eq!(events[1].seq, events[0].seq + 1);
    let all = store.read_events(0, 10_000).await.unwrap();
    assert_eq!(all.len(), 5001);
    assert!(all.windows(2).all(|w| w[1].seq == w[0].seq + 1));

    // A loaded conference is updated by an ordinary commit like any other.
    let mut next = got.clone();
    next.version = 2;
    store
        .commit(Commit {
            conference: next,
            expected_version: Some(1),
            events: vec![],
            idempotency: None,
        })
        .await
        .unwrap();

    // An existing id fails the whole load: the new user and conference are not stored.
    let failed = load(BulkLoad {
        users: vec![user("u9")],
        conferences: vec![conference("c-new", "u9"), conference("c00001", "u1")],
    })
    .await;
    assert!(failed.is_err(), "{failed:?}");
    assert!(store.get_conference("c-new").await.unwrap().is_none());
    assert!(store.get_user("u9").await.unwrap().is_none());
    assert_eq!(store.head_seq().await.unwrap(), 5001);

    // An event naming another conference is refused before anything is written.
    let mut bad = conference("c-bad", "u1");
    bad.events[0].conference_id = "other".to_owned();
    assert!(matches!(
        load(BulkLoad {
            users: vec![],
            conferences: vec![bad],
        })
        .await,
        Err(StoreError::Invalid(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_bulk_load() {
    let db = SqliteTest::new().await;
    let store: &SqliteStore = &db.store;
    check(store, |load| async move { store.bulk_load(&load).await }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_bulk_load() {
    let Some(db) = PgTest::new().await else {
        return;
    };
    {
        let store: &PgStore = &db.store;
        check(store, |load| async move { store.bulk_load(&load).await }).await;
    }
    db.finish().await;
}
