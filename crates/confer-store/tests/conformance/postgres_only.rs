//! PostgreSQL-specific behaviour: several nodes on one schema, wake-ups through NOTIFY,
//! connection errors.

use std::time::Duration;

use confer_store::{PgStore, PgStoreOptions, Store, StoreError};
use sqlx::Connection as _;

use crate::cases::{conference, create, event};
use confer_store::testing::PgTest;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_nodes_are_woken_through_notify() {
    let Some(db) = PgTest::new().await else {
        return;
    };
    let node_b = db.another_node().await;
    let mut rx = node_b.subscribe_wakeups();
    assert_eq!(*rx.borrow_and_update(), 0);

    // Node A commits; node B learns of it only through LISTEN/NOTIFY.
    let out = db
        .store
        .commit(create(
            conference("c1", 1, &[], true),
            vec![event("c1", "a", 1), event("c1", "b", 2)],
        ))
        .await
        .unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|v| *v >= out.last_seq))
        .await
        .expect("node B woken within 5 s")
        .map(|v| *v)
        .unwrap();
    assert_eq!(seen, 2);
    assert_eq!(node_b.read_events(0, 10).await.unwrap().len(), 2);

    // A rolled-back commit notifies nobody.
    let _ = db
        .store
        .commit(create(
            conference("c1", 1, &[], true),
            vec![event("c1", "x", 1)],
        ))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(*node_b.subscribe_wakeups().borrow(), 2);

    node_b.close().await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_together_migrate_once() {
    let Some(db) = PgTest::new().await else {
        return;
    };
    // Three more nodes on a brand-new schema at once: schema creation and migrations race.
    let fresh = format!("{}_x", db.schema);
    let connect = |_| {
        PgStore::connect_with(
            PgStoreOptions::new(&db.url)
                .schema(&fresh)
                .max_connections(2),
        )
    };
    let nodes: Vec<_> = futures_join(vec![connect(0), connect(1), connect(2)]).await;
    let mut stores = Vec::new();
    for node in nodes {
        stores.push(node.expect("every node connects"));
    }
    stores[0]
        .commit(create(
            conference("c", 1, &[], true),
            vec![event("c", "a", 1)],
        ))
        .await
        .unwrap();
    for s in &stores {
        assert_eq!(s.head_seq().await.unwrap(), 1);
        s.close().await;
    }
    confer_store::testing::drop_schema(&db.url, &fresh)
        .await
        .unwrap();
    db.finish().await;
}

/// Awaits futures concurrently (spawned, so that they really race on the runtime's threads).
async fn futures_join<F>(futures: Vec<F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

#[tokio::test]
async fn unreachable_database_is_unavailable() {
    // Nothing listens on port 1. Needs no database, so it runs everywhere.
    let mut options = PgStoreOptions::new("postgres://postgres@127.0.0.1:1/test");
    options.acquire_timeout = Duration::from_secs(2);
    let result = PgStore::connect_with(options).await;
    match result {
        Err(e) => assert!(e.is_unavailable(), "expected Unavailable, got {e:?}"),
        Ok(_) => panic!("connected to a closed port"),
    }
}

#[tokio::test]
async fn bad_schema_names_and_urls_are_refused() {
    for schema in [
        "",
        "Upper",
        "1abc",
        "semi;colon",
        "quote\"",
        &"x".repeat(49),
    ] {
        let r =
            PgStore::connect_with(PgStoreOptions::new("postgres://127.0.0.1:1/x").schema(schema))
                .await;
        assert!(
            matches!(r, Err(StoreError::Invalid(_))),
            "{schema:?}: {r:?}"
        );
    }
    let r = PgStore::connect("not a url").await;
    assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
}

/// The harness promise: a failing PostgreSQL test still drops its schema. (Current-thread
/// runtime, so the deliberate panic's message stays in this test's captured output.)
#[tokio::test(flavor = "current_thread")]
async fn a_panicking_test_still_drops_its_schema() {
    let Some(url) = confer_store::testing::postgres_url_or_skip().await else {
        return;
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let db = PgTest::new().await.expect("database reachable");
        let _ = tx.send(db.schema.clone());
        db.store
            .commit(create(conference("c", 1, &[], true), vec![]))
            .await
            .unwrap();
        panic!("deliberate panic: the harness must clean up after it");
    });
    assert!(task.await.expect_err("the task panics").is_panic());
    let schema = rx.await.expect("schema name");

    let mut conn = sqlx::postgres::PgConnection::connect(&url).await.unwrap();
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname = $1")
        .bind(&schema)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, 0, "schema {schema} was left behind");
    sqlx::Connection::close(conn).await.unwrap();
}

/// A CometD session changed on node A (subscription added or removed, session deleted) is
/// announced to node B through NOTIFY, by client id; A is not told of its own changes, and
/// operations on unknown sessions announce nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cometd_session_changes_are_announced_to_the_other_nodes() {
    use confer_store::{CometdSessionChange, CometdSessionRecord};
    use tokio::sync::broadcast::error::TryRecvError;

    let Some(db) = PgTest::new().await else {
        return;
    };
    let node_b = db.another_node().await;
    let mut on_a = db.store.cometd_session_changes().expect("shared sessions");
    let mut on_b = node_b.cometd_session_changes().expect("shared sessions");
    let next = |rx: &mut tokio::sync::broadcast::Receiver<CometdSessionChange>| {
        let mut rx = rx.resubscribe();
        async move {
            tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .expect("an announcement within 5 s")
                .expect("the store is open")
        }
    };
    let session = CometdSessionRecord {
        client_id: "s1".into(),
        principal: serde_json::json!({}),
        principal_key: "u1".into(),
        subscriptions: Vec::new(),
        ack: true,
        cursor: 0,
        connected: false,
        last_connect_ms: 0,
        expires_at_ms: u64::MAX >> 12,
    };
    assert!(db.store.create_cometd_session(session).await.unwrap());

    for step in ["subscribe", "unsubscribe", "delete"] {
        let waiting = next(&mut on_b);
        match step {
            "subscribe" => assert!(
                db.store
                    .add_cometd_subscription("s1", "/a/*", 1)
                    .await
                    .unwrap()
            ),
            "unsubscribe" => assert!(
                db.store
                    .remove_cometd_subscription("s1", "/a/*")
                    .await
                    .unwrap()
            ),
            _ => assert!(db.store.delete_cometd_session("s1").await.unwrap()),
        }
        assert_eq!(
            waiting.await,
            CometdSessionChange::Changed("s1".into()),
            "{step}"
        );
    }
    // Nothing about unknown sessions; A never hears its own announcements.
    assert!(
        !db.store
            .add_cometd_subscription("s1", "/a/*", 1)
            .await
            .unwrap()
    );
    assert!(!db.store.delete_cometd_session("s1").await.unwrap());
    node_b
        .add_cometd_subscription("nope", "/a/*", 1)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(matches!(on_a.try_recv(), Err(TryRecvError::Empty)));
    // B's receiver (the original, not the resubscribed copies) saw the three, nothing more.
    for _ in 0..3 {
        assert!(matches!(on_b.try_recv(), Ok(CometdSessionChange::Changed(id)) if id == "s1"));
    }
    assert!(matches!(on_b.try_recv(), Err(TryRecvError::Empty)));

    node_b.close().await;
    db.finish().await;
}
