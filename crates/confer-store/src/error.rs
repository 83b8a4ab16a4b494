//! The store's one error type.

/// Everything a store operation can fail with. Backend errors keep their source, so
/// `std::error::Error::source` walks down to the driver's error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Optimistic concurrency: the stored version was not the expected one (`None` = the
    /// conference does not exist / was expected not to exist). Re-read and retry.
    #[error(
        "conflict on conference {id}: expected version {}, found {}",
        fmt_version(*expected),
        fmt_version(*actual)
    )]
    Conflict {
        id: String,
        expected: Option<u64>,
        actual: Option<u64>,
    },

    /// Another user already has this username.
    #[error("username {username:?} is taken")]
    UsernameTaken { username: String },

    /// A user with this id already exists.
    #[error("user {id:?} already exists")]
    UserExists { id: String },

    /// An unexpired idempotency record with this key exists already: a concurrent or repeated
    /// request. Nothing was committed; read the record with `get_idempotency` and answer with it.
    #[error("idempotency key {key:?} of user {user_id:?} is already in use")]
    IdempotencyKeyInUse { user_id: String, key: String },

    /// The record to update does not exist.
    #[error("{what} {id:?} not found")]
    NotFound { what: &'static str, id: String },

    /// The caller asked for something the store refuses (a bug in the caller, not a race).
    #[error("invalid request: {0}")]
    Invalid(String),

    /// The database cannot be reached (connection refused or lost, pool timed out, database
    /// shutting down, busy). Retry later; readiness should report not ready.
    #[error("store unavailable during {op}")]
    Unavailable {
        op: &'static str,
        #[source]
        source: BoxError,
    },

    /// Stored data that cannot be decoded (e.g. a negative seq, JSON that does not parse).
    #[error("corrupt data in {what}")]
    Corrupt {
        what: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// A schema migration failed or the database is newer than this binary.
    #[error("migration {version} ({name}) failed")]
    Migration {
        version: i64,
        name: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The database could not be set up with the guarantees the store promises (e.g. SQLite
    /// refused WAL mode on this file system).
    #[error("store setup failed: {0}")]
    Setup(String),

    /// Creating the data directory or similar local I/O failed.
    #[error("I/O error on {path}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Any other database error.
    #[error("database error during {op}")]
    Backend {
        op: &'static str,
        #[source]
        source: BoxError,
    },
}

/// A driver's error (sqlx for PostgreSQL and the SQLite readers, rusqlite for the SQLite
/// writer), kept whole as the source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn fmt_version(v: Option<u64>) -> String {
    match v {
        Some(v) => v.to_string(),
        None => "none".to_owned(),
    }
}

impl StoreError {
    /// `true` for errors worth retrying as they are (the store was unreachable or busy).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }

    pub(crate) fn corrupt(
        what: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        StoreError::Corrupt {
            what: what.into(),
            source: Some(source.into()),
        }
    }
}

/// Sorts a driver error into [`StoreError::Unavailable`] or [`StoreError::Backend`].
pub(crate) fn classify(op: &'static str, source: sqlx::Error) -> StoreError {
    by_availability(op, is_unavailable(&source), source.into())
}

/// [`StoreError::Unavailable`] when `unavailable`, else [`StoreError::Backend`].
pub(crate) fn by_availability(op: &'static str, unavailable: bool, source: BoxError) -> StoreError {
    if unavailable {
        StoreError::Unavailable { op, source }
    } else {
        StoreError::Backend { op, source }
    }
}

/// [`classify`] for the SQLite writer's errors: busy and locked are "unavailable".
pub(crate) fn classify_sqlite(op: &'static str, source: rusqlite::Error) -> StoreError {
    let busy = matches!(
        source.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    );
    by_availability(op, busy, source.into())
}

/// A UNIQUE constraint failed (the SQLite writer's statements).
pub(crate) fn is_sqlite_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => {
            let code = db.code();
            let code = code.as_deref().unwrap_or("");
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // SQLite primary result codes 5 (BUSY) and 6 (LOCKED); extended codes keep the
                // primary code in the low byte.
                code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6))
            } else {
                // PostgreSQL SQLSTATE classes: 08 connection exception, 53 insufficient
                // resources (too many connections, disk full), 57P01..57P03 shutdown or
                // cannot connect now.
                code.starts_with("08")
                    || code.starts_with("53")
                    || matches!(code, "57P01" | "57P02" | "57P03")
            }
        }
        _ => false,
    }
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn connection_problems_are_unavailable_and_keep_their_source() {
        let e = classify("commit", sqlx::Error::PoolTimedOut);
        assert!(e.is_unavailable());
        assert_eq!(e.to_string(), "store unavailable during commit");
        let source = e.source().map(ToString::to_string).unwrap_or_default();
        assert!(source.contains("pool timed out"), "{source}");

        let e = classify("commit", sqlx::Error::RowNotFound);
        assert!(matches!(e, StoreError::Backend { op: "commit", .. }));
        assert!(e.source().is_some());
    }

    #[test]
    fn a_busy_sqlite_writer_is_unavailable_and_a_constraint_is_not() {
        let failure = |code| rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None);
        let busy = classify_sqlite("commit", failure(rusqlite::ffi::SQLITE_BUSY));
        assert!(busy.is_unavailable(), "{busy:?}");
        assert!(busy.source().is_some());
        let unique = failure(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE);
        assert!(is_sqlite_unique_violation(&unique));
        assert!(matches!(
            classify_sqlite("put_user", unique),
            StoreError::Backend { op: "put_user", .. }
        ));
    }

    #[test]
    fn conflict_message_names_both_versions() {
        let e = StoreError::Conflict {
            id: "c1".into(),
            expected: Some(3),
            actual: None,
        };
        assert_eq!(
            e.to_string(),
            "conflict on conference c1: expected version 3, found none"
        );
    }
}
