//! Bounded disk: what the store no longer needs is deleted in the background, a small page at
//! a time so that commits run between pages (on SQLite a page is one job of the writer thread;
//! on PostgreSQL one short statement):
//!
//! * idempotency records once their 24 h are over (a replay would not find them anyway);
//! * a conference's events once it has not changed for `--event-retention-secs`; its state
//!   then is kept as the base of its later events ([`confer_store::Store::prune_history`]), so
//!   the feeds can still rebuild it, and a notification client resuming from further back is
//!   told it fell behind (CometD `402::messages_lost`, gRPC `OUT_OF_RANGE`);
//! * ended conferences, with their events, once they have not changed for
//!   `--ended-conference-retention-secs`.
//!
//! Every node runs the pruner: each page is idempotent and safe against concurrent commits and
//! other nodes' pruners (the store's guarantees), so nothing needs electing.

use std::sync::Arc;
use std::time::Duration;

use confer_store::{Store, StoreError};

use crate::App;
use crate::config::Retention;
use crate::engine;

/// How often the pruner runs at most; more often with a retention shorter than four times this.
pub const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Records (events looked at, conferences deleted) in one store call: on SQLite a page is one
/// job of the writer thread, which holds the commits queued behind it while it runs.
const PAGE: u32 = 32;

/// After each page the pruner rests as long as the page took: it never takes more than half of
/// the store's write time, so commits are held by at most one page at a time, even during a
/// large first prune (a million events after an upgrade or a long pause).
async fn rest_after(page_started: std::time::Instant) {
    tokio::time::sleep(page_started.elapsed()).await;
}

/// What one pruning round deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub idempotency_records: u64,
    pub events: u64,
    pub ended_conferences: u64,
}

/// Deletes every idempotency record expired at `now_ms`, a page at a time so that commits run
/// between pages; returns how many.
pub async fn purge_expired_idempotency(
    store: &dyn Store,
    now_ms: i64,
    page: u32,
) -> Result<u64, StoreError> {
    let mut purged = 0;
    loop {
        let started = std::time::Instant::now();
        let deleted = store.purge_expired(now_ms, page).await?;
        purged += deleted;
        if deleted < u64::from(page) {
            return Ok(purged);
        }
        rest_after(started).await;
    }
}

/// One pruning round at `now_ms` with these retention windows.
pub async fn prune(
    store: &dyn Store,
    retention: Retention,
    now_ms: i64,
) -> Result<Pruned, StoreError> {
    let before = |window: Duration| {
        now_ms.saturating_sub(i64::try_from(window.as_millis()).unwrap_or(i64::MAX))
    };
    let mut pruned = Pruned {
        idempotency_records: purge_expired_idempotency(store, now_ms, PAGE).await?,
        ..Pruned::default()
    };
    let unchanged_before = before(retention.events);
    let mut cursor = 0;
    loop {
        let started = std::time::Instant::now();
        let page = store.prune_history(unchanged_before, cursor, PAGE).await?;
        pruned.events += page.events;
        match page.scanned_to {
            Some(seq) => cursor = seq,
            None => break,
        }
        rest_after(started).await;
    }
    let ended_before = before(retention.ended_conferences);
    loop {
        let started = std::time::Instant::now();
        let deleted = store.prune_ended(ended_before, PAGE).await?;
        pruned.ended_conferences += deleted;
        if deleted < u64::from(PAGE) {
            break;
        }
        rest_after(started).await;
    }
    Ok(pruned)
}

/// How often to prune with these windows: a window is overshot by at most a quarter of it.
pub fn period(retention: Retention) -> Duration {
    (retention.events.min(retention.ended_conferences) / 4)
        .clamp(Duration::from_millis(250), PRUNE_EVERY)
}

/// Prunes every [`period`], for as long as the app lives.
pub(crate) fn spawn_pruner(app: &Arc<App>) {
    let weak = Arc::downgrade(app);
    let retention = app.config.retention;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period(retention));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(app) = weak.upgrade() else { return };
            match prune(app.store.as_ref(), retention, engine::now().millis()).await {
                Ok(pruned) => {
                    app.metrics.pruned_events.inc_by(pruned.events);
                    app.metrics
                        .pruned_conferences
                        .inc_by(pruned.ended_conferences);
                    if pruned != Pruned::default() {
                        tracing::debug!(?pruned, "retention pruned the store");
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "retention cannot prune the store; trying again later")
                }
            }
        }
    });
}
