//! The demo server: shared by `examples/demo_server.rs` and the tests, so the
//! official-client tests run exactly what the example runs.
//!
//! Authentication: the token `demo-token` in `Authorization: Bearer ...`, in
//! a `demo_token` cookie, or in the handshake's `ext.token` (the only place a
//! Node WebSocket client can put it). The principal is `ext.user` (default
//! `demo`). Anyone may subscribe except to `/secret/**`; clients may publish
//! to `/chat/**`; `/service/echo` answers the sender with its own data.

#![allow(dead_code)] // each test binary uses a different part

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use bayeux::{
    Audience, ChannelName, ChannelPattern, Config, Denial, HandshakeContext, Hooks, InMemoryLog,
    InMemorySessionStore, Server, ServiceContext,
};
use serde_json::{Value, json};

pub const TOKEN: &str = "demo-token";
pub const BASE_PATH: &str = "/cometd";

pub struct DemoHooks;

fn token_from_headers(headers: &HeaderMap) -> Option<String> {
    if let Some(auth) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some(t) = auth.strip_prefix("Bearer ")
    {
        return Some(t.to_owned());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix("demo_token=").map(str::to_owned))
}

impl Hooks for DemoHooks {
    type Principal = String;

    async fn authenticate(&self, ctx: &HandshakeContext<'_>) -> Result<String, Denial> {
        let token = token_from_headers(ctx.request.headers).or_else(|| {
            ctx.message
                .ext_field("token")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        if token.as_deref() != Some(TOKEN) {
            return Err(Denial::new("invalid_token"));
        }
        Ok(ctx
            .message
            .ext_field("user")
            .and_then(Value::as_str)
            .unwrap_or("demo")
            .to_owned())
    }

    fn principal_key(&self, principal: &String) -> Arc<str> {
        Arc::from(principal.as_str())
    }

    async fn can_subscribe(&self, _p: &String, pattern: &ChannelPattern) -> Result<(), Denial> {
        if pattern.as_str().starts_with("/secret/") {
            Err(Denial::new("forbidden"))
        } else {
            Ok(())
        }
    }

    async fn can_publish(&self, _p: &String, ch: &ChannelName, _d: &Value) -> Result<(), Denial> {
        if ch.as_str().starts_with("/chat/") {
            Ok(())
        } else {
            Err(Denial::new("read_only"))
        }
    }

    async fn on_service_message(
        &self,
        ctx: ServiceContext<'_, String>,
    ) -> Result<Option<Value>, Denial> {
        if ctx.channel.as_str() == "/service/echo" {
            Ok(Some(
                json!({ "echo": ctx.message.data, "user": ctx.principal }),
            ))
        } else {
            Err(Denial::new("no_such_service"))
        }
    }
}

pub type DemoServer = Server<DemoHooks, InMemorySessionStore<String>, InMemoryLog>;

pub fn demo_server(config: Config) -> DemoServer {
    Server::new(
        config,
        DemoHooks,
        InMemorySessionStore::new(),
        InMemoryLog::new(10_000),
    )
}

/// `POST /demo/publish {"channel", "data", "user"?}` (with the token): lets a
/// person try the demo with curl. `user` restricts the audience.
async fn demo_publish(
    State(server): State<DemoServer>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> impl IntoResponse {
    if token_from_headers(&headers).as_deref() != Some(TOKEN) {
        return (
            StatusCode::UNAUTHORIZED,
            json!({"error": "token"}).to_string(),
        );
    }
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            json!({"error": "json"}).to_string(),
        );
    };
    let channel = req["channel"].as_str().unwrap_or_default();
    let audience = match req["user"].as_str() {
        Some(u) => Audience::principal(u),
        None => Audience::All,
    };
    match server.publish(channel, req["data"].clone(), audience).await {
        Ok(seq) => (StatusCode::OK, json!({ "seq": seq }).to_string()),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            json!({ "error": e.to_string() }).to_string(),
        ),
    }
}

pub fn app(server: DemoServer) -> Router {
    Router::new()
        .route("/demo/publish", post(demo_publish))
        .with_state(server.clone())
        .merge(bayeux::axum::router_at(BASE_PATH, server))
}

/// Serves the demo on `addr` in a background task; returns the bound address
/// (port 0 picks a free one). The task ends when `server.shutdown` has been
/// called and connections drained, or when aborted.
pub async fn spawn(
    server: DemoServer,
    addr: SocketAddr,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let mut shutdown = server.shutdown_watch();
    let app = app(server);
    let task = tokio::spawn(async move {
        let graceful = async move {
            while shutdown.borrow_and_update().is_none() {
                if shutdown.changed().await.is_err() {
                    return;
                }
            }
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(graceful)
            .await
        {
            eprintln!("demo server stopped: {e}");
        }
    });
    Ok((bound, task))
}
