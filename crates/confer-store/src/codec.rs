//! How record fields map to SQL values, and the checks every backend applies to a commit.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::error::StoreError;
use crate::records::Commit;

/// Milliseconds since the Unix epoch by the local clock (0 if the clock is before 1970).
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A `u64` the caller gave us, as a SQL BIGINT. Both databases store signed 64-bit integers.
pub(crate) fn to_sql_int(what: &str, v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Invalid(format!("{what} {v} exceeds i64::MAX")))
}

/// A stored BIGINT that must be non-negative.
pub(crate) fn from_sql_int(what: &str, v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|e| StoreError::corrupt(format!("{what} = {v}"), e))
}

/// Page sizes: a `u32` limit as a SQL LIMIT.
pub(crate) fn sql_limit(limit: u32) -> i64 {
    i64::from(limit)
}

/// JSON as SQLite TEXT.
pub(crate) fn json_text(v: &Value) -> String {
    // Serializing a `Value` cannot fail: its map keys are strings and it holds no custom types.
    v.to_string()
}

/// JSON read back from SQLite TEXT.
pub(crate) fn parse_json(what: &str, text: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::corrupt(what.to_owned(), e))
}

/// The checked numbers of a commit.
pub(crate) struct CheckedCommit {
    pub version: i64,
    pub expected: Option<i64>,
}

/// Refuses commits that are bugs in the caller, before touching the database.
///
/// The new version must be greater than the expected one: if an update could keep the version,
/// two writers that read the same version could both succeed in turn (the second would find the
/// version it expected) and the first write would be lost silently.
pub(crate) fn check_commit(commit: &Commit) -> Result<CheckedCommit, StoreError> {
    let c = &commit.conference;
    if c.id.is_empty() {
        return Err(StoreError::Invalid(
            "conference id must not be empty".into(),
        ));
    }
    if let Some(expected) = commit.expected_version
        && c.version <= expected
    {
        return Err(StoreError::Invalid(format!(
            "conference {}: new version {} must be greater than expected version {expected}",
            c.id, c.version
        )));
    }
    if let Some(e) = commit.events.iter().find(|e| e.conference_id != c.id) {
        return Err(StoreError::Invalid(format!(
            "event {:?} names conference {:?} but the commit is for {:?}",
            e.kind, e.conference_id, c.id
        )));
    }
    Ok(CheckedCommit {
        version: to_sql_int("version", c.version)?,
        expected: commit
            .expected_version
            .map(|v| to_sql_int("expected version", v))
            .transpose()?,
    })
}

/// Refuses users the store could not page or find (empty id or username).
pub(crate) fn check_user(user: &crate::records::UserRecord) -> Result<(), StoreError> {
    if user.id.is_empty() || user.username.is_empty() {
        return Err(StoreError::Invalid(
            "user id and username must not be empty".into(),
        ));
    }
    Ok(())
}

/// Refuses CometD sessions that are bugs in the caller.
pub(crate) fn check_cometd_session(
    session: &crate::records::CometdSessionRecord,
) -> Result<(), StoreError> {
    if session.client_id.is_empty() {
        return Err(StoreError::Invalid(
            "a CometD session's client id must not be empty".into(),
        ));
    }
    Ok(())
}

/// A session's subscriptions as both backends aggregate them: a JSON array of
/// `[pattern, since]` pairs.
pub(crate) fn parse_cometd_subscriptions(
    value: &Value,
) -> Result<Vec<crate::records::CometdSubscription>, StoreError> {
    let bad = || {
        StoreError::corrupt(
            format!("CometD subscriptions {value}"),
            std::io::Error::other("expected an array of [pattern, since] pairs"),
        )
    };
    let Some(pairs) = value.as_array() else {
        return Err(bad());
    };
    pairs
        .iter()
        .map(|pair| match pair.as_array().map(Vec::as_slice) {
            Some([Value::String(pattern), since]) => Ok(crate::records::CometdSubscription {
                pattern: pattern.clone(),
                since: since.as_u64().ok_or_else(bad)?,
            }),
            _ => Err(bad()),
        })
        .collect()
}

/// The old part of a page of `(seq, conference_id, committed_at_ms)` rows read from a cursor,
/// for `prune_history` on either backend: the log is in commit order, so the page is cut at the
/// first event committed at or after the cutoff. Returns the last seq kept (`None`: nothing old
/// after the cursor, the pass is over) and the conferences of the kept events, each once, in
/// log order.
pub(crate) fn old_part_of_page(
    page: Vec<(i64, String, i64)>,
    cutoff_ms: i64,
) -> Result<(Option<u64>, Vec<String>), StoreError> {
    let mut scanned_to = None;
    let mut seen = std::collections::HashSet::new();
    let mut conferences = Vec::new();
    for (seq, conference_id, committed_at_ms) in page {
        if committed_at_ms >= cutoff_ms {
            break;
        }
        scanned_to = Some(from_sql_int("event seq", seq)?);
        if seen.insert(conference_id.clone()) {
            conferences.push(conference_id);
        }
    }
    Ok((scanned_to, conferences))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::records::{ConferenceRecord, NewEvent};

    fn commit(version: u64, expected: Option<u64>) -> Commit {
        Commit {
            conference: ConferenceRecord {
                id: "c".into(),
                kind: "chat".into(),
                version,
                state: json!({}),
                index_keys: vec![],
                live: true,
                updated_at_ms: 0,
            },
            expected_version: expected,
            events: vec![NewEvent {
                conference_id: "c".into(),
                kind: "k".into(),
                payload: json!(1),
            }],
            idempotency: None,
        }
    }

    #[test]
    fn versions_must_increase_and_fit_in_i64() {
        assert!(check_commit(&commit(1, None)).is_ok());
        assert!(check_commit(&commit(0, None)).is_ok());
        assert!(check_commit(&commit(2, Some(1))).is_ok());
        assert!(matches!(
            check_commit(&commit(1, Some(1))),
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            check_commit(&commit(u64::MAX, None)),
            Err(StoreError::Invalid(_))
        ));
    }

    #[test]
    fn negative_stored_numbers_are_corrupt() {
        assert!(matches!(
            from_sql_int("seq", -1),
            Err(StoreError::Corrupt { .. })
        ));
        assert_eq!(from_sql_int("seq", 7).ok(), Some(7));
    }
}
