//! The delivery measurement (`cometd_bench::delivery`) against a small stand-in for GWS served
//! in-process on 127.0.0.1 port 0: the `bayeux` engine at `/api/v2/notifications` with Basic
//! authentication and per-user notifications, `GET /api/v2/me` logging in (cookie + CSRF
//! token) and `POST /api/v2/me/calls/{id}` answering `{"statusCode":0}` and notifying the
//! call's owner. The stand-in can be told to lose or repeat notifications, so the test proves
//! the measurement counts what a subscriber really received. (Against the real `confer serve`
//! it runs in `cometd-bench` itself.)

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use base64::Engine as _;
use bayeux::{
    Audience, ChannelPattern, Config, Denial, HandshakeContext, Hooks, InMemoryLog,
    InMemorySessionStore, Server,
};
use cometd_bench::client::Transport;
use cometd_bench::delivery::{DeliveryRun, NOTIFICATIONS_PATH, run_delivery};
use confer_bench::preload::{PreloadedAgent, PreloadedCall};
use serde_json::json;
use tokio::net::TcpListener;

const PASSWORD: &str = "pw";

/// Basic `user:pw` for any user.
struct BasicHooks;

fn basic_user(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(value.strip_prefix("Basic ")?)
        .ok()?;
    let (user, pw) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    (pw == PASSWORD).then(|| user.to_owned())
}

impl Hooks for BasicHooks {
    type Principal = String;

    async fn authenticate(&self, ctx: &HandshakeContext<'_>) -> Result<String, Denial> {
        basic_user(ctx.request.headers).ok_or_else(|| Denial::new("access_denied"))
    }

    fn principal_key(&self, p: &String) -> Arc<str> {
        Arc::from(p.as_str())
    }

    async fn can_subscribe(&self, _p: &String, _pattern: &ChannelPattern) -> Result<(), Denial> {
        Ok(())
    }
}

type GwsLike = Server<BasicHooks, InMemorySessionStore<String>, InMemoryLog>;

#[derive(Clone)]
struct Stand {
    cometd: GwsLike,
    /// Calls whose removal is answered but never notified.
    silent: Arc<HashSet<String>>,
    /// Calls whose removal is notified twice.
    doubled: Arc<HashSet<String>>,
}

async fn me(headers: HeaderMap) -> impl IntoResponse {
    match basic_user(&headers) {
        Some(user) => (
            StatusCode::OK,
            [
                (header::SET_COOKIE, format!("JSESSIONID={user}; Path=/")),
                (
                    header::HeaderName::from_static("x-csrf-token"),
                    format!("token-{user}"),
                ),
            ],
            "{}",
        )
            .into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

async fn remove(
    State(stand): State<Stand>,
    Path(call): Path<String>,
    headers: HeaderMap,
) -> impl IntoResponse {
    let user = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.strip_prefix("JSESSIONID="))
        .map(str::to_owned);
    let csrf_ok = user.as_ref().is_some_and(|u| {
        headers.get("x-csrf-token").and_then(|v| v.to_str().ok()) == Some(&format!("token-{u}"))
    });
    let Some(user) = user.filter(|_| csrf_ok) else {
        return (StatusCode::FORBIDDEN, r#"{"statusCode":3}"#);
    };
    let times = if stand.silent.contains(&call) {
        0
    } else if stand.doubled.contains(&call) {
        2
    } else {
        1
    };
    for _ in 0..times {
        let note = json!({
            "messageType": "CallStateChangeMessage",
            "notificationType": "ParticipantsUpdated",
            "call": { "id": call },
        });
        if stand
            .cometd
            .publish("/v2/me/calls", note, Audience::principal(user.as_str()))
            .await
            .is_err()
        {
            return (StatusCode::INTERNAL_SERVER_ERROR, r#"{"statusCode":4}"#);
        }
    }
    (StatusCode::OK, r#"{"statusCode":0}"#)
}

async fn stand(silent: &[&str], doubled: &[&str]) -> SocketAddr {
    let cometd = Server::new(
        Config::default(),
        BasicHooks,
        InMemorySessionStore::new(),
        InMemoryLog::new(10_000),
    );
    let state = Stand {
        cometd: cometd.clone(),
        silent: Arc::new(silent.iter().map(|s| s.to_string()).collect()),
        doubled: Arc::new(doubled.iter().map(|s| s.to_string()).collect()),
    };
    let app = Router::new()
        .route("/api/v2/me", get(me))
        .route("/api/v2/me/calls/{id}", post(remove))
        .with_state(state)
        .merge(bayeux::axum::router_at(NOTIFICATIONS_PATH, cometd));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// `agents` agents with `calls` calls each, named `a<i>` / `a<i>-c<j>`.
fn agents(agents: usize, calls: usize) -> Vec<PreloadedAgent> {
    (0..agents)
        .map(|i| PreloadedAgent {
            username: format!("a{i}"),
            password: PASSWORD.to_owned(),
            user_id: format!("a{i}"),
            phone_number: format!("1{i:04}"),
            calls: (0..calls)
                .map(|j| PreloadedCall {
                    call_id: format!("a{i}-c{j}"),
                    participant: "20001".to_owned(),
                })
                .collect(),
        })
        .collect()
}

fn run(transport: Transport, drain: Duration) -> DeliveryRun {
    DeliveryRun {
        transport,
        subscribers: 5,
        rate: 200.0,
        removals: 20,
        drain,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_owner_receives_each_removal_once_over_websocket_and_long_polling() {
    for transport in [Transport::WebSocket, Transport::LongPolling] {
        let addr = stand(&[], &[]).await;
        let o = run_delivery(
            addr,
            addr,
            &agents(5, 4),
            &run(transport, Duration::from_secs(20)),
        )
        .await
        .unwrap();
        assert_eq!(o.removals_ok, 20, "{:?}", o.first_removal_error);
        assert_eq!(o.removals_failed, 0);
        assert_eq!(o.delivered, 20);
        assert_eq!(o.missing, 0);
        assert_eq!(o.extra, 0);
        assert_eq!(o.sessions_failed, 0, "{:?}", o.first_session_failure);
        assert_eq!(o.delay_from_reply.count(), 20);
        assert_eq!(o.delay_from_request.count(), 20);
        assert_eq!(o.removal_latency.count(), 20);
        // From the request, a notification can never come before the request was sent.
        assert!(o.delay_from_request.quantile(0.5) >= o.delay_from_reply.quantile(0.5));
        assert!(o.delivered_per_s > 0.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_and_repeated_notifications_are_counted_as_such() {
    // Removal k takes call k / 5 of agent k % 5: a0-c0 and a3-c2 are among the 20.
    let addr = stand(&["a0-c0", "a3-c2"], &["a1-c1"]).await;
    // The drain ends by its bound here (two notifications never come): keep it short.
    let o = run_delivery(
        addr,
        addr,
        &agents(5, 4),
        &run(Transport::WebSocket, Duration::from_secs(2)),
    )
    .await
    .unwrap();
    assert_eq!(o.removals_ok, 20);
    assert_eq!(o.delivered, 18);
    assert_eq!(o.missing, 2);
    assert_eq!(o.extra, 1);
    assert_eq!(o.delay_from_reply.count(), 18);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_removals_are_reported_not_measured() {
    let addr = stand(&[], &[]).await;
    // Wrong password: the driver's logins fail, so nothing is measured.
    let mut bad = agents(5, 4);
    bad[2].password = "nope".to_owned();
    let err = run_delivery(
        addr,
        addr,
        &bad,
        &run(Transport::WebSocket, Duration::from_secs(2)),
    )
    .await
    .expect_err("a run whose logins fail is an error");
    assert!(format!("{err:#}").contains("a2"), "{err:#}");
}
