//! A conference's state right after any event of the log, rebuilt from the store: what a
//! notification feed needs for an event whose earlier state it does not hold (the first it sees
//! of a conference, or another node's commit). The one rebuild both feeds (GWS CometD, gRPC
//! `Subscribe`) use: from the conference's base once its early history was pruned
//! ([`confer_store::Store::prune_history`]), else from its first event.

use confer_core::{Conference, DomainError, Event, apply};
use confer_store::{Store, StoreError, StoredEvent};

/// Why the state after an event cannot be rebuilt.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("the store failed")]
    Store(#[from] StoreError),
    /// A stored event or snapshot is not what the core reads.
    #[error("event {seq} of conference {conference} does not read back")]
    Corrupt {
        conference: String,
        /// The event's seq (0 for the conference's base snapshot).
        seq: u64,
        #[source]
        source: serde_json::Error,
    },
    #[error("an event of conference {conference} does not apply to the state before it")]
    Replay {
        conference: String,
        #[source]
        source: DomainError,
    },
    /// The events before this one were pruned after it was read: only a reader that fell
    /// behind the retention window meets this.
    #[error(
        "the history of conference {conference} up to version {version} was pruned (its log now starts after version {starts_after})"
    )]
    Pruned {
        conference: String,
        version: u64,
        starts_after: u64,
    },
}

/// Parses a stored event's payload.
pub fn parse_event(stored: &StoredEvent) -> Result<Event, HistoryError> {
    serde_json::from_value(stored.payload.clone()).map_err(|source| HistoryError::Corrupt {
        conference: stored.conference_id.clone(),
        seq: stored.seq,
        source,
    })
}

/// The state of the conference stored under `key` right after `event`, which the log holds
/// with the version its whole commit reached (`commit_version`): rebuilt from the store.
pub async fn state_after(
    store: &dyn Store,
    key: &str,
    commit_version: u64,
    event: &Event,
) -> Result<Conference, HistoryError> {
    // Read up to the whole commit, and keep the events up to this one's own version.
    let history = store
        .conference_history(key, commit_version.max(event.version))
        .await?;
    let (mut state, starts_after) = match history.base {
        Some(base) => {
            let state: Conference =
                serde_json::from_value(base.state).map_err(|source| HistoryError::Corrupt {
                    conference: key.to_owned(),
                    seq: 0,
                    source,
                })?;
            (Some(state), base.version)
        }
        None => (None, 0),
    };
    if event.version <= starts_after {
        return Err(HistoryError::Pruned {
            conference: key.to_owned(),
            version: event.version,
            starts_after,
        });
    }
    for stored in &history.events {
        let earlier = parse_event(stored)?;
        if earlier.version > starts_after && earlier.version <= event.version {
            state = Some(
                apply(state, &earlier).map_err(|source| HistoryError::Replay {
                    conference: key.to_owned(),
                    source,
                })?,
            );
        }
    }
    match state {
        Some(state) if state.version == event.version => Ok(state),
        // The event itself is not in the conference's log (or the log stops short of it).
        _ => Err(HistoryError::Replay {
            conference: key.to_owned(),
            source: DomainError::EventDoesNotApply {
                id: event.conference_id.clone(),
                version: event.version,
                reason: "the conference's log has no event at this version".into(),
            },
        }),
    }
}
