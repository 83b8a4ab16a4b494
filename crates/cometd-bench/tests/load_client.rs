//! The load client measured against known servers, so its figures can be trusted: the
//! `bayeux` engine served in-process on 127.0.0.1 port 0 (as `cometd-bench serve-bayeux`
//! serves it), and the peers' real Node servers. Each test checks what a reader of the report
//! relies on: every delivery counted once, losses counted as losses, and the delay measured
//! from the publisher's send (so a server that holds messages back shows it).

use std::sync::Arc;
use std::time::Duration;

use bayeux::{
    ChannelName, ChannelPattern, Config, Denial, HandshakeContext, Hooks, InMemoryLog,
    InMemorySessionStore, LogEntry, LogError, MessageLog, NewMessage, Server,
};
use cometd_bench::bench_server::{self, BenchHooks, PATH};
use cometd_bench::broadcast::{self, Outcome, Workload};
use cometd_bench::client::{Endpoint, Transport};
use cometd_bench::procs;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Serves `server` on 127.0.0.1 port 0; the task ends with the test's runtime.
async fn serve<H, S, L>(server: Server<H, S, L>) -> Endpoint
where
    H: Hooks,
    S: bayeux::SessionStore<Principal = H::Principal>,
    L: MessageLog,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(bench_server::serve(listener, server));
    Endpoint::new(addr, PATH)
}

fn workload(transport: Transport, subscribers: usize, rate: f64, seconds: f64) -> Workload {
    Workload {
        transport,
        subscribers,
        rate,
        size: 200,
        duration: Duration::from_secs_f64(seconds),
        warmup: Duration::from_secs_f64(seconds / 5.0),
        // Generous: the drain ends as soon as everything arrived, this only bounds a failure.
        drain: Duration::from_secs(20),
        server_pid: None,
    }
}

/// Everything a well-behaved server delivers is counted exactly once, warm-up excluded from
/// the measured figures but not from the totals.
fn assert_complete(o: &Outcome, subscribers: u64, published: u64, warmup: u64) {
    assert_eq!(o.published, published, "{o:?}");
    assert_eq!(
        o.publish_acked, published,
        "every publish acknowledged: {o:?}"
    );
    assert_eq!(o.publish_refused, 0);
    assert_eq!(o.sessions_failed, 0, "{:?}", o.first_failure);
    assert_eq!(o.lost, 0);
    assert_eq!(o.duplicates, 0);
    assert_eq!(o.delivered_total, published * subscribers);
    assert_eq!(o.expected, (published - warmup) * subscribers);
    assert_eq!(o.delivered, o.expected);
    assert_eq!(o.delay.count(), o.delivered);
    assert!(o.delivered_per_s > 0.0);
    assert!(o.kept_up(), "{o:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_broadcast_delivery_is_counted_once_over_websocket() {
    let endpoint = serve(bench_server::server()).await;
    let o = broadcast::run(&endpoint, &workload(Transport::WebSocket, 20, 100.0, 1.0))
        .await
        .unwrap();
    assert_complete(&o, 20, 100, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_broadcast_delivery_is_counted_once_over_long_polling() {
    let endpoint = serve(bench_server::server()).await;
    let o = broadcast::run(&endpoint, &workload(Transport::LongPolling, 20, 100.0, 1.0))
        .await
        .unwrap();
    assert_complete(&o, 20, 100, 20);
}

/// Refuses every publish whose sequence number is a multiple of 5: those messages never reach
/// anyone, so the subscribers see gaps.
struct RefuseEveryFifth;

impl Hooks for RefuseEveryFifth {
    type Principal = ();

    async fn authenticate(&self, _ctx: &HandshakeContext<'_>) -> Result<(), Denial> {
        Ok(())
    }

    fn principal_key(&self, _p: &()) -> Arc<str> {
        Arc::from("")
    }

    async fn can_subscribe(&self, _p: &(), _pattern: &ChannelPattern) -> Result<(), Denial> {
        Ok(())
    }

    async fn can_publish(&self, p: &(), channel: &ChannelName, data: &Value) -> Result<(), Denial> {
        if data["s"].as_u64().is_some_and(|s| s % 5 == 0) {
            return Err(Denial::new("every_fifth"));
        }
        BenchHooks.can_publish(p, channel, data).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_that_never_arrive_are_counted_as_lost() {
    let server = Server::new(
        Config::default(),
        RefuseEveryFifth,
        InMemorySessionStore::new(),
        InMemoryLog::new(10_000),
    );
    let endpoint = serve(server).await;
    // 50 messages (seq 0..50), the first 10 warm-up; refused: 0, 5, ..., 45 (10 of them),
    // 8 of which (10..45) are measured.
    let o = broadcast::run(&endpoint, &workload(Transport::WebSocket, 4, 50.0, 1.0))
        .await
        .unwrap();
    assert_eq!(o.published, 50);
    assert_eq!(o.publish_refused, 10);
    assert_eq!(o.publish_acked, 40);
    // The last message (49) arrives, so the drain ends; what was refused is lost, per subscriber.
    assert_eq!(o.lost, 8 * 4, "{o:?}");
    assert_eq!(o.duplicates, 0);
    assert_eq!(o.delivered_total, 40 * 4);
    assert_eq!(o.delivered, (40 - 8) * 4);
    assert!(!o.kept_up());
}

/// A log whose appends take `delay`: the server holds every message back that long.
struct SlowLog {
    inner: InMemoryLog,
    delay: Duration,
}

impl MessageLog for SlowLog {
    async fn append(&self, msg: NewMessage) -> Result<u64, LogError> {
        tokio::time::sleep(self.delay).await;
        self.inner.append(msg).await
    }

    async fn read_after(&self, after: u64, limit: usize) -> Result<Vec<Arc<LogEntry>>, LogError> {
        self.inner.read_after(after, limit).await
    }

    fn head(&self) -> watch::Receiver<u64> {
        self.inner.head()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_holding_messages_back_shows_in_the_delay() {
    let held = Duration::from_millis(60);
    let server = Server::new(
        Config::default(),
        BenchHooks,
        InMemorySessionStore::new(),
        SlowLog {
            inner: InMemoryLog::new(10_000),
            delay: held,
        },
    );
    let endpoint = serve(server).await;
    // One publish at a time is appended per connection, so stay under 1 / 60 ms.
    let o = broadcast::run(&endpoint, &workload(Transport::WebSocket, 5, 10.0, 1.0))
        .await
        .unwrap();
    assert_complete(&o, 5, 10, 2);
    // The delay runs from the publisher's send: no delivery can be faster than the hold.
    let fastest_us = o.delay.quantile(0.0);
    assert!(
        fastest_us >= held.as_micros() as u64,
        "fastest delivery {fastest_us} µs, but the server held each message {held:?}"
    );
}

/// The peers the comparison runs (installed from their lockfile with `npm ci`, then run with no
/// network) serve the same workload to the same client and are counted the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_peers_serve_the_workload() {
    for (name, script, transport) in [
        (
            "cometd-nodejs-server",
            "cometd-server.js",
            Transport::LongPolling,
        ),
        ("faye", "faye-server.js", Transport::WebSocket),
        ("faye", "faye-server.js", Transport::LongPolling),
    ] {
        let server = procs::start_peer(name, script)
            .await
            .unwrap_or_else(|e| panic!("starting {name}: {e:#}"));
        let mut w = workload(transport, 10, 50.0, 1.0);
        w.server_pid = server.pid();
        let o = broadcast::run(&server.endpoint(), &w).await;
        server.stop().await;
        let o = o.unwrap_or_else(|e| panic!("{name} {}: {e:#}", transport.name()));
        assert_complete(&o, 10, 50, 10);
        assert!(
            o.server_cpu_s.is_some_and(|c| c > 0.0),
            "{name}: no CPU time read"
        );
    }
}
