//! A scratch PostgreSQL schema for a benchmark's servers, and a bounded reachability check.
//! Both benchmark binaries run their PostgreSQL rows through this.

use std::time::Duration;

use sqlx::Connection as _;

/// A scratch schema on PostgreSQL; [`ScratchSchema::drop_now`] drops it (callers do so on error
/// paths too: nothing a benchmark creates may stay behind).
pub struct ScratchSchema {
    /// The database URL the schema lives in.
    pub url: String,
    /// The schema's name: `<prefix>_<unix seconds>_<pid>` (letters, digits and `_` only).
    pub name: String,
}

impl ScratchSchema {
    /// A new, unique name; the schema itself is created by the first server (its migrations).
    pub fn new(url: &str, prefix: &str) -> ScratchSchema {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        ScratchSchema {
            url: url.to_owned(),
            name: format!("{prefix}_{secs}_{}", std::process::id()),
        }
    }

    /// The URL that puts a server's tables in this schema (libpq's `options`).
    pub fn server_url(&self) -> String {
        let separator = if self.url.contains('?') { '&' } else { '?' };
        format!(
            "{}{separator}options=-c%20search_path%3D{}",
            self.url, self.name
        )
    }

    /// Bytes of Confer's tables (with their indexes and TOAST) in this schema.
    pub async fn size_bytes(&self) -> anyhow::Result<u64> {
        let mut conn = sqlx::PgConnection::connect(&self.url).await?;
        let bytes: i64 = sqlx::query_scalar(
            "SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relkind = 'r'",
        )
        .bind(&self.name)
        .fetch_one(&mut conn)
        .await?;
        conn.close().await?;
        Ok(u64::try_from(bytes).unwrap_or(0))
    }

    /// Drops the schema and everything in it.
    pub async fn drop_now(&self) -> anyhow::Result<()> {
        let mut conn = sqlx::PgConnection::connect(&self.url).await?;
        // The name is ours (letters, digits and `_`), so quoting it is enough.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            r#"DROP SCHEMA IF EXISTS "{}" CASCADE"#,
            self.name
        )))
        .execute(&mut conn)
        .await?;
        conn.close().await?;
        Ok(())
    }
}

/// Whether PostgreSQL at `url` answers a query within 5 s; the error says why not.
pub async fn reachable(url: &str) -> Result<(), String> {
    let connect = async {
        let mut conn = sqlx::PgConnection::connect(url).await?;
        sqlx::query("SELECT 1").execute(&mut conn).await?;
        conn.close().await
    };
    match tokio::time::timeout(Duration::from_secs(5), connect).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("timed out after 5 s".to_owned()),
    }
}
