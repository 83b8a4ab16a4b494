//! The server: binds the REST/CometD and gRPC listeners, serves until told to stop, and stops
//! gracefully (stop accepting, finish in-flight requests, close notification sessions).

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context;
use axum::{Router, middleware, routing::get};
use confer_app::{App, config::ServeConfig, health, metrics};
use tokio::{net::TcpListener, sync::watch, task::JoinSet};
use tower_http::trace::TraceLayer;

/// A started server; dropping it does not stop it, [`RunningServer::shutdown`] does.
pub struct RunningServer {
    pub rest_addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    pub app: Arc<App>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<anyhow::Result<()>>,
    /// What `--demo` prints, when it was given.
    pub demo_text: Option<String>,
}

/// Opens the store, loads the demo if asked, binds both listeners and starts serving.
pub async fn start(config: ServeConfig) -> anyhow::Result<RunningServer> {
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

    let rest = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding --listen {}", config.listen))?;
    let grpc = TcpListener::bind(config.grpc_listen)
        .await
        .with_context(|| format!("binding --grpc-listen {}", config.grpc_listen))?;
    let rest_addr = rest.local_addr()?;
    let grpc_addr = grpc.local_addr()?;
    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();

    let router = router(app.clone());
    let mut rest_stopped = stopped.clone();
    tasks.spawn(async move {
        axum::serve(rest, router)
            .with_graceful_shutdown(async move {
                let _ = rest_stopped.wait_for(|stop| *stop).await;
            })
            .await
            .context("serving REST")
    });

    let mut grpc_stopped = stopped;
    tasks.spawn(async move {
        let (_health_reporter, health_service) = tonic_health::server::health_reporter();
        tonic::transport::Server::builder()
            .add_service(health_service)
            .serve_with_incoming_shutdown(tokio_stream_of(grpc), async move {
                let _ = grpc_stopped.wait_for(|stop| *stop).await;
            })
            .await
            .context("serving gRPC")
    });

    Ok(RunningServer {
        rest_addr,
        grpc_addr,
        app,
        stop,
        tasks,
        demo_text,
    })
}

fn tokio_stream_of(listener: TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener)
}

/// The REST router: health, metrics, and each dialect's routes.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(app.clone())
        .merge(
            Router::new()
                .route("/metrics", get(metrics::serve_metrics))
                .with_state(app.metrics.clone()),
        )
        .route_layer(middleware::from_fn_with_state(
            app.metrics.clone(),
            metrics::track_requests,
        ))
        .layer(TraceLayer::new_for_http())
}

impl RunningServer {
    /// Stops accepting, lets in-flight requests finish, and waits for both servers.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        while let Some(result) = self.tasks.join_next().await {
            result.context("a server task panicked")??;
        }
        Ok(())
    }
}

/// `confer serve`: start, say where, serve until SIGINT or SIGTERM, stop gracefully.
pub async fn run(config: ServeConfig) -> anyhow::Result<()> {
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
    shutdown_signal().await;
    tracing::info!("shutting down: finishing in-flight requests");
    server.shutdown().await
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
