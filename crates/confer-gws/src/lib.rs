//! The Genesys Web Services dialect: `/api/v2/me/...` voice and chat REST, and CometD
//! notifications at `/api/v2/notifications`.
//!
//! * [`rest`]: the REST routes (user, calls, chats, devices and their operations), behind
//!   [`auth`] (HTTP Basic, the `JSESSIONID` session cookie, CSRF).
//! * [`cometd`]: the `bayeux` server with GWS's handshake authentication and channel rules.
//! * [`feed`]: the notification log, derived from the store's event log and rendered per user
//!   with [`render`]; deterministic seqs so that any node can serve any session.
//! * [`error`]: the one table from every failure to GWS `statusCode` and HTTP status.
//!
//! Operator documentation (curl commands, the table, how CometD authentication works):
//! `docs/gws.md`.

pub mod auth;
pub mod cometd;
pub mod directory;
pub mod error;
pub mod feed;
mod ids;
pub use confer_render::gws as render;
pub mod rest;
pub mod wire;

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use anyhow::Context;
use axum::Router;
use bayeux::ShutdownMode;
use confer_app::App;
use tokio::{sync::watch, task::JoinHandle};

use crate::{
    cometd::{GwsCometd, NOTIFICATIONS_PATH},
    directory::Directory,
    feed::{Feed, Renderer},
    render::Urls,
    rest::Rest,
};

/// The GWS dialect of one server: its routes and its background work.
pub struct GwsDialect {
    rest: Arc<Rest>,
    cometd: GwsCometd,
    feed: Feed,
    stop: watch::Sender<bool>,
    tailer: Mutex<Option<JoinHandle<()>>>,
    sampler: Mutex<Option<JoinHandle<()>>>,
    refresher: Mutex<Option<JoinHandle<()>>>,
    revocations: Mutex<Option<JoinHandle<()>>>,
}

impl GwsDialect {
    /// Starts what the dialect runs in the background: the notification feed (following the
    /// event log from its current head), the CometD server and its metrics sampler.
    pub async fn start(app: Arc<App>) -> anyhow::Result<Self> {
        let directory = Arc::new(Directory::new(app.store.clone()));
        let urls = Urls::new(app.public_url());
        let renderer = Renderer::new(app.store.clone(), directory.clone(), urls.clone())
            .with_cache(app.engine.cache().clone());
        let (feed, tailer) = Feed::start(renderer)
            .await
            .context("reading the event log head")?;
        let cometd = cometd::server(app.clone(), feed.clone());
        let (stop, stopped) = watch::channel(false);
        let refresher = cometd::spawn_session_refresher(&app, cometd.clone(), stopped.clone());
        let revocations =
            cometd::spawn_revocation_watcher(app.clone(), cometd.clone(), stopped.clone());
        let sampler = cometd::spawn_metrics_sampler(app.clone(), cometd.clone(), stopped);
        Ok(Self {
            rest: Arc::new(Rest {
                app,
                directory,
                urls,
            }),
            cometd,
            feed,
            stop,
            tailer: Mutex::new(Some(tailer)),
            sampler: Mutex::new(Some(sampler)),
            refresher: Mutex::new(refresher),
            revocations: Mutex::new(Some(revocations)),
        })
    }

    /// The dialect's REST and CometD routes.
    pub fn router(&self) -> Router {
        rest::router(self.rest.clone()).merge(bayeux::axum::router_at(
            NOTIFICATIONS_PATH,
            self.cometd.clone(),
        ))
    }

    /// The CometD server (for its counters).
    pub fn cometd(&self) -> &GwsCometd {
        &self.cometd
    }

    /// The notification feed.
    pub fn feed(&self) -> &Feed {
        &self.feed
    }

    /// Ends this node's part in the notification sessions and stops the background tasks; called
    /// when the server stops. On a shared store (PostgreSQL) the sessions live on: held connects
    /// are answered `reconnect: retry` and the clients continue on another node. With the
    /// embedded store the sessions die with the node, so clients are told not to retry here.
    pub async fn shutdown(&self) {
        let mode = if self.rest.app.config.database_url.is_some() {
            ShutdownMode::Handover
        } else {
            ShutdownMode::Close
        };
        self.cometd.shutdown(mode).await;
        let _ = self.stop.send(true);
        let take = |slot: &Mutex<Option<JoinHandle<()>>>| {
            slot.lock().unwrap_or_else(PoisonError::into_inner).take()
        };
        // The tailer follows the log forever; the sampler ends on the stop signal, after taking
        // this node's sessions out of the subscriber gauge.
        if let Some(tailer) = take(&self.tailer) {
            tailer.abort();
        }
        if let Some(refresher) = take(&self.refresher) {
            refresher.abort();
        }
        if let Some(revocations) = take(&self.revocations) {
            revocations.abort();
        }
        if let Some(sampler) = take(&self.sampler) {
            let abort = sampler.abort_handle();
            if tokio::time::timeout(Duration::from_secs(1), sampler)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}
