//! Test databases for every crate's tests (feature `testing`): a fresh SQLite directory, or a
//! fresh PostgreSQL schema that is dropped at the end (also when the test panics).
//!
//! [`postgres_url_or_skip`] is the one place that decides whether PostgreSQL tests run: in CI
//! (`CI` set) an unreachable database fails them; on a laptop without PostgreSQL they are
//! skipped with a message.

use std::io::Write as _;
use std::str::FromStr as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{PgStore, PgStoreOptions, SqliteStore, Store};
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions as _, Connection as _};

pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const SCHEMA_PREFIX: &str = "confer_test_";

pub struct SqliteTest {
    _dir: tempfile::TempDir,
    pub store: Arc<SqliteStore>,
}

impl SqliteTest {
    #[allow(clippy::new_without_default)]
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(
            SqliteStore::open(dir.path())
                .await
                .expect("open sqlite store"),
        );
        SqliteTest { _dir: dir, store }
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }
}

/// The PostgreSQL URL for tests, or `None` when the tests must be skipped.
///
/// This is the one place that decides: the URL is `CONFER_TEST_DATABASE_URL` or the local
/// default; when the database does not answer, the tests **fail** if `CI` is set (CI runs
/// PostgreSQL, so an unreachable database there is a broken setup, not a reason to pass) and
/// are skipped with a message otherwise.
pub async fn postgres_url_or_skip() -> Option<String> {
    let url = std::env::var("CONFER_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_TEST_DATABASE_URL.to_owned());
    match probe(&url).await {
        Ok(()) => Some(url),
        Err(reason) => {
            let in_ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
            if in_ci {
                panic!(
                    "PostgreSQL tests cannot run: {reason}. CI must provide PostgreSQL \
                     (set CONFER_TEST_DATABASE_URL or start it on 127.0.0.1:5432)"
                );
            }
            static ONCE: std::sync::Once = std::sync::Once::new();
            ONCE.call_once(|| {
                // Written past the test harness's output capture, so it shows in a normal run.
                let _ = writeln!(std::io::stderr(), "skipping PostgreSQL tests: {reason}");
            });
            None
        }
    }
}

async fn probe(url: &str) -> Result<(), String> {
    let options = PgConnectOptions::from_str(url).map_err(|e| format!("bad URL: {e}"))?;
    let target = format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("")
    );
    let connect = async {
        let mut conn = options.connect().await?;
        sqlx::query("SELECT 1").execute(&mut conn).await?;
        conn.close().await
    };
    match tokio::time::timeout(Duration::from_secs(5), connect).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("cannot connect to {target}: {e}")),
        Err(_) => Err(format!("cannot connect to {target}: timed out after 5 s")),
    }
}

/// A unique schema name that embeds its creation time, so stale ones can be recognised.
fn fresh_schema_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!(
        "{SCHEMA_PREFIX}{secs}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A store on its own schema. Call [`PgTest::finish`] at the end; if the test panics before,
/// dropping it still drops the schema.
pub struct PgTest {
    pub url: String,
    pub schema: String,
    pub store: Arc<PgStore>,
    guard: SchemaGuard,
}

impl PgTest {
    pub async fn new() -> Option<Self> {
        let url = postgres_url_or_skip().await?;
        drop_stale_schemas(&url).await;
        let schema = fresh_schema_name();
        let guard = SchemaGuard {
            url: url.clone(),
            schema: schema.clone(),
            armed: true,
        };
        let store = PgStore::connect_with(PgStoreOptions::new(&url).schema(&schema))
            .await
            .expect("connect PgStore");
        Some(PgTest {
            url,
            schema,
            store: Arc::new(store),
            guard,
        })
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// Another store ("node") on the same schema.
    pub async fn another_node(&self) -> PgStore {
        PgStore::connect_with(PgStoreOptions::new(&self.url).schema(&self.schema))
            .await
            .expect("connect second PgStore")
    }

    pub async fn finish(mut self) {
        self.store.close().await;
        if let Err(e) = drop_schema(&self.url, &self.schema).await {
            eprintln!("could not drop test schema {}: {e}", self.schema);
        }
        self.guard.armed = false;
    }
}

struct SchemaGuard {
    url: String,
    schema: String,
    armed: bool,
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        // We may be unwinding inside a runtime, which cannot block on another future: drop the
        // schema from a fresh thread with its own runtime.
        let (url, schema) = (self.url.clone(), self.schema.clone());
        let joined = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            match rt {
                Ok(rt) => rt
                    .block_on(drop_schema(&url, &schema))
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            }
        })
        .join();
        if !matches!(joined, Ok(Ok(()))) {
            eprintln!("could not drop test schema {} ({joined:?})", self.schema);
        }
    }
}

pub async fn drop_schema(url: &str, schema: &str) -> Result<(), sqlx::Error> {
    assert!(
        schema.starts_with(SCHEMA_PREFIX),
        "only test schemas are dropped"
    );
    let mut conn = PgConnectOptions::from_str(url)?.connect().await?;
    // A connection of a panicked test may still hold locks until its rollback reaches the
    // server; wait a bit for them rather than forever.
    sqlx::raw_sql("SET lock_timeout = '10s'")
        .execute(&mut conn)
        .await?;
    sqlx::raw_sql(AssertSqlSafe(format!(
        r#"DROP SCHEMA IF EXISTS "{schema}" CASCADE"#
    )))
    .execute(&mut conn)
    .await?;
    conn.close().await
}

/// Drops test schemas older than an hour: leftovers of runs that were killed.
async fn drop_stale_schemas(url: &str) {
    static DONE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    DONE.get_or_init(|| async {
        let Ok(options) = PgConnectOptions::from_str(url) else {
            return;
        };
        let Ok(mut conn) = options.connect().await else {
            return;
        };
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT nspname::text FROM pg_namespace WHERE starts_with(nspname, 'confer_test_')",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap_or_default();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        for name in names {
            let created = name
                .strip_prefix(SCHEMA_PREFIX)
                .and_then(|rest| rest.split('_').next())
                .and_then(|secs| secs.parse::<u64>().ok());
            if created.is_some_and(|t| now.saturating_sub(t) > 3600) {
                let _ = drop_schema(url, &name).await;
            }
        }
        let _ = conn.close().await;
    })
    .await;
}
