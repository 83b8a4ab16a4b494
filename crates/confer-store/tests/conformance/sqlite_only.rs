//! SQLite-specific behaviour: the file, its durability settings, reopening.

use std::str::FromStr as _;

use confer_store::sqlite::DB_FILE_NAME;
use confer_store::{IdempotencyRecord, SqliteStore, Store, StoreError, UserRecord};
use serde_json::json;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions as _, Connection as _};

use crate::cases::{conference, create, event, update};

#[tokio::test]
async fn open_creates_the_directory_and_a_wal_database() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nested").join("data");
    let store = SqliteStore::open(&dir).await.expect("open");
    assert_eq!(store.path(), dir.join(DB_FILE_NAME));
    assert!(store.path().is_file());
    store.close().await.unwrap();

    // WAL is a property of the file: a plain connection sees it.
    let mut conn = SqliteConnectOptions::from_str("sqlite:")
        .unwrap()
        .filename(dir.join(DB_FILE_NAME))
        .connect()
        .await
        .unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(versions, [1, 2, 3, 4]);
    conn.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_survives_reopening() {
    let tmp = tempfile::tempdir().unwrap();
    let now = 1_000_000;
    let (head, conf) = {
        let store = SqliteStore::open(tmp.path()).await.unwrap();
        let mut c = create(
            conference("c1", 1, &["user:a"], true),
            vec![event("c1", "a", 1)],
        );
        c.idempotency = Some(IdempotencyRecord {
            user_id: "u".into(),
            key: "k".into(),
            request_fingerprint: "f".into(),
            response: json!({"ok": true}),
            expires_at_ms: now + 10,
        });
        store.commit(c).await.unwrap();
        let v2 = conference("c1", 2, &["user:b"], false);
        store
            .commit(update(
                v2.clone(),
                1,
                vec![event("c1", "b", 2), event("c1", "c", 3)],
            ))
            .await
            .unwrap();
        store
            .put_user(UserRecord {
                id: "u1".into(),
                username: "alice".into(),
                password_hash: "h".into(),
                profile: json!({}),
            })
            .await
            .unwrap();
        // Dropped without close(), as after a crash of the owner.
        (store.head_seq().await.unwrap(), v2)
    };
    assert_eq!(head, 3);

    for _ in 0..2 {
        let store = SqliteStore::open(tmp.path()).await.expect("reopen");
        assert_eq!(
            store.get_conference("c1").await.unwrap(),
            Some(conf.clone())
        );
        assert_eq!(store.head_seq().await.unwrap(), 3);
        let kinds: Vec<String> = store
            .read_events(0, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, ["a", "b", "c"]);
        assert_eq!(
            store
                .list_conferences("user:b", false, None, 10)
                .await
                .unwrap(),
            vec![conf.clone()]
        );
        assert!(
            store
                .list_conferences("user:a", false, None, 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            store
                .get_idempotency("u", "k", now)
                .await
                .unwrap()
                .is_some()
        );
        assert!(store.get_user_by_username("alice").await.unwrap().is_some());
        assert_eq!(
            *store.subscribe_wakeups().borrow(),
            3,
            "the watch starts at the head"
        );
        store.close().await.unwrap();
    }

    // Seqs continue after the head.
    let store = SqliteStore::open(tmp.path()).await.unwrap();
    let out = store
        .commit(create(
            conference("c2", 1, &[], true),
            vec![event("c2", "x", 1)],
        ))
        .await
        .unwrap();
    assert_eq!((out.first_seq, out.last_seq), (4, 4));
}

#[tokio::test]
async fn refuses_a_database_from_a_newer_binary() {
    let tmp = tempfile::tempdir().unwrap();
    SqliteStore::open(tmp.path())
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
    let mut conn = SqliteConnectOptions::from_str("sqlite:")
        .unwrap()
        .filename(tmp.path().join(DB_FILE_NAME))
        .connect()
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (99, 'future', 0)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    let opened = SqliteStore::open(tmp.path()).await;
    assert!(
        matches!(opened, Err(StoreError::Migration { version: 99, .. })),
        "{opened:?}"
    );
}

#[tokio::test]
async fn unusable_directory_is_an_io_error() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let opened = SqliteStore::open(file.join("sub")).await;
    assert!(matches!(opened, Err(StoreError::Io { .. })), "{opened:?}");
}

const CRASH_DIR_ENV: &str = "CONFER_STORE_CRASH_CHILD_DIR";

/// The writer half of `sigkill_after_acknowledged_commits_loses_nothing`, run in a child
/// process: commits forever (bounded), printing each acknowledged commit.
#[tokio::test]
#[ignore = "child process of sigkill_after_acknowledged_commits_loses_nothing"]
async fn crash_child_writer() {
    let Some(dir) = std::env::var_os(CRASH_DIR_ENV) else {
        return;
    };
    let store = SqliteStore::open(dir).await.expect("open");
    store
        .commit(create(conference("crash", 1, &["k"], true), vec![]))
        .await
        .expect("create");
    for v in 2..100_000u64 {
        let events = vec![event("crash", "a", v), event("crash", "b", v)];
        let out = store
            .commit(update(conference("crash", v, &["k"], true), v - 1, events))
            .await;
        let out = out.expect("commit");
        // stdout is line-buffered: the parent sees this line only after the commit returned.
        println!("ACK {v} {}", out.last_seq);
    }
}

/// Kills a writer process with SIGKILL right after it acknowledged commits, reopens the file
/// and finds every acknowledged commit (and a gap-free log).
#[test]
fn sigkill_after_acknowledged_commits_loses_nothing() {
    use std::io::BufRead as _;
    use std::process::{Command, Stdio};

    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sqlite_only::crash_child_writer",
            "--ignored",
            "--nocapture",
        ])
        .env(CRASH_DIR_ENV, tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the child writer");
    let stdout = child.stdout.take().expect("child stdout");
    let mut acked = None;
    let mut count = 0;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.expect("read child output");
        let Some(rest) = line.strip_prefix("ACK ") else {
            continue;
        };
        let mut parts = rest.split(' ').map(|p| p.parse::<u64>().expect("number"));
        acked = Some((parts.next().expect("version"), parts.next().expect("seq")));
        count += 1;
        if count == 300 {
            // Child::kill sends SIGKILL: no destructor, no close, no checkpoint.
            child.kill().expect("kill the child");
            break;
        }
    }
    let status = child.wait().expect("wait for the child");
    let (version, seq) = acked.expect("the child acknowledged commits");
    assert!(
        !status.success(),
        "the child was killed, not finished: {status:?}"
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = SqliteStore::open(tmp.path())
            .await
            .expect("reopen after SIGKILL");
        let stored = store
            .get_conference("crash")
            .await
            .unwrap()
            .expect("conference");
        assert!(
            stored.version >= version,
            "acknowledged version {version}, found {}",
            stored.version
        );
        let head = store.head_seq().await.unwrap();
        assert!(head >= seq, "acknowledged seq {seq}, head {head}");
        let seqs: Vec<u64> = store
            .read_events(0, 1_000_000)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(seqs, (1..=head).collect::<Vec<_>>(), "the log is gap-free");
        assert_eq!(
            head,
            2 * (stored.version - 1),
            "events and conference row committed together"
        );
    });
}
