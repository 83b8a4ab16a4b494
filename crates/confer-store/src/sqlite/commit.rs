//! [`Store::commit`](crate::Store::commit) on SQLite: one multi-statement query per commit.
//!
//! The writer thread runs commits one after the other, so every round trip to sqlx's
//! connection thread is on the critical path of every commit queued behind it (and on this
//! kind of machine a thread hand-off costs more than the statement it carries). The whole
//! commit is therefore one query of several statements, one round trip. Each statement reports
//! what it did through a tagged row (`RETURNING` on the writes); the statements after a failed
//! check still run, and the writer rolls the whole commit back when `run` returns an error
//! (its savepoint, see `writer.rs`), so they leave nothing behind.
//!
//! sqlx binds the parameters of a multi-statement query in order of appearance (`?NNN`
//! numbering does not work across statements: a statement that skips a number shifts the
//! next ones), so the statements are written with named markers (`:id`) that are turned into
//! `?` once, recording which value each position takes.

use std::sync::LazyLock;

use sqlx::sqlite::SqliteArguments;
use sqlx::{Arguments as _, Row as _, SqliteConnection};

use crate::codec::{CheckedCommit, check_commit, from_sql_int, json_text, now_ms, to_sql_int};
use crate::error::{StoreError, classify};
use crate::records::{Commit, CommitOutcome};
use crate::store::StoreResult;

/// A commit checked and serialized in the caller's task, before it is queued for the writer.
pub(super) struct PreparedCommit {
    commit: Commit,
    checked: CheckedCommit,
    state: String,
    keys: String,
    /// `[[kind, payload JSON text], …]`: every event in one parameter, expanded by
    /// `json_each`, so one statement text serves any number of events.
    events: String,
    n_events: i64,
    idempotency_response: Option<String>,
}

/// The values a commit statement can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Param {
    Id,
    Kind,
    Version,
    State,
    Keys,
    Live,
    UpdatedAt,
    Expected,
    EventCount,
    Events,
    /// The store's clock: the commit time, and "now" for the idempotency expiry check.
    Now,
    IdemUser,
    IdemKey,
    IdemFingerprint,
    IdemResponse,
    IdemExpires,
}

impl Param {
    fn named(name: &str) -> Option<Param> {
        Some(match name {
            "id" => Param::Id,
            "kind" => Param::Kind,
            "version" => Param::Version,
            "state" => Param::State,
            "keys" => Param::Keys,
            "live" => Param::Live,
            "updated_at" => Param::UpdatedAt,
            "expected" => Param::Expected,
            "event_count" => Param::EventCount,
            "events" => Param::Events,
            "now" => Param::Now,
            "idem_user" => Param::IdemUser,
            "idem_key" => Param::IdemKey,
            "idem_fingerprint" => Param::IdemFingerprint,
            "idem_response" => Param::IdemResponse,
            "idem_expires" => Param::IdemExpires,
            _ => return None,
        })
    }
}

/// Row tags (first column of every result row; the second is the value).
const TAG_VERSION: i64 = 0;
const TAG_WRITTEN: i64 = 1;
const TAG_IDEMPOTENCY: i64 = 2;
const TAG_HEAD: i64 = 3;

/// The statements of a commit, with `:name` markers; `create`, `idempotent` and `with_events`
/// choose the variant.
fn template(create: bool, idempotent: bool, with_events: bool) -> String {
    // The stored version, for a conflict's "actual" (read before the write, which does not
    // change it when it fails).
    let mut sql = format!("SELECT {TAG_VERSION}, version FROM conferences WHERE id = :id;\n");
    // 1. The conference row, conditional on the expected version (or on absence).
    sql += &if create {
        format!(
            "INSERT INTO conferences (id, kind, version, state, index_keys, live, updated_at_ms) \
             VALUES (:id, :kind, :version, :state, :keys, :live, :updated_at) \
             ON CONFLICT (id) DO NOTHING RETURNING {TAG_WRITTEN}, NULL;\n"
        )
    } else {
        format!(
            "UPDATE conferences SET kind = :kind, version = :version, state = :state, \
             index_keys = :keys, live = :live, updated_at_ms = :updated_at \
             WHERE id = :id AND version = :expected RETURNING {TAG_WRITTEN}, NULL;\n"
        )
    };
    // 2. Index keys: drop the ones no longer listed, add the new ones (unchanged keys are not
    // rewritten). The insert runs only if the row holds the new version: after a conflict on a
    // missing conference it would break the foreign key instead of letting the commit report
    // the conflict.
    sql += "DELETE FROM conference_index WHERE conference_id = :id \
            AND key NOT IN (SELECT value FROM json_each(:keys));\n\
            INSERT OR IGNORE INTO conference_index (key, conference_id) \
            SELECT value, :id FROM json_each(:keys) \
            WHERE EXISTS (SELECT 1 FROM conferences WHERE id = :id AND version = :version);\n";
    // 3. The idempotency record, replacing only an expired one.
    if idempotent {
        sql += &format!(
            "INSERT INTO idempotency (user_id, key, request_fingerprint, response, expires_at_ms) \
             VALUES (:idem_user, :idem_key, :idem_fingerprint, :idem_response, :idem_expires) \
             ON CONFLICT (user_id, key) DO UPDATE SET \
             request_fingerprint = excluded.request_fingerprint, response = excluded.response, \
             expires_at_ms = excluded.expires_at_ms WHERE idempotency.expires_at_ms <= :now \
             RETURNING {TAG_IDEMPOTENCY}, NULL;\n"
        );
    }
    // 4. Seq allocation and the events, last. The writer thread already orders commits; the
    // head row is what makes the allocation survive restarts and stay gap-free (a commit
    // rolled back to its savepoint rolls its allocation back too). Event i (from 0) gets
    // new head - count + 1 + i.
    if with_events {
        sql += &format!(
            "UPDATE event_head SET seq = seq + :event_count WHERE id = 1 \
             RETURNING {TAG_HEAD}, seq;\n\
             INSERT INTO events (seq, conference_id, conference_version, kind, payload, \
             committed_at_ms) \
             SELECT h.seq - :event_count + 1 + e.key, :id, :version, \
             json_extract(e.value, '$[0]'), json_extract(e.value, '$[1]'), :now \
             FROM event_head h, json_each(:events) e WHERE h.id = 1;\n"
        );
    } else {
        sql += &format!("SELECT {TAG_HEAD}, seq FROM event_head WHERE id = 1;\n");
    }
    sql
}

/// A statement text with `?` placeholders and the value each takes, in order.
#[derive(Debug)]
struct Compiled {
    sql: String,
    params: Vec<Param>,
}

/// Turns `:name` markers into `?`. The templates hold no other `:` (no string contains one).
fn compile(template: &str) -> Result<Compiled, String> {
    let mut sql = String::with_capacity(template.len());
    let mut params = Vec::new();
    let mut rest = template;
    while let Some(at) = rest.find(':') {
        sql.push_str(&rest[..at]);
        let name_len = rest[at + 1..]
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(rest.len() - at - 1);
        let name = &rest[at + 1..at + 1 + name_len];
        params.push(Param::named(name).ok_or_else(|| format!("unknown parameter :{name}"))?);
        sql.push('?');
        rest = &rest[at + 1 + name_len..];
    }
    sql.push_str(rest);
    Ok(Compiled { sql, params })
}

/// The eight variants, compiled once.
fn statement(
    create: bool,
    idempotent: bool,
    with_events: bool,
) -> Result<&'static Compiled, StoreError> {
    static ALL: LazyLock<Vec<Result<Compiled, String>>> = LazyLock::new(|| {
        (0..8)
            .map(|v| compile(&template(v & 1 != 0, v & 2 != 0, v & 4 != 0)))
            .collect()
    });
    let variant =
        usize::from(create) | (usize::from(idempotent) << 1) | (usize::from(with_events) << 2);
    match ALL.get(variant) {
        Some(Ok(compiled)) => Ok(compiled),
        Some(Err(e)) => Err(StoreError::Invalid(format!("commit statement: {e}"))),
        None => Err(StoreError::Invalid(
            "commit statement: no such variant".into(),
        )),
    }
}

impl PreparedCommit {
    pub(super) fn new(commit: Commit) -> StoreResult<Self> {
        let checked = check_commit(&commit)?;
        let c = &commit.conference;
        let payloads: Vec<String> = commit
            .events
            .iter()
            .map(|e| json_text(&e.payload))
            .collect();
        let events: Vec<(&str, &str)> = commit
            .events
            .iter()
            .zip(&payloads)
            .map(|(e, payload)| (e.kind.as_str(), payload.as_str()))
            .collect();
        Ok(PreparedCommit {
            checked,
            state: json_text(&c.state),
            keys: json_text(&serde_json::Value::from(c.index_keys.clone())),
            // A list of string pairs always serializes.
            events: serde_json::to_string(&events).unwrap_or_default(),
            n_events: to_sql_int("event count", commit.events.len() as u64)?,
            idempotency_response: commit.idempotency.as_ref().map(|i| json_text(&i.response)),
            commit,
        })
    }

    /// Writes the commit on the writer's connection, inside the writer's transaction (and the
    /// commit's savepoint when it shares the transaction). Returns every error it meets, and
    /// an error whenever a check failed: the writer then rolls the commit back.
    pub(super) async fn run(self, conn: &mut SqliteConnection) -> StoreResult<CommitOutcome> {
        let op = "commit";
        let c = &self.commit.conference;
        let idem = self.commit.idempotency.as_ref();
        let compiled = statement(
            self.checked.expected.is_none(),
            idem.is_some(),
            self.n_events > 0,
        )?;
        let now = now_ms();
        let mut args = SqliteArguments::default();
        for param in &compiled.params {
            let added = match param {
                Param::Id => args.add(c.id.as_str()),
                Param::Kind => args.add(c.kind.as_str()),
                Param::Version => args.add(self.checked.version),
                Param::State => args.add(self.state.as_str()),
                Param::Keys => args.add(self.keys.as_str()),
                Param::Live => args.add(c.live),
                Param::UpdatedAt => args.add(c.updated_at_ms),
                Param::Expected => args.add(self.checked.expected),
                Param::EventCount => args.add(self.n_events),
                Param::Events => args.add(self.events.as_str()),
                Param::Now => args.add(now),
                Param::IdemUser => args.add(idem.map(|i| i.user_id.as_str())),
                Param::IdemKey => args.add(idem.map(|i| i.key.as_str())),
                Param::IdemFingerprint => args.add(idem.map(|i| i.request_fingerprint.as_str())),
                Param::IdemResponse => args.add(self.idempotency_response.as_deref()),
                Param::IdemExpires => args.add(idem.map(|i| i.expires_at_ms)),
            };
            added.map_err(|e| classify(op, sqlx::Error::Encode(e)))?;
        }
        let rows = sqlx::query_with(compiled.sql.as_str(), args)
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| classify(op, e))?;

        let (mut actual, mut written, mut idempotency_stored, mut head) =
            (None, false, false, None);
        for row in &rows {
            let get = |e| classify("decode commit result", e);
            let tag: i64 = row.try_get(0).map_err(get)?;
            let value: Option<i64> = row.try_get(1).map_err(get)?;
            match tag {
                TAG_VERSION => actual = value,
                TAG_WRITTEN => written = true,
                TAG_IDEMPOTENCY => idempotency_stored = true,
                TAG_HEAD => head = value,
                _ => {}
            }
        }
        if !written {
            return Err(StoreError::Conflict {
                id: c.id.clone(),
                expected: self.commit.expected_version,
                actual: actual
                    .map(|v| from_sql_int("conference version", v))
                    .transpose()?,
            });
        }
        if let Some(idem) = idem
            && !idempotency_stored
        {
            return Err(StoreError::IdempotencyKeyInUse {
                user_id: idem.user_id.clone(),
                key: idem.key.clone(),
            });
        }
        let Some(head) = head else {
            return Err(StoreError::Corrupt {
                what: "event_head has no row".into(),
                source: None,
            });
        };
        let head = from_sql_int("event_head.seq", head)?;
        Ok(CommitOutcome {
            first_seq: (head + 1).saturating_sub(self.n_events.unsigned_abs()),
            last_seq: head,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_compiles_with_one_value_per_placeholder() {
        for variant in 0..8 {
            let (create, idempotent, with_events) =
                (variant & 1 != 0, variant & 2 != 0, variant & 4 != 0);
            let compiled = statement(create, idempotent, with_events).expect("compiles");
            assert!(!compiled.sql.contains(':'), "{}", compiled.sql);
            assert_eq!(
                compiled.sql.matches('?').count(),
                compiled.params.len(),
                "{}",
                compiled.sql
            );
            assert_eq!(compiled.params.contains(&Param::Expected), !create);
            assert_eq!(compiled.params.contains(&Param::IdemKey), idempotent);
            assert_eq!(compiled.params.contains(&Param::Events), with_events);
        }
    }

    #[test]
    fn unknown_markers_are_refused() {
        let e = compile("SELECT :id, :nope").unwrap_err();
        assert!(e.contains(":nope"), "{e}");
    }
}
