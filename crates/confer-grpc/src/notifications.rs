//! `confer.v1.NotificationService.Subscribe`: the caller's notifications, read from the event log.
//!
//! The log is the single source: the stream tails it with a cursor (the seq of the last event
//! handled), so what it delivers is in commit order and nothing committed after the cursor can be
//! skipped; the store's wake-ups only say when to look again. For each event the stream rebuilds
//! the conference as it was right after it (kept per conference and advanced event by event), asks
//! `confer_core::recipients` who must be told what, keeps the caller's part, and renders it with
//! the caller's views at that same state: what GWS CometD and Evo show, from the same rule.

use std::{
    collections::HashMap,
    pin::Pin,
    sync::Arc,
    time::{Duration, Instant},
};

use confer_core::{Actor, Audience, Change, Conference, Event, apply, recipients};
use confer_model::proto::{self, notification::Payload};
use confer_store::StoredEvent;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::{
    api::Api,
    error::ApiError,
    generated::services::notification_service_server::NotificationService,
    render::{self, Urls},
    request::{authenticate, budget, timeout_of, within_deadline},
};

/// Events read from the log at once.
const BATCH: u32 = 256;
/// How often an idle stream re-reads the log without a wake-up (the store asks readers to, as
/// wake-ups are only hints).
const POLL: Duration = Duration::from_secs(1);
/// Conferences whose state a stream keeps between events; past this, the states are dropped and
/// rebuilt from the log when needed.
const CACHED_CONFERENCES: usize = 1024;

/// The caller's side of the log: who they are, and the conference states seen so far.
struct Feed {
    app: Arc<confer_app::App>,
    urls: Urls,
    actor: Actor,
    states: HashMap<String, Conference>,
}

impl Feed {
    /// The conference right after `event`.
    async fn state_after(
        &mut self,
        stored: &StoredEvent,
        event: &Event,
    ) -> Result<Conference, ApiError> {
        // Keyed as stored: sessions of two accounts may share an id.
        let id = stored.conference_id.as_str();
        let known = self
            .states
            .remove(id)
            .filter(|state| state.version + 1 == event.version)
            // The first event of a commit this node made: the engine kept what it decided on.
            .or_else(|| self.app.engine.cache().state_before(id, event.version));
        let after = match known {
            Some(before) => apply(Some(before), event)?,
            None if event.version == 1 => apply(None, event)?,
            // First sight of this conference mid-log (or a gap): rebuild it from the store.
            None => {
                confer_app::history::state_after(
                    self.app.store.as_ref(),
                    id,
                    stored.conference_version,
                    event,
                )
                .await?
            }
        };
        if self.states.len() >= CACHED_CONFERENCES {
            self.states.clear();
        }
        self.states.insert(id.to_owned(), after.clone());
        Ok(after)
    }

    /// The caller's notifications for one stored event, in order.
    async fn notifications(
        &mut self,
        stored: &StoredEvent,
    ) -> Result<Vec<proto::Notification>, ApiError> {
        let event = parse_event(stored)?;
        let after = self.state_after(stored, &event).await?;
        let mut changes: Vec<Change> = Vec::new();
        for recipient in recipients(&event, &after) {
            let mine = match &recipient.audience {
                Audience::User(user) => *user == self.actor.user_id,
                Audience::Account(account) => self.actor.is_evo_user_in(account),
                // A chat's customer is not a user: never a gRPC caller.
                Audience::Customer(_) => false,
            };
            if mine {
                for change in recipient.changes {
                    if !changes.contains(&change) {
                        changes.push(change);
                    }
                }
            }
        }
        let payloads: Vec<Payload> = changes
            .iter()
            .filter_map(|change| self.render(&after, &event, change))
            .collect();
        let count = payloads.len();
        Ok(payloads
            .into_iter()
            .enumerate()
            .map(|(part, payload)| proto::Notification {
                seq: stored.seq,
                part: u32::try_from(part).unwrap_or(u32::MAX),
                last_in_seq: part + 1 == count,
                // The id callers know (a session's own, not its store key).
                conference_id: event.conference_id.to_string(),
                committed_at_ms: stored.committed_at_ms,
                payload: Some(payload),
            })
            .collect())
    }

    fn render(&self, after: &Conference, event: &Event, change: &Change) -> Option<Payload> {
        let user = &self.actor.user_id;
        match change {
            Change::CallStatusChanged => render::call_notification(
                after,
                &self.actor,
                &self.urls,
                event.occurred_at,
                "StatusChange",
            )
            .map(Payload::Call),
            Change::CallParticipantsUpdated => render::call_notification(
                after,
                &self.actor,
                &self.urls,
                event.occurred_at,
                "ParticipantsUpdated",
            )
            .map(Payload::Call),
            Change::ChatStatusChanged => {
                render::chat_notification(after, user, &self.urls, "StatusChange")
                    .map(Payload::Chat)
            }
            Change::ChatParticipantsUpdated => {
                render::chat_notification(after, user, &self.urls, "ParticipantsUpdated")
                    .map(Payload::Chat)
            }
            Change::ChatNewMessages { indices } => {
                render::chat_messages_notification(after, user, &self.urls, indices)
                    .map(Payload::ChatMessages)
            }
            Change::SessionUpdated => render::session(after).map(Payload::Session),
        }
    }
}

fn parse_event(stored: &StoredEvent) -> Result<Event, ApiError> {
    Ok(confer_app::history::parse_event(stored)?)
}

/// Counts the stream in `confer_notification_subscribers` while it is open; dropping the stream
/// (the caller went away, or cancelled) uncounts it.
struct Open(Arc<confer_app::App>);

impl Open {
    fn new(app: Arc<confer_app::App>) -> Self {
        app.metrics.notification_subscribers.inc();
        Self(app)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.metrics.notification_subscribers.dec();
    }
}

type NotificationStream = Pin<Box<dyn Stream<Item = Result<proto::Notification, Status>> + Send>>;

#[tonic::async_trait]
impl NotificationService for Api {
    type SubscribeStream = NotificationStream;

    async fn subscribe(
        &self,
        request: Request<proto::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let received = Instant::now();
        let (metadata, _, message) = request.into_parts();
        let deadline = timeout_of(&metadata).map(|timeout| received + budget(timeout));
        let (actor, revision, start) = within_deadline(&metadata, async {
            let actor = authenticate(&self.app, &metadata).await?;
            // Read right after the credentials verified: the stream lives as long as they do.
            let revision = self
                .app
                .auth
                .current_revision(actor.user_id.as_str())
                .await?
                .ok_or(confer_app::auth::AuthError::Invalid)?;
            let start = match message.after_seq {
                Some(seq) => seq,
                None => self.app.store.head_seq().await?,
            };
            Ok::<_, ApiError>((actor, revision, start))
        })
        .await?;
        let feed = Feed {
            app: self.app.clone(),
            urls: self.urls.clone(),
            actor,
            states: HashMap::new(),
        };
        Ok(Response::new(Box::pin(stream(
            feed,
            revision,
            start,
            deadline,
            self.stopping.clone(),
        ))))
    }
}

/// The stream itself: read after the cursor, deliver, wait for more; end on the deadline, when the
/// server stops, or when the caller's credentials end (password changed, user disabled or
/// removed: UNAUTHENTICATED, checked at least every [`POLL`], seen within
/// `confer_app::auth::USER_CACHE_TTL` of the change on any node). Dropped as soon as the caller
/// cancels (nothing runs on its own).
fn stream(
    mut feed: Feed,
    revision: u64,
    mut cursor: u64,
    deadline: Option<Instant>,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) -> impl Stream<Item = Result<proto::Notification, Status>> + Send {
    async_stream::try_stream! {
        let _open = Open::new(feed.app.clone());
        let mut wakeups = feed.app.store.subscribe_wakeups();
        let deadline = deadline.map(tokio::time::Instant::from_std);
        loop {
            if *stopping.borrow() {
                Err(Status::from(ApiError::ShuttingDown))?;
            }
            if deadline.is_some_and(|at| tokio::time::Instant::now() >= at) {
                Err(Status::from(ApiError::DeadlineExceeded))?;
            }
            let current = feed
                .app
                .auth
                .is_current(feed.actor.user_id.as_str(), revision)
                .await
                .map_err(|error| Status::from(ApiError::from(error)))?;
            if !current {
                Err(Status::from(ApiError::Auth(confer_app::auth::AuthError::Invalid)))?;
            }
            // Marks the current wake-up as seen before reading, so a commit after the read wakes
            // the wait below.
            wakeups.borrow_and_update();
            let events = feed
                .app
                .store
                .read_events(cursor, BATCH)
                .await
                .map_err(|error| Status::from(ApiError::from(error)))?;
            if events.is_empty() {
                // Nothing after the cursor while the head is past it: pruned (the head is read
                // first, so what it counts was committed before the second read). Only asked
                // when the wake-up hint says the head is past the cursor: a stream that is
                // caught up costs no extra query per poll.
                let store = &feed.app.store;
                let hinted = *wakeups.borrow() > cursor;
                let head = if hinted {
                    store.head_seq().await.map_err(|error| Status::from(ApiError::from(error)))?
                } else {
                    cursor
                };
                if head > cursor
                    && store.read_events(cursor, 1).await.map_err(|error| Status::from(ApiError::from(error)))?.is_empty()
                {
                    Err(Status::from(ApiError::Pruned {
                        after_seq: cursor,
                        oldest: head + 1,
                    }))?;
                }
                let deadline_passed = async {
                    match deadline {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                };
                // `?` cannot be used inside `select!` (the stream macro does not see into it), so
                // the wait says what happened and the loop acts on it.
                let server_gone = tokio::select! {
                    woken = wakeups.changed() => {
                        // The store dropped its sender (it is closing): poll until told to stop.
                        if woken.is_err() {
                            tokio::time::sleep(POLL).await;
                        }
                        false
                    }
                    told = stopping.changed() => told.is_err(),
                    () = tokio::time::sleep(POLL) => false,
                    () = deadline_passed => false,
                };
                if server_gone {
                    Err(Status::from(ApiError::ShuttingDown))?;
                }
                continue;
            }
            // The log's only gaps are the events retention pruned, all older than its window: a missing seq means the
            // caller resumed from further back than the log keeps.
            if let Some(first) = events.first()
                && first.seq > cursor + 1
            {
                Err(Status::from(ApiError::Pruned {
                    after_seq: cursor,
                    oldest: first.seq,
                }))?;
            }
            for stored in events {
                let notifications = feed
                    .notifications(&stored)
                    .await
                    .map_err(Status::from)?;
                for notification in notifications {
                    let lag_ms = confer_app::engine::now().millis() - notification.committed_at_ms;
                    feed.app
                        .metrics
                        .observe_delivery_lag(Duration::from_millis(u64::try_from(lag_ms).unwrap_or(0)));
                    yield notification;
                }
                cursor = stored.seq;
            }
        }
    }
}
