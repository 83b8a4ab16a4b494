//! Confer's Bayeux engine (the `bayeux` crate) as a plain broadcast server, for the peer
//! comparison: what cometd-nodejs-server and Faye are out of the box. Anyone may handshake and
//! subscribe; clients may publish to `/bench/**`; sessions and the log in memory; CometD's
//! default timeouts (the 30 s held connect the peers are configured with too). Served at
//! [`PATH`] by `cometd-bench serve-bayeux`, and in-process by the load client's tests.

use std::net::SocketAddr;
use std::sync::Arc;

use bayeux::{
    ChannelName, ChannelPattern, Config, Denial, HandshakeContext, Hooks, InMemoryLog,
    InMemorySessionStore, Server,
};
use serde_json::Value;
use tokio::net::TcpListener;

/// Where CometD is served, as the peers' scripts do.
pub const PATH: &str = "/cometd";
/// Entries the in-memory log keeps: a subscriber more than this many messages behind loses
/// them (`402::messages_lost`). At the saturation rates measured (hundreds of messages per
/// second) that is minutes of backlog.
pub const LOG_CAPACITY: usize = 200_000;

/// Open to everyone; publishing only to `/bench/**`.
pub struct BenchHooks;

impl Hooks for BenchHooks {
    type Principal = ();

    async fn authenticate(&self, _ctx: &HandshakeContext<'_>) -> Result<(), Denial> {
        Ok(())
    }

    fn principal_key(&self, _principal: &()) -> Arc<str> {
        Arc::from("")
    }

    async fn can_subscribe(&self, _p: &(), _pattern: &ChannelPattern) -> Result<(), Denial> {
        Ok(())
    }

    async fn can_publish(&self, _p: &(), channel: &ChannelName, _d: &Value) -> Result<(), Denial> {
        if channel.as_str() == "/bench" || channel.as_str().starts_with("/bench/") {
            Ok(())
        } else {
            Err(Denial::new("publish_denied"))
        }
    }
}

/// The engine with [`BenchHooks`], in-memory sessions and log.
pub type BenchServer = Server<BenchHooks, InMemorySessionStore<()>, InMemoryLog>;

/// Builds the server (within a Tokio runtime).
pub fn server() -> BenchServer {
    Server::new(
        Config {
            // Every benchmark session is one principal's: the cap that protects a public server
            // would end all but the newest 64.
            max_sessions_per_principal: usize::MAX,
            ..Config::default()
        },
        BenchHooks,
        InMemorySessionStore::new(),
        InMemoryLog::new(LOG_CAPACITY),
    )
}

/// Serves `server` on `listener` until the task is dropped.
pub async fn serve<H, S, L>(listener: TcpListener, server: Server<H, S, L>) -> std::io::Result<()>
where
    H: Hooks,
    S: bayeux::SessionStore<Principal = H::Principal>,
    L: bayeux::MessageLog,
{
    axum::serve(listener, bayeux::axum::router_at(PATH, server)).await
}

/// Binds `addr`, prints `listening http://ADDR/cometd` (what [`crate::procs::ServerProc`]
/// waits for) and serves until SIGTERM / Ctrl-C.
pub async fn run(addr: SocketAddr) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    println!("listening http://{}{PATH}", listener.local_addr()?);
    let server = server();
    let terminate = async {
        if let Ok(mut sig) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            sig.recv().await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        r = serve(listener, server.clone()) => r?,
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    server.shutdown(bayeux::ShutdownMode::Close).await;
    Ok(())
}
