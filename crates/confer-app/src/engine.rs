//! The engine: runs a domain command against the store, the one way every dialect changes a
//! conference.
//!
//! load the conference (from this node's [`ConferenceCache`] when it holds it, else from the
//! store) → `confer_core::decide` → apply → commit the new state, its events and the
//! idempotency record in one transaction (optimistic concurrency on the conference version) →
//! on a version conflict, or a refusal decided on a cached state, reload from the store and
//! decide again. A success is returned only after the commit,
//! so an answered request is durable, and its events are in the log every notification reads.

use std::{ops::RangeInclusive, sync::Arc, time::SystemTime};

use confer_core::{
    AccountId, Actor, Command, Conference, ConferenceNoun, DomainError, Event, Limits, Timestamp,
    view::{is_listed_for, is_live, listing_keys},
};
use confer_store::{Commit, ConferenceRecord, IdempotencyRecord, NewEvent, Store, StoreError};
use serde::{Deserialize, Serialize};

use crate::{cache::ConferenceCache, config::DEFAULT_CACHED_CONFERENCES, metrics::Metrics};

/// How long an `Idempotency-Key` is remembered.
pub const IDEMPOTENCY_TTL_MS: i64 = 24 * 60 * 60 * 1000;

/// How many times a command is decided again after losing a race to another writer.
const MAX_ATTEMPTS: usize = 32;

/// A client's idempotency key for a request, with what identifies the request itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub key: String,
    /// Method, route and canonical body: the same key with a different request is refused.
    pub fingerprint: String,
}

/// A command that took effect (or an earlier identical one, answered again).
#[derive(Debug, Clone)]
pub struct Executed {
    /// The conference right after the command.
    pub conference: Conference,
    /// The events it produced (empty when replayed).
    pub events: Vec<Event>,
    /// Their positions in the event log (empty when replayed).
    pub seqs: RangeInclusive<u64>,
    /// Answered from an earlier request with the same `Idempotency-Key`; nothing changed now.
    pub replayed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("the Idempotency-Key was already used for a different request")]
    IdempotencyKeyReused,
    #[error("the conference kept changing under this request; try again")]
    TooMuchContention,
    #[error("the store failed")]
    Store(#[from] StoreError),
    #[error("a stored conference or event does not read back")]
    Corrupt(#[source] serde_json::Error),
}

/// What an idempotent success keeps, to answer a retry the same way: the conference as that
/// success left it.
#[derive(Debug, Serialize, Deserialize)]
struct StoredOutcome {
    conference: Conference,
}

/// The wall clock, in the core's terms.
pub fn now() -> Timestamp {
    let millis = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Timestamp::from_millis(millis)
}

#[derive(Clone)]
pub struct Engine {
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    limits: Limits,
    cache: Arc<ConferenceCache>,
}

impl Engine {
    /// An engine with the default [`Limits`].
    pub fn new(store: Arc<dyn Store>, metrics: Arc<Metrics>) -> Self {
        Self::with_limits(store, metrics, Limits::DEFAULT)
    }

    pub fn with_limits(store: Arc<dyn Store>, metrics: Arc<Metrics>, limits: Limits) -> Self {
        Self::with_cache(
            store,
            metrics,
            limits,
            Arc::new(ConferenceCache::new(DEFAULT_CACHED_CONFERENCES)),
        )
    }

    pub fn with_cache(
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        limits: Limits,
        cache: Arc<ConferenceCache>,
    ) -> Self {
        Self {
            store,
            metrics,
            limits,
            cache,
        }
    }

    /// The conferences this node is working on (what the notification feeds render from).
    pub fn cache(&self) -> &Arc<ConferenceCache> {
        &self.cache
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Runs `command` for `actor`.
    pub async fn execute(
        &self,
        actor: &Actor,
        command: Command,
        idempotency: Option<IdempotencyKey>,
    ) -> Result<Executed, EngineError> {
        let now = now();
        // Before anything is read: an oversized id must not even reach the store.
        self.limits.check_command(&command)?;
        let keys = candidate_keys(actor, &command);
        // After a refusal or a conflict on a cached state, the next attempt reads the store.
        let mut use_cache = true;
        for _ in 0..MAX_ATTEMPTS {
            // Checked on every attempt: a concurrent request with the same key may have won.
            if let Some(key) = &idempotency
                && let Some(replay) = self.replay(actor, key, now).await?
            {
                return Ok(replay);
            }
            // Only the first candidate can be taken from the cache: a later one is the answer
            // only if the store has nothing under the earlier ones.
            let cached = if use_cache {
                keys.first().and_then(|key| self.cache.get(key))
            } else {
                None
            };
            let from_cache = cached.is_some();
            let current = match cached {
                Some(cached) => Some(cached),
                None => self.load_first(&keys).await?,
            };
            let expected_version = current.as_ref().map(|c| c.version);
            let decided = confer_core::execute(current.as_deref(), actor, command.clone(), now)
                .and_then(|(conference, events)| {
                    self.limits.check_size(current.as_deref(), &conference)?;
                    Ok((conference, events))
                });
            let (conference, events) = match decided {
                Ok(decided) => decided,
                Err(_) if from_cache => {
                    // Another node may have changed what this refusal rests on: decide again
                    // on what the store holds before answering it.
                    self.forget(&keys);
                    use_cache = false;
                    continue;
                }
                Err(refused) => {
                    // A request with the same key may have committed between our check and
                    // our load; its success is the answer, not the refusal it caused.
                    if let Some(key) = &idempotency
                        && let Some(replay) = self.replay(actor, key, now).await?
                    {
                        return Ok(replay);
                    }
                    return Err(refused.into());
                }
            };
            let record = record_of(&conference, now)?;
            let new_events = events
                .iter()
                .map(|event| {
                    let payload = serde_json::to_value(event).map_err(EngineError::Corrupt)?;
                    Ok(NewEvent {
                        conference_id: record.id.clone(),
                        kind: event_kind(&payload),
                        payload,
                    })
                })
                .collect::<Result<Vec<_>, EngineError>>()?;
            let idempotency_record = idempotency
                .as_ref()
                .map(|key| -> Result<IdempotencyRecord, EngineError> {
                    Ok(IdempotencyRecord {
                        user_id: actor.user_id.to_string(),
                        key: key.key.clone(),
                        request_fingerprint: key.fingerprint.clone(),
                        response: serde_json::to_value(StoredOutcome {
                            conference: conference.clone(),
                        })
                        .map_err(EngineError::Corrupt)?,
                        expires_at_ms: now.millis() + IDEMPOTENCY_TTL_MS,
                    })
                })
                .transpose()?;
            let commit = Commit {
                conference: record,
                expected_version,
                events: new_events,
                idempotency: idempotency_record,
            };
            let key = commit.conference.id.clone();
            match self.store.commit(commit).await {
                Ok(outcome) => {
                    self.cache
                        .committed(&key, current, Arc::new(conference.clone()));
                    return Ok(Executed {
                        conference,
                        events,
                        seqs: outcome.seqs(),
                        replayed: false,
                    });
                }
                Err(StoreError::Conflict { .. } | StoreError::IdempotencyKeyInUse { .. }) => {
                    // Someone else changed the conference (or used the same key) first: decide
                    // again on what they committed.
                    self.metrics.store_commit_conflicts.inc();
                    self.forget(&keys);
                    use_cache = false;
                    tokio::task::yield_now().await;
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err(EngineError::TooMuchContention)
    }

    /// The earlier success with this key, if any; an error if the key was used for another
    /// request.
    async fn replay(
        &self,
        actor: &Actor,
        key: &IdempotencyKey,
        now: Timestamp,
    ) -> Result<Option<Executed>, EngineError> {
        let Some(record) = self
            .store
            .get_idempotency(actor.user_id.as_str(), &key.key, now.millis())
            .await?
        else {
            return Ok(None);
        };
        if record.request_fingerprint != key.fingerprint {
            return Err(EngineError::IdempotencyKeyReused);
        }
        let outcome: StoredOutcome =
            serde_json::from_value(record.response).map_err(EngineError::Corrupt)?;
        #[allow(clippy::reversed_empty_ranges)]
        let no_events = 1..=0;
        Ok(Some(Executed {
            conference: outcome.conference,
            events: Vec::new(),
            seqs: no_events,
            replayed: true,
        }))
    }

    /// The call or chat with this id, as last committed (a session is found by
    /// [`Engine::load_session`]: its id is unique only within its account).
    pub async fn load(&self, id: &str) -> Result<Option<Conference>, EngineError> {
        self.limits.check_id("id", id)?;
        Ok(self.load_key(id).await?.map(Arc::unwrap_or_clone))
    }

    /// The session with this id in one of `actor`'s accounts (the first account that has one),
    /// as last committed. A session of another account is not found: it is another session.
    pub async fn load_session(
        &self,
        actor: &Actor,
        id: &str,
    ) -> Result<Option<Conference>, EngineError> {
        self.limits.check_id("id", id)?;
        let keys: Vec<String> = actor
            .accounts
            .iter()
            .map(|account| session_key(account, id))
            .collect();
        Ok(self.load_first(&keys).await?.map(Arc::unwrap_or_clone))
    }

    /// The conference under the first of `keys` that has one, as the store holds it (and
    /// remembered in the cache).
    async fn load_first(&self, keys: &[String]) -> Result<Option<Arc<Conference>>, EngineError> {
        for key in keys {
            if let Some(conference) = self.load_key(key).await? {
                return Ok(Some(conference));
            }
        }
        Ok(None)
    }

    async fn load_key(&self, key: &str) -> Result<Option<Arc<Conference>>, EngineError> {
        let Some(record) = self.store.get_conference(key).await? else {
            return Ok(None);
        };
        let conference: Arc<Conference> =
            Arc::new(serde_json::from_value(record.state).map_err(EngineError::Corrupt)?);
        self.cache.loaded(key, conference.clone());
        Ok(Some(conference))
    }

    fn forget(&self, keys: &[String]) {
        for key in keys {
            self.cache.forget(key);
        }
    }

    /// The conferences listed for `actor` (their live calls and chats, their accounts'
    /// sessions), ordered by id.
    pub async fn listed_for(&self, actor: &Actor) -> Result<Vec<Conference>, EngineError> {
        let mut keys = vec![(format!("user:{}", actor.user_id), true)];
        keys.extend(
            actor
                .accounts
                .iter()
                .map(|account| (format!("account:{account}"), false)),
        );
        let mut found = Vec::new();
        for (key, live_only) in keys {
            let mut after: Option<String> = None;
            loop {
                let page = self
                    .store
                    .list_conferences(&key, live_only, after.as_deref(), 500)
                    .await?;
                let Some(last) = page.last() else { break };
                after = Some(last.id.clone());
                let full = page.len() == 500;
                for record in page {
                    let conference: Conference =
                        serde_json::from_value(record.state).map_err(EngineError::Corrupt)?;
                    if is_listed_for(&conference, actor) {
                        found.push(conference);
                    }
                }
                if !full {
                    break;
                }
            }
        }
        found.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        found.dedup_by(|a, b| a.id == b.id);
        Ok(found)
    }
}

/// Where a conference is stored: under its id, except a session, whose id is unique only within
/// its account (Evo and gRPC callers may choose session ids): under its account and id, so that
/// an id taken in one account can neither be probed nor blocked from another.
pub fn store_key(conference: &Conference) -> String {
    match conference.as_session() {
        Some(session) => session_key(&session.account_id, conference.id.as_str()),
        None => conference.id.to_string(),
    }
}

/// The key of session `id` in `account`. The separator is a control character, which no id
/// may contain (`confer_core::Limits`) and no account name either (`crate::users`): two
/// (account, id) pairs never share a key, nor a session a call's or chat's.
fn session_key(account: &AccountId, id: &str) -> String {
    format!("{account}\u{1f}{id}")
}

/// Where the conference a command names may be stored.
fn candidate_keys(actor: &Actor, command: &Command) -> Vec<String> {
    let id = command.conference_id().as_str();
    match command {
        Command::CreateSession(new) => vec![session_key(&new.account_id, id)],
        other if other.noun() == ConferenceNoun::Session => actor
            .accounts
            .iter()
            .map(|account| session_key(account, id))
            .collect(),
        _ => vec![id.to_owned()],
    }
}

/// The stored form of a conference at `now`.
pub fn record_of(conference: &Conference, now: Timestamp) -> Result<ConferenceRecord, EngineError> {
    Ok(ConferenceRecord {
        id: store_key(conference),
        kind: conference.noun().to_string(),
        version: conference.version,
        state: serde_json::to_value(conference).map_err(EngineError::Corrupt)?,
        index_keys: listing_keys(conference),
        live: is_live(conference),
        updated_at_ms: now.millis(),
    })
}

/// The event's kind name (`ParticipantRemoved`...), for the log's `kind` column.
fn event_kind(payload: &serde_json::Value) -> String {
    payload
        .pointer("/kind/type")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("Event")
        .to_owned()
}
