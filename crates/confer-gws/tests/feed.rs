//! The notification feed on a real store: two feeds on one store (two nodes) number and render
//! every notification the same way, one from memory, the other from the log after the fact, so
//! a session's cursor means the same on every node.

use std::{sync::Arc, time::Duration};

use bayeux::{LogEntry, MessageLog};
use confer_app::{engine::Engine, metrics::Metrics};
use confer_core::{Command, demo};
use confer_gws::{
    directory::Directory,
    feed::{Feed, Renderer, SLOTS_PER_EVENT, head_seq},
    render::Urls,
};
use confer_store::{SqliteStore, Store};

fn feed_on(store: &Arc<dyn Store>) -> Renderer {
    Renderer::new(
        store.clone(),
        Arc::new(Directory::new(store.clone())),
        Urls::new("http://confer.example:8080"),
    )
}

fn wire(entries: &[Arc<LogEntry>]) -> Vec<(u64, String, String)> {
    entries
        .iter()
        .map(|e| (e.seq, e.channel.to_string(), e.encoded().to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_render_the_same_notifications_with_the_same_seqs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).await.expect("store"));
    confer_app::demo::load(store.as_ref()).await.expect("demo");
    let start = store.head_seq().await.expect("head");

    // Node A follows the log from before the removals.
    let (node_a, tailer_a) = Feed::start(feed_on(&store)).await.expect("feed a");
    let engine = Engine::new(store.clone(), Metrics::new());
    // Node C is the engine's own node: it renders each commit's first event from the state the
    // engine decided on (its cache), where A and B replay the conference from the log.
    let (node_c, tailer_c) = Feed::start(feed_on(&store).with_cache(engine.cache().clone()))
        .await
        .expect("feed c");
    let agent1 = demo::demo_actor("test_consult").expect("demo user");
    let owner = demo::demo_actor("agent15000").expect("demo user");
    engine
        .execute(
            &agent1,
            Command::RemoveParticipantFromChat {
                chat: demo::CHAT_ID.into(),
                target_uri: None,
                target_path: Some(format!(
                    "/users/{}",
                    demo::demo_user("chat_consult")
                        .map(|u| u.user_id)
                        .unwrap_or_default()
                )),
                message: Default::default(),
            },
            None,
        )
        .await
        .expect("chat removal");
    engine
        .execute(
            &owner,
            Command::RemoveParticipantFromCall {
                call: demo::VOICE_CALL_ID.into(),
                participant: "15001".into(),
            },
            None,
        )
        .await
        .expect("voice removal");
    let end = store.head_seq().await.expect("head");
    assert_eq!(end, start + 3, "two chat events and one voice event");

    let mut head = node_a.head();
    tokio::time::timeout(
        Duration::from_secs(10),
        head.wait_for(|h| *h >= head_seq(end)),
    )
    .await
    .expect("node A catches up")
    .expect("head watch");
    let from_memory = node_a.read_after(head_seq(start), 100).await.expect("read");
    let mut head = node_c.head();
    tokio::time::timeout(
        Duration::from_secs(10),
        head.wait_for(|h| *h >= head_seq(end)),
    )
    .await
    .expect("node C catches up")
    .expect("head watch");
    let from_engine_cache = node_c.read_after(head_seq(start), 100).await.expect("read");

    // Node B starts afterwards: it holds nothing in memory and renders from the log.
    let (node_b, tailer_b) = Feed::start(feed_on(&store)).await.expect("feed b");
    assert_eq!(*node_b.head().borrow(), head_seq(end));
    let from_log = node_b.read_after(head_seq(start), 100).await.expect("read");

    assert_eq!(wire(&from_memory), wire(&from_log));
    assert_eq!(wire(&from_engine_cache), wire(&from_log));
    // 2 for test_consult and 3 for chat_consult (removal), 1 for chat_consult (completion),
    // 1 each for agent15000 and agent15002 (voice).
    let per_event: Vec<u64> = from_log.iter().map(|e| e.seq / SLOTS_PER_EVENT).collect();
    assert_eq!(
        per_event,
        [
            start + 1,
            start + 1,
            start + 1,
            start + 1,
            start + 1,
            start + 2,
            start + 3,
            start + 3
        ]
    );
    // A cursor in the middle of an event continues right after it, on either node.
    let cursor = from_log[1].seq;
    for node in [&node_a, &node_b] {
        let rest = node.read_after(cursor, 3).await.expect("read");
        assert_eq!(wire(&rest), wire(&from_log[2..5]));
    }
    tailer_a.abort();
    tailer_b.abort();
    tailer_c.abort();
}

/// A session's cursor from before what the store still keeps: the feed says so
/// (`Truncated`, which Bayeux answers with `402::messages_lost` and a new handshake) instead of
/// silently skipping to what is left; after the prune, new events still render, from the base
/// the store kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_older_than_the_retained_log_is_truncated() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).await.expect("store"));
    confer_app::demo::load(store.as_ref()).await.expect("demo");
    let start = store.head_seq().await.expect("head");
    let engine = Engine::new(store.clone(), Metrics::new());
    let owner = demo::demo_actor("agent15000").expect("demo user");
    let remove = |participant: &str| Command::RemoveParticipantFromCall {
        call: demo::VOICE_CALL_ID.into(),
        participant: participant.into(),
    };
    engine
        .execute(&owner, remove("15001"), None)
        .await
        .expect("voice removal");

    // Started after the removal: its ring does not hold it, so it reads the store.
    let (node, tailer) = Feed::start(feed_on(&store)).await.expect("feed");
    let before_prune = node.read_after(head_seq(start), 100).await.expect("read");
    assert_eq!(before_prune.len(), 2, "agent15000 and agent15002 are told");

    let far_future = confer_app::engine::now().millis() + 3_600_000;
    let retention = confer_app::config::Retention {
        events: Duration::from_secs(1),
        ended_conferences: Duration::from_secs(1),
    };
    let pruned = confer_app::retention::prune(store.as_ref(), retention, far_future)
        .await
        .expect("prune");
    assert!(pruned.events > start, "{pruned:?}");
    match node.read_after(head_seq(start), 100).await {
        Err(bayeux::LogError::Truncated { after, .. }) => assert_eq!(after, head_seq(start)),
        other => panic!("expected Truncated, got {other:?}"),
    }

    // A new change renders from the base the prune kept, as the engine's own node renders it
    // from the state it decided on.
    let (witness, witness_tailer) = Feed::start(feed_on(&store).with_cache(engine.cache().clone()))
        .await
        .expect("witness");
    let head = store.head_seq().await.expect("head");
    engine
        .execute(&owner, remove("15002"), None)
        .await
        .expect("second removal");
    let mut watch = node.head();
    tokio::time::timeout(
        Duration::from_secs(10),
        watch.wait_for(|h| *h >= head_seq(head + 1)),
    )
    .await
    .expect("the node renders the new event")
    .expect("head watch");
    let rendered = node.read_after(head_seq(head), 100).await.expect("read");
    assert!(!rendered.is_empty());
    let mut watch = witness.head();
    tokio::time::timeout(
        Duration::from_secs(10),
        watch.wait_for(|h| *h >= head_seq(head + 1)),
    )
    .await
    .expect("the witness renders the new event")
    .expect("head watch");
    let expected = witness.read_after(head_seq(head), 100).await.expect("read");
    assert_eq!(wire(&rendered), wire(&expected));
    tailer.abort();
    witness_tailer.abort();
}
