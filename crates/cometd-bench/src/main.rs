//! `cometd-bench [--quick] [--out FILE] [--only SECTION-PREFIX,...]`: the CometD half of
//! `cargo xtask bench` (sections `delivery`, `delivery_growth`, `session_memory`,
//! `bayeux_peers`, `two_node_delivery`; see `cometd_bench::sections`).
//!
//! `cometd-bench serve-bayeux`: Confer's Bayeux engine as a broadcast server (what the peer
//! comparison runs in its own process). `cometd-bench broadcast SERVER ...`: one broadcast run,
//! for exploring by hand.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use cometd_bench::client::Transport;
use cometd_bench::sections::{self, Peer, Settings};
use cometd_bench::{bench_server, broadcast, procs};
use confer_bench::report::Report;

#[derive(Debug, Parser)]
#[command(
    name = "cometd-bench",
    about = "CometD benchmarks of cargo xtask bench"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Fewer and smaller runs, for an edit-measure loop (under a minute).
    #[arg(long)]
    quick: bool,
    /// Where to write the JSON report.
    #[arg(long, default_value = "target/bench/cometd-bench.json")]
    out: std::path::PathBuf,
    /// Run only the sections whose name starts with one of these (comma-separated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ServerArg {
    Confer,
    Cometd,
    Faye,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum TransportArg {
    Websocket,
    LongPolling,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve Confer's Bayeux engine (clients may publish to /bench/**); prints its URL.
    ServeBayeux {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
    },
    /// One broadcast run against one server, printed (no report).
    Broadcast {
        #[arg(value_enum)]
        server: ServerArg,
        #[arg(long, value_enum, default_value = "websocket")]
        transport: TransportArg,
        #[arg(long, default_value_t = 100)]
        subscribers: usize,
        /// Messages per second.
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        #[arg(long, default_value_t = 256)]
        size: usize,
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
    },
}

fn database_url() -> String {
    ["CONFER_BENCH_DATABASE_URL", "CONFER_TEST_DATABASE_URL"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

async fn broadcast_once(
    server: ServerArg,
    transport: TransportArg,
    subscribers: usize,
    rate: f64,
    size: usize,
    seconds: f64,
) -> anyhow::Result<()> {
    let peer = match server {
        ServerArg::Confer => Peer::Confer,
        ServerArg::Cometd => Peer::CometdNode,
        ServerArg::Faye => Peer::Faye,
    };
    let transport = match transport {
        TransportArg::Websocket => Transport::WebSocket,
        TransportArg::LongPolling => Transport::LongPolling,
    };
    anyhow::ensure!(
        peer.supports(transport),
        "{} has no {} transport",
        peer.name(),
        transport.name()
    );
    let proc = peer.start().await?;
    let w = broadcast::Workload {
        transport,
        subscribers,
        rate,
        size,
        duration: Duration::from_secs_f64(seconds),
        warmup: Duration::from_secs_f64(seconds / 4.0),
        drain: Duration::from_secs(5),
        server_pid: proc.pid(),
    };
    let result = broadcast::run(&proc.endpoint(), &w).await;
    let rss = proc.pid().and_then(procs::rss_bytes);
    proc.stop().await;
    let o = result?;
    println!(
        "{} {} {subscribers} subscribers, {rate} msg/s of {size} B: {:.0} delivered/s \
         (offered {:.0}), p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, lost {}, duplicates {}, \
         published {} (acked {}, refused {}), sessions failed {} {:?}, server cpu {:.2} s, \
         client cpu {:.2} s, server rss {:?}",
        peer.name(),
        transport.name(),
        o.delivered_per_s,
        o.offered_per_s,
        o.delay.quantile_ms(0.5),
        o.delay.quantile_ms(0.99),
        o.delay.max() as f64 / 1000.0,
        o.lost,
        o.duplicates,
        o.published,
        o.publish_acked,
        o.publish_refused,
        o.sessions_failed,
        o.first_failure,
        o.server_cpu_s.unwrap_or(f64::NAN),
        o.client_cpu_s.unwrap_or(f64::NAN),
        rss,
    );
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(Command::ServeBayeux { listen }) = cli.command {
        return match runtime.block_on(bench_server::run(listen)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    // 10,000 subscribers need 10,000 sockets here and in the servers, which inherit the limit.
    let nofile = match procs::raise_nofile_limit() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(Command::Broadcast {
        server,
        transport,
        subscribers,
        rate,
        size,
        seconds,
    }) = cli.command
    {
        return match runtime.block_on(broadcast_once(
            server,
            transport,
            subscribers,
            rate,
            size,
            seconds,
        )) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }

    let settings = Settings {
        quick: cli.quick,
        only: cli.only,
        database_url: database_url(),
    };
    eprintln!("cometd-bench: open-files limit {nofile} (inherited by the servers it starts)");
    let mut report = Report::new("cometd-bench");
    // On Ctrl-C the running section is dropped, and with it the servers it started (they are
    // killed on drop), so nothing is left running.
    let rows = runtime.block_on(async {
        tokio::select! {
            rows = sections::all(&settings) => Some(rows),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    let Some(rows) = rows else {
        eprintln!("cometd-bench: interrupted");
        return ExitCode::from(130);
    };
    report.rows = rows;
    if let Err(e) = report.write(&cli.out) {
        eprintln!("error: {e:#}");
        return ExitCode::FAILURE;
    }
    eprintln!("cometd-bench: wrote {}", cli.out.display());
    if report.report_failures() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
