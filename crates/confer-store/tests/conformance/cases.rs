//! The conformance suite: every case runs against every backend (see `main.rs`).

use std::sync::Arc;
use std::time::Duration;

use confer_store::{
    CometdConnect, CometdSessionRecord, CometdSubscription, Commit, CommitOutcome,
    ConferenceRecord, IdempotencyRecord, NewEvent, Store, StoreError, UserRecord,
};
use serde_json::json;

// ---- builders --------------------------------------------------------------------------------

pub fn conference(id: &str, version: u64, keys: &[&str], live: bool) -> ConferenceRecord {
    ConferenceRecord {
        id: id.to_owned(),
        kind: "voice".to_owned(),
        version,
        state: json!({
            "id": id,
            "version": version,
            "participants": [{"id": "agent15000", "muted": false}, {"id": "+15551234", "ratio": 1.5}],
            "text": "Grüße \"quoted\" \\ \u{1F600}",
            "big": u64::MAX,
            "nothing": null,
        }),
        index_keys: keys.iter().map(|k| (*k).to_owned()).collect(),
        live,
        updated_at_ms: 1_700_000_000_000 + version as i64,
    }
}

pub fn event(conference_id: &str, kind: &str, n: u64) -> NewEvent {
    NewEvent {
        conference_id: conference_id.to_owned(),
        kind: kind.to_owned(),
        payload: json!({"kind": kind, "n": n, "nested": {"list": [1, 2, 3]}}),
    }
}

pub fn create(c: ConferenceRecord, events: Vec<NewEvent>) -> Commit {
    Commit {
        conference: c,
        expected_version: None,
        events,
        idempotency: None,
    }
}

pub fn update(c: ConferenceRecord, expected: u64, events: Vec<NewEvent>) -> Commit {
    Commit {
        conference: c,
        expected_version: Some(expected),
        events,
        idempotency: None,
    }
}

fn idempotency(user: &str, key: &str, expires_at_ms: i64) -> IdempotencyRecord {
    IdempotencyRecord {
        user_id: user.to_owned(),
        key: key.to_owned(),
        request_fingerprint: format!("POST /api/v2/me/calls {key}"),
        response: json!({"statusCode": 0, "key": key}),
        expires_at_ms,
    }
}

fn user(id: &str, username: &str) -> UserRecord {
    UserRecord {
        id: id.to_owned(),
        username: username.to_owned(),
        password_hash: format!("$argon2id$v=19$hash-of-{username}"),
        profile: json!({"firstName": "Ann", "lastName": username, "roles": ["agent"]}),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

const HOUR_MS: i64 = 3_600_000;

async fn all_events(store: &dyn Store) -> Vec<confer_store::StoredEvent> {
    store.read_events(0, 100_000).await.expect("read_events")
}

// ---- cases -----------------------------------------------------------------------------------

pub async fn ping(store: Arc<dyn Store>) {
    store.ping().await.expect("ping");
}

pub async fn create_and_get(store: Arc<dyn Store>) {
    assert_eq!(store.get_conference("c1").await.unwrap(), None);
    let head = store.head_seq().await.unwrap();
    let c = conference("c1", 1, &["user:agent15000", "account:demo-account"], true);
    let out = store
        .commit(create(
            c.clone(),
            vec![event("c1", "created", 1), event("c1", "joined", 2)],
        ))
        .await
        .expect("create");
    assert_eq!(
        out,
        CommitOutcome {
            first_seq: head + 1,
            last_seq: head + 2
        }
    );
    assert_eq!(out.event_count(), 2);
    assert_eq!(store.get_conference("c1").await.unwrap(), Some(c));
    assert_eq!(store.head_seq().await.unwrap(), head + 2);

    let events = all_events(&*store).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].seq, head + 1);
    assert_eq!(events[0].conference_id, "c1");
    assert_eq!(events[0].conference_version, 1);
    assert_eq!(events[0].kind, "created");
    assert_eq!(events[0].payload, event("c1", "created", 1).payload);
    assert_eq!(events[1].kind, "joined");
    assert!(
        events[0].committed_at_ms > 1_600_000_000_000,
        "committed_at_ms is a wall clock"
    );
}

pub async fn update_with_expected_version(store: Arc<dyn Store>) {
    store
        .commit(create(conference("c1", 1, &["k"], true), vec![]))
        .await
        .unwrap();
    let mut v2 = conference("c1", 2, &["k"], true);
    v2.state = json!({"changed": true});
    let out = store
        .commit(update(v2.clone(), 1, vec![event("c1", "x", 1)]))
        .await
        .unwrap();
    assert_eq!(out.event_count(), 1);
    assert_eq!(store.get_conference("c1").await.unwrap(), Some(v2));
    assert_eq!(all_events(&*store).await[0].conference_version, 2);

    // No events: an empty range just after the head, and the head does not move.
    let head = store.head_seq().await.unwrap();
    let mut v5 = conference("c1", 5, &["k"], false);
    v5.kind = "session".into();
    let out = store.commit(update(v5.clone(), 2, vec![])).await.unwrap();
    assert_eq!(
        out,
        CommitOutcome {
            first_seq: head + 1,
            last_seq: head
        }
    );
    assert_eq!(out.event_count(), 0);
    assert!(out.seqs().is_empty());
    assert_eq!(store.head_seq().await.unwrap(), head);
    assert_eq!(store.get_conference("c1").await.unwrap(), Some(v5));
}

pub async fn conflict_on_stale_version(store: Arc<dyn Store>) {
    store
        .commit(create(conference("c1", 1, &["k"], true), vec![]))
        .await
        .unwrap();
    store
        .commit(update(conference("c1", 2, &["k"], true), 1, vec![]))
        .await
        .unwrap();
    let head = store.head_seq().await.unwrap();

    let stale = store
        .commit(update(
            conference("c1", 3, &["k", "other"], false),
            1,
            vec![event("c1", "x", 1)],
        ))
        .await;
    match stale {
        Err(StoreError::Conflict {
            id,
            expected,
            actual,
        }) => {
            assert_eq!((id.as_str(), expected, actual), ("c1", Some(1), Some(2)));
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    // Nothing of the failed commit is visible.
    assert_eq!(
        store.get_conference("c1").await.unwrap(),
        Some(conference("c1", 2, &["k"], true))
    );
    assert!(
        store
            .list_conferences("other", false, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.head_seq().await.unwrap(), head);
    assert!(store.read_events(head, 10).await.unwrap().is_empty());

    let missing = store
        .commit(update(conference("nope", 6, &[], true), 5, vec![]))
        .await;
    assert!(
        matches!(
            &missing,
            Err(StoreError::Conflict {
                expected: Some(5),
                actual: None,
                ..
            })
        ),
        "{missing:?}"
    );
    assert_eq!(store.get_conference("nope").await.unwrap(), None);
}

pub async fn conflict_on_create_existing(store: Arc<dyn Store>) {
    store
        .commit(create(
            conference("c1", 1, &["k"], true),
            vec![event("c1", "a", 1)],
        ))
        .await
        .unwrap();
    let head = store.head_seq().await.unwrap();
    let again = store
        .commit(create(
            conference("c1", 7, &["k2"], true),
            vec![event("c1", "b", 2)],
        ))
        .await;
    assert!(
        matches!(
            &again,
            Err(StoreError::Conflict {
                expected: None,
                actual: Some(1),
                ..
            })
        ),
        "{again:?}"
    );
    assert_eq!(
        store.get_conference("c1").await.unwrap().map(|c| c.version),
        Some(1)
    );
    assert_eq!(store.head_seq().await.unwrap(), head);
    assert!(
        store
            .list_conferences("k2", false, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn invalid_commits_are_refused(store: Arc<dyn Store>) {
    store
        .commit(create(conference("c1", 3, &[], true), vec![]))
        .await
        .unwrap();
    let same_version = store
        .commit(update(conference("c1", 3, &[], true), 3, vec![]))
        .await;
    assert!(
        matches!(same_version, Err(StoreError::Invalid(_))),
        "{same_version:?}"
    );
    let foreign_event = store
        .commit(update(
            conference("c1", 4, &[], true),
            3,
            vec![event("c2", "x", 1)],
        ))
        .await;
    assert!(
        matches!(foreign_event, Err(StoreError::Invalid(_))),
        "{foreign_event:?}"
    );
    let empty_id = store
        .commit(create(conference("", 1, &[], true), vec![]))
        .await;
    assert!(
        matches!(empty_id, Err(StoreError::Invalid(_))),
        "{empty_id:?}"
    );
    assert_eq!(
        store.get_conference("c1").await.unwrap().map(|c| c.version),
        Some(3)
    );
    assert_eq!(store.head_seq().await.unwrap(), 0);
}

pub async fn seqs_increase_across_conferences(store: Arc<dyn Store>) {
    let ids = ["a", "b", "c", "d", "e"];
    let mut versions = [0u64; 5];
    let mut expected = Vec::new(); // (seq, conference, version, kind)
    let mut last = store.head_seq().await.unwrap();
    for round in 0..4u64 {
        for (i, id) in ids.iter().enumerate() {
            let n = (i as u64 + round) % 3 + 1; // 1..=3 events
            let events: Vec<_> = (0..n)
                .map(|k| event(id, &format!("r{round}e{k}"), k))
                .collect();
            let version = versions[i] + 1;
            let c = conference(id, version, &["all"], true);
            let commit = if versions[i] == 0 {
                create(c, events.clone())
            } else {
                update(c, versions[i], events.clone())
            };
            let out = store.commit(commit).await.unwrap();
            assert_eq!(
                out.first_seq,
                last + 1,
                "each commit's seqs follow the previous one's"
            );
            assert_eq!(out.last_seq, last + n);
            for (seq, e) in out.seqs().zip(&events) {
                expected.push((seq, id.to_string(), version, e.kind.clone()));
            }
            last = out.last_seq;
            versions[i] = version;
        }
    }
    let got: Vec<_> = all_events(&*store)
        .await
        .into_iter()
        .map(|e| (e.seq, e.conference_id, e.conference_version, e.kind))
        .collect();
    assert_eq!(got, expected);
}

pub async fn read_events_paging(store: Arc<dyn Store>) {
    for i in 0..5u64 {
        let events = (0..5).map(|k| event(&format!("c{i}"), "e", k)).collect();
        store
            .commit(create(conference(&format!("c{i}"), 1, &[], true), events))
            .await
            .unwrap();
    }
    assert_eq!(store.head_seq().await.unwrap(), 25);
    let mut cursor = 0;
    let mut sizes = Vec::new();
    let mut last_time = i64::MIN;
    loop {
        let page = store.read_events(cursor, 7).await.unwrap();
        if page.is_empty() {
            break;
        }
        sizes.push(page.len());
        for e in &page {
            assert_eq!(e.seq, cursor + 1, "pages continue exactly after the cursor");
            assert!(
                e.committed_at_ms >= last_time,
                "committed_at_ms follows seq order"
            );
            last_time = e.committed_at_ms;
            cursor = e.seq;
        }
    }
    assert_eq!(sizes, vec![7, 7, 7, 4]);
    assert_eq!(cursor, 25);
    assert!(store.read_events(25, 10).await.unwrap().is_empty());
    assert!(store.read_events(1000, 10).await.unwrap().is_empty());
    assert!(store.read_events(0, 0).await.unwrap().is_empty());
    assert_eq!(
        store
            .read_events(20, 100)
            .await
            .unwrap()
            .first()
            .map(|e| e.seq),
        Some(21)
    );
}

pub async fn idempotency_is_atomic_with_commit(store: Arc<dyn Store>) {
    let now = now_ms();
    let mut first = create(conference("c1", 1, &[], true), vec![event("c1", "a", 1)]);
    first.idempotency = Some(idempotency("u1", "k1", now + 24 * HOUR_MS));
    store.commit(first).await.unwrap();
    assert_eq!(
        store.get_idempotency("u1", "k1", now).await.unwrap(),
        Some(idempotency("u1", "k1", now + 24 * HOUR_MS))
    );
    // Same key, other user: a different record.
    assert_eq!(store.get_idempotency("u2", "k1", now).await.unwrap(), None);
    let head = store.head_seq().await.unwrap();

    // A conflicting commit stores neither its events nor its idempotency record.
    let mut stale = update(conference("c1", 8, &[], true), 7, vec![event("c1", "b", 2)]);
    stale.idempotency = Some(idempotency("u1", "k2", now + 24 * HOUR_MS));
    assert!(matches!(
        store.commit(stale).await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(store.get_idempotency("u1", "k2", now).await.unwrap(), None);
    assert_eq!(store.head_seq().await.unwrap(), head);

    // Reusing an unexpired key fails the whole commit, and keeps the original record.
    let mut reuse = update(conference("c1", 2, &[], true), 1, vec![event("c1", "c", 3)]);
    let mut record = idempotency("u1", "k1", now + 48 * HOUR_MS);
    record.response = json!("other");
    reuse.idempotency = Some(record);
    let reused = store.commit(reuse).await;
    assert!(
        matches!(&reused, Err(StoreError::IdempotencyKeyInUse { user_id, key }) if user_id == "u1" && key == "k1"),
        "{reused:?}"
    );
    assert_eq!(
        store.get_conference("c1").await.unwrap().map(|c| c.version),
        Some(1)
    );
    assert_eq!(store.head_seq().await.unwrap(), head);
    assert_eq!(
        store
            .get_idempotency("u1", "k1", now)
            .await
            .unwrap()
            .map(|r| r.response),
        Some(json!({"statusCode": 0, "key": "k1"}))
    );
}

pub async fn idempotency_expiry_and_purge(store: Arc<dyn Store>) {
    let now = now_ms();
    let mut a = create(conference("a", 1, &[], true), vec![]);
    a.idempotency = Some(idempotency("u", "fresh", now + 24 * HOUR_MS));
    store.commit(a).await.unwrap();
    let mut b = create(conference("b", 1, &[], true), vec![]);
    b.idempotency = Some(idempotency("u", "old", now - HOUR_MS));
    store.commit(b).await.unwrap();

    // Expired records are ignored; expiry is exclusive at expires_at_ms.
    assert_eq!(store.get_idempotency("u", "old", now).await.unwrap(), None);
    assert!(
        store
            .get_idempotency("u", "old", now - HOUR_MS - 1)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .get_idempotency("u", "fresh", now + 24 * HOUR_MS - 1)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store
            .get_idempotency("u", "fresh", now + 24 * HOUR_MS)
            .await
            .unwrap(),
        None
    );

    // An expired key can be used again, even before it is purged.
    let mut again = update(conference("b", 2, &[], true), 1, vec![]);
    again.idempotency = Some(idempotency("u", "old", now + HOUR_MS));
    store.commit(again).await.expect("expired key is reusable");
    assert!(
        store
            .get_idempotency("u", "old", now)
            .await
            .unwrap()
            .is_some()
    );

    assert_eq!(store.purge_expired(now, 1000).await.unwrap(), 0);
    assert_eq!(
        store.purge_expired(now + 2 * HOUR_MS, 1000).await.unwrap(),
        1,
        "only 'old' expired"
    );
    assert_eq!(store.get_idempotency("u", "old", now).await.unwrap(), None);
    assert!(
        store
            .get_idempotency("u", "fresh", now)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store.purge_expired(now + 25 * HOUR_MS, 1000).await.unwrap(),
        1
    );
    assert_eq!(
        store.get_idempotency("u", "fresh", now).await.unwrap(),
        None
    );
}

pub async fn users(store: Arc<dyn Store>) {
    store.put_user(user("u2", "bob")).await.unwrap();
    store.put_user(user("u1", "alice")).await.unwrap();
    store.put_user(user("u3", "carol")).await.unwrap();

    let taken = store.put_user(user("u9", "alice")).await;
    assert!(matches!(&taken, Err(StoreError::UsernameTaken { username }) if username == "alice"));
    let exists = store.put_user(user("u1", "someone")).await;
    assert!(
        matches!(&exists, Err(StoreError::UserExists { id }) if id == "u1"),
        "{exists:?}"
    );
    // Usernames compare exactly.
    store
        .put_user(user("u4", "Alice"))
        .await
        .expect("case differs");

    assert_eq!(
        store.get_user("u1").await.unwrap(),
        Some(user("u1", "alice"))
    );
    assert_eq!(store.get_user("nope").await.unwrap(), None);
    assert_eq!(
        store.get_user_by_username("bob").await.unwrap(),
        Some(user("u2", "bob"))
    );
    assert_eq!(store.get_user_by_username("nobody").await.unwrap(), None);

    let mut renamed = user("u2", "robert");
    renamed.profile = json!({"firstName": "Rob"});
    store.update_user(renamed.clone()).await.unwrap();
    assert_eq!(store.get_user("u2").await.unwrap(), Some(renamed));
    assert_eq!(store.get_user_by_username("bob").await.unwrap(), None);
    // The freed username can be taken again.
    store.put_user(user("u5", "bob")).await.unwrap();

    let clash = store.update_user(user("u2", "carol")).await;
    assert!(matches!(&clash, Err(StoreError::UsernameTaken { username }) if username == "carol"));
    let missing = store.update_user(user("u404", "dave")).await;
    assert!(
        matches!(&missing, Err(StoreError::NotFound { what: "user", .. })),
        "{missing:?}"
    );
    let empty = store.put_user(user("", "x")).await;
    assert!(matches!(empty, Err(StoreError::Invalid(_))));

    let page1 = store.list_users(None, 3).await.unwrap();
    let ids: Vec<_> = page1.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(ids, ["u1", "u2", "u3"]);
    let page2 = store.list_users(Some("u3"), 3).await.unwrap();
    let ids: Vec<_> = page2.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(ids, ["u4", "u5"]);

    assert!(store.delete_user("u5").await.unwrap());
    assert!(!store.delete_user("u5").await.unwrap(), "already gone");
    assert_eq!(store.get_user("u5").await.unwrap(), None);
    assert_eq!(store.get_user_by_username("bob").await.unwrap(), None);
    assert_eq!(
        store.get_user("u4").await.unwrap(),
        Some(user("u4", "Alice"))
    );
}

pub async fn list_conferences_by_index_key(store: Arc<dyn Store>) {
    // Ids in mixed case: paging is by byte order on both backends.
    let specs = [
        ("C-03", true, vec!["user:a", "account:x"]),
        ("C-01", true, vec!["user:a"]),
        ("C-05", false, vec!["user:a", "account:x"]),
        ("C-02", false, vec!["user:a", "user:a"]), // duplicate key is harmless
        ("C-04", true, vec!["user:b"]),
        ("c-00", true, vec!["user:a"]),
    ];
    for (id, live, keys) in &specs {
        store
            .commit(create(conference(id, 1, keys, *live), vec![]))
            .await
            .unwrap();
    }
    let ids = |v: Vec<ConferenceRecord>| v.into_iter().map(|c| c.id).collect::<Vec<_>>();

    assert_eq!(
        ids(store
            .list_conferences("user:a", false, None, 100)
            .await
            .unwrap()),
        ["C-01", "C-02", "C-03", "C-05", "c-00"]
    );
    assert_eq!(
        ids(store
            .list_conferences("user:a", true, None, 100)
            .await
            .unwrap()),
        ["C-01", "C-03", "c-00"]
    );
    // Paging: 2 at a time, each page after the previous page's last id.
    let mut pages = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = ids(store
            .list_conferences("user:a", false, after.as_deref(), 2)
            .await
            .unwrap());
        if page.is_empty() {
            break;
        }
        after = page.last().cloned();
        pages.push(page);
    }
    assert_eq!(
        pages,
        vec![vec!["C-01", "C-02"], vec!["C-03", "C-05"], vec!["c-00"]]
    );
    assert_eq!(
        ids(store
            .list_conferences("user:a", true, Some("C-01"), 1)
            .await
            .unwrap()),
        ["C-03"]
    );
    assert!(
        store
            .list_conferences("user:zzz", false, None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Full records come back.
    let listed = store
        .list_conferences("account:x", false, None, 10)
        .await
        .unwrap();
    assert_eq!(
        listed,
        vec![
            conference("C-03", 1, &["user:a", "account:x"], true),
            conference("C-05", 1, &["user:a", "account:x"], false),
        ]
    );

    // Index keys are replaced on commit: C-03 leaves user:a and joins user:b; C-04 ends.
    store
        .commit(update(
            conference("C-03", 2, &["user:b", "account:x"], true),
            1,
            vec![],
        ))
        .await
        .unwrap();
    store
        .commit(update(conference("C-04", 2, &["user:b"], false), 1, vec![]))
        .await
        .unwrap();
    assert_eq!(
        ids(store
            .list_conferences("user:a", false, None, 100)
            .await
            .unwrap()),
        ["C-01", "C-02", "C-05", "c-00"]
    );
    assert_eq!(
        ids(store
            .list_conferences("user:b", false, None, 100)
            .await
            .unwrap()),
        ["C-03", "C-04"]
    );
    assert_eq!(
        ids(store
            .list_conferences("user:b", true, None, 100)
            .await
            .unwrap()),
        ["C-03"]
    );
    // And an update with no keys removes them all.
    store
        .commit(update(conference("C-05", 2, &[], false), 1, vec![]))
        .await
        .unwrap();
    assert_eq!(
        ids(store
            .list_conferences("account:x", false, None, 100)
            .await
            .unwrap()),
        ["C-03"]
    );
}

pub async fn wakeups_fire_after_commit(store: Arc<dyn Store>) {
    let mut rx = store.subscribe_wakeups();
    let start = *rx.borrow_and_update();
    assert_eq!(start, store.head_seq().await.unwrap());
    let out = store
        .commit(create(
            conference("c1", 1, &[], true),
            vec![event("c1", "a", 1), event("c1", "b", 2)],
        ))
        .await
        .unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|v| *v >= out.last_seq))
        .await
        .expect("a wake-up within 5 s")
        .map(|v| *v)
        .expect("watch open");
    assert_eq!(seen, out.last_seq);
    // A failed commit wakes nobody.
    let _ = store
        .commit(create(
            conference("c1", 1, &[], true),
            vec![event("c1", "x", 1)],
        ))
        .await;
    assert_eq!(*rx.borrow(), out.last_seq);
}

pub async fn concurrent_same_version_exactly_one_wins(store: Arc<dyn Store>) {
    const RACERS: usize = 16;
    store
        .commit(create(conference("hot", 1, &["k"], true), vec![]))
        .await
        .unwrap();

    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
    let mut tasks = Vec::new();
    for i in 0..RACERS {
        let (store, barrier) = (store.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = conference("hot", 2, &["k"], true);
            c.state = json!({"winner": i});
            barrier.wait().await;
            (
                i,
                store
                    .commit(update(
                        c,
                        1,
                        vec![event("hot", &format!("by{i}"), i as u64)],
                    ))
                    .await,
            )
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.expect("task") {
            (i, Ok(_)) => winners.push(i),
            (
                _,
                Err(StoreError::Conflict {
                    expected: Some(1),
                    actual: Some(2),
                    ..
                }),
            ) => {}
            (_, Err(e)) => panic!("unexpected error: {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one racer wins: {winners:?}");
    let stored = store.get_conference("hot").await.unwrap().expect("exists");
    assert_eq!(stored.state, json!({"winner": winners[0]}));
    let events = all_events(&*store).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, format!("by{}", winners[0]));

    // The same for creates of one id.
    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
    let mut tasks = Vec::new();
    for i in 0..RACERS {
        let (store, barrier) = (store.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let c = conference("new", 1 + i as u64, &[], true);
            store
                .commit(create(c, vec![event("new", "created", i as u64)]))
                .await
        }));
    }
    let mut created = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => created += 1,
            Err(StoreError::Conflict {
                expected: None,
                actual: Some(_),
                ..
            }) => {}
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(all_events(&*store).await.len(), 2);
}

/// The commit-order test: writers commit to different conferences concurrently while readers
/// tail the log by cursor. If a commit could become visible after a higher seq (as with a
/// BIGSERIAL), a reader would see a page that does not start right after its cursor.
pub async fn tailing_readers_see_every_seq_once_in_order(store: Arc<dyn Store>) {
    const WRITERS: u64 = 8;
    const COMMITS: u64 = 40;
    const EVENTS: u64 = 2;
    const TOTAL: u64 = WRITERS * COMMITS * EVENTS;
    let start = store.head_seq().await.unwrap();

    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            let id = format!("w{w}");
            let mut seqs = Vec::new();
            for v in 1..=COMMITS {
                let events = (0..EVENTS)
                    .map(|k| event(&id, &format!("v{v}.{k}"), k))
                    .collect();
                let c = conference(&id, v, &["all"], true);
                let commit = if v == 1 {
                    create(c, events)
                } else {
                    update(c, v - 1, events)
                };
                let out = store.commit(commit).await.expect("commit");
                assert_eq!(out.event_count(), EVENTS);
                seqs.extend(out.seqs());
            }
            seqs
        }));
    }

    // Reader 1 polls as fast as it can with small pages; reader 2 waits for wake-ups.
    let polling = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut cursor = start;
            let mut seen = Vec::new();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
            while cursor < start + TOTAL {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "polling reader stalled at {cursor}"
                );
                let page = store.read_events(cursor, 5).await.expect("read");
                for e in page {
                    assert_eq!(e.seq, cursor + 1, "gap or reordering after seq {cursor}");
                    cursor = e.seq;
                    seen.push((e.seq, e.conference_id, e.kind));
                }
                tokio::task::yield_now().await;
            }
            seen
        })
    };
    let waking = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut rx = store.subscribe_wakeups();
            let mut cursor = start;
            let mut count = 0u64;
            while cursor < start + TOTAL {
                loop {
                    let page = store.read_events(cursor, 64).await.expect("read");
                    if page.is_empty() {
                        break;
                    }
                    for e in page {
                        assert_eq!(e.seq, cursor + 1, "gap or reordering after seq {cursor}");
                        cursor = e.seq;
                        count += 1;
                    }
                }
                if cursor < start + TOTAL {
                    // A missed wake-up must not lose anything: re-read at least every 200 ms.
                    let _ = tokio::time::timeout(Duration::from_millis(200), rx.changed()).await;
                }
            }
            count
        })
    };

    let mut committed = Vec::new();
    for w in writers {
        committed.extend(w.await.expect("writer"));
    }
    let seen = polling.await.expect("polling reader");
    assert_eq!(waking.await.expect("waking reader"), TOTAL);

    committed.sort_unstable();
    let expected: Vec<u64> = (start + 1..=start + TOTAL).collect();
    assert_eq!(
        committed, expected,
        "the writers' seqs are exactly the range, no gaps"
    );
    let seen_seqs: Vec<u64> = seen.iter().map(|(s, _, _)| *s).collect();
    assert_eq!(
        seen_seqs, expected,
        "the reader saw every seq once, in order"
    );
    // Within one conference the events appear in commit order too.
    for w in 0..WRITERS {
        let id = format!("w{w}");
        let kinds: Vec<&str> = seen
            .iter()
            .filter(|(_, c, _)| *c == id)
            .map(|(_, _, k)| k.as_str())
            .collect();
        let expected: Vec<String> = (1..=COMMITS)
            .flat_map(|v| (0..EVENTS).map(move |k| format!("v{v}.{k}")))
            .collect();
        assert_eq!(kinds, expected, "events of {id}");
    }
    assert_eq!(store.head_seq().await.unwrap(), start + TOTAL);
}

pub async fn conference_events_in_version_order(store: Arc<dyn Store>) {
    store
        .commit(create(
            conference("a", 1, &[], true),
            vec![event("a", "Created", 1)],
        ))
        .await
        .unwrap();
    store
        .commit(create(
            conference("b", 1, &[], true),
            vec![event("b", "Created", 1)],
        ))
        .await
        .unwrap();
    store
        .commit(update(
            conference("a", 3, &[], true),
            1,
            vec![event("a", "Two", 2), event("a", "Three", 3)],
        ))
        .await
        .unwrap();
    let all = store.conference_history("a", 10).await.unwrap().events;
    assert_eq!(
        all.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        ["Created", "Two", "Three"]
    );
    assert!(all.iter().all(|e| e.conference_id == "a"));
    let first = store.conference_history("a", 1).await.unwrap().events;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].payload["n"], 1);
    let nobody = store.conference_history("nobody", 10).await.unwrap();
    assert!(nobody.base.is_none() && nobody.events.is_empty());
}

pub async fn pruned_history_keeps_a_base_for_later_events(store: Arc<dyn Store>) {
    let cutoff = now_ms() + HOUR_MS;
    store
        .commit(create(
            conference("a", 1, &[], true),
            vec![event("a", "One", 1)],
        ))
        .await
        .unwrap();
    store
        .commit(update(
            conference("a", 3, &[], true),
            1,
            vec![event("a", "Two", 2), event("a", "Three", 3)],
        ))
        .await
        .unwrap();
    // Changed after the cutoff: its history stays whole.
    let mut recent = conference("b", 1, &[], true);
    recent.updated_at_ms = cutoff + HOUR_MS;
    store
        .commit(create(recent, vec![event("b", "One", 1)]))
        .await
        .unwrap();

    let progress = store.prune_history(cutoff, 0, 100).await.unwrap();
    assert_eq!((progress.conferences, progress.events), (1, 3));
    assert_eq!(
        progress.scanned_to,
        Some(4),
        "every event is older than the cutoff"
    );
    let rest = store.prune_history(cutoff, 4, 100).await.unwrap();
    assert_eq!(
        rest,
        confer_store::PruneProgress::default(),
        "the pass is over"
    );

    let a = store.conference_history("a", u64::MAX).await.unwrap();
    let base = a.base.expect("a base once pruned");
    assert_eq!(base.version, 3);
    assert_eq!(base.state, conference("a", 3, &[], true).state);
    assert!(a.events.is_empty());
    let b = store.conference_history("b", u64::MAX).await.unwrap();
    assert!(b.base.is_none());
    assert_eq!(b.events.len(), 1);
    // What is left of the log starts with a gap: how a reader from further back can tell.
    let log = store.read_events(0, 100).await.unwrap();
    assert_eq!(log.iter().map(|e| e.seq).collect::<Vec<_>>(), [4]);

    // The next commit keeps the state it replaces as the base of the new event.
    store
        .commit(update(
            conference("a", 4, &[], true),
            3,
            vec![event("a", "Four", 4)],
        ))
        .await
        .unwrap();
    let a = store.conference_history("a", u64::MAX).await.unwrap();
    assert_eq!(a.base.as_ref().map(|b| b.version), Some(3));
    assert_eq!(
        a.base.map(|b| b.state),
        Some(conference("a", 3, &[], true).state)
    );
    assert_eq!(
        a.events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        ["Four"]
    );
    assert_eq!(
        store.get_conference("a").await.unwrap().map(|c| c.version),
        Some(4)
    );
    // Pruned again: the base moves to the current state.
    let progress = store.prune_history(cutoff, 0, 100).await.unwrap();
    assert_eq!((progress.conferences, progress.events), (1, 1));
    let a = store.conference_history("a", u64::MAX).await.unwrap();
    assert_eq!(a.base.as_ref().map(|b| b.version), Some(4));
    assert_eq!(
        a.base.map(|b| b.state),
        Some(conference("a", 4, &[], true).state)
    );
    assert_eq!(store.read_events(0, 100).await.unwrap().len(), 1);
}

pub async fn ended_conferences_are_pruned_with_their_events(store: Arc<dyn Store>) {
    let cutoff = now_ms() + HOUR_MS;
    let keys = ["user:u1"];
    store
        .commit(create(
            conference("ended", 1, &keys, false),
            vec![event("ended", "One", 1)],
        ))
        .await
        .unwrap();
    store
        .commit(create(
            conference("live", 1, &keys, true),
            vec![event("live", "One", 1)],
        ))
        .await
        .unwrap();
    let mut just_ended = conference("just-ended", 1, &keys, false);
    just_ended.updated_at_ms = cutoff + HOUR_MS;
    store
        .commit(create(just_ended, vec![event("just-ended", "One", 1)]))
        .await
        .unwrap();

    assert_eq!(store.prune_ended(cutoff, 10).await.unwrap(), 1);
    assert_eq!(store.prune_ended(cutoff, 10).await.unwrap(), 0);
    assert!(store.get_conference("ended").await.unwrap().is_none());
    let listed = store
        .list_conferences("user:u1", false, None, 10)
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["just-ended", "live"]
    );
    let log = store.read_events(0, 100).await.unwrap();
    assert_eq!(
        log.iter()
            .map(|e| e.conference_id.as_str())
            .collect::<Vec<_>>(),
        ["live", "just-ended"]
    );
    // The id is free again.
    store
        .commit(create(conference("ended", 1, &keys, true), vec![]))
        .await
        .unwrap();
}

pub async fn settings_first_writer_wins(store: Arc<dyn Store>) {
    let stores: Vec<_> = (0..8).map(|_| store.clone()).collect();
    let mut tasks = Vec::new();
    for (i, store) in stores.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            store
                .get_or_insert_setting("session_signing_key", &format!("value-{i}"))
                .await
                .unwrap()
        }));
    }
    let mut seen = Vec::new();
    for task in tasks {
        seen.push(task.await.unwrap());
    }
    assert!(
        seen.windows(2).all(|w| w[0] == w[1]),
        "every caller gets the same value: {seen:?}"
    );
    assert!(seen[0].starts_with("value-"));
    assert_eq!(
        store
            .get_or_insert_setting("session_signing_key", "later")
            .await
            .unwrap(),
        seen[0]
    );
    assert_eq!(
        store.get_or_insert_setting("other", "x").await.unwrap(),
        "x"
    );
    assert!(store.delete_setting("other").await.unwrap());
    assert!(!store.delete_setting("other").await.unwrap());
    assert_eq!(
        store.get_or_insert_setting("other", "y").await.unwrap(),
        "y",
        "a deleted setting takes a new value"
    );
}

// ---- CometD sessions -------------------------------------------------------------------------

fn cometd_session(id: &str, cursor: u64) -> CometdSessionRecord {
    CometdSessionRecord {
        client_id: id.to_owned(),
        principal: json!({"user_id": "agent15000", "roles": ["Agent"], "text": "Grüße \"q\""}),
        principal_key: "agent15000".to_owned(),
        subscriptions: vec![],
        ack: true,
        cursor,
        connected: false,
        last_connect_ms: 0,
        expires_at_ms: 10_000,
    }
}

fn connect(cursor: Option<u64>, now_ms: u64, expires_at_ms: u64) -> CometdConnect {
    CometdConnect {
        cursor_at_least: cursor,
        now_ms,
        expires_at_ms,
    }
}

pub async fn cometd_sessions(store: Arc<dyn Store>) {
    assert_eq!(store.count_cometd_sessions().await.unwrap(), 0);
    assert!(
        store
            .create_cometd_session(cometd_session("c1", 5))
            .await
            .unwrap()
    );
    // A taken id stores nothing.
    let mut other = cometd_session("c1", 99);
    other.principal_key = "someone-else".into();
    assert!(!store.create_cometd_session(other).await.unwrap());
    assert_eq!(
        store.load_cometd_session("c1").await.unwrap(),
        Some(cometd_session("c1", 5))
    );
    assert_eq!(store.load_cometd_session("nope").await.unwrap(), None);
    // A principal's sessions, least recently active first; nobody else's.
    let mut older = cometd_session("c0", 0);
    older.expires_at_ms = 500;
    assert!(store.create_cometd_session(older).await.unwrap());
    let mut stranger = cometd_session("cx", 0);
    stranger.principal_key = "agent15002".into();
    assert!(store.create_cometd_session(stranger).await.unwrap());
    assert_eq!(
        store.cometd_sessions_of("agent15000").await.unwrap(),
        vec![("c0".to_owned(), 500), ("c1".to_owned(), 10_000)]
    );
    assert!(store.cometd_sessions_of("nobody").await.unwrap().is_empty());
    assert!(store.delete_cometd_session("c0").await.unwrap());
    assert!(store.delete_cometd_session("cx").await.unwrap());
    assert!(matches!(
        store.create_cometd_session(cometd_session("", 0)).await,
        Err(StoreError::Invalid(_))
    ));

    // A created session may come with subscriptions.
    let mut with_subs = cometd_session("c2", 0);
    with_subs.subscriptions = vec![CometdSubscription {
        pattern: "/v2/**".into(),
        since: 3,
    }];
    assert!(
        store
            .create_cometd_session(with_subs.clone())
            .await
            .unwrap()
    );
    assert_eq!(
        store.load_cometd_session("c2").await.unwrap(),
        Some(with_subs)
    );

    // Subscriptions: a repeated pattern keeps its first `since`.
    assert!(
        store
            .add_cometd_subscription("c1", "/v2/me/*", 7)
            .await
            .unwrap()
    );
    assert!(
        store
            .add_cometd_subscription("c1", "/v2/me/*", 9)
            .await
            .unwrap()
    );
    assert!(
        store
            .add_cometd_subscription("c1", "/a/**", 8)
            .await
            .unwrap()
    );
    assert!(
        !store
            .add_cometd_subscription("nope", "/a/**", 8)
            .await
            .unwrap()
    );
    let loaded = store.load_cometd_session("c1").await.unwrap().unwrap();
    assert_eq!(
        loaded.subscriptions,
        vec![
            CometdSubscription {
                pattern: "/v2/me/*".into(),
                since: 7
            },
            CometdSubscription {
                pattern: "/a/**".into(),
                since: 8
            },
        ]
    );
    assert!(
        store
            .remove_cometd_subscription("c1", "/a/**")
            .await
            .unwrap()
    );
    assert!(
        store
            .remove_cometd_subscription("c1", "/not/there")
            .await
            .unwrap()
    );
    assert!(
        !store
            .remove_cometd_subscription("nope", "/a/**")
            .await
            .unwrap()
    );

    // Connects: the cursor only goes up; the rest is set.
    let s = store
        .record_cometd_connect("c1", connect(Some(9), 50, 200))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (s.cursor, s.connected, s.last_connect_ms, s.expires_at_ms),
        (9, true, 50, 200)
    );
    assert_eq!(
        s.subscriptions.len(),
        1,
        "the reply carries the subscriptions"
    );
    let s = store
        .record_cometd_connect("c1", connect(Some(3), 60, 300))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((s.cursor, s.last_connect_ms, s.expires_at_ms), (9, 60, 300));
    let s = store
        .record_cometd_connect("c1", connect(None, 70, 400))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.cursor, 9);
    assert_eq!(
        store.load_cometd_session("c1").await.unwrap().unwrap(),
        s,
        "what a connect returns is what is stored"
    );
    assert_eq!(
        store
            .record_cometd_connect("nope", connect(Some(1), 1, 1))
            .await
            .unwrap(),
        None
    );

    // Expiry: strictly before `now`, soonest first, bounded.
    assert!(
        store
            .create_cometd_session(cometd_session("c3", 0))
            .await
            .unwrap()
    );
    assert_eq!(store.count_cometd_sessions().await.unwrap(), 3);
    assert!(
        store
            .expired_cometd_sessions(400, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.expired_cometd_sessions(401, 10).await.unwrap(),
        ["c1"]
    );
    let expired = store.expired_cometd_sessions(10_001, 10).await.unwrap();
    assert_eq!(expired.len(), 3);
    assert_eq!(expired[0], "c1", "soonest expired first");
    assert_eq!(
        store.expired_cometd_sessions(10_001, 1).await.unwrap(),
        ["c1"]
    );

    // Deleting takes the subscriptions with it.
    assert!(store.delete_cometd_session("c2").await.unwrap());
    assert!(!store.delete_cometd_session("c2").await.unwrap());
    assert!(
        store
            .create_cometd_session(cometd_session("c2", 0))
            .await
            .unwrap()
    );
    assert!(
        store
            .load_cometd_session("c2")
            .await
            .unwrap()
            .unwrap()
            .subscriptions
            .is_empty(),
        "a deleted session's subscriptions are gone"
    );
    assert_eq!(store.count_cometd_sessions().await.unwrap(), 3);
}

/// Connects of one session racing (two nodes, a client that retries): whatever the order, the
/// cursor ends at the highest value any of them raised it to, and subscriptions added
/// meanwhile are all kept (no write undoes another).
pub async fn cometd_concurrent_connects_keep_the_highest_cursor(store: Arc<dyn Store>) {
    assert!(
        store
            .create_cometd_session(cometd_session("race", 0))
            .await
            .unwrap()
    );
    let mut tasks = Vec::new();
    for i in 0..16u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                store
                    .record_cometd_connect("race", connect(Some(i * 10), i, 1_000 + i))
                    .await
                    .map(|s| s.is_some())
            } else {
                store
                    .add_cometd_subscription("race", &format!("/p/{i}"), i)
                    .await
            }
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap().unwrap());
    }
    let s = store.load_cometd_session("race").await.unwrap().unwrap();
    assert_eq!(s.cursor, 140);
    assert_eq!(s.subscriptions.len(), 8);
}

/// A backlog of expired records is purged a page at a time, soonest expired first, and the
/// unexpired ones stay.
pub async fn expired_idempotency_is_purged_a_page_at_a_time(store: Arc<dyn Store>) {
    let now = now_ms();
    for i in 0..5i64 {
        let mut commit = create(conference(&format!("page-{i}"), 1, &[], true), vec![]);
        commit.idempotency = Some(idempotency("u", &format!("k{i}"), now - 1_000 + i));
        store.commit(commit).await.expect("commit");
    }
    let mut live = create(conference("page-live", 1, &[], true), vec![]);
    live.idempotency = Some(idempotency("u", "live", now + HOUR_MS));
    store.commit(live).await.expect("commit");

    assert_eq!(store.purge_expired(now, 2).await.unwrap(), 2);
    // The soonest expired went first.
    for key in ["k0", "k1"] {
        assert_eq!(
            store.get_idempotency("u", key, now - 10_000).await.unwrap(),
            None,
            "{key}"
        );
    }
    assert!(
        store
            .get_idempotency("u", "k2", now - 10_000)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.purge_expired(now, 2).await.unwrap(), 2);
    assert_eq!(store.purge_expired(now, 2).await.unwrap(), 1);
    assert_eq!(store.purge_expired(now, 2).await.unwrap(), 0);
    assert!(
        store
            .get_idempotency("u", "live", now)
            .await
            .unwrap()
            .is_some()
    );
}
