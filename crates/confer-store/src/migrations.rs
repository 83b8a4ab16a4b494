//! Schema migrations, embedded in the binary and applied at open/connect.
//!
//! Each backend has its own ordered list (SQL in `migrations/{sqlite,postgres}/`). Applied
//! versions are recorded in `schema_migrations`; all pending migrations run in one transaction,
//! so a failure leaves the schema as it was. A database whose recorded version is newer than
//! this binary knows is refused rather than used half-understood.

use sqlx::{Connection, PgConnection, Row, SqliteConnection};

use crate::error::{StoreError, classify};

/// One schema step.
pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

pub(crate) const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "cometd_sessions",
        sql: include_str!("../migrations/sqlite/0002_cometd_sessions.sql"),
    },
    Migration {
        version: 3,
        name: "cometd_sessions_by_principal",
        sql: include_str!("../migrations/sqlite/0003_cometd_sessions_by_principal.sql"),
    },
    Migration {
        version: 4,
        name: "retention",
        sql: include_str!("../migrations/sqlite/0004_retention.sql"),
    },
];

pub(crate) const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "cometd_sessions",
        sql: include_str!("../migrations/postgres/0002_cometd_sessions.sql"),
    },
    Migration {
        version: 3,
        name: "cometd_sessions_by_principal",
        sql: include_str!("../migrations/postgres/0003_cometd_sessions_by_principal.sql"),
    },
    Migration {
        version: 4,
        name: "retention",
        sql: include_str!("../migrations/postgres/0004_retention.sql"),
    },
];

const CREATE_VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version       BIGINT NOT NULL PRIMARY KEY,
    name          TEXT   NOT NULL,
    applied_at_ms BIGINT NOT NULL
)";

/// Applies the pending SQLite migrations. `BEGIN IMMEDIATE` takes the write lock first, so two
/// processes opening the same file at once cannot both apply a step.
pub(crate) async fn run_sqlite(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    let mut tx = conn
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(|e| classify("migrate", e))?;
    sqlx::query(CREATE_VERSION_TABLE)
        .execute(&mut *tx)
        .await
        .map_err(|e| classify("migrate", e))?;
    let current: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations")
        .fetch_one(&mut *tx)
        .await
        .and_then(|row| row.try_get("v"))
        .map_err(|e| classify("migrate", e))?;
    for m in pending(SQLITE, current)? {
        sqlx::raw_sql(m.sql)
            .execute(&mut *tx)
            .await
            .map_err(|e| failed(m, e))?;
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (?, ?, ?)",
        )
        .bind(m.version)
        .bind(m.name)
        .bind(crate::codec::now_ms())
        .execute(&mut *tx)
        .await
        .map_err(|e| failed(m, e))?;
    }
    tx.commit().await.map_err(|e| classify("migrate", e))
}

/// Applies the pending PostgreSQL migrations in the connection's current schema. A transaction
/// advisory lock keyed by the schema name makes nodes that start together take turns.
pub(crate) async fn run_postgres(conn: &mut PgConnection) -> Result<(), StoreError> {
    let mut tx = conn.begin().await.map_err(|e| classify("migrate", e))?;
    sqlx::query("SELECT pg_advisory_xact_lock(1668178278, hashtext(current_schema()))")
        .execute(&mut *tx)
        .await
        .map_err(|e| classify("migrate", e))?;
    sqlx::query(CREATE_VERSION_TABLE)
        .execute(&mut *tx)
        .await
        .map_err(|e| classify("migrate", e))?;
    let current: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations")
        .fetch_one(&mut *tx)
        .await
        .and_then(|row| row.try_get("v"))
        .map_err(|e| classify("migrate", e))?;
    for m in pending(POSTGRES, current)? {
        sqlx::raw_sql(m.sql)
            .execute(&mut *tx)
            .await
            .map_err(|e| failed(m, e))?;
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES ($1, $2, $3)",
        )
        .bind(m.version)
        .bind(m.name)
        .bind(crate::codec::now_ms())
        .execute(&mut *tx)
        .await
        .map_err(|e| failed(m, e))?;
    }
    tx.commit().await.map_err(|e| classify("migrate", e))
}

/// The migrations after `current`, or an error when the database is ahead of this binary.
fn pending(all: &'static [Migration], current: i64) -> Result<&'static [Migration], StoreError> {
    let latest = all.last().map_or(0, |m| m.version);
    if current > latest {
        return Err(StoreError::Migration {
            version: current,
            name: "unknown",
            source: format!(
                "the database schema is at version {current}, newer than the latest this \
                 binary knows ({latest}); refusing to use it"
            )
            .into(),
        });
    }
    let start = all.partition_point(|m| m.version <= current);
    Ok(&all[start..])
}

fn failed(m: &Migration, e: sqlx::Error) -> StoreError {
    StoreError::Migration {
        version: m.version,
        name: m.name,
        source: Box::new(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_strictly_increasing_from_one() {
        for list in [SQLITE, POSTGRES] {
            let versions: Vec<i64> = list.iter().map(|m| m.version).collect();
            let expected: Vec<i64> = (1..=versions.len() as i64).collect();
            assert_eq!(versions, expected);
        }
    }

    #[test]
    fn pending_skips_applied_and_refuses_newer() {
        assert_eq!(pending(SQLITE, 0).map(<[_]>::len).ok(), Some(SQLITE.len()));
        assert_eq!(
            pending(SQLITE, SQLITE.len() as i64).map(<[_]>::len).ok(),
            Some(0)
        );
        assert!(matches!(
            pending(SQLITE, 99),
            Err(StoreError::Migration { version: 99, .. })
        ));
    }
}
