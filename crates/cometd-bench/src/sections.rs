//! The sections of `cometd-bench`, each producing report rows:
//!
//! * `delivery` / `delivery_growth`: GWS notification delivery of `confer serve` (SQLite) to
//!   100, 1,000 and 10,000 subscribers, websocket and long-polling ([`crate::delivery`]);
//! * `session_memory`: resident memory of `confer serve` per idle CometD session;
//! * `bayeux_peers`: Confer's Bayeux engine against cometd-nodejs-server and Faye on one
//!   broadcast workload, up to each server's saturation ([`crate::broadcast`]);
//! * `two_node_delivery`: subscribers on node B, removals through node A, one PostgreSQL.
//!
//! Every run starts its own servers and stops them; every loop is bounded in count and time.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use confer_bench::postgres::ScratchSchema;
use confer_bench::preload::{PreloadSpec, Preloaded, StoreTarget, preload};
use confer_bench::report::{Row, Target};
use confer_bench::server::ConferServer;

use crate::broadcast::{self, Workload};
use crate::client::Transport;
use crate::delivery::{self, DeliveryOutcome, DeliveryRun, IdleSessions};
use crate::procs::{self, ServerProc};

/// What to run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub quick: bool,
    /// Section-name prefixes to run (all when empty).
    pub only: Vec<String>,
    /// PostgreSQL for `two_node_delivery`.
    pub database_url: String,
}

impl Settings {
    pub fn wants(&self, section: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|p| section.starts_with(p.as_str()))
    }
}

fn say(what: impl AsRef<str>) {
    eprintln!("cometd-bench: {}", what.as_ref());
}

fn failed(section: &str, name: &str, e: &anyhow::Error) -> Row {
    say(format!("{section} / {name} FAILED: {e:#}"));
    Row::new(section, name).param("outcome", format!("failed: {e:#}"))
}

/// A scratch directory under the system's temp dir, removed when dropped.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(tag: &str) -> anyhow::Result<ScratchDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir =
            std::env::temp_dir().join(format!("cometd-bench-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(ScratchDir(dir))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Preloads `agents` agents with `calls` calls each into a fresh SQLite directory and starts
/// `confer serve` on it.
async fn sqlite_server(
    agents: usize,
    calls: usize,
) -> anyhow::Result<(ConferServer, Preloaded, ScratchDir)> {
    let dir = ScratchDir::new("sqlite")?;
    let spec = PreloadSpec::new(
        StoreTarget::Sqlite {
            data_dir: dir.0.clone(),
        },
        agents,
        calls,
    );
    let loaded = preload(&spec).await.context("preloading")?;
    let data_dir = dir.0.to_string_lossy().into_owned();
    let server =
        tokio::task::spawn_blocking(move || ConferServer::start(&["--data-dir", &data_dir]))
            .await??;
    Ok((server, loaded, dir))
}

async fn stop_server(server: ConferServer) {
    let _ = tokio::task::spawn_blocking(move || server.stop()).await;
}

fn transport_param(t: Transport) -> &'static str {
    t.name()
}

// ---------------------------------------------------------------------------------------
// delivery, delivery_growth

/// Removals per second during a delivery run: far below what the SQLite store commits, so the
/// removals are not the bottleneck and the delay measured is the notification path's.
const DELIVERY_RATE: f64 = 200.0;

fn delivery_rows(
    transport: Transport,
    subscribers: usize,
    run: &DeliveryRun,
    o: &DeliveryOutcome,
    server_rss: Option<u64>,
    server_nofile: Option<u64>,
) -> (Option<Row>, Row) {
    let outcome = if o.sessions_failed > 0 || o.missing > 0 || o.removals_failed > 0 {
        format!(
            "incomplete: {} removals failed ({}), {} notifications missing, {} sessions ended ({})",
            o.removals_failed,
            o.first_removal_error.as_deref().unwrap_or("-"),
            o.missing,
            o.sessions_failed,
            o.first_session_failure.as_deref().unwrap_or("-"),
        )
    } else {
        "ok".to_owned()
    };
    let p99 = o.delay_from_reply.quantile_ms(0.99);
    let name = format!("{subscribers} {} subscribers", transport.name());
    let mut row = Row::new("delivery", &name)
        .param("transport", transport_param(transport))
        .param("subscribers", subscribers)
        .param("removal_rate_per_s", run.rate)
        .param("removals", run.removals)
        .param("outcome", outcome.clone())
        .metric("subscribers", subscribers as f64)
        .metric("p50_ms", o.delay_from_reply.quantile_ms(0.5))
        .metric("p99_ms", p99)
        .metric("max_ms", o.delay_from_reply.max() as f64 / 1000.0)
        .metric(
            "p99_from_request_ms",
            o.delay_from_request.quantile_ms(0.99),
        )
        .metric("delivered_per_s", o.delivered_per_s)
        .metric("removals_per_s", o.removals_per_s)
        .metric("removal_p99_ms", o.removal_latency.quantile_ms(0.99))
        .metric("delivered", o.delivered as f64)
        .metric("missing", o.missing as f64)
        .metric("before_reply", o.before_reply as f64)
        .metric("setup_s", o.setup.as_secs_f64());
    if let Some(rss) = server_rss {
        row = row.metric("server_rss_bytes", rss as f64);
    }
    if let Some(n) = server_nofile {
        row = row.param("server_open_files_limit", n);
    }
    if transport == Transport::WebSocket && subscribers >= 10_000 {
        let what = "delivery p99 < 50 ms with 10,000 websocket subscribers";
        row = row.target(if outcome == "ok" {
            Target::below(what, p99, 50.0, "ms")
        } else {
            Target::unjudged(what, &outcome)
        });
    }
    let growth = Row::new("delivery_growth", &name)
        .param("transport", transport_param(transport))
        .param("outcome", outcome)
        .metric("subscribers", subscribers as f64)
        .metric("p50_ms", o.delay_from_reply.quantile_ms(0.5))
        .metric("p99_ms", p99);
    // 100 subscribers is a growth point only; the delivery rows are 1,000 and 10,000.
    ((subscribers >= 1000).then_some(row), growth)
}

async fn one_delivery(
    settings: &Settings,
    transport: Transport,
    subscribers: usize,
) -> anyhow::Result<(Option<Row>, Row)> {
    let seconds = if settings.quick { 3.0 } else { 10.0 };
    let removals = (DELIVERY_RATE * seconds) as usize;
    let calls = removals.div_ceil(subscribers);
    say(format!(
        "delivery: {subscribers} {} subscribers, {removals} removals at {DELIVERY_RATE}/s",
        transport.name()
    ));
    let (server, loaded, _dir) = sqlite_server(subscribers, calls).await?;
    let nofile = procs::open_files_limit(server.pid());
    let run = DeliveryRun {
        transport,
        subscribers,
        rate: DELIVERY_RATE,
        removals,
        drain: Duration::from_secs(10),
    };
    let result = delivery::run_delivery(server.rest, server.rest, &loaded.agents, &run).await;
    let rss = server.rss_bytes().ok();
    stop_server(server).await;
    let o = result?;
    say(format!(
        "  p50 {:.2} ms p99 {:.2} ms, {:.0} delivered/s, {} missing, setup {:.1} s",
        o.delay_from_reply.quantile_ms(0.5),
        o.delay_from_reply.quantile_ms(0.99),
        o.delivered_per_s,
        o.missing,
        o.setup.as_secs_f64()
    ));
    Ok(delivery_rows(transport, subscribers, &run, &o, rss, nofile))
}

/// `delivery` and `delivery_growth`.
pub async fn delivery(settings: &Settings) -> Vec<Row> {
    let runs: &[(Transport, usize)] = if settings.quick {
        &[(Transport::WebSocket, 100), (Transport::WebSocket, 1000)]
    } else {
        &[
            (Transport::WebSocket, 100),
            (Transport::WebSocket, 1000),
            (Transport::WebSocket, 10_000),
            (Transport::LongPolling, 100),
            (Transport::LongPolling, 1000),
            (Transport::LongPolling, 10_000),
        ]
    };
    let mut rows = Vec::new();
    let mut growth = Vec::new();
    for &(transport, n) in runs {
        match one_delivery(settings, transport, n).await {
            Ok((row, g)) => {
                rows.extend(row);
                growth.push(g);
            }
            Err(e) => {
                let name = format!("{n} {} subscribers", transport.name());
                if n >= 1000 {
                    rows.push(failed("delivery", &name, &e));
                }
                growth.push(failed("delivery_growth", &name, &e));
            }
        }
    }
    rows.extend(growth);
    rows
}

// ---------------------------------------------------------------------------------------
// session_memory

/// Sessions opened (and kept) before the baseline reading, so one-time allocations (worker
/// buffers, the first connection's state) are not charged to the measured sessions.
const MEMORY_WARM: usize = 50;

async fn one_session_memory(transport: Transport, count: usize) -> anyhow::Result<Row> {
    let (server, loaded, _dir) = sqlite_server(100, 1).await?;
    let result = async {
        let warm = IdleSessions::open(server.rest, &loaded.agents, MEMORY_WARM, transport).await?;
        // Let the server settle (the allocator, its sweeper) before reading.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = server.rss_bytes()?;
        let idle = IdleSessions::open(server.rest, &loaded.agents, count, transport).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = server.rss_bytes()?;
        let failed = idle.close().await? + warm.close().await?;
        anyhow::ensure!(failed == 0, "{failed} idle sessions ended early");
        Ok((before, after))
    }
    .await;
    stop_server(server).await;
    let (before, after) = result?;
    let per = after.saturating_sub(before) as f64 / count as f64;
    say(format!(
        "session_memory: {count} idle {} sessions: {before} -> {after} bytes, {per:.0} B each",
        transport.name()
    ));
    Ok(Row::new(
        "session_memory",
        format!("idle {} session", transport.name()),
    )
    .param("transport", transport.name())
    .param("sessions", count)
    .param("outcome", "ok")
    .metric("bytes_per_session", per)
    .metric("rss_bytes_before", before as f64)
    .metric("rss_bytes_after", after as f64)
    .target(Target::below(
        "idle CometD session < 16 KiB resident",
        per / 1024.0,
        16.0,
        "KiB",
    )))
}

/// `session_memory`: RSS of `confer serve` with K idle sessions minus without, over K.
pub async fn session_memory(settings: &Settings) -> Vec<Row> {
    let count = if settings.quick { 1000 } else { 10_000 };
    let transports: &[Transport] = if settings.quick {
        &[Transport::WebSocket]
    } else {
        &[Transport::WebSocket, Transport::LongPolling]
    };
    let mut rows = Vec::new();
    for &t in transports {
        rows.push(one_session_memory(t, count).await.unwrap_or_else(|e| {
            failed("session_memory", &format!("idle {} session", t.name()), &e)
        }));
    }
    rows
}

// ---------------------------------------------------------------------------------------
// bayeux_peers

/// The three servers of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// The `bayeux` crate (`cometd-bench serve-bayeux`).
    Confer,
    /// npm cometd-nodejs-server (long-polling only).
    CometdNode,
    /// npm faye.
    Faye,
}

impl Peer {
    pub fn name(self) -> &'static str {
        match self {
            Self::Confer => "confer-bayeux",
            Self::CometdNode => "cometd-nodejs-server",
            Self::Faye => "faye",
        }
    }

    pub async fn start(self) -> anyhow::Result<ServerProc> {
        match self {
            Self::Confer => procs::start_bayeux().await,
            Self::CometdNode => procs::start_peer(self.name(), "cometd-server.js").await,
            Self::Faye => procs::start_peer(self.name(), "faye-server.js").await,
        }
    }

    /// cometd-nodejs-server has no WebSocket transport ("WebSocket not (yet) supported").
    pub fn supports(self, t: Transport) -> bool {
        !(self == Self::CometdNode && t == Transport::WebSocket)
    }
}

/// The peer comparison's settings.
#[derive(Debug, Clone)]
pub struct PeerPlan {
    pub subscribers: usize,
    pub size: usize,
    /// The fixed rate every server is measured at (messages per second from the publisher).
    pub fixed_rate: f64,
    /// The rates tried to find each server's saturation (doubling), stopping after the first
    /// one a server does not keep up with.
    pub ladder: Vec<f64>,
    pub duration: Duration,
    pub warmup: Duration,
    pub drain: Duration,
    pub transports: Vec<Transport>,
}

impl PeerPlan {
    pub fn new(quick: bool) -> PeerPlan {
        if quick {
            PeerPlan {
                subscribers: 200,
                size: 256,
                fixed_rate: 25.0,
                ladder: vec![400.0],
                duration: Duration::from_millis(1500),
                warmup: Duration::from_millis(300),
                drain: Duration::from_secs(3),
                transports: vec![Transport::WebSocket, Transport::LongPolling],
            }
        } else {
            PeerPlan {
                subscribers: 1000,
                size: 256,
                fixed_rate: 5.0,
                ladder: vec![10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 640.0, 1280.0],
                duration: Duration::from_secs(4),
                warmup: Duration::from_secs(1),
                drain: Duration::from_secs(5),
                transports: vec![Transport::WebSocket, Transport::LongPolling],
            }
        }
    }
}

/// One step: a fresh server process (no sessions left over from the previous step), the
/// workload, the server stopped.
async fn peer_step(
    peer: Peer,
    transport: Transport,
    plan: &PeerPlan,
    rate: f64,
) -> anyhow::Result<(broadcast::Outcome, Option<u64>)> {
    let server = peer.start().await?;
    let w = Workload {
        transport,
        subscribers: plan.subscribers,
        rate,
        size: plan.size,
        duration: plan.duration,
        warmup: plan.warmup,
        drain: plan.drain,
        server_pid: server.pid(),
    };
    let result = broadcast::run(&server.endpoint(), &w).await;
    let rss = server.pid().and_then(procs::rss_bytes);
    server.stop().await;
    Ok((result?, rss))
}

fn peer_row(
    peer: Peer,
    transport: Transport,
    plan: &PeerPlan,
    rate: f64,
    kind: &str,
    o: &broadcast::Outcome,
    rss: Option<u64>,
) -> Row {
    let mut row = Row::new(
        "bayeux_peers",
        format!("{} {} {kind} {rate}/s", peer.name(), transport.name()),
    )
    .param("server", peer.name())
    .param("transport", transport.name())
    .param("subscribers", plan.subscribers)
    .param("rate_per_s", rate)
    .param("size_bytes", plan.size)
    .param("run", kind)
    .param("kept_up", o.kept_up())
    .param(
        "outcome",
        match &o.first_failure {
            None => "ok".to_owned(),
            Some(f) => format!("ok, with errors: {f}"),
        },
    )
    .metric("delivered_per_s", o.delivered_per_s)
    .metric("offered_per_s", o.offered_per_s)
    .metric("p50_ms", o.delay.quantile_ms(0.5))
    .metric("p99_ms", o.delay.quantile_ms(0.99))
    .metric("lost", o.lost as f64)
    .metric("duplicates", o.duplicates as f64);
    if let Some(cpu) = o.server_cpu_s {
        row = row.metric("server_cpu_s", cpu);
        if o.delivered_total > 0 {
            row = row.metric(
                "server_cpu_us_per_delivery",
                cpu * 1e6 / o.delivered_total as f64,
            );
        }
    }
    if let Some(cpu) = o.client_cpu_s {
        row = row.metric("client_cpu_s", cpu);
    }
    if let Some(rss) = rss {
        row = row.metric("server_rss_bytes", rss as f64);
    }
    row
}

/// A server's results on one transport: the fixed-rate run and its best throughput.
struct PeerSummary {
    peer: Peer,
    transport: Transport,
    best_delivered_per_s: f64,
    best_rate: f64,
    fixed_p99_ms: f64,
    cpu_us_per_delivery: Option<f64>,
}

async fn peer_series(
    peer: Peer,
    transport: Transport,
    plan: &PeerPlan,
    rows: &mut Vec<Row>,
) -> anyhow::Result<PeerSummary> {
    let mut summary = PeerSummary {
        peer,
        transport,
        best_delivered_per_s: 0.0,
        best_rate: 0.0,
        fixed_p99_ms: f64::NAN,
        cpu_us_per_delivery: None,
    };
    let rates = std::iter::once((plan.fixed_rate, "fixed"))
        .chain(plan.ladder.iter().map(|&r| (r, "saturation")));
    for (rate, kind) in rates {
        let (o, rss) = peer_step(peer, transport, plan, rate).await?;
        say(format!(
            "bayeux_peers: {} {} {rate}/s x {}: {:.0} delivered/s (offered {:.0}), p99 {:.1} ms, lost {}, server cpu {:.2} s, client cpu {:.2} s",
            peer.name(),
            transport.name(),
            plan.subscribers,
            o.delivered_per_s,
            o.offered_per_s,
            o.delay.quantile_ms(0.99),
            o.lost,
            o.server_cpu_s.unwrap_or(f64::NAN),
            o.client_cpu_s.unwrap_or(f64::NAN),
        ));
        rows.push(peer_row(peer, transport, plan, rate, kind, &o, rss));
        if kind == "fixed" {
            summary.fixed_p99_ms = o.delay.quantile_ms(0.99);
        }
        if o.delivered_per_s > summary.best_delivered_per_s {
            summary.best_delivered_per_s = o.delivered_per_s;
            summary.best_rate = rate;
            summary.cpu_us_per_delivery = o
                .server_cpu_s
                .filter(|_| o.delivered_total > 0)
                .map(|c| c * 1e6 / o.delivered_total as f64);
        }
        if !o.kept_up() {
            break;
        }
    }
    Ok(summary)
}

/// `bayeux_peers`.
pub async fn bayeux_peers(settings: &Settings) -> Vec<Row> {
    let plan = PeerPlan::new(settings.quick);
    let mut rows = Vec::new();
    if let Err(e) = procs::ensure_peers_installed(&procs::peers_dir()).await {
        rows.push(failed("bayeux_peers", "install the peers (npm ci)", &e));
        return rows;
    }
    let mut summaries = Vec::new();
    for &transport in &plan.transports {
        for peer in [Peer::Confer, Peer::CometdNode, Peer::Faye] {
            if !peer.supports(transport) {
                rows.push(Row::not_measured(
                    "bayeux_peers",
                    &format!("{} {}", peer.name(), transport.name()),
                    "cometd-nodejs-server has no WebSocket transport (its README: \"WebSocket not (yet) supported\")",
                ));
                continue;
            }
            match peer_series(peer, transport, &plan, &mut rows).await {
                Ok(s) => summaries.push(s),
                Err(e) => rows.push(failed(
                    "bayeux_peers",
                    &format!("{} {}", peer.name(), transport.name()),
                    &e,
                )),
            }
        }
    }
    for s in &summaries {
        rows.push(
            Row::new(
                "bayeux_peers",
                format!("{} {} best", s.peer.name(), s.transport.name()),
            )
            .param("server", s.peer.name())
            .param("transport", s.transport.name())
            .param("subscribers", plan.subscribers)
            .param("run", "best")
            .param("best_rate_per_s", s.best_rate)
            .param("outcome", "ok")
            .metric("delivered_per_s", s.best_delivered_per_s)
            .metric("fixed_rate_p99_ms", s.fixed_p99_ms)
            .metric(
                "server_cpu_us_per_delivery",
                s.cpu_us_per_delivery.unwrap_or(f64::NAN),
            ),
        );
    }
    for confer in summaries.iter().filter(|s| s.peer == Peer::Confer) {
        for peer in summaries
            .iter()
            .filter(|s| s.peer != Peer::Confer && s.transport == confer.transport)
        {
            let ratio = confer.best_delivered_per_s / peer.best_delivered_per_s;
            let what = format!(
                "Confer's Bayeux engine ≥ 3× the delivered messages per second of {}",
                peer.peer.name()
            );
            let mut row = Row::new(
                "bayeux_peers",
                format!("confer / {} {}", peer.peer.name(), confer.transport.name()),
            )
            .param("transport", confer.transport.name())
            .param("peer", peer.peer.name())
            .param("subscribers", plan.subscribers)
            .param("run", "ratio")
            .param("outcome", "ok")
            .metric("ratio_to_peer", ratio)
            .metric("confer_delivered_per_s", confer.best_delivered_per_s)
            .metric("peer_delivered_per_s", peer.best_delivered_per_s);
            if let (Some(c), Some(p)) = (confer.cpu_us_per_delivery, peer.cpu_us_per_delivery) {
                row = row.metric("cpu_per_delivery_ratio_peer_to_confer", p / c);
            }
            rows.push(row.target(Target::at_least(&what, ratio, 3.0, "×")));
        }
    }
    rows
}

// ---------------------------------------------------------------------------------------
// two_node_delivery

async fn two_node_run(
    settings: &Settings,
    schema: &ScratchSchema,
    subscribers: usize,
    removals: usize,
    rate: f64,
) -> anyhow::Result<(DeliveryRun, DeliveryOutcome)> {
    let spec = PreloadSpec::new(
        StoreTarget::Postgres {
            url: settings.database_url.clone(),
            schema: schema.name.clone(),
        },
        subscribers,
        removals.div_ceil(subscribers),
    );
    let loaded = preload(&spec).await.context("preloading PostgreSQL")?;
    let url = schema.server_url();
    let url_b = url.clone();
    let node_a =
        tokio::task::spawn_blocking(move || ConferServer::start(&["--database-url", &url]))
            .await??;
    let node_b =
        match tokio::task::spawn_blocking(move || ConferServer::start(&["--database-url", &url_b]))
            .await?
        {
            Ok(b) => b,
            Err(e) => {
                stop_server(node_a).await;
                return Err(e);
            }
        };
    let run = DeliveryRun {
        transport: Transport::WebSocket,
        subscribers,
        rate,
        removals,
        drain: Duration::from_secs(10),
    };
    let result = delivery::run_delivery(node_b.rest, node_a.rest, &loaded.agents, &run).await;
    stop_server(node_a).await;
    stop_server(node_b).await;
    Ok((run, result?))
}

/// `two_node_delivery`: subscribers on node B, removals through node A, one PostgreSQL.
pub async fn two_node_delivery(settings: &Settings) -> Vec<Row> {
    let name = "subscribers on node B, removals through node A";
    if let Err(why) = confer_bench::postgres::reachable(&settings.database_url).await {
        return vec![Row::not_measured(
            "two_node_delivery",
            name,
            &format!("PostgreSQL unreachable at {}: {why}", settings.database_url),
        )];
    }
    let (subscribers, seconds, rate) = if settings.quick {
        (200, 2.0, 100.0)
    } else {
        (1000, 10.0, 100.0)
    };
    let removals = (rate * seconds) as usize;
    say(format!(
        "two_node_delivery: {subscribers} websocket subscribers on B, {removals} removals through A"
    ));
    let schema = ScratchSchema::new(&settings.database_url, "cometd_bench");
    let result = two_node_run(settings, &schema, subscribers, removals, rate).await;
    if let Err(e) = schema.drop_now().await {
        say(format!("could not drop schema {}: {e:#}", schema.name));
    }
    let (run, o) = match result {
        Ok(r) => r,
        Err(e) => return vec![failed("two_node_delivery", name, &e)],
    };
    say(format!(
        "  p50 {:.2} ms p99 {:.2} ms, {} missing",
        o.delay_from_reply.quantile_ms(0.5),
        o.delay_from_reply.quantile_ms(0.99),
        o.missing
    ));
    let (_, growth) = delivery_rows(Transport::WebSocket, subscribers, &run, &o, None, None);
    let mut row = Row::new("two_node_delivery", name)
        .param("transport", "websocket")
        .param("subscribers", subscribers)
        .param("removal_rate_per_s", rate)
        .param("removals", removals)
        .param("store", "postgres");
    row.params.insert(
        "outcome".into(),
        growth.params.get("outcome").cloned().unwrap_or_default(),
    );
    vec![
        row.metric("p50_ms", o.delay_from_reply.quantile_ms(0.5))
            .metric("p99_ms", o.delay_from_reply.quantile_ms(0.99))
            .metric("max_ms", o.delay_from_reply.max() as f64 / 1000.0)
            .metric(
                "p99_from_request_ms",
                o.delay_from_request.quantile_ms(0.99),
            )
            .metric("delivered_per_s", o.delivered_per_s)
            .metric("removal_p99_ms", o.removal_latency.quantile_ms(0.99))
            .metric("missing", o.missing as f64)
            .metric("before_reply", o.before_reply as f64),
    ]
}

/// Every section, in order.
pub async fn all(settings: &Settings) -> Vec<Row> {
    let started = Instant::now();
    let mut rows = Vec::new();
    if settings.wants("delivery") || settings.wants("delivery_growth") {
        rows.extend(delivery(settings).await);
    }
    if settings.wants("session_memory") {
        rows.extend(session_memory(settings).await);
    }
    if settings.wants("bayeux_peers") {
        rows.extend(bayeux_peers(settings).await);
    }
    if settings.wants("two_node_delivery") {
        rows.extend(two_node_delivery(settings).await);
    }
    say(format!("done in {:.0} s", started.elapsed().as_secs_f64()));
    rows
}
