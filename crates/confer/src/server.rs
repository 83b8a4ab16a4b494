//! The server: binds the REST/CometD and gRPC listeners, composes the dialects around one
//! [`App`], serves until told to stop, and stops gracefully (stop accepting, finish in-flight
//! requests, close notification sessions).

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context;
use axum::{Router, middleware, routing::get};
use confer_app::{App, auth::client, config::ServeConfig, health, metrics};
use confer_grpc::GrpcDialect;
use confer_gws::GwsDialect;
use tokio::{net::TcpListener, sync::watch, task::JoinSet};

use crate::connections::{self, Protocol};
use tower_http::trace::TraceLayer;

/// A started server; [`RunningServer::shutdown`] stops it.
pub struct RunningServer {
    pub rest_addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    pub app: Arc<App>,
    gws: Arc<GwsDialect>,
    grpc: Arc<GrpcDialect>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<anyhow::Result<()>>,
    /// What `--demo` prints, when it was given.
    pub demo_text: Option<String>,
}

/// Binds both listeners, opens the store, loads the demo if asked, and starts serving.
pub async fn start(mut config: ServeConfig) -> anyhow::Result<RunningServer> {
    let rest = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding --listen {}", config.listen))?;
    let grpc_listener = TcpListener::bind(config.grpc_listen)
        .await
        .with_context(|| format!("binding --grpc-listen {}", config.grpc_listen))?;
    let rest_addr = rest.local_addr()?;
    let grpc_addr = grpc_listener.local_addr()?;
    // From here on the config says where we really listen (the flags may have said port 0).
    config.listen = rest_addr;
    config.grpc_listen = grpc_addr;

    let app = App::open(config.clone()).await?;
    let demo_text = if config.demo {
        Some(
            confer_app::demo::load(app.store.as_ref())
                .await
                .context("loading the demo world")?,
        )
    } else {
        None
    };
    let gws = Arc::new(
        GwsDialect::start(app.clone())
            .await
            .context("starting GWS")?,
    );
    let grpc = Arc::new(
        GrpcDialect::start(app.clone())
            .await
            .context("starting gRPC")?,
    );

    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();

    let limits = app.config.connections;
    let router = router(&app, &gws);
    let rest_stopped = stopped.clone();
    let rest_proxies = trusted_proxies(&app);
    tasks.spawn(async move {
        connections::serve(
            "rest",
            rest,
            router,
            limits,
            &rest_proxies,
            Protocol::Auto,
            rest_stopped,
        )
        .await;
        Ok(())
    });

    // gRPC is served by hyper through axum rather than by `tonic::transport::Server`, whose
    // outermost layer enforces `grpc-timeout` itself and answers CANCELLED "Timeout expired",
    // where the gRPC spec says DEADLINE_EXCEEDED. Every Confer RPC enforces the caller's deadline
    // and answers DEADLINE_EXCEEDED ([`confer_grpc`]'s `within_deadline`); clients enforce theirs
    // anyway. HTTP/2 comes by prior knowledge (h2c), as gRPC clients send it.
    let grpc_router = grpc
        .routes()
        .into_axum_router()
        .layer(middleware::from_fn_with_state(
            app.clone(),
            confer_grpc::renewal::renew_bearer,
        ))
        .layer(middleware::from_fn_with_state(
            trusted_proxies(&app),
            client::track_client,
        ));
    let grpc_proxies = trusted_proxies(&app);
    tasks.spawn(async move {
        connections::serve(
            "grpc",
            grpc_listener,
            grpc_router,
            limits,
            &grpc_proxies,
            Protocol::Http2,
            stopped,
        )
        .await;
        Ok(())
    });

    Ok(RunningServer {
        rest_addr,
        grpc_addr,
        app,
        gws,
        grpc,
        stop,
        tasks,
        demo_text,
    })
}

/// The REST router: health, metrics, and each dialect's routes.
fn router(app: &Arc<App>, gws: &GwsDialect) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(app.clone())
        .merge(
            Router::new()
                .route("/metrics", get(metrics::serve_metrics))
                .with_state(app.metrics.clone()),
        )
        .merge(gws.router())
        .merge(confer_evo::router(app.clone()))
        .merge(crate::openapi::router())
        .merge(confer_console::router())
        .route_layer(middleware::from_fn_with_state(
            app.metrics.clone(),
            metrics::track_requests,
        ))
        .layer(middleware::from_fn_with_state(
            trusted_proxies(app),
            client::track_client,
        ))
        .layer(TraceLayer::new_for_http())
}

/// The proxies whose `X-Forwarded-For` names the client, as the client-address layer takes them.
fn trusted_proxies(app: &App) -> Arc<[std::net::IpAddr]> {
    Arc::from(app.config.trusted_proxies.as_slice())
}

impl RunningServer {
    /// Closes notification sessions, stops accepting, lets in-flight requests finish, and waits
    /// for both servers.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.gws.shutdown().await;
        self.grpc.shutdown().await;
        let _ = self.stop.send(true);
        while let Some(result) = self.tasks.join_next().await {
            result.context("a server task panicked")??;
        }
        Ok(())
    }
}

/// `confer serve`: start, say where, serve until SIGINT or SIGTERM, stop gracefully.
pub async fn run(config: ServeConfig) -> anyhow::Result<()> {
    // Listen for the signals before saying we are up: a supervisor that reads the banner and
    // sends SIGTERM at once must get a graceful stop, not the default (immediate) death.
    let stop_requested = shutdown_signal()?;
    let server = start(config).await?;
    if let Some(text) = &server.demo_text {
        println!("{text}");
    }
    // Tests and scripts read this line to find the ports (which may be ephemeral).
    println!(
        "confer listening rest=http://{} grpc=http://{}",
        server.rest_addr, server.grpc_addr
    );
    tracing::info!(rest = %server.rest_addr, grpc = %server.grpc_addr, "confer is serving");
    stop_requested.await;
    tracing::info!("shutting down: finishing in-flight requests");
    server.shutdown().await
}

/// Resolves on SIGINT or SIGTERM; the handlers are installed when this is called.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    #[cfg(unix)]
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("installing the SIGINT handler")?;
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    })
}
