//! Idempotency records are deleted once expired, in pages, on both stores: without it the table
//! grows by one row per keyed request for ever.

use std::sync::Arc;

use confer_app::retention::purge_expired_idempotency;
use confer_store::{Commit, ConferenceRecord, IdempotencyRecord, Store};
use serde_json::json;

const HOUR_MS: i64 = 3_600_000;

async fn keyed_commits(store: &Arc<dyn Store>, count: usize, expires_at_ms: i64, prefix: &str) {
    for i in 0..count {
        let id = format!("{prefix}-{i}");
        store
            .commit(Commit {
                conference: ConferenceRecord {
                    id: id.clone(),
                    kind: "voice".into(),
                    version: 1,
                    state: json!({"id": id}),
                    index_keys: vec![],
                    live: true,
                    updated_at_ms: expires_at_ms - 24 * HOUR_MS,
                },
                expected_version: None,
                events: vec![],
                idempotency: Some(IdempotencyRecord {
                    user_id: "agent".into(),
                    key: id.clone(),
                    request_fingerprint: format!("POST {id}"),
                    response: json!({"statusCode": 0}),
                    expires_at_ms,
                }),
            })
            .await
            .expect("a commit");
    }
}

async fn purges_every_expired_record_and_nothing_else(store: Arc<dyn Store>) {
    let now = confer_app::engine::now().millis();
    keyed_commits(&store, 25, now - HOUR_MS, "old").await;
    keyed_commits(&store, 3, now + HOUR_MS, "new").await;
    // Pages of 10: three calls for 25 records.
    assert_eq!(
        purge_expired_idempotency(store.as_ref(), now, 10)
            .await
            .unwrap(),
        25
    );
    assert_eq!(
        purge_expired_idempotency(store.as_ref(), now, 10)
            .await
            .unwrap(),
        0
    );
    for i in 0..3 {
        let key = format!("new-{i}");
        assert!(
            store
                .get_idempotency("agent", &key, now)
                .await
                .unwrap()
                .is_some(),
            "{key} is still replayable"
        );
    }
    assert_eq!(
        purge_expired_idempotency(store.as_ref(), now + 2 * HOUR_MS, 10)
            .await
            .unwrap(),
        3
    );
}

#[tokio::test]
async fn expired_idempotency_records_are_purged_on_sqlite() {
    let db = confer_store::testing::SqliteTest::new().await;
    purges_every_expired_record_and_nothing_else(db.store()).await;
}

#[tokio::test]
async fn expired_idempotency_records_are_purged_on_postgres() {
    let Some(db) = confer_store::testing::PgTest::new().await else {
        return;
    };
    purges_every_expired_record_and_nothing_else(db.store()).await;
    db.finish().await;
}
