//! The broadcast workload of the peer comparison: one publisher (a Bayeux client publishing
//! to one channel at a fixed rate and size), N subscribers of that channel, all on one
//! transport, all in this process, measured the same way whatever the server.
//!
//! Each message carries its sequence number and its send time on this process's monotonic
//! clock; each subscriber records the delay of every message from its send to its receipt,
//! and checks it gets every message once, in order (a gap is a lost message, a repeat a
//! duplicate). After the publisher is done the subscribers get a bounded drain time; what has
//! not arrived by then counts as lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use tokio::sync::watch;

use crate::client::{BenchData, Endpoint, Incoming, Schedule, Session, Transport, publish};
use crate::fleet::{Fleet, Receiver};
use crate::hist::Histogram;

/// The channel everything is published on.
pub const CHANNEL: &str = "/bench/broadcast";
/// How long every subscriber's first connect may take to be answered.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

/// One run's settings.
#[derive(Debug, Clone)]
pub struct Workload {
    pub transport: Transport,
    pub subscribers: usize,
    /// Messages per second the publisher sends.
    pub rate: f64,
    /// Bytes of JSON in each message's `data`.
    pub size: usize,
    /// How long the publisher publishes.
    pub duration: Duration,
    /// The first part of `duration` whose messages are delivered but not measured (connection
    /// pools, JIT, caches warming up).
    pub warmup: Duration,
    /// How long subscribers may take to receive everything after the last publish.
    pub drain: Duration,
    /// The server's process, whose CPU time is read over the publish-and-drain window.
    pub server_pid: Option<u32>,
}

/// What one run measured.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Messages published (and acknowledged).
    pub published: u64,
    pub publish_acked: u64,
    pub publish_refused: u64,
    /// Deliveries expected of the measured messages (measured messages x subscribers).
    pub expected: u64,
    /// Deliveries of the measured messages that arrived.
    pub delivered: u64,
    /// Deliveries of any message, warm-up included.
    pub delivered_total: u64,
    /// Measured deliveries that never arrived (gaps, or missing at the end of the drain).
    pub lost: u64,
    /// Deliveries of a message a subscriber already had, or out of order.
    pub duplicates: u64,
    /// Measured deliveries per second: from the first to the last receipt of a measured
    /// message.
    pub delivered_per_s: f64,
    /// What the publisher offered, in deliveries per second (rate x subscribers).
    pub offered_per_s: f64,
    /// Send-to-receipt delay of the measured deliveries, microseconds.
    pub delay: Histogram,
    /// Subscribers whose session ended or failed before the end, with the first reason.
    pub sessions_failed: usize,
    pub first_failure: Option<String>,
    /// How long the run took (publish + drain).
    pub elapsed: Duration,
    /// CPU seconds the server used from the first publish to the end of the drain.
    pub server_cpu_s: Option<f64>,
    /// CPU seconds this process (the load client) used over the same window.
    pub client_cpu_s: Option<f64>,
}

impl Outcome {
    /// Whether the server kept up: everything arrived, nothing lost or duplicated, and the
    /// deliveries came at (nearly) the offered rate.
    pub fn kept_up(&self) -> bool {
        self.lost == 0
            && self.duplicates == 0
            && self.sessions_failed == 0
            && self.delivered_per_s >= 0.9 * self.offered_per_s
    }
}

/// One subscriber's tally.
struct Tally {
    epoch: Instant,
    warmup_count: u64,
    last_seq: u64,
    complete: Arc<AtomicUsize>,
    next: u64,
    delay: Histogram,
    delivered: u64,
    delivered_total: u64,
    lost: u64,
    duplicates: u64,
    first_receipt_us: u64,
    last_receipt_us: u64,
}

impl Receiver for Tally {
    type Out = Tally;

    fn on_data(&mut self, m: &Incoming<'_>, received: Instant) {
        if m.channel != CHANNEL {
            return;
        }
        let Some(Ok(d)) = m
            .data
            .map(|raw| serde_json::from_str::<BenchData>(raw.get()))
        else {
            return;
        };
        let received_us = received.duration_since(self.epoch).as_micros() as u64;
        self.delivered_total += 1;
        if d.s < self.next {
            self.duplicates += 1;
            return;
        }
        if d.s > self.next {
            // Skipped messages are lost (only the measured ones count).
            self.lost += d.s.max(self.warmup_count) - self.next.max(self.warmup_count);
        }
        self.next = d.s + 1;
        if d.s >= self.warmup_count {
            self.delivered += 1;
            self.delay.record(received_us.saturating_sub(d.t));
            self.first_receipt_us = self.first_receipt_us.min(received_us);
            self.last_receipt_us = self.last_receipt_us.max(received_us);
        }
        if d.s == self.last_seq {
            self.complete.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn finish(mut self) -> Tally {
        // Whatever did not arrive by the end is lost.
        if self.next <= self.last_seq {
            self.lost +=
                (self.last_seq + 1).max(self.warmup_count) - self.next.max(self.warmup_count);
        }
        self
    }
}

/// Runs the workload against `endpoint`.
pub async fn run(endpoint: &Endpoint, w: &Workload) -> anyhow::Result<Outcome> {
    if w.subscribers == 0 || w.rate <= 0.0 || w.duration.is_zero() {
        bail!("a workload needs subscribers, a rate and a duration");
    }
    let count = ((w.rate * w.duration.as_secs_f64()).round() as u64).max(1);
    let warmup_count = ((w.rate * w.warmup.as_secs_f64()).round() as u64).min(count - 1);
    let last_seq = count - 1;
    let epoch = Instant::now();
    let complete = Arc::new(AtomicUsize::new(0));

    let fleet = Fleet::open(
        w.subscribers,
        |_| async {
            let mut s = Session::open(endpoint, w.transport).await?;
            s.subscribe(CHANNEL).await?;
            anyhow::Ok(s)
        },
        |_| Tally {
            epoch,
            warmup_count,
            last_seq,
            complete: complete.clone(),
            next: 0,
            delay: Histogram::new(),
            delivered: 0,
            delivered_total: 0,
            lost: 0,
            duplicates: 0,
            first_receipt_us: u64::MAX,
            last_receipt_us: 0,
        },
    )
    .await?;
    if !fleet.wait_connected(SETTLE_TIMEOUT).await {
        let _ = fleet.stop_and_join().await;
        bail!("the subscribers' first connects were not all answered within {SETTLE_TIMEOUT:?}");
    }
    let publisher = match Session::open(endpoint, w.transport).await {
        Ok(p) => p,
        Err(e) => {
            let _ = fleet.stop_and_join().await;
            return Err(anyhow::Error::from(e).context("publisher"));
        }
    };

    let schedule = Schedule {
        channel: CHANNEL.to_owned(),
        rate: w.rate,
        count,
        size: w.size,
        epoch,
    };
    let cpu_before = (
        w.server_pid.and_then(crate::procs::cpu_seconds),
        crate::procs::own_cpu_seconds(),
    );
    // The publisher stops by itself once it has sent everything; the stop signal bounds it
    // if the server stops acknowledging.
    let (pub_stop_tx, pub_stop_rx) = watch::channel(false);
    let mut publisher = tokio::spawn(publish(publisher, schedule, pub_stop_rx));
    // On schedule the publisher takes `duration`; a server that answers publishes slowly
    // (long-polling waits for each reply) slows it down, bounded here.
    let publish_limit = w.duration.mul_f64(2.0) + w.drain;
    let published = tokio::select! {
        joined = &mut publisher => joined,
        () = tokio::time::sleep(publish_limit) => {
            let _ = pub_stop_tx.send(true);
            publisher.await
        }
    };
    let published = match published {
        Ok(p) => p,
        Err(e) => {
            let _ = fleet.stop_and_join().await;
            bail!("publisher task: {e}");
        }
    };
    let n = fleet.len();
    crate::procs::wait_until(w.drain, || complete.load(Ordering::Relaxed) >= n).await;
    let elapsed = epoch.elapsed();
    let server_cpu_s = match (
        cpu_before.0,
        w.server_pid.and_then(crate::procs::cpu_seconds),
    ) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let client_cpu_s = match (cpu_before.1, crate::procs::own_cpu_seconds()) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };

    let mut out = Outcome {
        published: published.sent,
        publish_acked: published.acked,
        publish_refused: published.refused,
        offered_per_s: w.rate * n as f64,
        elapsed,
        server_cpu_s,
        client_cpu_s,
        ..Outcome::default()
    };
    let (mut first_receipt_us, mut last_receipt_us) = (u64::MAX, 0);
    for (t, failure) in fleet.stop_and_join().await? {
        out.delay.merge(&t.delay);
        out.delivered += t.delivered;
        out.delivered_total += t.delivered_total;
        out.lost += t.lost;
        out.duplicates += t.duplicates;
        first_receipt_us = first_receipt_us.min(t.first_receipt_us);
        last_receipt_us = last_receipt_us.max(t.last_receipt_us);
        if let Some(f) = failure {
            out.sessions_failed += 1;
            out.first_failure.get_or_insert(f);
        }
    }
    if let Some(e) = published.error {
        out.first_failure.get_or_insert(format!("publisher: {e}"));
    }
    let measured = published.sent.saturating_sub(warmup_count);
    out.expected = measured * n as u64;
    // Throughput over the receipts of the measured messages: a constant delay shifts the window
    // without shrinking it, a server falling behind stretches it.
    if last_receipt_us > first_receipt_us {
        out.delivered_per_s =
            out.delivered as f64 / ((last_receipt_us - first_receipt_us) as f64 / 1e6);
    }
    Ok(out)
}
