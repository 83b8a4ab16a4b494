//! Many subscriber sessions at once: each is opened (handshake, subscribe) and its connect loop
//! started right away, a bounded number of openings at a time. Starting each loop as soon as its
//! session exists matters: a server expires a session that does not connect within its
//! `maxInterval` (10 s), and opening 10,000 sessions takes longer than that.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::client::{Incoming, LoopEnd, Session};

/// Sessions opened at once while setting up (bounded, so the server is not flooded with
/// handshakes while earlier sessions are already measured or idle).
pub const OPEN_CONCURRENCY: usize = 64;

/// What a subscriber does with what it receives; its tally comes back when it stops.
pub trait Receiver: Send + 'static {
    type Out: Send + 'static;
    fn on_data(&mut self, message: &Incoming<'_>, received: Instant);
    fn finish(self) -> Self::Out;
}

/// A receiver that ignores everything (idle sessions).
pub struct Ignore;

impl Receiver for Ignore {
    type Out = ();
    fn on_data(&mut self, _: &Incoming<'_>, _: Instant) {}
    fn finish(self) {}
}

/// Running subscriber sessions.
pub struct Fleet<O> {
    tasks: Vec<JoinHandle<(O, Option<String>)>>,
    stop: watch::Sender<bool>,
    connect_replies: Arc<AtomicUsize>,
}

/// How often opening one session is tried again before the fleet gives up.
const OPEN_ATTEMPTS: usize = 10;

impl<O: Send + 'static> Fleet<O> {
    /// Opens `n` sessions with `open(i)` and runs each with `make(i)`. Fails (stopping the
    /// ones already running) if any session cannot be opened.
    pub async fn open<F, Fut, R>(
        n: usize,
        open: F,
        make: impl Fn(usize) -> R,
    ) -> anyhow::Result<Fleet<O>>
    where
        F: Fn(usize) -> Fut,
        Fut: Future<Output = anyhow::Result<Session>>,
        R: Receiver<Out = O>,
    {
        let (stop, stop_rx) = watch::channel(false);
        let connect_replies = Arc::new(AtomicUsize::new(0));
        let mut fleet = Fleet {
            tasks: Vec::with_capacity(n),
            stop,
            connect_replies,
        };
        let mut opened = futures_util::stream::iter(0..n)
            .map(|i| {
                let open = &open;
                async move {
                    // A server that is busy verifying the fleet's passwords answers some opens
                    // with "try again" (HTTP 503, advice `retry`): a client waits and does.
                    let mut attempt = 0;
                    loop {
                        match open(i).await {
                            Err(_) if attempt < OPEN_ATTEMPTS => {
                                attempt += 1;
                                tokio::time::sleep(std::time::Duration::from_millis(
                                    500 + 97 * (i as u64 % 10),
                                ))
                                .await;
                            }
                            result => return (i, result),
                        }
                    }
                }
            })
            .buffer_unordered(OPEN_CONCURRENCY);
        while let Some((i, result)) = opened.next().await {
            let mut session = match result {
                Ok(s) => s,
                Err(e) => {
                    drop(opened);
                    let _ = fleet.stop_and_join().await;
                    return Err(e.context(format!("opening session {i}")));
                }
            };
            session.count_connects(fleet.connect_replies.clone());
            let mut receiver = make(i);
            let stop = stop_rx.clone();
            fleet.tasks.push(tokio::spawn(async move {
                let (_, end) = session.run(stop, |m, at| receiver.on_data(m, at)).await;
                let failure = match end {
                    LoopEnd::Stopped => None,
                    LoopEnd::Ended(why) => Some(why),
                    LoopEnd::Failed(e) => Some(e.to_string()),
                };
                (receiver.finish(), failure)
            }));
        }
        Ok(fleet)
    }

    /// Sessions in the fleet.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Waits (at most `within`) until every session has had a connect reply, i.e. its first
    /// connect was answered and the next one is held: the fleet is in its steady state.
    pub async fn wait_connected(&self, within: Duration) -> bool {
        let n = self.tasks.len();
        crate::procs::wait_until(within, || self.connect_replies.load(Ordering::Relaxed) >= n).await
    }

    /// Stops every connect loop and returns each session's tally and why it ended early (if it
    /// did).
    pub async fn stop_and_join(self) -> anyhow::Result<Vec<(O, Option<String>)>> {
        let _ = self.stop.send(true);
        let mut out = Vec::with_capacity(self.tasks.len());
        for t in self.tasks {
            // A task that panicked is a bug in this crate: an error, not a figure.
            out.push(
                t.await
                    .map_err(|e| anyhow::anyhow!("subscriber task failed: {e}"))?,
            );
        }
        Ok(out)
    }
}
