//! Notification delivery of `confer serve`: N GWS agents, each a CometD subscriber of
//! `/v2/me/calls` logged in as itself (HTTP Basic on the handshake), receive the notifications
//! of their own calls while a removal driver takes a party out of those calls over REST
//! (`RemoveParticipantFromConference`) at a fixed rate.
//!
//! The delay measured is from the moment the removal's HTTP reply reached the driver to the
//! moment the owner's subscriber received the notification (both on this process's monotonic
//! clock). A notification can arrive before the reply does (the server commits, then answers
//! and notifies concurrently): its delay is 0, and how many did so is reported. The delay from
//! sending the request is reported beside it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use confer_bench::preload::{PreloadedAgent, PreloadedCall};
use confer_bench::workload::{GwsSession, login_all, rest_removal};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::client::{Endpoint, HttpLane, Incoming, Session, Transport};
use crate::fleet::{Fleet, Ignore, Receiver};
use crate::hist::Histogram;

/// Where GWS serves CometD.
pub const NOTIFICATIONS_PATH: &str = "/api/v2/notifications";
/// The channel of call notifications.
pub const CALLS_CHANNEL: &str = "/v2/me/calls";
/// Keep-alive connections of the removal driver (requests in flight at most).
const DRIVER_CONNECTIONS: usize = 32;

/// One delivery run.
#[derive(Debug, Clone)]
pub struct DeliveryRun {
    pub transport: Transport,
    /// Subscribers: the first `subscribers` agents of the preload, one session each.
    pub subscribers: usize,
    /// Removals per second.
    pub rate: f64,
    /// Removals in all (each on a distinct call of a subscribed agent).
    pub removals: usize,
    /// How long notifications may take to arrive after the last removal's reply.
    pub drain: Duration,
}

/// What a run measured.
#[derive(Debug, Default)]
pub struct DeliveryOutcome {
    pub removals_ok: u64,
    pub removals_failed: u64,
    pub first_removal_error: Option<String>,
    /// Notifications of removed calls received by their owners.
    pub delivered: u64,
    /// Successful removals whose notification never arrived.
    pub missing: u64,
    /// Notifications beyond the first for a removed call, or for a call never removed.
    pub extra: u64,
    /// Notifications that arrived before the removal's HTTP reply.
    pub before_reply: u64,
    /// Reply → receipt, microseconds (0 when the notification came first).
    pub delay_from_reply: Histogram,
    /// Request sent → receipt, microseconds.
    pub delay_from_request: Histogram,
    /// Removal request → reply, microseconds.
    pub removal_latency: Histogram,
    /// Notifications per second: delivered / (last receipt - first request).
    pub delivered_per_s: f64,
    /// Removals per second actually achieved.
    pub removals_per_s: f64,
    pub sessions_failed: usize,
    pub first_session_failure: Option<String>,
    /// How long opening the subscribers took.
    pub setup: Duration,
}

/// The part of a call notification the subscriber looks at.
#[derive(Deserialize)]
struct Notification {
    call: Option<CallRef>,
}

#[derive(Deserialize)]
struct CallRef {
    id: String,
}

/// Which calls a run removes: the `k`-th removal takes call `k / subscribers` of agent
/// `k % subscribers`, so removals go round the subscribed agents and no call is used twice.
pub fn plan(
    agents: &[PreloadedAgent],
    subscribers: usize,
    removals: usize,
) -> Vec<(usize, &PreloadedCall)> {
    let mut out = Vec::with_capacity(removals);
    for k in 0..removals {
        let agent = k % subscribers;
        let Some(call) = agents.get(agent).and_then(|a| a.calls.get(k / subscribers)) else {
            break;
        };
        out.push((agent, call));
    }
    out
}

/// Opens one subscriber of `/v2/me/calls` per agent (authenticated as that agent) and runs
/// each with `make(i)`.
pub async fn open_agents<R: Receiver>(
    rest: SocketAddr,
    agents: &[PreloadedAgent],
    transport: Transport,
    make: impl Fn(usize) -> R,
) -> anyhow::Result<Fleet<R::Out>> {
    Fleet::open(
        agents.len(),
        |i| {
            let agent = &agents[i];
            async move {
                let endpoint = Endpoint::new(rest, NOTIFICATIONS_PATH)
                    .with_basic(&agent.username, &agent.password);
                let mut s = Session::open(&endpoint, transport)
                    .await
                    .with_context(|| format!("handshake of {}", agent.username))?;
                s.subscribe(CALLS_CHANNEL)
                    .await
                    .with_context(|| format!("subscribe of {}", agent.username))?;
                Ok(s)
            }
        },
        make,
    )
    .await
}

/// A subscriber's receipts: call id and when its notification arrived.
struct Receipts {
    list: Vec<(String, Instant)>,
    received: Arc<AtomicU64>,
}

impl Receiver for Receipts {
    type Out = Vec<(String, Instant)>;

    fn on_data(&mut self, m: &Incoming<'_>, at: Instant) {
        if m.channel != CALLS_CHANNEL {
            return;
        }
        let Some(Ok(Notification { call: Some(call) })) = m
            .data
            .map(|raw| serde_json::from_str::<Notification>(raw.get()))
        else {
            return;
        };
        self.list.push((call.id, at));
        self.received.fetch_add(1, Ordering::Relaxed);
    }

    fn finish(self) -> Self::Out {
        self.list
    }
}

/// How long every subscriber's first connect may take to be answered.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `run` against a server whose store holds `agents` (at least `run.subscribers`).
/// `removal_target` is where removals go (the same node, or another node of the cluster).
pub async fn run_delivery(
    subscribe_to: SocketAddr,
    removal_target: SocketAddr,
    agents: &[PreloadedAgent],
    run: &DeliveryRun,
) -> anyhow::Result<DeliveryOutcome> {
    anyhow::ensure!(
        agents.len() >= run.subscribers && run.subscribers > 0,
        "{} subscribers need as many preloaded agents (have {})",
        run.subscribers,
        agents.len()
    );
    let agents = &agents[..run.subscribers];
    let plan = plan(agents, run.subscribers, run.removals);
    anyhow::ensure!(!plan.is_empty(), "no call to remove");

    // The driver logs in the agents whose calls it removes, before anything is measured.
    let mut to_login: Vec<usize> = plan.iter().map(|(a, _)| *a).collect();
    to_login.sort_unstable();
    to_login.dedup();
    let login_agents: Vec<&PreloadedAgent> = to_login.iter().map(|&a| &agents[a]).collect();
    let logged_in = login_all(removal_target, &login_agents).await?;
    let sessions_by_agent: HashMap<usize, GwsSession> =
        to_login.iter().copied().zip(logged_in).collect();

    let setup_started = Instant::now();
    let received = Arc::new(AtomicU64::new(0));
    let fleet = open_agents(subscribe_to, agents, run.transport, |_| Receipts {
        list: Vec::new(),
        received: received.clone(),
    })
    .await?;
    // Removals start once every subscriber is connected (its connect held): the steady state.
    if !fleet.wait_connected(SETTLE_TIMEOUT).await {
        let _ = fleet.stop_and_join().await;
        anyhow::bail!(
            "the subscribers' first connects were not all answered within {SETTLE_TIMEOUT:?}"
        );
    }
    let setup = setup_started.elapsed();

    // The driver: removal k is due at k / rate; a pool of keep-alive connections sends them.
    let endpoint = Endpoint::new(removal_target, "/");
    let (lane_tx, lane_rx) = tokio::sync::mpsc::channel::<HttpLane>(DRIVER_CONNECTIONS);
    for _ in 0..DRIVER_CONNECTIONS {
        let lane = HttpLane::open_without_cookies(&endpoint).await?;
        lane_tx.send(lane).await.ok();
    }
    let lane_rx = Arc::new(Mutex::new(lane_rx));
    let started = Instant::now();
    let mut inflight = tokio::task::JoinSet::new();
    for (k, (agent, call)) in plan.iter().enumerate() {
        let due = started + Duration::from_secs_f64(k as f64 / run.rate);
        tokio::time::sleep_until(due.into()).await;
        let session = &sessions_by_agent[agent];
        let request = rest_removal(session, call)?;
        let call_id = call.call_id.clone();
        let lanes = lane_rx.clone();
        let lane_tx = lane_tx.clone();
        inflight.spawn(async move {
            let mut lane = lanes.lock().await.recv().await.context("driver lanes")?;
            let sent = Instant::now();
            let reply = lane
                .request(
                    hyper::Method::POST,
                    &request.path,
                    request.headers,
                    request.body,
                )
                .await;
            let replied = Instant::now();
            lane_tx.send(lane).await.ok();
            let outcome = match reply {
                Ok((200, body)) if body == Bytes::from_static(br#"{"statusCode":0}"#) => Ok(()),
                Ok((status, body)) => {
                    Err(format!("HTTP {status} {}", String::from_utf8_lossy(&body)))
                }
                Err(e) => Err(e.to_string()),
            };
            anyhow::Ok((call_id, sent, replied, outcome))
        });
    }
    let mut removals: HashMap<String, (Instant, Instant)> = HashMap::new();
    let mut out = DeliveryOutcome {
        setup,
        ..DeliveryOutcome::default()
    };
    let mut first_sent = None::<Instant>;
    let mut last_reply = started;
    while let Some(joined) = inflight.join_next().await {
        let (call_id, sent, replied, outcome) = joined.context("removal task")??;
        first_sent = Some(first_sent.map_or(sent, |f: Instant| f.min(sent)));
        last_reply = last_reply.max(replied);
        out.removal_latency
            .record(replied.duration_since(sent).as_micros() as u64);
        match outcome {
            Ok(()) => {
                out.removals_ok += 1;
                removals.insert(call_id, (sent, replied));
            }
            Err(e) => {
                out.removals_failed += 1;
                out.first_removal_error.get_or_insert(e);
            }
        }
    }
    let first_sent = first_sent.unwrap_or(started);
    out.removals_per_s = out.removals_ok as f64
        / last_reply
            .duration_since(first_sent)
            .as_secs_f64()
            .max(1e-9);

    // Everything is removed: wait (bounded) for the notifications.
    let expected = out.removals_ok;
    crate::procs::wait_until(run.drain, || received.load(Ordering::Relaxed) >= expected).await;

    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut last_receipt = first_sent;
    for (receipts, failure) in fleet.stop_and_join().await? {
        if let Some(f) = failure {
            out.sessions_failed += 1;
            out.first_session_failure.get_or_insert(f);
        }
        for (call_id, at) in receipts {
            let n = seen.entry(call_id.clone()).or_default();
            *n += 1;
            let Some(&(sent, replied)) = removals.get(&call_id).filter(|_| *n == 1) else {
                out.extra += 1;
                continue;
            };
            out.delivered += 1;
            last_receipt = last_receipt.max(at);
            if at < replied {
                out.before_reply += 1;
            }
            out.delay_from_reply
                .record(at.saturating_duration_since(replied).as_micros() as u64);
            out.delay_from_request
                .record(at.saturating_duration_since(sent).as_micros() as u64);
        }
    }
    out.missing = out.removals_ok.saturating_sub(out.delivered);
    let window = last_receipt.duration_since(first_sent).as_secs_f64();
    if window > 0.0 {
        out.delivered_per_s = out.delivered as f64 / window;
    }
    Ok(out)
}

/// Idle sessions (handshaken, subscribed, their connect held), for memory readings.
pub struct IdleSessions {
    fleet: Fleet<()>,
}

impl IdleSessions {
    /// Opens `count` sessions as `agents` (round robin); returns once each has had its first
    /// (immediate) connect reply, so its next connect is held.
    pub async fn open(
        rest: SocketAddr,
        agents: &[PreloadedAgent],
        count: usize,
        transport: Transport,
    ) -> anyhow::Result<IdleSessions> {
        let chosen: Vec<PreloadedAgent> = (0..count)
            .map(|i| agents[i % agents.len()].clone())
            .collect();
        let fleet = open_agents(rest, &chosen, transport, |_| Ignore).await?;
        if !fleet.wait_connected(SETTLE_TIMEOUT).await {
            let _ = fleet.stop_and_join().await;
            anyhow::bail!("idle sessions were not all connected within {SETTLE_TIMEOUT:?}");
        }
        Ok(IdleSessions { fleet })
    }

    /// Ends every session's loop (closing its connection); returns how many had ended early.
    pub async fn close(self) -> anyhow::Result<usize> {
        let ended = self.fleet.stop_and_join().await?;
        Ok(ended
            .iter()
            .filter(|(_, failure)| failure.is_some())
            .count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agents(n: usize, calls: usize) -> Vec<PreloadedAgent> {
        (0..n)
            .map(|i| PreloadedAgent {
                username: format!("a{i}"),
                password: "pw".into(),
                user_id: format!("a{i}"),
                phone_number: format!("1{i}"),
                calls: (0..calls)
                    .map(|j| PreloadedCall {
                        call_id: format!("a{i}-c{j}"),
                        participant: "2".into(),
                    })
                    .collect(),
            })
            .collect()
    }

    #[test]
    fn the_plan_goes_round_the_agents_and_never_reuses_a_call() {
        let a = agents(3, 2);
        let p = plan(&a, 3, 6);
        let ids: Vec<&str> = p.iter().map(|(_, c)| c.call_id.as_str()).collect();
        assert_eq!(ids, ["a0-c0", "a1-c0", "a2-c0", "a0-c1", "a1-c1", "a2-c1"]);
        assert_eq!(
            p.iter().map(|(a, _)| *a).collect::<Vec<_>>(),
            [0, 1, 2, 0, 1, 2]
        );
        // More removals than calls: the plan stops at the last call.
        assert_eq!(plan(&a, 3, 10).len(), 6);
    }
}
